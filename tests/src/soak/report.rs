//! The soak's progress lines and its final report: printed, and written as
//! `report.md` and `report.json` in the output folder.

use super::stats::{percentiles, Stats};
use super::{Options, Outcome, Soak};
use std::fmt::Write;
use std::time::Duration;

/// `HH:MM:SS`.
pub(super) fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One progress line: elapsed, crashes per service, power cuts, client
/// operations, errors so far.
pub(super) fn progress(s: &mut Soak) {
    for f in &s.stats.failures[s.failures_printed..] {
        eprintln!("soak: failure: {f}");
    }
    s.failures_printed = s.stats.failures.len();
    let st = s.stats_now();
    let crashes: Vec<String> = st.services.iter().map(|(n, v)| format!("{n} {}", v.crashes())).collect();
    let failures: u64 = st.zero.named().iter().map(|(_, n)| n).sum();
    eprintln!(
        "soak {} | crashes {} ({}) | power cuts {} | client ops {} | fuzz calls {} | vault kills {}{} | failures {}",
        clock(s.started.elapsed()),
        st.total_crashes(),
        crashes.join(", "),
        st.power_cuts,
        st.total_ops() - st.fuzz_calls(),
        st.fuzz_calls(),
        st.vault_kills,
        st.damage.progress(),
        failures
    );
    if st.tcp.streams + st.tcp.cut_by_power > 0 {
        eprintln!(
            "soak {} | tcp streams {} ({:.1} MiB checked) | cut by power {}",
            clock(s.started.elapsed()),
            st.tcp.streams,
            (st.tcp.bytes + st.tcp.back_bytes) as f64 / (1 << 20) as f64,
            st.tcp.cut_by_power
        );
    }
}

fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

/// The report in Markdown.
pub fn markdown(o: &Outcome, opts: &Options) -> String {
    let st: &Stats = &o.stats;
    let mut r = String::new();
    let _ = writeln!(r, "# Soak report\n");
    let _ = writeln!(
        r,
        "Seed {} (`cargo xtask soak --seed {}`), {} of injection ({} requested), {} boots, {} power cuts. Result: **{}**.\n",
        o.seed,
        o.seed,
        clock(o.elapsed),
        clock(opts.duration),
        st.boots,
        st.power_cuts,
        if o.passed { "passed" } else { "FAILED" }
    );
    let _ = writeln!(
        r,
        "Flags: companion kills {}, power cuts under fs load {}.\n",
        if opts.companion_kills { "on" } else { "off" },
        if opts.fs_power_cuts { "on" } else { "off (fs is brought to rest and synced before each cut)" }
    );
    let _ = writeln!(r, "Where the time went: {}.\n", st.phases.describe(st.boots));
    let costliest: Vec<String> = st
        .commands
        .costliest(8)
        .iter()
        .map(|(kind, n, total, worst)| {
            format!("`{kind}` {n} in {:.1} s (worst {:.1} s)", *total as f64 / 1e3, *worst as f64 / 1e3)
        })
        .collect();
    if !costliest.is_empty() {
        let _ = writeln!(r, "The shell commands that took the most time: {}.\n", costliest.join(", "));
    }
    let _ = writeln!(
        r,
        "| service | crashes injected | of them kills | restarts | recovery median / p99 / worst (ms, from `crash`) | requests served | checkpoints |"
    );
    let _ = writeln!(r, "|---|---:|---:|---:|---|---:|---:|");
    for (name, s) in &st.services {
        let rec = percentiles(&s.recoveries_ns).map_or("-".to_string(), |(m, p, w)| {
            format!("{} / {} / {} ({} timed)", ms(m), ms(p), ms(w), s.recoveries_ns.len())
        });
        let _ = writeln!(
            r,
            "| {name} | {} | {} | {} | {rec} | {} | {} |",
            s.crashes(),
            s.kills,
            s.restarts,
            s.requests,
            s.checkpoints
        );
    }
    let _ = writeln!(
        r,
        "\nIn all: {} crashes injected, {} with a driver and the services above it crashed together, {} chaos periods, \
         {} kills of the vault, {} runs of the memory hog.\n",
        st.total_crashes(),
        st.combined_crashes,
        st.chaos_periods,
        st.vault_kills,
        st.hogs
    );
    let _ = writeln!(
        r,
        "Syscall fuzzer: {} system calls from runs of {} workers at once: {} finished runs (the final boot's \
         included) and {} calls of runs a power cut ended (as far as each had said); fuzzer leaks {}, fuzzer \
         hangs {}.\n",
        st.fuzz_calls(),
        super::attackers::FUZZ_WORKERS,
        st.client_runs.get("fuzz").copied().unwrap_or(0),
        st.fuzz_calls_cut_off,
        st.zero.fuzz_leaks,
        st.zero.fuzz_hangs
    );
    if let Some(line) = &st.fuzz_final {
        let _ = writeln!(r, "The final boot's fuzzer run (nothing else running; its leak check counts): `{line}`\n");
    }
    let _ = writeln!(r, "| client | runs finished | operations checked |\n|---|---:|---:|");
    for (name, ops) in &st.client_ops {
        let _ = writeln!(r, "| {name} | {} | {ops} |", st.client_runs.get(name).copied().unwrap_or(0));
    }
    if st.client_ops.contains_key("http") || st.http.cut_by_power > 0 {
        let h = &st.http;
        let _ = writeln!(
            r,
            "\nHTTP from the host (httpd over net over nic, through a forwarded port): {} downloads of the whole \
             file and {} byte ranges, {:.1} MiB compared byte for byte; {} downloads cut off by a power cut (not \
             errors; the {:.1} MiB they had before the cut compared too).{}",
            h.downloads,
            h.ranges,
            h.bytes as f64 / (1 << 20) as f64,
            h.cut_by_power,
            h.cut_bytes as f64 / (1 << 20) as f64,
            percentiles(&h.whole_ms).map_or(String::new(), |(m, _, w)| format!(
                " A whole download took {:.1} s at the median, {:.1} s at worst ({:.2} MiB/s at the median).",
                m as f64 / 1000.0,
                w as f64 / 1000.0,
                super::web::SIZE as f64 / (1 << 20) as f64 / (m.max(1) as f64 / 1000.0)
            ))
        );
    }
    if st.client_ops.contains_key("tcpsend") || st.tcp.cut_by_power > 0 {
        let t = &st.tcp;
        let _ = writeln!(
            r,
            "\nTCP from the guest to the host (tcpsend over net over nic, to a sink on the host): {} streams \
             finished, {:.1} MiB to the host and {:.1} MiB back compared byte for byte; {} streams cut off by a \
             power cut (not errors).{}",
            t.streams,
            t.bytes as f64 / (1 << 20) as f64,
            t.back_bytes as f64 / (1 << 20) as f64,
            t.cut_by_power,
            percentiles(&t.ms).map_or(String::new(), |(m, _, w)| format!(
                " A stream took {:.1} s at the median, {:.1} s at worst.",
                m as f64 / 1000.0,
                w as f64 / 1000.0
            ))
        );
    }
    let _ = writeln!(
        r,
        "\nAfter power cuts: {} kv histories found a committed prefix, {} synced files read back whole; \
         {} cuts came while fs's committed epoch was being written to the data disk (clean with the redo list \
         the next boot applies again).\n",
        st.prefix_checks, st.synced_checks, st.cuts_mid_epoch
    );
    damage_markdown(&mut r, st);
    let _ = writeln!(r, "| must be zero | count |\n|---|---:|");
    for (name, n) in st.zero.named() {
        let _ = writeln!(r, "| {name} | {n} |");
    }
    if !st.failures.is_empty() {
        let _ = writeln!(r, "\n## Failures\n");
        for f in &st.failures {
            let _ = writeln!(r, "- {f}");
        }
    }
    if !st.refused.is_empty() {
        let _ = writeln!(r, "\n## Injections refused ({})\n", st.refused.len());
        for f in st.refused.iter().take(20) {
            let _ = writeln!(r, "- {f}");
        }
    }
    r
}

/// The damages to the checkpoint disk, if any were done.
fn damage_markdown(r: &mut String, st: &Stats) {
    let d = &st.damage;
    if d.total() == 0 {
        return;
    }
    let per: Vec<String> = d.per_service.iter().map(|(n, c)| format!("{n} {c}")).collect();
    let _ = writeln!(
        r,
        "Checkpoint disk damaged between boots: {} records ({} with bytes flipped, {} cut short; {}), {} of them a \
         service's newest; the vault reported {}, {} zeroed whole read as never written; {} fallbacks to the older \
         record; the service committed again after {}; {} acknowledged kvcommit ops lost with a damaged record (by \
         design, not failures).\n",
        d.total(),
        d.flips,
        d.truncations,
        per.join(", "),
        d.newest,
        d.reported,
        d.silent,
        d.fallbacks,
        d.commits_after,
        d.lost_ops
    );
    for line in &d.done {
        let _ = writeln!(r, "- {line}");
    }
    let _ = writeln!(r);
}

/// The damages as a JSON object.
fn damage_json(st: &Stats) -> String {
    let d = &st.damage;
    let per: Vec<String> = d.per_service.iter().map(|(n, c)| format!("{}: {c}", json_str(n))).collect();
    format!(
        "{{\"flips\": {}, \"truncations\": {}, \"per_service\": {{{}}}, \"newest\": {}, \"reported\": {}, \
         \"silent\": {}, \"fallbacks\": {}, \"commits_after\": {}, \"lost_ops\": {}}}",
        d.flips,
        d.truncations,
        per.join(", "),
        d.newest,
        d.reported,
        d.silent,
        d.fallbacks,
        d.commits_after,
        d.lost_ops
    )
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The report as JSON.
pub fn json(o: &Outcome, opts: &Options) -> String {
    let st = &o.stats;
    let services: Vec<String> = st
        .services
        .iter()
        .map(|(name, s)| {
            let (m, p, w) = percentiles(&s.recoveries_ns).unwrap_or((0, 0, 0));
            format!(
                "{}: {{\"crashes\": {}, \"kills\": {}, \"restarts\": {}, \"requests\": {}, \"checkpoints\": {}, \
                 \"recovery_ns\": {{\"timed\": {}, \"median\": {m}, \"p99\": {p}, \"worst\": {w}}}}}",
                json_str(name),
                s.crashes(),
                s.kills,
                s.restarts,
                s.requests,
                s.checkpoints,
                s.recoveries_ns.len()
            )
        })
        .collect();
    let clients: Vec<String> = st.client_ops.iter().map(|(n, v)| format!("{}: {v}", json_str(n))).collect();
    let zero: Vec<String> = st.zero.named().iter().map(|(n, v)| format!("{}: {v}", json_str(n))).collect();
    let failures: Vec<String> = st.failures.iter().map(|f| json_str(f)).collect();
    let phases: Vec<String> = st.phases.named().iter().map(|(n, ms)| format!("{}: {ms}", json_str(n))).collect();
    format!(
        "{{\n  \"seed\": {},\n  \"passed\": {},\n  \"elapsed_s\": {},\n  \"requested_s\": {},\n  \"boots\": {},\n  \
         \"power_cuts\": {},\n  \"crashes\": {},\n  \"combined_crashes\": {},\n  \"chaos_periods\": {},\n  \
         \"vault_kills\": {},\n  \"hogs\": {},\n  \"companion_kills\": {},\n  \"fs_power_cuts\": {},\n  \
         \"prefix_checks\": {},\n  \"synced_checks\": {},\n  \"cuts_mid_epoch\": {},\n  \"fuzz_calls\": {},\n  \"http\": {{\"downloads\": {}, \"ranges\": {}, \
         \"bytes\": {}, \"cut_by_power\": {}, \"cut_bytes\": {}}},\n  \"tcp\": {{\"streams\": {}, \"bytes\": {}, \
         \"back_bytes\": {}, \"cut_by_power\": {}}},\n  \"phases_ms\": {{{}}},\n  \"services\": {{{}}},\n  \"client_ops\": {{{}}},\n  \
         \"must_be_zero\": {{{}}},\n  \"failures\": [{}],\n  \"refused\": {},\n  \"damage\": {}\n}}\n",
        o.seed,
        o.passed,
        o.elapsed.as_secs(),
        opts.duration.as_secs(),
        st.boots,
        st.power_cuts,
        st.total_crashes(),
        st.combined_crashes,
        st.chaos_periods,
        st.vault_kills,
        st.hogs,
        opts.companion_kills,
        opts.fs_power_cuts,
        st.prefix_checks,
        st.synced_checks,
        st.cuts_mid_epoch,
        st.fuzz_calls(),
        st.http.downloads,
        st.http.ranges,
        st.http.bytes,
        st.http.cut_by_power,
        st.http.cut_bytes,
        st.tcp.streams,
        st.tcp.bytes,
        st.tcp.back_bytes,
        st.tcp.cut_by_power,
        phases.join(", "),
        services.join(", "),
        clients.join(", "),
        zero.join(", "),
        failures.join(", "),
        st.refused.len(),
        damage_json(st)
    )
}

/// Print the report and write it to `report.md` and `report.json`.
pub fn write(o: &Outcome, opts: &Options) {
    let md = markdown(o, opts);
    println!("{md}");
    let _ = std::fs::write(opts.out_dir.join("report.md"), &md);
    let _ = std::fs::write(opts.out_dir.join("report.json"), json(o, opts));
    eprintln!("soak: report in {}", opts.out_dir.join("report.md").display());
    if !o.passed {
        eprintln!("soak: FAILED; replay with --seed {}", o.seed);
    }
}
