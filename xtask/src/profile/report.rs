//! From a dump to what a reader wants: samples grouped by program, the
//! functions they landed in (self) and passed through (total), folded
//! stacks (`program;outer;...;leaf count`, user frames then kernel frames
//! marked `[k]`) and the flame graph drawn from them by `inferno`.

use super::samples::{Dump, Mode};
use super::symbols::Symbols;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

/// Resolves addresses to function names: the kernel's symbols, and each
/// program's, found by process name in the image folder.
pub struct Resolver {
    kernel: Symbols,
    image_dir: std::path::PathBuf,
    programs: BTreeMap<String, Option<Symbols>>,
}

impl Resolver {
    /// Symbols of `kernel_elf`; programs are looked up in `image_dir`.
    pub fn new(kernel_elf: &Path, image_dir: &Path) -> Result<Resolver, String> {
        Ok(Resolver {
            kernel: Symbols::load(kernel_elf)?,
            image_dir: image_dir.to_path_buf(),
            programs: BTreeMap::new(),
        })
    }

    /// With given tables (for tests).
    #[cfg(test)]
    pub fn with(kernel: Symbols, programs: BTreeMap<String, Symbols>) -> Resolver {
        Resolver {
            kernel,
            image_dir: std::path::PathBuf::new(),
            programs: programs.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        }
    }

    /// The symbols of the program a process named `name` runs: the ELF of
    /// that name, or for a companion (`fs-companion`), which runs its
    /// service's program in the companion role, the service's ELF (`fs`).
    fn program(&mut self, name: &str) -> Option<&Symbols> {
        if !self.programs.contains_key(name) {
            let elf = [Some(name), name.strip_suffix("-companion")]
                .into_iter()
                .flatten()
                .map(|n| self.image_dir.join(n))
                .find(|p| !name.is_empty() && p.is_file());
            let symbols = elf.and_then(|path| Symbols::load(&path).ok());
            self.programs.insert(name.to_string(), symbols);
        }
        self.programs.get(name).and_then(|s| s.as_ref())
    }

    /// Names for a leaf-first list of frames (return addresses looked up one
    /// byte back, inside the call), leaf first.
    fn names(&mut self, program: Option<&str>, frames: &[u64]) -> Vec<String> {
        let symbols = match program {
            Some(p) => self.program(p),
            None => Some(&self.kernel),
        };
        frames
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let at = if i == 0 { *a } else { a.saturating_sub(1) };
                symbols.and_then(|s| s.lookup(at)).map(String::from).unwrap_or_else(|| format!("{a:#x}"))
            })
            .collect()
    }
}

/// Per program: samples, those in kernel mode, and per function the self
/// and total counts.
#[derive(Default)]
struct Program {
    pids: BTreeSet<u32>,
    samples: u64,
    kernel: u64,
    self_counts: BTreeMap<String, u64>,
    total_counts: BTreeMap<String, u64>,
}

/// The report text and the folded stacks.
pub struct Report {
    /// Human-readable summary.
    pub text: String,
    /// Folded stacks, one `frames count` per line.
    pub folded: Vec<String>,
}

/// What a sample's program is called.
fn label(dump: &Dump, pid: u32, mode: Mode) -> String {
    match (pid, mode) {
        (_, Mode::Idle) => "idle".into(),
        (0, _) => "kernel, interrupts while idle".into(),
        (pid, _) => dump.names.get(&pid).cloned().unwrap_or_else(|| format!("pid {pid}")),
    }
}

/// Build the report; `top` functions per program.
pub fn build(dump: &Dump, resolver: &mut Resolver, top: usize) -> Report {
    let mut programs: BTreeMap<String, Program> = BTreeMap::new();
    let mut folded: BTreeMap<String, u64> = BTreeMap::new();
    let total: u64 = dump.stacks.iter().map(|s| s.count).sum();
    for s in &dump.stacks {
        let name = label(dump, s.pid, s.mode);
        let user = if s.pid == 0 { Vec::new() } else { resolver.names(Some(&name), &s.user) };
        let kernel: Vec<String> = resolver.names(None, &s.kernel).into_iter().map(|n| format!("[k] {n}")).collect();
        let p = programs.entry(name.clone()).or_default();
        p.pids.insert(s.pid);
        p.samples += s.count;
        if s.mode == Mode::Kernel {
            p.kernel += s.count;
        }
        if let Some(leaf) = kernel.first().or(user.first()) {
            *p.self_counts.entry(leaf.clone()).or_insert(0) += s.count;
        }
        let on_stack: BTreeSet<&String> = kernel.iter().chain(user.iter()).collect();
        for f in on_stack {
            *p.total_counts.entry(f.clone()).or_insert(0) += s.count;
        }
        let mut path = vec![name.replace(';', ":")];
        path.extend(user.iter().rev().chain(kernel.iter().rev()).map(|f| f.replace(';', ":")));
        *folded.entry(path.join(";")).or_insert(0) += s.count;
    }
    let pct = |n: u64, of: u64| if of == 0 { 0.0 } else { 100.0 * n as f64 / of as f64 };
    let mut text = String::new();
    let secs = dump.ns as f64 / 1e9;
    let _ = writeln!(
        text,
        "{} samples in {secs:.2} s ({:.0} per second; asked for {} Hz), {} dropped",
        dump.samples,
        dump.samples as f64 / secs.max(1e-9),
        dump.hz,
        dump.dropped
    );
    let mut order: Vec<(&String, &Program)> = programs.iter().collect();
    order.sort_by(|a, b| b.1.samples.cmp(&a.1.samples).then(a.0.cmp(b.0)));
    let _ = writeln!(text, "\nBy program (share of all samples; kernel: share of its samples in kernel mode):");
    for (name, p) in &order {
        let pids = if name.as_str() == "idle" || p.pids == BTreeSet::from([0]) {
            "no process".to_string()
        } else if p.pids.len() == 1 {
            format!("pid {}", p.pids.iter().next().unwrap_or(&0))
        } else {
            format!("{} processes", p.pids.len())
        };
        let _ = writeln!(
            text,
            "  {:6.2}%  kernel {:5.1}%  {name} ({pids})",
            pct(p.samples, total),
            pct(p.kernel, p.samples)
        );
    }
    for (name, p) in order.iter().filter(|(n, _)| n.as_str() != "idle") {
        let _ = writeln!(text, "\n{name}: {} samples ({:.2}% of all)", p.samples, pct(p.samples, total));
        let _ = writeln!(text, "    self   total  function");
        let mut fns: Vec<(&String, &u64)> = p.self_counts.iter().collect();
        fns.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (f, n) in fns.into_iter().take(top) {
            let t = p.total_counts.get(f).copied().unwrap_or(0);
            let _ = writeln!(text, "  {:5.1}%  {:5.1}%  {f}", pct(*n, p.samples), pct(t, p.samples));
        }
    }
    Report { text, folded: folded.into_iter().map(|(k, v)| format!("{k} {v}")).collect() }
}

/// Draw the flame graph of `folded` into `out`.
pub fn flame_graph(folded: &[String], title: &str, out: &Path) -> Result<(), String> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.count_name = "samples".into();
    let file = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    inferno::flamegraph::from_lines(&mut options, folded.iter().map(String::as_str), std::io::BufWriter::new(file))
        .map_err(|e| format!("flame graph: {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::samples::parse;
    use super::*;

    #[test]
    fn groups_resolves_and_folds() {
        let dump = parse(
            "PROFILE begin hz=1000 samples=10 dropped=0 unique=3 ns=10000000\n\
             PROFILE name 5 app\n\
             PROFILE s 6 5 u ;1010,2005\n\
             PROFILE s 3 5 k ffff0010;1020,2005\n\
             PROFILE s 1 0 i ;\n\
             PROFILE end\n",
        )
        .unwrap();
        let kernel = Symbols::from_list(vec![(0xffff0000, 0x100, "sys_wait".into())]);
        let app = Symbols::from_list(vec![
            (0x1000, 0x100, "work".into()),
            (0x2000, 0x5, "main".into()),
            (0x2005, 0x10, "after_main".into()),
        ]);
        let mut r = Resolver::with(kernel, BTreeMap::from([("app".to_string(), app)]));
        let report = build(&dump, &mut r, 5);
        // The return address 0x2005 (the call is main's last instruction) is
        // looked up one byte back: in main, not after_main.
        assert!(report.folded.contains(&"app;main;work 6".to_string()), "{:?}", report.folded);
        assert!(report.folded.contains(&"app;main;work;[k] sys_wait 3".to_string()), "{:?}", report.folded);
        assert!(report.folded.contains(&"idle 1".to_string()));
        assert!(report.text.contains("90.00%  kernel  33.3%  app (pid 5)"), "{}", report.text);
        assert!(report.text.contains(" 66.7%  100.0%  work"), "{}", report.text);
        assert!(report.text.contains(" 33.3%   33.3%  [k] sys_wait"), "{}", report.text);
        let svg = std::env::temp_dir().join(format!("kintsugi-flame-{}.svg", std::process::id()));
        flame_graph(&report.folded, "test", &svg).unwrap();
        let drawn = std::fs::read_to_string(&svg).unwrap();
        let _ = std::fs::remove_file(&svg);
        assert!(drawn.contains("<svg") && drawn.contains("sys_wait"));
    }
}
