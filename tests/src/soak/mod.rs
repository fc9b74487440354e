//! The soak campaign (issue 11): boot the system on a pair of disks, keep
//! client programs loading every resilient service and checking every
//! answer, inject crashes of every kind at random (seeded) moments, cut
//! the power now and then and boot again on the same disks, and check
//! that what was acknowledged survived and that both FAT disks are clean.
//! `cargo xtask soak` and the `soak` system test run it.
//!
//! Modules: [`rng`] the seeded choices, [`inject`] what is done to the
//! system, [`clients`] the load programs, [`attackers`] the hostile client
//! and the syscall fuzzer, [`web`] the HTTP downloads from the host
//! (httpd over net over nic), [`stream`] the TCP streams from the
//! guest's tcpsend to a sink on the host, [`durable`] what must survive a
//! power cut, [`damage`] the damage to checkpoint records between boots,
//! [`ps`] the services' figures, [`stats`] the counts, [`report`] the
//! progress lines and the final report; this module the boots and the
//! loop.

pub mod attackers;
pub mod clients;
pub mod damage;
pub mod durable;
pub mod inject;
pub mod ps;
pub mod report;
pub mod rng;
pub mod stats;
pub mod stream;
pub mod web;

use crate::machine::{Machine, MachineError};
use crate::{disks, qemu, quiet, resilient_services, Image, QemuConfig, BOOT_TIMEOUT};
use inject::Action;
use rng::Rng;
use stats::{Phase, Stats};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a soak runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long to inject (the final checks come after).
    pub duration: Duration,
    /// The seed of every random choice.
    pub seed: u64,
    /// The data and checkpoint disks (kept between boots).
    pub disks: Vec<PathBuf>,
    /// Where the report and failure logs go.
    pub out_dir: PathBuf,
    /// Seconds between power cuts: a random value in this range.
    pub cut_every: (u64, u64),
    /// Also kill companions (of the services whose acknowledgements all
    /// survive it; see [`inject::COMPANION_KILLS`]).
    pub companion_kills: bool,
    /// Cut the power while fsload runs; without it, fs is brought to rest
    /// and synced before each cut.
    pub fs_power_cuts: bool,
    /// Copy the console to stdout.
    pub echo: bool,
    /// Milliseconds between injections: a random value in this range.
    pub pause_ms: (u64, u64),
    /// Keep chaos on in [`inject::STEADY_CHAOS`] from the start of every
    /// boot, not only for periods (the rate of crashes a run of an hour
    /// needs for ten thousand).
    pub steady_chaos: bool,
    /// On average one power cut in this many is followed by damage to a
    /// checkpoint record on the checkpoint disk ([`damage`]; 0: never).
    pub damage_every: u64,
    /// System calls of the fuzzer run in the final boot, whose leak check
    /// counts ([`attackers::FINAL_FUZZ_CALLS`] for issue 11's ten million).
    pub final_fuzz_calls: u64,
    /// The machine (its disks are replaced by `disks`).
    pub machine: QemuConfig,
}

/// Why a boot ended early: the system stopped answering or panicked.
#[derive(Debug)]
enum Trouble {
    Hang(String),
    Panic(String),
}

impl From<MachineError> for Trouble {
    fn from(e: MachineError) -> Trouble {
        match e {
            MachineError::Panic(c) => Trouble::Panic(c),
            other => Trouble::Hang(other.to_string()),
        }
    }
}

/// How a boot ended.
enum BootEnd {
    /// Time for a power cut.
    Cut,
    /// The soak's time is up; the clients finished.
    Done,
}

/// The state that lives across boots.
struct Soak<'a> {
    o: &'a Options,
    image: &'a Image,
    rng: Rng,
    stats: Stats,
    history: durable::History,
    synced: durable::Synced,
    started: Instant,
    failures_saved: u32,
    /// The last `ps` of the current boot, and the one at its start.
    ps_now: BTreeMap<String, ps::Figures>,
    /// `ps_now` as the last boot ended (for the checks at the cut).
    ps_last_boot: BTreeMap<String, ps::Figures>,
    ps_base: BTreeMap<String, ps::Figures>,
    /// Kills of service processes in the current boot.
    kills: BTreeMap<String, u64>,
    /// How far the current boot's console has been read.
    seen: usize,
    /// Failures already printed.
    failures_printed: usize,
    /// The last companion line was a replayed reply that differed.
    divergence_burst: bool,
    /// The hostile client and the fuzzer running in the current boot.
    attackers: attackers::Running,
    /// When the last fuzzer run was started.
    fuzz_at: Option<Instant>,
    /// The HTTP client on the host (with a network card).
    web: Option<web::Web>,
    /// The host port forwarded to the guest's port 80 in the current boot.
    port: u16,
    /// The console kept at the last failed download.
    web_log: Option<PathBuf>,
    /// The TCP sink on the host (with a network card).
    stream: Option<stream::Stream>,
    /// The choices of [`damage`] (a generator of their own, so that the
    /// other choices of a seed stay as they were).
    damage_rng: Rng,
    /// A damage done, to be checked at the next boot; then at the next
    /// cut (the service committed again).
    damage_boot: Option<damage::Damage>,
    damage_commit: Option<damage::Damage>,
    /// When the current [`Phase`] began.
    phase_began: Instant,
}

/// What a soak found.
pub struct Outcome {
    /// The counts.
    pub stats: Stats,
    /// The seed.
    pub seed: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Whether every must-be-zero count is zero.
    pub passed: bool,
}

/// Run a soak of `image` with `o`; prints progress lines and writes the
/// report to `o.out_dir`.
pub fn run(image: &Image, o: &Options) -> Outcome {
    let _ = std::fs::create_dir_all(&o.out_dir);
    // The logs of an earlier soak in the same folder.
    for entry in std::fs::read_dir(&o.out_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") && (name.starts_with("console-boot") || name.starts_with("failure-")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let mut s = Soak {
        o,
        image,
        rng: Rng::new(o.seed),
        stats: Stats::default(),
        history: durable::History::default(),
        synced: durable::Synced::default(),
        started: Instant::now(),
        failures_saved: 0,
        ps_now: BTreeMap::new(),
        ps_last_boot: BTreeMap::new(),
        ps_base: BTreeMap::new(),
        kills: BTreeMap::new(),
        seen: 0,
        failures_printed: 0,
        divergence_burst: false,
        attackers: attackers::Running::default(),
        fuzz_at: None,
        web: None,
        port: 0,
        web_log: None,
        stream: None,
        damage_rng: Rng::new(o.seed ^ 0x5107_da3a_9e00_0011),
        damage_boot: None,
        damage_commit: None,
        phase_began: Instant::now(),
    };
    if o.machine.nic.is_some() {
        if let Err(e) = put_www(&o.disks[0], &o.out_dir) {
            eprintln!("soak: cannot put /www/{} on the data disk: {e}", web::FILE);
            s.stats.fail(|z| &mut z.client_errors, 1, format!("put /www/{} on the data disk: {e}", web::FILE));
        } else {
            s.web = Some(web::Web::start(o.seed));
        }
        match stream::Stream::start(o.seed) {
            Ok(t) => s.stream = Some(t),
            Err(e) => s.stats.fail(|z| &mut z.client_errors, 1, e),
        }
    }
    eprintln!("soak: seed {} for {} s (--seed {} replays the choices)", o.seed, o.duration.as_secs(), o.seed);
    let mut after_cut = false;
    let mut failed_boots = 0;
    loop {
        let booted = s.boot();
        s.lap(Phase::Booting);
        let mut m = match booted {
            Ok(m) => m,
            Err(t) => {
                s.web_cut();
                s.trouble(t, None);
                // What the damage led to cannot be told from a failed boot.
                s.damage_boot = None;
                failed_boots += 1;
                if failed_boots >= 3 {
                    eprintln!("soak: three boots in a row failed; stopping");
                    break;
                }
                after_cut = true;
                continue;
            }
        };
        failed_boots = 0;
        let end = s.one_boot(&mut m, after_cut);
        s.save_console(&m);
        match end {
            Ok(BootEnd::Cut) => {
                s.web_cut();
                m.kill();
                // What kvcommit said up to the cut.
                s.read_lines(&m, &mut []);
                s.attackers.cut(&mut s.stats);
                s.stats.power_cuts += 1;
                s.fsck("after power cut");
                s.check_commit_after_damage();
                s.damage_slot();
                s.lap(Phase::BetweenBoots);
                after_cut = true;
            }
            Ok(BootEnd::Done) => {
                s.finish(m);
                s.lap(Phase::Ending);
                break;
            }
            Err(t) => {
                s.web_cut();
                m.kill();
                s.read_lines(&m, &mut []);
                s.attackers.cut(&mut s.stats);
                s.trouble(t, Some(&m));
                s.fsck("after a failure");
                s.damage_commit = None;
                s.lap(Phase::BetweenBoots);
                after_cut = true;
                if s.time_up() {
                    break;
                }
            }
        }
    }
    // The thread ends; what it said last is counted.
    if let Some(w) = s.web.take() {
        w.cut();
        let events = w.events();
        drop(w);
        s.count_web(events);
    }
    if let Some(mut t) = s.stream.take() {
        t.cut();
        let events = t.events();
        s.count_stream(events, None);
    }
    let elapsed = s.started.elapsed();
    let passed = s.stats.zero.all_zero();
    let outcome = Outcome { stats: s.stats, seed: o.seed, elapsed, passed };
    report::write(&outcome, o);
    outcome
}

impl Soak<'_> {
    /// The time since the last lap goes to `phase`.
    fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.stats.phases.add(phase, now.duration_since(self.phase_began).as_millis() as u64);
        self.phase_began = now;
    }

    fn time_up(&self) -> bool {
        self.started.elapsed() >= self.o.duration
    }

    fn config(&self) -> QemuConfig {
        let mut forwards = self.o.machine.forwards.clone();
        if self.web.is_some() {
            forwards.push((self.port, 80));
        }
        QemuConfig { disks: self.o.disks.clone(), forwards, ..self.o.machine.clone() }
    }

    /// Boot to the prompt with every resilient service up (and, with the
    /// HTTP client, an address from DHCP and httpd listening; a fresh host
    /// port forwarded to it).
    fn boot(&mut self) -> Result<Machine, Trouble> {
        self.stats.boots += 1;
        self.port = qemu::free_port();
        let mut m = Machine::boot(self.image, &self.config(), self.o.echo).map_err(Trouble::from)?;
        m.wait_prompt(BOOT_TIMEOUT)?;
        for service in resilient_services(self.image) {
            m.wait_for_text(&format!("{service} is up"), BOOT_TIMEOUT)?;
        }
        if self.web.is_some() {
            for text in ["[net] dhcp: address ", "[httpd] serving http on port 80"] {
                m.wait_for_text(text, BOOT_TIMEOUT)?;
            }
        }
        Ok(m)
    }

    /// The power is about to go: the downloads under way were cut off.
    fn web_cut(&mut self) {
        if let Some(w) = &self.web {
            w.cut();
        }
        if let Some(t) = &mut self.stream {
            t.cut();
        }
    }

    /// Count what the TCP streams came to (`m`: the console to keep for
    /// an error).
    fn count_stream(&mut self, events: Vec<stream::Event>, m: Option<&Machine>) {
        let log = match m {
            Some(m) if events.iter().any(|e| matches!(e, stream::Event::Error(_))) => {
                self.failures_saved += 1;
                let log = self.o.out_dir.join(format!("failure-{}.log", self.failures_saved));
                let _ = std::fs::write(&log, m.console());
                format!("; console in {}", log.display())
            }
            _ => String::new(),
        };
        let at = format!("boot {} at {}", self.stats.boots, report::clock(self.started.elapsed()));
        stream::count(&mut self.stats, events, &at, &log);
    }

    /// Count what the HTTP client found.
    fn count_web(&mut self, events: Vec<web::Event>) {
        for e in events {
            match e {
                web::Event::Ok { range, bytes, ms } => {
                    *self.stats.client_ops.entry("http".to_string()).or_default() += 1;
                    *self.stats.client_runs.entry("http".to_string()).or_default() += 1;
                    self.stats.http.bytes += bytes;
                    if range {
                        self.stats.http.ranges += 1;
                    } else {
                        self.stats.http.downloads += 1;
                        self.stats.http.whole_ms.push(ms);
                    }
                }
                web::Event::Cut { what, bytes } => {
                    self.stats.http.cut_by_power += 1;
                    self.stats.http.cut_bytes += bytes;
                    self.stats.http.cut_examples.truncate(4);
                    self.stats.http.cut_examples.push(what);
                }
                web::Event::Error(what) => {
                    let at = report::clock(self.started.elapsed());
                    let log = self.web_log.as_ref().map_or(String::new(), |l| format!("; console in {}", l.display()));
                    self.stats.fail(
                        |z| &mut z.client_errors,
                        1,
                        format!("http from the host, boot {} at {at}: {what}{log}", self.stats.boots),
                    )
                }
            }
        }
    }

    /// A shell command; its output without other programs' log lines.
    fn sh(&mut self, m: &mut Machine, line: &str) -> Result<String, Trouble> {
        let began = Instant::now();
        let out = m.command(line, crate::COMMAND_TIMEOUT);
        self.stats.commands.add(line, began.elapsed());
        Ok(quiet(&out?))
    }

    /// Record a hang or a panic and keep the console.
    fn trouble(&mut self, t: Trouble, m: Option<&Machine>) {
        self.failures_saved += 1;
        let log = self.o.out_dir.join(format!("failure-{}.log", self.failures_saved));
        let (what, console) = match t {
            Trouble::Hang(c) => {
                let what = format!("the system stopped answering ({})", c.lines().next().unwrap_or(""));
                self.stats.fail(|z| &mut z.hangs, 1, format!("{what}; console in {}", log.display()));
                (what, c)
            }
            Trouble::Panic(c) => {
                let what = "kernel panic".to_string();
                self.stats.fail(|z| &mut z.kernel_panics, 1, format!("{what}; console in {}", log.display()));
                (what, c)
            }
        };
        let console = m.map(Machine::console).unwrap_or(console);
        let _ = std::fs::write(&log, console);
        eprintln!("soak: {what} (seed {}); console in {}", self.o.seed, log.display());
        // The boot's figures as last read.
        let (base, now, kills) =
            (std::mem::take(&mut self.ps_base), std::mem::take(&mut self.ps_now), std::mem::take(&mut self.kills));
        self.stats.add_figures(&base, &now, &kills);
    }

    /// Keep the boot's console as `console-bootN.log`.
    fn save_console(&self, m: &Machine) {
        let _ = std::fs::write(self.o.out_dir.join(format!("console-boot{}.log", self.stats.boots)), m.console());
    }

    /// `fsck.fat -n` on both disks.
    /// The data disk (the first) may be caught by a cut while fs's
    /// companion writes a committed epoch to it (DESIGN.md 5.3): it then
    /// holds the committed state plus a redo list the next boot applies
    /// again before fs mounts, which is all the design promises. So when
    /// the data disk is not clean, the check is repeated on a copy with
    /// fs's current redo list (read from the checkpoint disk) written over
    /// it, as the boot will; only a copy that is still not clean counts.
    fn fsck(&mut self, when: &str) {
        let all = self.o.disks.clone();
        for (i, disk) in all.iter().enumerate() {
            let mut result = disks::fsck(disk);
            if let (Err(text), 0, Some(checkpoint)) = (&result, i, all.get(1)) {
                match self.fsck_after_redo(disk, checkpoint) {
                    Ok(()) => {
                        self.stats.cuts_mid_epoch += 1;
                        eprintln!("soak: the data disk {when} is half-way through an epoch; clean with its redo list");
                        result = Ok(());
                    }
                    Err(why) => result = Err(format!("{text}\n(and with fs's redo list applied: {why})")),
                }
            }
            if let Err(text) = result {
                let first: Vec<&str> = text.lines().take(6).collect();
                self.stats.fail(
                    |z| &mut z.fsck_complaints,
                    1,
                    format!("fsck.fat -n {} {when}: {}", disk.display(), first.join(" / ")),
                );
            }
        }
    }

    /// `fsck.fat -n` on a copy of the data disk `data` with fs's current
    /// redo list on `checkpoint` written over it.
    fn fsck_after_redo(&self, data: &Path, checkpoint: &Path) -> Result<(), String> {
        let writes = crate::vault::current_epoch(checkpoint, "fs", 0)?;
        if writes.is_empty() {
            return Err(String::from("fs has no redo list"));
        }
        let copy = data.with_extension("redo-check.img");
        let result = disks::copy_with_writes(data, &copy, &writes).and_then(|()| disks::fsck(&copy));
        let _ = std::fs::remove_file(&copy);
        result
    }

    /// Now and then (see [`Options::damage_every`]) damage a checkpoint
    /// record on the checkpoint disk, for the next boot to check.
    fn damage_slot(&mut self) {
        if self.o.damage_every == 0 || self.damage_rng.below(self.o.damage_every) != 0 {
            return;
        }
        let img = self.o.disks[1].clone();
        let done = crate::vault::read_slots(&img)
            .and_then(|slots| damage::inject(&img, &slots, &mut self.damage_rng, self.history.sent));
        match done {
            Ok(Some(d)) => {
                let st = &mut self.stats.damage;
                match d.harm {
                    damage::Harm::Flip { .. } => st.flips += 1,
                    damage::Harm::Truncate { .. } => st.truncations += 1,
                }
                *st.per_service.entry(d.service.clone()).or_default() += 1;
                st.newest += u64::from(d.newest);
                st.silent += u64::from(d.silent);
                st.done.push(format!("before boot {}: {}", self.stats.boots + 1, d.describe()));
                eprintln!("soak: damaged the checkpoint disk: {}", d.describe());
                self.damage_boot = Some(d);
            }
            Ok(None) => self.stats.refused.push("damage: no checkpoint record to damage".to_string()),
            Err(e) => self.stats.refused.push(format!("damage: {e}")),
        }
    }

    /// The boot after a damage: the vault reported it, the service
    /// restored the other slot's record and is up; kv's history may go
    /// back as far as the older record.
    fn check_boot_after_damage(&mut self, m: &Machine) {
        let Some(d) = self.damage_boot.take() else { return };
        let seen = damage::seen(&m.console(), &d);
        let st = &mut self.stats.damage;
        st.reported += u64::from(seen.vault_reported);
        st.fallbacks += u64::from(d.newest && seen.restored == Some(d.expected));
        let wrong = damage::judge(&d, &seen).or_else(|| {
            (!self.ps_base.contains_key(&d.service)).then(|| format!("{}: {} is not in ps", d.describe(), d.service))
        });
        if let Some(what) = wrong {
            self.stats.fail(|z| &mut z.damage_missed, 1, what);
        }
        self.history.floor = d.kv_floor;
        self.damage_commit = Some(d);
    }

    /// The cut after the boot after a damage: the service committed again
    /// (a newer generation than the one it restored), if `ps` showed it
    /// taking a checkpoint in that boot.
    fn check_commit_after_damage(&mut self) {
        let Some(d) = self.damage_commit.take() else { return };
        let newest = crate::vault::read_slots(&self.o.disks[1]).map(|slots| {
            slots
                .iter()
                .filter(|s| s.service == d.service)
                .filter_map(|s| s.record.as_ref().ok())
                .map(|h| h.generation)
                .max()
        });
        // ps's checkpoints of the service in that boot (its last reading):
        // a service that took none (a short boot between two cuts) has
        // nothing newer to show, which is no failure of the vault.
        let took = self.ps_last_boot.get(&d.service).map_or(0, |f| f.checkpoints);
        match newest {
            Ok(Some(g)) if g > d.expected => self.stats.damage.commits_after += 1,
            Ok(_) if took == 0 => self.stats.refused.push(format!(
                "{}: not checked for a commit after it: {} took no checkpoint in the boot after it",
                d.describe(),
                d.service
            )),
            other => self.stats.fail(
                |z| &mut z.damage_missed,
                1,
                format!("{}: no commit of {} after it (newest on the disk: {other:?})", d.describe(), d.service),
            ),
        }
    }

    /// After a cut: kv holds a prefix of kvcommit's history, the synced
    /// files read back whole.
    fn check_durable(&mut self, m: &mut Machine) -> Result<(), Trouble> {
        let dump = self.sh(m, &format!("run kvcommit dump {}", durable::KEYS))?;
        if !dump.contains("kvcommit: dumped") {
            self.stats.fail(|z| &mut z.client_errors, 1, format!("kvcommit dump: {}", dump.trim()));
        } else {
            self.history.check_after_cut(&dump, &mut self.stats);
        }
        let files = self.synced.files.clone();
        for (path, want) in files.iter().rev().take(durable::Synced::CHECKED) {
            let got = self.sh(m, &format!("cat {path}"))?;
            if got.trim_end() == want {
                self.stats.synced_checks += 1;
            } else {
                self.stats.fail(
                    |z| &mut z.lost_writes,
                    1,
                    format!("synced file {path} reads {:?} after a power cut, not {want:?}", got.trim_end()),
                );
            }
        }
        Ok(())
    }

    /// Start the clients and kvcommit, write and sync a file; then inject
    /// until the next power cut or the end.
    fn one_boot(&mut self, m: &mut Machine, after_cut: bool) -> Result<BootEnd, Trouble> {
        self.kills.clear();
        self.attackers = attackers::Running::default();
        self.ps_base = ps::parse(&self.sh(m, "ps")?);
        self.ps_now = self.ps_base.clone();
        self.check_boot_after_damage(m);
        if after_cut {
            self.check_durable(m)?;
        }
        let cmd = self.history.command();
        self.sh(m, &cmd)?;
        if let Some(w) = &self.web {
            w.serve(self.port);
        }
        let mut clients = clients::all();
        let path = format!("/soak/boot{}.txt", self.stats.boots);
        let text = format!("soak seed {} boot {} synced", self.o.seed, self.stats.boots);
        self.sh(m, "mkdir /soak")?;
        let wrote = self.sh(m, &format!("write {path} \"{text}\""))?;
        let synced = self.sh(m, "sync")?;
        if !has_line(&wrote, "write:") && synced.contains("synced") {
            self.synced.files.push((path, text));
        } else {
            self.stats.fail(
                |z| &mut z.client_errors,
                1,
                format!("write and sync {path}: {} {}", wrote.trim(), synced.trim()),
            );
        }
        let (lo, hi) = self.o.cut_every;
        let cut_at = Instant::now() + Duration::from_secs(self.rng.range(lo, hi));
        let mut progress_at = Instant::now() + Duration::from_secs(15);
        self.seen = 0;
        let mut chaos_on: Vec<&'static str> = Vec::new();
        let steady: &[&str] = if self.o.steady_chaos { &inject::STEADY_CHAOS } else { &[] };
        for service in steady {
            let out = self.sh(m, &format!("chaos {service} {}", inject::steady_percent(service)))?;
            if !out.contains("chaos on") {
                self.stats.refused.push(format!("steady chaos {service}: {}", out.trim()));
            }
        }
        let mut draining = false;
        self.lap(Phase::Checking);
        loop {
            self.read_lines(m, &mut clients);
            if self.time_up() {
                self.lap(if draining { Phase::Draining } else { Phase::Injecting });
                for service in chaos_on.drain(..).chain(steady.iter().copied()) {
                    self.sh(m, &format!("chaos {service} 0"))?;
                }
                self.wind_down(m, &mut clients)?;
                return Ok(BootEnd::Done);
            }
            if !draining && Instant::now() >= cut_at {
                draining = true;
                self.lap(Phase::Injecting);
            }
            for c in clients.iter_mut().filter(|c| !c.running) {
                if draining && c.name == "fsload" && !self.o.fs_power_cuts {
                    continue;
                }
                let cmd = c.command(&mut self.rng, 1);
                let out = self.sh(m, &cmd)?;
                if out.contains(" started") {
                    c.running = true;
                } else {
                    self.stats.fail(|z| &mut z.client_errors, 1, format!("`{cmd}`: {}", out.trim()));
                }
            }
            self.start_stream(m)?;
            // The syscall fuzzer runs again as soon as it ended (and its
            // pause passed), except while the boot is brought to its cut
            // (a run cut off counts only the calls it last said it made).
            let fuzz_due = self.fuzz_at.is_none_or(|t| t.elapsed() >= attackers::FUZZ_EVERY);
            if !draining && !self.attackers.fuzz && fuzz_due {
                let cmd = attackers::fuzz_command(self.rng.below(1 << 32));
                let out = self.sh(m, &cmd)?;
                self.attackers.fuzz = out.contains(" started");
                self.fuzz_at = Some(Instant::now());
                if !self.attackers.fuzz {
                    self.stats.fail(|z| &mut z.client_errors, 1, format!("`{cmd}`: {}", out.trim()));
                }
            }
            let fs_busy = clients.iter().any(|c| c.name == "fsload" && c.running);
            if draining && (self.o.fs_power_cuts || !fs_busy) {
                if !self.o.fs_power_cuts {
                    let out = self.sh(m, "sync")?;
                    if !out.contains("synced") {
                        self.stats.fail(|z| &mut z.client_errors, 1, format!("sync before the cut: {}", out.trim()));
                    }
                }
                self.read_ps(m)?;
                self.end_boot_figures();
                self.lap(Phase::Draining);
                return Ok(BootEnd::Cut);
            }
            let action = inject::choose(&mut self.rng, &chaos_on, steady, self.o.companion_kills);
            self.perform(m, &action, &mut chaos_on)?;
            if Instant::now() >= progress_at {
                self.read_ps(m)?;
                report::progress(self);
                progress_at = Instant::now() + Duration::from_secs(15);
            }
            let (lo, hi) = self.o.pause_ms;
            std::thread::sleep(Duration::from_millis(self.rng.range(lo, hi)));
        }
    }

    /// Hand the console's new lines to the clients and kvcommit's history.
    fn read_lines(&mut self, m: &Machine, clients: &mut [clients::Client]) {
        let (lines, next) = m.lines_since(self.seen);
        self.seen = next;
        if let Some(events) = self.web.as_ref().map(web::Web::events) {
            if events.iter().any(|e| matches!(e, web::Event::Error(_))) {
                // The console up to the failure, for its diagnosis.
                self.failures_saved += 1;
                let log = self.o.out_dir.join(format!("failure-{}.log", self.failures_saved));
                let _ = std::fs::write(&log, m.console());
                self.web_log = Some(log);
            }
            self.count_web(events);
        }
        for line in lines.lines() {
            if let Some(t) = &mut self.stream {
                t.scan(line);
            }
            clients::scan(clients, line, &mut self.stats);
            attackers::scan(&mut self.attackers, line, &mut self.stats);
            self.history.scan(line, &mut self.stats);
            self.scan_system(line);
        }
        if let Some(events) = self.stream.as_mut().map(stream::Stream::events) {
            self.count_stream(events, Some(m));
        }
    }

    /// A companion's replay that answered differently from the original
    /// (a divergence its clients may see), and init restarting a program
    /// nobody killed.
    fn scan_system(&mut self, line: &str) {
        if line.contains("differs from the one delivered") {
            // One failure line per restart; every reply counts.
            if self.divergence_burst {
                self.stats.zero.divergences += 1;
            } else {
                self.stats.fail(
                    |z| &mut z.divergences,
                    1,
                    format!("{} (and what follows of that replay)", line.trim()),
                );
            }
            self.divergence_burst = true;
        } else if line.contains(": the service ") {
            self.divergence_burst = false;
        }
        if let Some(rest) = line.strip_prefix("[init] restarted ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            let killed = name == "vault" || (self.o.companion_kills && name.ends_with("-companion"));
            if !killed && !name.is_empty() {
                self.stats.fail(|z| &mut z.unexplained_restarts, 1, line.trim().to_string());
            }
        }
    }

    /// Read `ps`; a service too busy to give its figures in time keeps
    /// those of the reading before.
    fn read_ps(&mut self, m: &mut Machine) -> Result<(), Trouble> {
        let now = ps::parse(&self.sh(m, "ps")?);
        self.ps_now.extend(now);
        Ok(())
    }

    /// Add the boot's `ps` figures to the totals.
    fn end_boot_figures(&mut self) {
        let (base, now, kills) =
            (std::mem::take(&mut self.ps_base), std::mem::take(&mut self.ps_now), std::mem::take(&mut self.kills));
        self.stats.add_figures(&base, &now, &kills);
        self.ps_last_boot = now;
    }

    /// The stats with the current boot's figures so far (for progress).
    fn stats_now(&self) -> Stats {
        let mut s = self.stats.clone();
        s.add_figures(&self.ps_base, &self.ps_now, &self.kills);
        s
    }

    /// Kill the service process `name` through init; whether it was.
    fn kill(&mut self, m: &mut Machine, name: &str) -> Result<bool, Trouble> {
        let out = self.sh(m, &format!("kill {name}"))?;
        Ok(out.contains("killed 1 process"))
    }

    /// `crash SERVICE KIND`, its recovery time kept.
    fn crash(&mut self, m: &mut Machine, service: &'static str, kind: &str) -> Result<(), Trouble> {
        let out = self.sh(m, &inject::crash_line(service, kind))?;
        match inject::recovery_ns(&out) {
            Some(ns) => {
                let s = self.stats.service(service);
                s.crash_commands += 1;
                s.recoveries_ns.push(ns);
            }
            None => self.stats.refused.push(format!("{}: {}", inject::crash_line(service, kind), out.trim())),
        }
        Ok(())
    }

    fn perform(&mut self, m: &mut Machine, action: &Action, chaos_on: &mut Vec<&'static str>) -> Result<(), Trouble> {
        match action {
            Action::Crash { service, kind } => self.crash(m, service, kind)?,
            Action::Together { driver, above } => {
                if self.kill(m, driver)? {
                    *self.kills.entry(driver.to_string()).or_default() += 1;
                    self.stats.service(driver).kills += 1;
                }
                for (service, kind) in above {
                    self.crash(m, service, kind)?;
                }
                self.stats.combined_crashes += 1;
            }
            Action::ChaosOn { service, percent } => {
                let out = self.sh(m, &format!("chaos {service} {percent}"))?;
                if out.contains("chaos on") {
                    chaos_on.push(service);
                    self.stats.chaos_periods += 1;
                } else {
                    self.stats.refused.push(format!("chaos {service} {percent}: {}", out.trim()));
                }
            }
            Action::ChaosOff { service } => {
                self.sh(m, &format!("chaos {service} 0"))?;
                chaos_on.retain(|s| s != service);
            }
            Action::KillVault => {
                if self.kill(m, "vault")? {
                    self.stats.vault_kills += 1;
                }
            }
            Action::Hog => {
                let out = self.sh(m, "run hog &")?;
                if out.contains(" started") {
                    self.stats.hogs += 1;
                }
            }
            Action::KillCompanion { service } => {
                if self.kill(m, &format!("{service}-companion"))? {
                    *self.kills.entry(service.to_string()).or_default() += 1;
                    self.stats.service(service).kills += 1;
                }
            }
            Action::BlkProbe { lba, bytes } => {
                let hex = inject::hex(bytes);
                let wrote = self.sh(m, &format!("blk write data {lba} {}", hex.replace(' ', "")))?;
                let read = self.sh(m, &format!("blk read data {lba}"))?;
                let row = format!("{:08x}  ", lba * 512);
                let read_wrong = read.lines().any(|l| l.starts_with(&row) && !l.contains(&hex));
                if has_line(&wrote, "blk: ") || has_line(&read, "blk: ") || read_wrong {
                    self.stats.fail(
                        |z| &mut z.client_errors,
                        1,
                        format!(
                            "shell blk probe at sector {lba}: wrote {hex}: {} / read: {}",
                            wrote.trim(),
                            read.trim()
                        ),
                    );
                }
            }
            Action::Hostile { seed, service } => {
                if !self.attackers.hostile {
                    let cmd = attackers::hostile_command(*seed, service);
                    let out = self.sh(m, &cmd)?;
                    self.attackers.hostile = out.contains(" started");
                    if !self.attackers.hostile {
                        self.stats.fail(|z| &mut z.client_errors, 1, format!("`{cmd}`: {}", out.trim()));
                    }
                }
            }
            Action::NicProbe => {
                let out = self.sh(m, "nic")?;
                if out.lines().any(|l| l.starts_with("nic: ") && !l.contains(", mac ")) {
                    self.stats.fail(|z| &mut z.client_errors, 1, format!("shell nic status: {}", out.trim()));
                }
            }
        }
        Ok(())
    }

    /// Start the next TCP stream to the host unless one runs.
    fn start_stream(&mut self, m: &mut Machine) -> Result<(), Trouble> {
        let Some(cmd) = self.stream.as_mut().filter(|t| !t.running()).map(stream::Stream::command) else {
            return Ok(());
        };
        let out = self.sh(m, &cmd)?;
        if !out.contains(" started") {
            if let Some(t) = &mut self.stream {
                t.not_started();
            }
            self.stats.fail(|z| &mut z.client_errors, 1, format!("`{cmd}`: {}", out.trim()));
        }
        Ok(())
    }

    /// The end: stop kvcommit, let the clients finish (their final checks
    /// count), power off (every service commits a final checkpoint).
    fn wind_down(&mut self, m: &mut Machine, clients: &mut [clients::Client]) -> Result<(), Trouble> {
        self.sh(m, "kill kvcommit")?;
        // What kvcommit said up to its end (the loop below reads only
        // while a client still runs; the final check needs every line).
        self.read_lines(m, clients);
        let deadline = Instant::now() + Duration::from_secs(600);
        let streaming = |s: &Self| s.stream.as_ref().is_some_and(stream::Stream::running);
        while (clients.iter().any(|c| c.running) || streaming(self)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            self.read_lines(m, clients);
        }
        if streaming(self) {
            self.stats.fail(
                |z| &mut z.client_errors,
                1,
                "the tcpsend under way at the end did not finish within 10 minutes".to_string(),
            );
        }
        for c in clients.iter().filter(|c| c.running) {
            self.stats.fail(
                |z| &mut z.client_errors,
                1,
                format!("{} did not finish within 10 minutes of the end", c.name),
            );
        }
        if let Some(w) = &self.web {
            if !w.rest(web::STALL + Duration::from_secs(60)) {
                self.stats.fail(
                    |z| &mut z.client_errors,
                    1,
                    "the HTTP download under way at the end did not finish".to_string(),
                );
            }
        }
        self.read_ps(m)?;
        self.read_lines(m, clients);
        self.end_boot_figures();
        Ok(())
    }

    /// The fuzzer run whose leak check counts, in the final boot: once the
    /// memory in use has stopped moving (the services take their first
    /// checkpoints a while after a boot), nothing else runs.
    fn final_fuzz(&mut self, m: &mut Machine) -> Result<(), Trouble> {
        let used = |out: &str| {
            out.lines().find_map(|l| l.strip_prefix("memory: ")?.split_whitespace().next()?.parse::<u64>().ok())
        };
        let mut last = (None, 0);
        for _ in 0..60 {
            let now = used(&self.sh(m, "mem")?);
            last = if now.is_some() && now == last.0 { (now, last.1 + 1) } else { (now, 0) };
            if last.1 >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let cmd = attackers::final_fuzz_command(self.o.final_fuzz_calls, self.rng.below(1 << 32));
        // At the slowest rate seen on an idle machine (150,000 calls a
        // second), with room to spare.
        let timeout = Duration::from_secs(600.max(self.o.final_fuzz_calls / 15_000));
        let out = quiet(&m.command(&cmd, timeout)?);
        let mut running = attackers::Running { fuzz: true, ..attackers::Running::default() };
        for line in out.lines() {
            attackers::scan(&mut running, line, &mut self.stats);
            if line.contains("fuzz: ") && line.contains(" random system calls from ") {
                self.stats.fuzz_final = Some(line.trim().to_string());
            }
        }
        if running.fuzz {
            self.stats.fail(|z| &mut z.client_errors, 1, format!("`{cmd}` printed no summary: {}", out.trim()));
        }
        Ok(())
    }

    /// Power off, check the disks, boot once more to check what the final
    /// checkpoints kept, and power off again.
    fn finish(&mut self, mut m: Machine) {
        if let Err(e) = m.power_off(crate::COMMAND_TIMEOUT) {
            self.trouble(Trouble::from(e), Some(&m));
            m.kill();
        }
        drop(m);
        self.fsck("after the final power-off");
        self.check_commit_after_damage();
        let check = (|| -> Result<(), Trouble> {
            let mut m = self.boot()?;
            self.check_durable(&mut m)?;
            self.final_fuzz(&mut m)?;
            m.power_off(crate::COMMAND_TIMEOUT)?;
            Ok(())
        })();
        if let Err(t) = check {
            self.trouble(t, None);
        }
        self.fsck("at the end");
    }
}

/// Whether a line of `out` starts with `prefix` (a command's error line;
/// other programs' lines may come between a command's own).
fn has_line(out: &str, prefix: &str) -> bool {
    out.lines().any(|l| l.starts_with(prefix))
}

/// Put the HTTP client's file in `/www` on the data disk `img` (made in
/// `scratch` first), unless it is there already.
fn put_www(img: &Path, scratch: &Path) -> Result<(), String> {
    let path = format!("/www/{}", web::FILE);
    let data = web::contents();
    if disks::read(img, &path).is_ok_and(|have| have == data) {
        return Ok(());
    }
    let src = scratch.join(web::FILE);
    std::fs::write(&src, &data).map_err(|e| format!("{}: {e}", src.display()))?;
    disks::mkdirs(img, "/www")?;
    let put = disks::put(img, &[&src], "/www");
    let _ = std::fs::remove_file(&src);
    put
}

/// Fresh disks for a soak in `dir` (replacing any there).
pub fn fresh_disks(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let _ = std::fs::remove_dir_all(dir);
    disks::ensure(dir)
}
