//! The vault: checkpoints on the FAT checkpoint disk survive a power-off,
//! a damaged slot (the other slot is used, and the log says so) and power
//! cuts at random moments (what was committed is never lost, nothing
//! half-written is ever restored, and the file system stays clean).
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
    let older_state = &image[older_at + 128..older_at + 128 + older.state_len as usize];
    let expected = if older_state.windows(12).any(|w| w == b"second-value") { "second-value" } else { "first-value" };
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

#[test]
fn power_cuts_lose_nothing_committed_virtio() {
    power_cuts(DiskBus::Virtio, "vault-power-cut-virtio", 6);
}

#[test]
fn power_cuts_lose_nothing_committed_ahci() {
    power_cuts(DiskBus::Ahci, "vault-power-cut-ahci", 4);
}

/// `rounds` times: run kvcommit, cut the power (SIGKILL QEMU) at a random
/// moment, boot again on the same disks and check kv holds the state after
/// some prefix of the history: at least everything reported committed, at
/// most everything sent. Then the file system must be clean.
fn power_cuts(bus: DiskBus, name: &str, rounds: usize) {
    const KEYS: u64 = 5;
    const EVERY: u64 = 3;
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
        m.sh(&format!("run kvcommit {applied} 100000 {KEYS} {EVERY} &"));
        // The slot files exist once the first commit is through.
        m.wait_for_text("kvcommit: committed through", Duration::from_secs(120)).unwrap();
        std::thread::sleep(Duration::from_millis(20 + rng.below(2000)));
        m.kill();
        let console = m.console();
        let committed = last_number(&console, "kvcommit: committed through ").map_or(0, |i| i + 1);
        let sent = last_number(&console, "kvcommit: sending ").map_or(applied, |i| i + 1);
        if round == rounds - 1 {
            // Straight after the cut, before anything mounts it again.
            assert_fsck_clean(&disks[1]);
        }
        m = boot_with(&cfg);
        let contents = dump(&mut m, KEYS);
        let found = (committed.max(applied)..=sent).rev().find(|&k| history(k, KEYS) == contents);
        let Some(k) = found else {
            panic!(
                "round {round}: after the cut kv holds {contents:?}, which is no state between op {committed} (committed) and op {sent} (sent);\n{}",
                m.console()
            )
        };
        eprintln!("{name}: cut {round}: {committed} ops committed, {sent} sent, {k} restored");
        applied = k;
    }
    m.shutdown();
    assert_fsck_clean(&disks[1]);
    let _ = std::fs::remove_dir_all(dir);
    eprintln!("{name}: {:.0} s", t0.elapsed().as_secs_f64());
}
