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
