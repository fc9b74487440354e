//! Transparent service resiliency, the seed paper's demonstration: resilient
//! services crashed in every way, recovered by their companions from a
//! checkpoint and a replayed log, while their clients notice nothing.

use kintsugi_tests::Machine;
use std::time::Duration;

use kintsugi_tests::boot;

/// The figures `ps` shows for a resilient service.
#[derive(Debug)]
struct Figures {
    restarts: u64,
    checkpoints: u64,
    log: u64,
    injected: u64,
}

fn figures(m: &mut Machine, service: &str) -> Figures {
    let ps = m.shq("ps");
    let line = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some(service) && l.split_whitespace().count() >= 7)
        .unwrap_or_else(|| panic!("no line for {service} in ps:\n{ps}"));
    let n: Vec<u64> = line.split_whitespace().skip(1).take(6).map(|w| w.parse().unwrap_or(u64::MAX)).collect();
    // SERVICE PID RESTARTS CHECKPOINTS LOG INJECTED REQUESTS LAST-RECOVERY
    Figures { restarts: n[1], checkpoints: n[2], log: n[3], injected: n[4] }
}

#[test]
fn kv_from_the_shell() {
    let mut m = boot();
    assert_eq!(m.shq("kv put greeting hello world").trim(), "ok");
    assert_eq!(m.shq("kv get greeting").trim(), "hello world");
    assert_eq!(m.shq("kv put greeting hi").trim(), "ok (replaced)");
    assert_eq!(m.shq("kv put other 1").trim(), "ok");
    let list = m.shq("kv list");
    assert!(list.contains("greeting\nother\n(2 keys)"), "{list}");
    assert_eq!(m.shq("kv del other").trim(), "deleted");
    assert_eq!(m.shq("kv get other").trim(), "kv: no key 'other'");
    assert_eq!(m.shq("kv del other").trim(), "kv: no key 'other'");
    // `kvload --direct`: the same checked load straight to a kv of its own,
    // none of it in the companion's kv, and that kv stopped when done.
    let kvs = |m: &mut Machine| m.shq("ps").lines().filter(|l| l.trim_end().ends_with(" kv")).count();
    let before = kvs(&mut m);
    let out = m.shq("run kvload --direct 4 400");
    assert!(out.contains("kvload: clients=4 ops=400 errors=0"), "{out}");
    assert!(out.contains(" via=direct"), "{out}");
    let list = m.shq("kv list");
    assert!(list.contains("greeting") && !list.contains("/c0/") && !list.contains("/shared/"), "{list}");
    assert_eq!(kvs(&mut m), before, "{}", m.shq("ps"));
    m.shutdown();
}

#[test]
fn every_failure_kind_is_detected_and_recovered() {
    let mut m = boot();
    m.shq("kv put survivor 42");
    for (how, said, cause) in [
        ("", "killed by the kernel", "died (killed)"),
        ("fault", "faulted", "died (faulted: page fault"),
        ("panic", "panicked", "died (panicked"),
        ("hang", "hung", "hung (no progress"),
        ("violation", "broke its contract", "broke the contract"),
        ("corrupt", "corrupted its state", "failed its invariant check: kv state damaged"),
    ] {
        let before = figures(&mut m, "kv").restarts;
        let out = m.shq(&format!("crash kv {how}"));
        assert!(out.contains(&format!("kv: {said}; recovered in")), "crash kv {how}:\n{out}");
        assert!(
            m.console().contains(&format!("kv: the service {cause}")),
            "cause '{cause}' not logged:\n{}",
            m.console()
        );
        assert_eq!(m.shq("kv get survivor").trim(), "42", "after crash kv {how}");
        assert_eq!(figures(&mut m, "kv").restarts, before + 1, "one restart per crash");
    }
    m.shutdown();
}

#[test]
fn a_request_that_always_crashes_the_service_is_failed_alone() {
    let mut m = boot();
    m.shq("kv put fine 1");
    let before = figures(&mut m, "kv").restarts;
    let out = m.shq("kv put bad kv:poison");
    assert_eq!(out.trim(), "kv: error 503: the request crashed the service on every attempt", "{out}");
    assert!(m.console().contains("crashed the service 3 times; it is failed with the contract's error"));
    assert_eq!(figures(&mut m, "kv").restarts, before + 3);
    assert_eq!(m.shq("kv get fine").trim(), "1");
    assert_eq!(m.shq("kv get bad").trim(), "kv: no key 'bad'");
    assert_eq!(m.shq("kv put after 2").trim(), "ok");
    m.shutdown();
}

#[test]
fn resiliency_aware_clients_get_recovery_notices() {
    let mut m = boot();
    m.shq("run kvwatch 2 &");
    m.wait_for_text("kvwatch: subscribed", Duration::from_secs(60)).unwrap();
    m.shq("crash kv");
    m.shq("crash kv fault");
    m.wait_for_text("kvwatch: kv recovered (restart #1)", Duration::from_secs(60)).unwrap();
    m.wait_for_text("kvwatch: kv recovered (restart #2)", Duration::from_secs(60)).unwrap();
    m.shutdown();
}

#[test]
fn image_distillation_and_recorded_inputs() {
    let mut m = boot();
    let out = m.shq("run tallyreplay");
    assert!(out.contains("time input before") && out.contains(": replayed;"), "{out}");
    assert!(out.contains("(after recovery): not called again"), "{out}");
    m.send("run tallyload 3000 &\r");
    m.wait_prompt(Duration::from_secs(60)).unwrap();
    for how in ["", "fault", "hang", "corrupt", ""] {
        let out = m.shq(&format!("crash tally {how}"));
        assert!(out.contains("recovered in"), "{out}");
    }
    let result = m.wait_for_line("tallyload: ops=3000 errors=", Duration::from_secs(300)).unwrap();
    assert_eq!(result, "tallyload: ops=3000 errors=0", "{}", m.console());
    let f = figures(&mut m, "tally");
    assert!(f.checkpoints > 0, "{f:?}");
    let restarts: Vec<String> =
        m.console().lines().filter(|l| l.contains("tally: the service")).map(String::from).collect();
    assert_eq!(f.restarts, 6, "{f:?}: {restarts:#?}");
    m.shutdown();
}

/// The demonstration: four clients, twenty thousand operations, crashes of
/// every kind at random points, and nobody notices.
#[test]
fn kv_survives_chaos_under_load_from_four_clients() {
    let mut m = boot();
    m.shq("chaos kv 0.3");
    m.send("run kvload 4 20000 &\r");
    m.wait_prompt(Duration::from_secs(60)).unwrap();
    // Meanwhile, crashes from the shell too (chaos pauses for each).
    for how in ["", "fault", "hang", "panic", "violation", "corrupt"] {
        std::thread::sleep(Duration::from_secs(3));
        let out = m.shq(&format!("crash kv {how}"));
        assert!(out.contains("recovered in"), "{out}");
    }
    let result = m.wait_for_line("kvload: clients=4 ops=20000 errors=", Duration::from_secs(1200)).unwrap();
    let console = m.console();
    assert_eq!(result, "kvload: clients=4 ops=20000 errors=0", "kvload reported errors:\n{console}");
    m.shq("chaos kv 0");
    let f = figures(&mut m, "kv");
    assert!(f.injected >= 50, "only {} crashes injected: {f:?}", f.injected);
    assert_eq!(f.restarts, f.injected, "every restart is an injected crash: {f:?}");
    for kind in ["fault", "panic", "hang", "exit", "contract violation", "corrupt state", "kill"] {
        assert!(console.contains(&format!("kv: chaos: {kind} ")), "no injected {kind}");
    }
    for point in ["Before", "Mid", "After", "Checkpoint"] {
        assert!(console.contains(&format!(" {point}\n")), "no crash at point {point}");
    }
    let _ = f.log;
    m.shutdown();
}

/// Boot to the shell prompt without waiting for the resilient services to
/// come up (they are still starting: the vault scans its disk first).
fn boot_to_prompt(name: &str) -> Machine {
    let image = kintsugi_tests::Image::built().unwrap_or_else(|e| panic!("{e}"));
    let (dir, disks) = kintsugi_tests::disks::fresh(name).unwrap();
    let cfg = kintsugi_tests::QemuConfig { disks, ..Default::default() };
    let mut m = Machine::boot(&image, &cfg, false).unwrap_or_else(|e| panic!("{e}"));
    m.remove_on_drop(dir);
    m.wait_prompt(kintsugi_tests::BOOT_TIMEOUT).unwrap_or_else(|e| panic!("no shell prompt: {e}"));
    m
}

/// `crash` and `chaos` right after boot wait for a service that is still
/// starting (its companion runs but has not registered `NAME.control`
/// yet), as the kv commands do, instead of saying it is not a resilient
/// service; a name that is no resilient service is still said to be none.
#[test]
fn crash_and_chaos_wait_for_a_service_still_starting() {
    let mut m = boot_to_prompt("resilience-crash-at-boot");
    let out = m.shq("crash kv");
    assert!(out.contains("kv: killed by the kernel; recovered in"), "{out}\n{}", m.console());
    let out = m.shq("chaos tally 5");
    assert_eq!(out.trim(), "tally: chaos on, 5.0% of requests crash it", "{out}");
    assert_eq!(m.shq("chaos tally 0").trim(), "tally: chaos off");
    assert_eq!(m.shq("crash nosuch").trim(), "crash: 'nosuch' is not a resilient service");
    assert_eq!(m.shq("chaos nosuch 1").trim(), "chaos: 'nosuch' is not a resilient service");
    m.shutdown();
}

/// `ps` shows each resilient service's chaos rate and whether its
/// acknowledgements are durable now: kv's store is the vault (durable),
/// blk's is memory (not).
#[test]
fn ps_shows_chaos_and_durability() {
    let mut m = boot();
    m.shq("chaos kv 0.3");
    let ps = m.shq("ps");
    let header = ps.lines().find(|l| l.starts_with("SERVICE")).unwrap_or_else(|| panic!("{ps}"));
    assert!(header.contains("CHAOS") && header.contains("DURABLE"), "{ps}");
    let columns = |service: &str| -> Vec<String> {
        let line = ps.lines().find(|l| l.split_whitespace().next() == Some(service)).unwrap_or_else(|| panic!("{ps}"));
        line.split_whitespace().map(String::from).collect()
    };
    // SERVICE PID RESTARTS CHECKPOINTS LOG INJECTED REQUESTS CHAOS DURABLE ...
    assert_eq!(columns("kv")[7..9], ["0.3%", "yes"], "{ps}");
    assert_eq!(columns("blk")[7..9], ["off", "no"], "{ps}");
    assert_eq!(columns("tally")[7..9], ["off", "yes"], "{ps}");
    m.shq("chaos kv 0");
    m.shutdown();
}

/// Many clients never take a service away: while kv's companion takes no
/// connection (it is detecting a hang), forty connection requests wait in
/// init instead of filling kv's listener until init takes kv for dead and
/// unregisters it; then thirty kvload clients at once.
#[test]
fn many_clients_never_take_a_service_away() {
    let mut m = boot();
    let out = m.shq("run connflood 40");
    assert!(out.contains("connflood: 40 sessions served"), "{out}\n{}", m.console());
    assert_eq!(m.shq("kv put after flood").trim(), "ok");
    let out = m.shq("run kvload 30 600");
    assert!(out.contains("kvload: clients=30 ops=600 errors=0"), "{out}\n{}", m.console());
    let console = m.console();
    assert!(!console.contains("stopped listening"), "{console}");
    assert_eq!(m.shq("kv get after").trim(), "flood");
    m.shutdown();
}

/// One client cannot hold up others: a client that asks for a big `kv
/// list` and never reads it does not block kv's companion (another session
/// is served at once), and after 10 s without reading its session is
/// dropped (its connection ends) with a warning. As many sessions as one
/// client may hold (128) are all served, and one more is refused (more
/// sessions than one wait can watch, from two clients: the hostile test).
#[test]
fn a_client_that_does_not_read_is_dropped_and_others_carry_on() {
    let mut m = boot();
    let out = m.shq("run slowreader fill 1000");
    assert!(out.contains("slowreader: 1000 keys put"), "{out}\n{}", m.console());
    let out = m.shq("run slowreader list");
    assert!(out.contains("slowreader: dropped after"), "{out}\n{}", m.console());
    assert!(m.console().contains("of slowreader has not read its replies for 10 s; dropping it"), "{}", m.console());
    let out = m.shq("run slowreader sessions 128");
    assert!(out.contains("slowreader: 128 sessions served"), "{out}\n{}", m.console());
    let out = m.shq("run slowreader sessions 129");
    assert!(!out.contains("sessions served"), "{out}\n{}", m.console());
    assert!(m.console().contains("slowreader already holds 128 sessions; its new connection is refused"));
    assert_eq!(m.shq("kv get slowreader-other").trim(), "served");
    let figures = m.shq("ps");
    let kv = figures.lines().find(|l| l.starts_with("kv ")).unwrap_or_else(|| panic!("{figures}"));
    assert_eq!(kv.split_whitespace().nth(2), Some("0"), "kv never restarted: {kv}");
    m.shutdown();
}

/// Determinism is checked: with `Verify` on, kv's and tally's gets and
/// lists leave their state alone, and a Get made to change tally's state
/// is found, counted and undone by a recovery (`idemcheck`).
#[test]
fn idempotent_requests_that_change_the_state_are_found() {
    let mut m = boot();
    let out = m.shq("run idemcheck");
    assert!(out.contains("idemcheck: ok"), "{out}\n{}", m.console());
    assert!(m.console().contains("is idempotent in the contract but changed the service's state"), "{}", m.console());
    m.shutdown();
}

/// A service's call to another service whose answer is several replies:
/// tally's `Import` lists kv's keys (kv's `List`, taken reply by reply) and
/// reads each; after a crash of tally the replay feeds the import the
/// replies it recorded, so the counter is the same (`tallyimport`).
#[test]
fn calls_answered_with_several_replies_are_recorded_and_replayed() {
    let mut m = boot();
    let out = m.shq("run tallyimport");
    assert!(out.contains("tallyimport: ok"), "{out}\n{}", m.console());
    m.shutdown();
}

/// Held requests and events (issue 10): the waiter service holds three
/// waits and a sleep of 60 timer ticks while another session is served,
/// and is killed, faults, panics and hangs meanwhile; every held request
/// is answered exactly once with the right value, the sleep lasts exactly
/// its ticks, and the service saw every tick its companion originated
/// exactly once (the replays saw the same ticks), with no divergence
/// (`waitertest`). A second run after another hang finds the same.
#[test]
fn held_requests_and_ticks_survive_crashes() {
    let mut m = boot();
    let out = m.shq("run waitertest");
    assert!(out.contains("waitertest: ok"), "{out}\n{}", m.console());
    let out = m.shq("crash waiter hang");
    assert!(out.contains("waiter: hung; recovered in"), "{out}");
    let out = m.shq("run waitertest");
    assert!(out.contains("waitertest: ok"), "{out}\n{}", m.console());
    let f = figures(&mut m, "waiter");
    assert!(f.restarts >= 9 && f.injected == f.restarts, "{f:?}");
    m.shutdown();
}

/// Held requests and ticks under chaos: random crashes of every kind,
/// before, during and after requests, ticks and checkpoints, while a wait
/// and a sleep are held round after round; every answer comes once and
/// right, every tick is seen once, no divergence (`waitertest chaos`).
#[test]
fn held_requests_and_ticks_survive_chaos() {
    let mut m = boot();
    let out = m.shq("run waitertest chaos");
    assert!(out.contains("waitertest: ok"), "{out}\n{}", m.console());
    m.shutdown();
}
