//! The vault: checkpoints on the FAT checkpoint disk survive a power-off,
//! a damaged slot (the other slot is used, and the log says so), power
//! cuts at random moments (what was committed is never lost, nothing
//! half-written is ever restored, and the file system stays clean), the
//! vault killed in a service's first commit (the disk stays clean) and the
//! blk companion killed under load (the vault reconnects; later commits
//! succeed). Without a checkpoint disk the companions say they are not
//! durable, and `poweroff` says their final checkpoints did not reach the
//! vault; `reboot` reports its final checkpoints as `poweroff` does.
//!
//! Each test has its own pair of fresh disks.

use kintsugi_tests::{boot_with, disks, vault, DiskBus, Machine, QemuConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn config(disks: &[PathBuf], bus: DiskBus) -> QemuConfig {
    QemuConfig { disks: disks.to_vec(), disk_bus: bus, ..QemuConfig::default() }
}

/// `fsck.fat -n` finds the image clean (exit 0, no dirty bit).
fn assert_fsck_clean(image: &Path) {
    let out = std::process::Command::new("fsck.fat").arg("-n").arg(image).output().expect("fsck.fat (dosfstools)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !text.contains("Dirty bit"), "fsck.fat -n {}:\n{text}", image.display());
}

fn survives_a_power_off(bus: DiskBus, name: &str) {
    let (dir, disks) = disks::fresh(name).unwrap();
    let cfg = config(&disks, bus);
    let mut m = boot_with(&cfg);
    assert!(m.console().contains("[kv-companion] kv: no checkpoint in the vault yet"), "{}", m.console());
    assert_eq!(m.shq("kv put greeting hello vault").trim(), "ok");
    assert_eq!(m.shq("kv put other 1").trim(), "ok");
    // `poweroff` asks every companion for a final checkpoint first.
    m.shutdown();

    // The host sees it with mtools (what `cargo xtask vault ls` prints).
    let slots = vault::read_slots(&disks[1]).unwrap();
    let listing = vault::listing(&slots);
    let kv = slots
        .iter()
        .find(|s| s.service == "kv" && s.current)
        .unwrap_or_else(|| panic!("no current kv slot:\n{listing}"));
    let generation = kv.record.as_ref().unwrap().generation;
    assert!(listing.contains("valid, current") && listing.contains("logical"), "{listing}");
    assert!(kv.state.windows(11).any(|w| w == b"hello vault"), "the state holds the value");
    let shown = vault::show(&slots, "kv").unwrap();
    assert!(
        shown.contains("(current)") && shown.contains(&format!("state of slot {}:\n00000000  ", kv.slot)),
        "{shown}"
    );
    assert_fsck_clean(&disks[1]);

    let mut m = boot_with(&cfg);
    let restored = format!("kv: restoring checkpoint generation {generation} from the vault");
    assert!(m.console().contains(&restored), "expected '{restored}':\n{}", m.console());
    assert_eq!(m.shq("kv get greeting").trim(), "hello vault");
    assert_eq!(m.shq("kv get other").trim(), "1");
    // The vault is restarted under the companions.
    m.sh("kill vault");
    let deadline = Instant::now() + Duration::from_secs(60);
    while m.console().matches("[vault] checkpoint disk:").count() < 2 {
        assert!(Instant::now() < deadline, "the vault did not come back:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its companions notice and connect to the new one.
    m.wait_for_text("[kv-companion] kv: reconnected to the vault", Duration::from_secs(60)).unwrap();
    m.wait_for_text("[tally-companion] tally: reconnected to the vault", Duration::from_secs(60)).unwrap();
    assert_eq!(m.shq("kv put other 2").trim(), "ok (replaced)");
    m.shq("kv del nothing");
    assert!(!m.console().contains("checkpoint not committed"), "{}", m.console());
    m.power_off(Duration::from_secs(120)).unwrap();
    let console = m.console();
    let after = vault::read_slots(&disks[1]).unwrap();
    let g2 = after
        .iter()
        .find(|s| s.service == "kv" && s.current)
        .and_then(|s| s.record.as_ref().ok())
        .map(|h| (h.generation, h.boot));
    assert!(
        g2.is_some_and(|(g, boot)| g > generation && boot == 2),
        "generations go on across boots: {g2:?}\n{}\n{console}",
        vault::listing(&after)
    );
    assert!(console.contains("final checkpoint of kv: ") && !console.contains("timed out"), "{console}");
    assert_fsck_clean(&disks[1]);
    let mut m = boot_with(&cfg);
    assert_eq!(m.shq("kv get other").trim(), "2");
    m.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kv_survives_a_power_off_virtio() {
    survives_a_power_off(DiskBus::Virtio, "vault-poweroff-virtio");
}

#[test]
fn kv_survives_a_power_off_ahci() {
    survives_a_power_off(DiskBus::Ahci, "vault-poweroff-ahci");
}

#[test]
fn a_damaged_slot_falls_back_to_the_other() {
    let (dir, disks) = disks::fresh("vault-byte-flip").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    assert_eq!(m.shq("kv put flag first-value").trim(), "ok");
    m.shq("kv del nothing"); // `checkpoint after Delete`: a commit
    assert_eq!(m.shq("kv put flag second-value").trim(), "ok (replaced)");
    m.shutdown(); // the final checkpoint: another commit, in the other slot

    // Flip a byte of the current record's state, in the image file.
    let mut image = std::fs::read(&disks[1]).unwrap();
    let mut records = vault::find_records(&image, "kv");
    records.sort_by_key(|(_, h)| h.generation);
    let [.., (older_at, older), (newest_at, newest)] = records.as_slice() else {
        panic!("expected two kv records on the disk, found {}", records.len())
    };
    let (older_at, older, newest_at, newest) = (*older_at, older.clone(), *newest_at, newest.clone());
    // The second put was acknowledged, so it is durable: in the older
    // record's state, or in the vault's log of requests after it.
    let _ = older_at;
    let expected = "second-value";
    image[newest_at + 128 + newest.state_len as usize / 2] ^= 0x20;
    std::fs::write(&disks[1], &image).unwrap();
    let listing = vault::listing(&vault::read_slots(&disks[1]).unwrap());
    assert!(listing.contains("damaged: payload checksum mismatch"), "{listing}");

    let mut m = boot_with(&cfg);
    let console = m.console();
    assert!(
        console.lines().any(|l| l.starts_with("[vault] warning: kv: slot ")
            && l.contains("damaged (payload checksum mismatch")
            && l.contains("; using slot ")
            && l.ends_with(&format!(" generation {}", older.generation))),
        "the vault says it fell back:\n{console}"
    );
    assert!(
        console.contains(&format!("restored generation {} from slot", older.generation)),
        "the companion says what it restored:\n{console}"
    );
    assert!(
        console.contains(&format!("kv: restoring checkpoint generation {} from the vault", older.generation)),
        "{console}"
    );
    assert_eq!(m.shq("kv get flag").trim(), expected);
    m.shutdown();
    assert_fsck_clean(&disks[1]);
    let _ = std::fs::remove_dir_all(dir);
}

/// The kv contents after the first `k` ops of kvcommit's history with
/// `keys` keys.
fn history(k: u64, keys: u64) -> Vec<Option<String>> {
    (0..keys).map(|j| (0..k).rev().find(|i| i % keys == j).map(|i| format!("v{i}"))).collect()
}

/// The kv contents as `kvcommit dump` prints them.
fn dump(m: &mut Machine, keys: u64) -> Vec<Option<String>> {
    let out = m.sh(&format!("run kvcommit dump {keys}"));
    assert!(out.contains("kvcommit: dumped"), "{out}");
    (0..keys)
        .map(|j| {
            let set = format!("kvcommit: k{j}=");
            out.lines().find_map(|l| l.strip_prefix(&set).map(|v| v.trim().to_string()))
        })
        .collect()
}

/// The largest `i` of the console's lines `PREFIX i`.
fn last_number(console: &str, prefix: &str) -> Option<u64> {
    console.lines().filter_map(|l| l.strip_prefix(prefix)).filter_map(|n| n.trim().parse().ok()).max()
}

/// A small deterministic generator for the kill delays (the seed is
/// printed so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Checkpoints forced often: most acknowledged writes are in checkpoints.
#[test]
fn power_cuts_lose_nothing_acknowledged_virtio() {
    power_cuts(DiskBus::Virtio, "vault-power-cut-virtio", 6, 3);
}

/// Checkpoints forced rarely: acknowledged writes are mostly in the
/// vault's log of durable requests after the newest checkpoint.
#[test]
fn power_cuts_lose_nothing_acknowledged_ahci() {
    power_cuts(DiskBus::Ahci, "vault-power-cut-ahci", 4, 1000);
}

/// `rounds` times: run kvcommit, cut the power (SIGKILL QEMU) at a random
/// moment, boot again on the same disks and check kv holds the state after
/// some prefix of the history: at least everything acknowledged (kv's Put
/// is durable) or reported committed, at most everything sent. Then the
/// file system must be clean.
fn power_cuts(bus: DiskBus, name: &str, rounds: usize, every: u64) {
    const KEYS: u64 = 5;
    let t0 = Instant::now();
    let seed = std::env::var("KINTSUGI_VAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("{name}: seed {seed} (KINTSUGI_VAULT_SEED={seed} replays the delays)");
    let mut rng = Rng(seed);
    let (dir, disks) = disks::fresh(name).unwrap();
    let cfg = config(&disks, bus);
    // Ops applied so far, as established after each cut.
    let mut applied = 0u64;
    let mut m = boot_with(&cfg);
    for round in 0..rounds {
        m.sh(&format!("run kvcommit {applied} 100000 {KEYS} {every} &"));
        m.wait_for_text("kvcommit: acknowledged", Duration::from_secs(120)).unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(2000)));
        m.kill();
        let console = m.console();
        let committed = last_number(&console, "kvcommit: committed through ").map_or(0, |i| i + 1);
        let acknowledged = last_number(&console, "kvcommit: acknowledged ").map_or(0, |i| i + 1);
        let sent = last_number(&console, "kvcommit: sending ").map_or(applied, |i| i + 1);
        if round == rounds - 1 {
            // Straight after the cut, before anything mounts it again.
            assert_fsck_clean(&disks[1]);
        }
        m = boot_with(&cfg);
        let contents = dump(&mut m, KEYS);
        let found = (committed.max(acknowledged).max(applied)..=sent).rev().find(|&k| history(k, KEYS) == contents);
        let Some(k) = found else {
            panic!(
                "round {round}: after the cut kv holds {contents:?}, which is no state between op {} (committed {committed}, acknowledged {acknowledged}) and op {sent} (sent);\n{}",
                committed.max(acknowledged).max(applied),
                m.console()
            )
        };
        eprintln!(
            "{name}: cut {round}: {committed} ops committed, {acknowledged} acknowledged, {sent} sent, {k} restored"
        );
        applied = k;
    }
    m.shutdown();
    assert_fsck_clean(&disks[1]);
    let _ = std::fs::remove_dir_all(dir);
    eprintln!("{name}: {:.0} s", t0.elapsed().as_secs_f64());
}

/// Wait until `text` appears at least `n` times in the console.
fn wait_count(m: &mut Machine, text: &str, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while m.console().matches(text).count() < n {
        assert!(Instant::now() < deadline, "waiting for {n} times {text:?}:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The boot numbers the vault's `checkpoint disk:` lines give, in order.
fn vault_boots(console: &str) -> Vec<u64> {
    console
        .lines()
        .filter(|l| l.contains("[vault] checkpoint disk:"))
        .filter_map(|l| l.split("; boot ").nth(1)?.split(';').next()?.trim().parse().ok())
        .collect()
}

/// RELIABILITY finding 16: `kill vault`, then `kill fs-companion`, while a
/// client holds a file open that fs's newest checkpoint records and the
/// log after it does not mention (the client is idle). The restarted
/// vault keeps this boot's number (it took one more at every restart), so
/// the restarted companion does not take its checkpoint for one of an
/// earlier boot and close the client's session: the handle still works.
#[test]
fn a_restart_of_the_vault_keeps_the_boot_and_its_sessions() {
    let (dir, disks) = disks::fresh("vault-restart-sessions").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    m.sh("run fscheck hold 40 &");
    m.wait_for_text("fscheck: holding", Duration::from_secs(120)).unwrap();
    for round in 1..=2 {
        m.sh("kill vault");
        wait_count(&mut m, "[vault] checkpoint disk:", round + 1, Duration::from_secs(60));
        m.sh("kill fs-companion");
        wait_count(&mut m, "restarted fs-companion", round, Duration::from_secs(60));
        wait_count(&mut m, "[fs-companion] fs is up", round + 1, Duration::from_secs(60));
    }
    let restarted_at = m.console().rfind("restarted fs-companion").unwrap_or(0);
    m.wait_for_text("fscheck: ok", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}: the held handle failed:\n{}", m.console()));
    let console = m.console();
    assert!(
        console.find("fscheck: ok").is_some_and(|at| at > restarted_at),
        "the client used its handle before the restarts were over; hold it longer:\n{console}"
    );
    assert!(!console.contains("sessions of an earlier boot"), "{console}");
    let boots = vault_boots(&console);
    assert!(boots.len() == 3 && boots.iter().all(|b| *b == boots[0]), "one boot number: {boots:?}\n{console}");
    m.power_off(Duration::from_secs(120)).unwrap();
    // The next machine boot is the next number.
    let m = boot_with(&cfg);
    let next = vault_boots(&m.console());
    assert_eq!(next, [boots[0] + 1], "{}", m.console());
    m.shutdown();
    assert_fsck_clean(&disks[1]);
    let _ = std::fs::remove_dir_all(dir);
}

/// A service's first commit makes its slots; `kill vault` in the middle of
/// a large one, a reboot, and the checkpoint disk is clean for
/// `fsck.fat -n` (an older vault created slot files through the FAT there
/// and left lost clusters and the dirty flag for good).
#[test]
fn killing_the_vault_during_a_first_commit_leaves_the_disk_clean() {
    let (dir, disks) = disks::fresh("vault-kill-first-commit").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    m.sh("run vaultbench commit 8192 &");
    m.wait_for_text("vaultbench: committing 8192 KiB", Duration::from_secs(60)).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    m.sh("kill vault");
    let console = m.console();
    if console.contains("vaultbench: committed generation") {
        eprintln!("note: the commit was through before the kill landed");
    }
    // init starts the vault again; it finds nothing to repair.
    wait_count(&mut m, "[vault] checkpoint disk:", 2, Duration::from_secs(60));
    assert!(!m.console().contains("checkpoint disk repaired"), "{}", m.console());
    m.shutdown();
    assert_fsck_clean(&disks[1]);
    let mut m = boot_with(&cfg);
    assert!(!m.console().contains("checkpoint disk repaired"), "{}", m.console());
    // The vault works on: the commit again, whole.
    let out = m.sh("run vaultbench commit 8192");
    assert!(out.contains("vaultbench: committed generation"), "{out}");
    m.shutdown();
    assert_fsck_clean(&disks[1]);
    let slots = vault::read_slots(&disks[1]).unwrap();
    assert!(
        slots.iter().any(|s| s.service == "vaultbench" && s.current && s.state.len() == 8192 * 1024),
        "{}",
        vault::listing(&slots)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// kv's contents, key by key, as the shell shows them.
fn kv_contents(m: &mut Machine) -> std::collections::BTreeMap<String, String> {
    let list = m.shq("kv list");
    let keys: Vec<String> =
        list.lines().filter(|l| !l.starts_with('(') && !l.trim().is_empty()).map(String::from).collect();
    assert!(list.contains(&format!("({} key", keys.len())), "{list}");
    keys.into_iter().map(|k| (k.clone(), m.shq(&format!("kv get {k}")).trim().to_string())).collect()
}

/// The number of kv checkpoints `ps` shows.
fn kv_checkpoints(m: &mut Machine) -> u64 {
    m.ps_figure("kv", 3)
}

/// `kill blk-companion` under a kv load: init restarts it, the vault's
/// blk session resumes with the new companion (its hello brings the
/// session's shared buffer again) and sends its operation again, and the
/// commits after the kill succeed (they failed for the rest of the boot
/// before); after a power-off and a reboot kv holds what it held.
#[test]
fn the_vault_survives_a_restart_of_the_blk_companion() {
    let (dir, disks) = disks::fresh("vault-blk-restart").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    assert_eq!(m.shq("kv put before-blk-restart yes").trim(), "ok");
    m.sh("run kvload 2 4000 &");
    // Let the load run and commit a little first.
    let deadline = Instant::now() + Duration::from_secs(120);
    while kv_checkpoints(&mut m) < 2 {
        assert!(Instant::now() < deadline, "kv took no checkpoints:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(200));
    }
    m.sh("kill blk-companion");
    let killed_at = m.console().len();
    wait_count(&mut m, "restarted blk-companion", 1, Duration::from_secs(60));
    let before = kv_checkpoints(&mut m);
    let result = m.wait_for_line("kvload: clients=2 ops=", Duration::from_secs(600)).unwrap();
    assert_eq!(result, "kvload: clients=2 ops=4000 errors=0", "{}", m.console());
    // Later commits go through: a forced one, and the ones kv takes itself.
    assert_eq!(m.shq("kv put after-blk-restart yes").trim(), "ok");
    m.shq("kv del nothing"); // `checkpoint after Delete`
    assert!(kv_checkpoints(&mut m) > before, "no checkpoint after blk came back:\n{}", m.console());
    let after_kill = m.console()[killed_at..].to_string();
    assert!(!after_kill.contains("checkpoint not committed"), "a commit failed after the kill:\n{after_kill}");
    assert!(!after_kill.contains("sectors go through the messages"), "the shared buffer was lost:\n{after_kill}");
    let contents = kv_contents(&mut m);
    assert!(contents.len() > 10, "{contents:?}");
    m.power_off(Duration::from_secs(120)).unwrap();
    let console = m.console();
    assert!(console.contains("final checkpoint of kv: "), "{console}");
    let slots = vault::read_slots(&disks[1]).unwrap();
    let kv = slots.iter().find(|s| s.service == "kv" && s.current).expect("a kv record");
    assert!(kv.record.as_ref().unwrap().generation > 2, "{}", vault::listing(&slots));
    assert_fsck_clean(&disks[1]);
    // Every key and value kv held is there after the reboot.
    let mut m = boot_with(&cfg);
    assert_eq!(kv_contents(&mut m), contents);
    m.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}

/// Without a checkpoint disk the vault cannot keep anything: kv's
/// companion says so loudly and does not pretend (it used to keep its
/// checkpoints in memory with a warning, as if nothing were wrong); kv
/// still serves.
#[test]
fn without_a_checkpoint_disk_the_companions_say_they_are_not_durable() {
    let (dir, disks) = disks::fresh("vault-no-checkpoint-disk").unwrap();
    let cfg = config(&disks[..1], DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    m.wait_for_text("[kv-companion] error: kv: the vault cannot be used", Duration::from_secs(60)).unwrap();
    let console = m.console();
    assert!(console.contains("NOT durable until it comes back"), "{console}");
    assert!(!console.contains("checkpoints stay in memory"), "{console}");
    assert_eq!(m.shq("kv put k v").trim(), "ok");
    assert_eq!(m.shq("kv get k").trim(), "v");
    // `ps` says kv's acknowledgements are not durable now.
    let ps = m.shq("ps");
    let kv = ps.lines().find(|l| l.split_whitespace().next() == Some("kv")).unwrap_or_else(|| panic!("{ps}"));
    assert_eq!(kv.split_whitespace().nth(8), Some("no"), "{ps}");
    // The final checkpoints could not reach the vault: init says so,
    // naming each service, and claims no bytes were checkpointed.
    m.power_off(Duration::from_secs(120)).unwrap();
    let console = m.console();
    let off = &console[console.find("[init] power off by pid").unwrap_or_else(|| panic!("{console}"))..];
    for service in ["kv", "fs", "tally"] {
        assert!(off.contains(&format!("final checkpoint of {service} did not reach the vault: ")), "{off}");
        assert!(!off.contains(&format!("final checkpoint of {service}: ")), "{off}");
    }
    // blk and nic keep their checkpoints in memory: nothing to report as
    // checkpointed.
    for service in ["blk", "nic"] {
        assert!(off.contains(&format!("{service} keeps nothing in the vault")), "{off}");
        assert!(!off.contains(&format!("final checkpoint of {service}")), "{off}");
    }
    assert!(off.contains("power off: final checkpoints NOT in the vault: "), "{off}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `reboot` checkpoints like `poweroff` and says so: what reached the
/// vault, and that blk and nic keep nothing there.
#[test]
fn reboot_reports_its_final_checkpoints() {
    let (dir, disks) = disks::fresh("vault-reboot-report").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    assert_eq!(m.shq("kv put k v").trim(), "ok");
    // The harness runs QEMU with -no-reboot: the reset ends it.
    m.send("reboot\r");
    m.wait_exit(Duration::from_secs(120)).unwrap();
    let console = m.console();
    let off = &console[console.find("Rebooting.").unwrap_or_else(|| panic!("{console}"))..];
    assert!(off.contains("[init] reset by pid"), "{off}");
    assert!(off.contains("final checkpoint of kv: ") && off.contains(" bytes in the vault in "), "{off}");
    assert!(off.contains("blk keeps nothing in the vault") && off.contains("nic keeps nothing in the vault"), "{off}");
    assert!(off.contains("reset: final checkpoints in the vault: "), "{off}");
    assert!(!off.contains("did not reach the vault"), "{off}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A checkpoint the service cannot restore (`crash kv poison`: the
/// companion commits a damaged one and kills kv): each restore fails, and
/// after the bounded attempts the companion has the vault set it aside,
/// restores the record before it with its durable log, and checkpoints at
/// once; kv answers with every acknowledged write, also after a reboot.
#[test]
fn an_unrestorable_checkpoint_falls_back_to_the_one_before() {
    let (_dir, disks) = disks::fresh("poison").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    assert_eq!(m.shq("kv put a 1").trim(), "ok");
    let deadline = Instant::now() + Duration::from_secs(60);
    while kv_checkpoints(&mut m) == 0 {
        assert!(Instant::now() < deadline, "kv never checkpointed:\n{}", m.console());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(m.shq("kv put b 2").trim(), "ok");
    let out = m.shq("crash kv poison");
    assert!(out.contains("kv: was restarted from a checkpoint it cannot restore; recovered"), "{out}\n{}", m.console());
    let console = m.console();
    for expected in ["falling back", "set aside", "kv: restoring generation"] {
        assert!(console.contains(expected), "expected '{expected}':\n{console}");
    }
    assert_eq!(m.shq("kv get a").trim(), "1");
    assert_eq!(m.shq("kv get b").trim(), "2");
    assert_eq!(m.shq("kv put c 3").trim(), "ok");
    m.shutdown();

    let mut m = boot_with(&cfg);
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        assert_eq!(m.shq(&format!("kv get {k}")).trim(), v, "{}", m.console());
    }
    assert!(!m.console().contains("cannot restore"), "{}", m.console());
    m.shutdown();
    assert_fsck_clean(&disks[1]);
}

/// `kill kv-companion` in the middle of a kv load, twice: init restarts
/// the companion, which restores kv from the vault (checkpoint plus
/// durable log); the clients' sessions resume (their library reconnects,
/// names the session and sends the unanswered request again, which is
/// answered from the replay when it was applied already), so kvload sees
/// no error; after a power-off and a reboot kv holds what it held.
#[test]
fn killing_the_kv_companion_loses_nothing_and_clients_carry_on() {
    const KV_COMPANION_KILL_OPS: u64 = 30000;
    let (dir, disks) = disks::fresh("vault-kv-companion").unwrap();
    let cfg = config(&disks, DiskBus::Virtio);
    let mut m = boot_with(&cfg);
    assert_eq!(m.shq("kv put before-companion-kill yes").trim(), "ok");
    // Long enough that both kills land while the clients are running.
    m.sh(&format!("run kvload 2 {KV_COMPANION_KILL_OPS} &"));
    for round in 1..=2 {
        // Each kill a moment into the load (or into its resumption): the
        // clients have requests in flight, some answered, some not.
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            !m.console().contains("kvload: clients="),
            "kvload finished before kill {round}; the load is too short for this machine:\n{}",
            m.console()
        );
        m.sh("kill kv-companion");
        wait_count(&mut m, "restarted kv-companion", round, Duration::from_secs(60));
        wait_count(&mut m, "[kvload] kv: the session was resumed", 2 * round, Duration::from_secs(60));
    }
    let result = m.wait_for_line("kvload: clients=2 ops=", Duration::from_secs(600)).unwrap();
    assert_eq!(result, format!("kvload: clients=2 ops={KV_COMPANION_KILL_OPS} errors=0"), "{}", m.console());
    assert_eq!(m.shq("kv get before-companion-kill").trim(), "yes", "{}", m.console());
    let contents = kv_contents(&mut m);
    m.power_off(Duration::from_secs(120)).unwrap();
    assert_fsck_clean(&disks[1]);
    let mut m = boot_with(&cfg);
    assert_eq!(kv_contents(&mut m), contents);
    m.shutdown();
    let _ = std::fs::remove_dir_all(dir);
}
