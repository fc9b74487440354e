//! Authority from the manifest: a program reaches only the services its
//! `connects` lists and registers only its own names, the control
//! endpoints are not everyone's, companions are init's to start, and the
//! vault files a client's records under the identity init gives it.

use kintsugi_tests::{boot, vault};

#[test]
fn the_directory_refuses_what_the_manifest_does_not_grant() {
    let mut m = boot();
    let out = m.shq("run authtest");
    let line = |what: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("authtest: {what}: ")))
            .unwrap_or_else(|| panic!("no line for {what}:\n{out}\n{}", m.console()))
            .to_string()
    };
    assert_eq!(line("connect kv"), "authtest: connect kv: allowed");
    assert_eq!(
        line("connect kv.control"),
        "authtest: connect kv.control: refused: 'authtest' may not connect to 'kv.control' (not in its connects in the manifest)"
    );
    assert!(line("connect blk").ends_with("'authtest' may not connect to 'blk' (not in its connects in the manifest)"));
    assert!(line("connect tally.notices").contains("refused: 'authtest' may not connect to 'tally.notices'"));
    assert!(line("register kv").contains("refused: 'authtest' may not register 'kv'"), "{out}");
    assert_eq!(line("register authtest.notices"), "authtest: register authtest.notices: allowed");
    assert!(line("start kv as a companion").contains("refused: 'kv' cannot be started as a companion"), "{out}");
    assert!(line("start shell").contains("refused: 'authtest' may not start 'shell'"), "{out}");
    assert_eq!(line("start itself"), "authtest: start itself: allowed");
    assert!(line("kill kv").contains("refused: 'authtest' may not kill processes"), "{out}");
    assert!(line("power off").contains("refused: 'authtest' may not power off"), "{out}");
    // The vault files its record under its identity, beside kv's and
    // tally's, and gives it back its own.
    assert!(out.contains("authtest: vault: committed generation 1"), "{out}");
    assert!(out.contains("authtest: vault holds authtest generation 1"), "{out}");
    assert!(out.contains("authtest: vault: latest is its own"), "{out}");
    assert!(out.contains("authtest: done"), "{out}");
    // init says what it refused.
    let console = m.console();
    assert!(
        console.contains("[init] warning: refused: 'authtest'") || console.contains("refused: 'authtest' (pid"),
        "{console}"
    );
    // The shell, the administrator's tool, may reach the control endpoint.
    let crash = m.shq("crash kv");
    assert!(crash.contains("kv: killed by the kernel; recovered in"), "{crash}");
    // Nothing was killed: kv never restarted but for the crash above.
    let ps = m.shq("ps");
    let kv = ps.lines().find(|l| l.starts_with("kv ")).unwrap_or_else(|| panic!("{ps}"));
    assert_eq!(kv.split_whitespace().nth(2), Some("1"), "{ps}");
    m.shutdown();
}

#[test]
fn the_vault_keys_records_by_identity() {
    let (dir, disks) = kintsugi_tests::disks::fresh("authority-vault").unwrap();
    let cfg = kintsugi_tests::QemuConfig { disks: disks.clone(), ..Default::default() };
    let mut m = kintsugi_tests::boot_with(&cfg);
    assert_eq!(m.shq("kv put mine kv's own").trim(), "ok");
    assert!(m.shq("run authtest").contains("authtest: done"));
    m.shutdown();
    let slots = vault::read_slots(&disks[1]).unwrap();
    let services: Vec<&str> = slots.iter().filter(|s| s.current).map(|s| s.service.as_str()).collect();
    assert!(services.contains(&"authtest") && services.contains(&"kv"), "{}", vault::listing(&slots));
    let kv = slots.iter().find(|s| s.service == "kv" && s.current).unwrap();
    assert!(kv.state.windows(8).any(|w| w == b"kv's own"), "kv's state is kv's");
    let at = slots.iter().find(|s| s.service == "authtest" && s.current).unwrap();
    assert_eq!(at.state, b"authtest state");
    let _ = std::fs::remove_dir_all(dir);
}

/// The checkpoint disk belongs to the vault: blk refuses a write or a
/// flush of it by anyone else (the shell here, which may connect to blk),
/// keyed by the identity init gives each session; reading it and writing
/// the data disk stay allowed, and the vault's own commits go on, also
/// after blk itself crashes (who opened each session is blk's state).
#[test]
fn only_the_vault_writes_the_checkpoint_disk() {
    let mut m = boot();
    let out = m.shq("blk write checkpoint 0 deadbeef");
    assert_eq!(
        out.trim(),
        "blk: error 403: disk 1 (the checkpoint disk) belongs to the vault: 'shell' may not write it",
        "{out}"
    );
    assert!(m.shq("blk read checkpoint 0").contains("00000000  "), "reading stays allowed");
    assert!(m.shq("blk write data 5 48656c6c6f").contains("wrote"), "the data disk stays writable");
    // The vault still commits, before and after a crash of blk.
    m.shq("kv put a 1");
    assert!(m.shq("crash blk").contains("recovered in"));
    m.shq("kv put b 2");
    assert!(m.shq("blk write checkpoint 0 deadbeef").contains("error 403"), "after the crash too");
    m.power_off(std::time::Duration::from_secs(120)).unwrap();
    let console = m.console();
    assert!(console.contains("final checkpoint of kv: ") && !console.contains("did not reach the vault"), "{console}");
    assert!(!console.contains("checkpoint not committed"), "{console}");
}
