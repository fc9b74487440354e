//! `cargo xtask bench --only kvload`: kv throughput through the companion
//! beside straight to the service, at 1, 4 and 16 clients.
//!
//! Each boot (no disks: the companion answers durable requests at once, as
//! a kv started alone does) runs `kvload C OPS` and `kvload --direct C OPS`
//! for every client count C, the two modes in turn (which goes first
//! alternates between boots). kvload does the same checked operations in
//! both modes and prints the operations per second over the window from the
//! first client's first operation to the last client's last. The table
//! gives the medians over the boots and the ratio through / direct, with
//! the goal (at least 0.8) beside the 4-client ratio; the plot
//! (`target/bench/kvload.svg`) draws operations per second against clients.

use super::{median_of, Figures, MEMORY_MB, RUNS};
use kintsugi_tests::{Image, Machine, QemuConfig};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Client counts compared.
pub const CLIENTS: [u64; 3] = [1, 4, 16];
/// Operations per kvload run, in total over its clients (divisible by every
/// client count).
const OPS: u64 = 6400;
/// The goal for through / direct at 4 clients (at least this).
const GOAL_4: f64 = 0.8;

/// The figure name for what (`ops` or `requests`), a mode and a client count.
fn figure(what: &str, direct: bool, clients: u64) -> String {
    format!("kvload_{what}_per_s_{}_{clients}", if direct { "direct" } else { "companion" })
}

/// The operations and requests per second a kvload run printed, if it
/// reported no errors.
fn parse_run(out: &str, clients: u64) -> Result<(f64, f64), String> {
    let ok = format!("kvload: clients={clients} ops={OPS} errors=0");
    if !out.lines().any(|l| l.trim() == ok) {
        return Err(format!("kvload did not report `{ok}`:\n{out}"));
    }
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("kvload: ").filter(|l| l.starts_with("ops_per_s=")))
        .ok_or_else(|| format!("kvload printed no ops_per_s:\n{out}"))?;
    let value = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse::<f64>().ok())
            .ok_or_else(|| format!("kvload printed no {name}: {line}"))
    };
    Ok((value("ops_per_s")?, value("requests_per_s")?))
}

/// One boot: both modes at every client count.
fn boot_run(image: &Image, direct_first: bool) -> Result<Figures, String> {
    let cfg = QemuConfig { memory_mb: MEMORY_MB, ..QemuConfig::default() };
    let mut m = Machine::boot(image, &cfg, false).map_err(|e| e.to_string())?;
    m.wait_prompt(Duration::from_secs(120)).map_err(|e| e.to_string())?;
    for service in kintsugi_tests::resilient_services(image) {
        m.wait_for_text(&format!("{service} is up"), Duration::from_secs(120)).map_err(|e| e.to_string())?;
    }
    let mut figures = Figures::new();
    for clients in CLIENTS {
        for direct in [direct_first, !direct_first] {
            let flag = if direct { "--direct " } else { "" };
            let out = m
                .command(&format!("run kvload {flag}{clients} {OPS}"), Duration::from_secs(600))
                .map_err(|e| e.to_string())?;
            let (ops, requests) = parse_run(&out, clients)?;
            figures.insert(figure("ops", direct, clients), ops);
            figures.insert(figure("requests", direct, clients), requests);
        }
    }
    m.power_off(Duration::from_secs(60)).map_err(|e| e.to_string())?;
    Ok(figures)
}

/// The kvload table (markdown); also writes the plot to `plot`.
pub fn kvload_table(image: &Image, plot: &Path) -> Result<String, String> {
    let mut runs = Vec::new();
    for i in 0..RUNS {
        eprintln!("bench: kvload run {} of {RUNS}", i + 1);
        runs.push(boot_run(image, i % 2 == 1)?);
    }
    let get = |name: &str| median_of(&runs, name).ok_or_else(|| format!("bench: kvload gave no {name}"));
    let mut t = format!(
        "kv throughput, `kvload C {OPS}` (checked mixed operations, C client processes) through the companion \
         and with `--direct` (a kv started alone), no disks; medians of {RUNS} boots, both modes in each\n\n\
         | clients | through the companion (ops/s) | straight to the service (ops/s) | through / direct | goal \
         | kv requests/s: through | direct | through / direct |\n\
         |---:|---:|---:|---:|---|---:|---:|---:|\n"
    );
    let mut companion = Vec::new();
    let mut direct = Vec::new();
    for clients in CLIENTS {
        let (c, d) = (get(&figure("ops", false, clients))?, get(&figure("ops", true, clients))?);
        let (rc, rd) = (get(&figure("requests", false, clients))?, get(&figure("requests", true, clients))?);
        let ratio = c / d;
        let goal = if clients == 4 {
            format!("at least {GOAL_4}: {}", if ratio >= GOAL_4 { "met" } else { "NOT met" })
        } else {
            String::new()
        };
        let _ =
            writeln!(t, "| {clients} | {c:.0} | {d:.0} | {ratio:.2} | {goal} | {rc:.0} | {rd:.0} | {:.2} |", rc / rd);
        companion.push((clients, c));
        direct.push((clients, d));
    }
    let svg = plot_svg(
        "kv operations per second against clients (kvload)",
        &[
            Series { label: "through the companion", colour: "#d62728", points: &companion },
            Series { label: "straight to the service (--direct)", colour: "#1f77b4", points: &direct },
        ],
    );
    if let Some(dir) = plot.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(plot, svg).map_err(|e| format!("{}: {e}", plot.display()))?;
    let root = kintsugi_tests::image::workspace_root();
    let _ = writeln!(t, "\nPlot: `{}`", plot.strip_prefix(&root).unwrap_or(plot).display());
    println!("{t}");
    Ok(t)
}

/// Plot size and margins (SVG user units).
const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// A round number at or above `v` for the y axis's top (a power of ten
/// times 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0].iter().map(|m| m * p).find(|&c| c >= v).unwrap_or(10.0 * p)
}

/// One line of a plot.
pub struct Series<'a> {
    pub label: &'a str,
    /// An SVG colour.
    pub colour: &'a str,
    /// (x, y) points.
    pub points: &'a [(u64, f64)],
}

/// A line plot of y against x (x on a log2 scale, y from zero): one line
/// with its points per series.
pub fn plot_svg(title: &str, series: &[Series]) -> String {
    let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| (p.0.max(1) as f64).log2())).collect();
    let (x0, x1) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (x0, x1) = if xs.is_empty() || x1 <= x0 { (0.0, 1.0) } else { (x0, x1) };
    let ymax = nice_ceiling(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max) * 1.05);
    let px = |x: u64| LEFT + ((x.max(1) as f64).log2() - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y.max(0.0) / ymax * (H - TOP - BOTTOM);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        W / 2.0,
        escape(title)
    );
    // Axes, the y grid (five steps) and the x ticks.
    let _ = writeln!(s, "<path d=\"M{LEFT} {TOP} V{} H{}\" stroke=\"black\" fill=\"none\"/>", H - BOTTOM, W - RIGHT);
    for i in 0..=5 {
        let v = ymax * i as f64 / 5.0;
        let y = py(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let mut ticks: Vec<u64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for x in ticks {
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x}</text>", px(x), H - BOTTOM + 18.0);
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">clients</text>\n\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">operations per second</text>",
        (LEFT + W - RIGHT) / 2.0,
        H - 10.0,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0
    );
    for (i, Series { label, colour, points }) in series.iter().enumerate() {
        let path: Vec<String> = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" stroke=\"{colour}\" stroke-width=\"2\" fill=\"none\"/>",
            path.join(" ")
        );
        for &(x, y) in points.iter() {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{x} clients: {y:.0}</title></circle>",
                px(x),
                py(y)
            );
        }
        let ly = TOP + 8.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{0}\" y1=\"{ly}\" x2=\"{1}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"{2}\" y=\"{3}\">{4}</text>",
            LEFT + 14.0,
            LEFT + 40.0,
            LEFT + 46.0,
            ly + 4.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_read_only_when_kvload_reports_no_errors() {
        let line = "kvload: ops_per_s=1234 requests_per_s=1500 window_ms=5186 via=direct";
        let good = format!("kvload: clients=4 ops={OPS} errors=0\n{line}\n");
        assert_eq!(parse_run(&good, 4), Ok((1234.0, 1500.0)));
        let bad = format!("kvload: clients=4 ops={OPS} errors=2\n{line}\n");
        assert!(parse_run(&bad, 4).is_err());
        assert!(parse_run(&format!("kvload: clients=4 ops={OPS} errors=0\n"), 4).is_err());
    }

    #[test]
    fn the_plot_puts_points_on_a_log_x_axis_and_a_y_axis_from_zero() {
        let a = [(1, 100.0), (4, 400.0), (16, 800.0)];
        let svg = plot_svg("t", &[Series { label: "a <b>", colour: "#000", points: &a }]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt;"));
        // x: 1, 4, 16 at the left edge, the middle and the right edge; y:
        // 800 * 1.05 rounds up to 1000 at the top.
        let mid = (LEFT + W - RIGHT) / 2.0;
        let y = |v: f64| H - BOTTOM - v / 1000.0 * (H - TOP - BOTTOM);
        let want = format!("{LEFT:.1},{:.1} {mid:.1},{:.1} {:.1},{:.1}", y(100.0), y(400.0), W - RIGHT, y(800.0));
        assert!(svg.contains(&want), "{want} not in\n{svg}");
        assert_eq!(nice_ceiling(840.0), 1000.0);
        assert_eq!(nice_ceiling(1600.0), 2000.0);
        assert_eq!(nice_ceiling(10820.0), 12000.0);
        assert_eq!(nice_ceiling(3.1), 4.0);
    }
}
