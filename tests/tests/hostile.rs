//! Hostile input (issue 11): the `hostile` client sends every resilient
//! service (kv, tally, fs, blk) and its companion's control and notices
//! endpoints malformed, out-of-turn, lying, oversized and random messages,
//! floods, and a client and a controller that never read their answers.
//! Each must get the contract's error or a dropped session, never crash
//! anything, and leave the service serving others. Then ordinary clients
//! (the shell's kv, file and blk commands, tallyload) must still work, and `ps`
//! must show no restart: no crash is caused by a client's message. The
//! ordinary clients run while two hostile clients (two identities) hold
//! as many idle sessions of tally as its companion allows one client.
//! A second test does the same to the network stack, the web server and
//! the card's driver (net, httpd, nic) on a machine with a network card,
//! a third to the vault, which is under no companion.

use kintsugi_tests::soak::ps::{self, Figures};
use kintsugi_tests::{boot, boot_with, Machine, NicModel, QemuConfig, COMMAND_TIMEOUT};
use std::collections::BTreeMap;

/// Run `hostile check ARGS` against `services` and check its verdict and
/// that it reports each; the services' figures before it.
fn hostile_check(m: &mut Machine, args: &str, services: &[&str]) -> BTreeMap<String, Figures> {
    let before = ps::parse(&m.shq("ps"));
    for service in services {
        assert!(before.contains_key(*service), "{service} is not in ps:\n{before:?}");
    }
    let out = m
        .command(&format!("run hostile check {args}"), COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("run hostile: {e}\n{}", m.console()));
    let failures: Vec<&str> = out.lines().filter(|l| l.contains("hostile: FAIL")).collect();
    assert!(failures.is_empty(), "hostile input was mishandled:\n{}\n{}", failures.join("\n"), m.console());
    assert!(out.contains("hostile: verdict OK"), "{out}\n{}", m.console());
    for service in services {
        assert!(out.contains(&format!("hostile: {service}: restarts ")), "no figures for {service}:\n{out}");
    }
    before
}

/// Nothing crashed: no service restarted since `before`, nothing panicked.
fn assert_no_restarts(m: &mut Machine, before: &BTreeMap<String, Figures>) {
    let after = ps::parse(&m.shq("ps"));
    for (service, was) in before {
        let now = after.get(service).unwrap_or_else(|| panic!("{service} is gone from ps:\n{after:?}"));
        assert_eq!(now.restarts, was.restarts, "{service} restarted during the hostile run\n{}", m.console());
    }
    assert!(!m.console().contains("panicked"), "a panic:\n{}", m.console());
}

#[test]
fn hostile_clients_crash_nothing_and_others_are_still_served() {
    let mut m = boot();
    let before = hostile_check(&mut m, "seed=11 random=80", &["kv", "tally", "fs", "blk"]);
    // The companions said why they closed the hostile sessions.
    let console = m.console();
    assert!(console.contains("closing it"), "no session was closed for breaking its contract:\n{console}");

    // A client holding as many idle sessions of tally as its companion
    // allows one client (and trying for more) meanwhile.
    // Two of them (two identities): tally then has more sessions than one
    // wait can name, and its companion must poll them all (tally has no
    // timer that would wake it otherwise).
    m.sh("run hostile hold 100 tally &");
    m.wait_for_line("hostile: holding ", COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("hostile hold: {e}\n{}", m.console()));
    m.sh("run hostile-b hold 100 tally &");
    let held = m.wait_for_line("hostile-b: holding ", COMMAND_TIMEOUT);
    let held = held.unwrap_or_else(|e| panic!("hostile-b hold: {e}\n{}", m.console()));
    assert!(held.contains("and 128 tally sessions"), "{held}\n{}", m.console());

    // Ordinary clients are served as before, while the sessions are held
    // (tallyload makes many requests on one session; a companion that did
    // not poll would leave them unread until the hoarders let go).
    let tally = m.shq("run tallyload 200 after");
    assert!(tally.contains("tallyload: ops=200 errors=0"), "{tally}");
    assert!(!m.console().contains("hostile-b: released"), "tallyload was served only after the hoard ended");
    // (Lines are matched whole: the hostile client may print meanwhile.)
    let has_line = |out: &str, want: &str| out.lines().any(|l| l.trim() == want);
    let put = m.shq("kv put after-hostile yes");
    assert!(has_line(&put, "ok"), "{put}");
    let get = m.shq("kv get after-hostile");
    assert!(has_line(&get, "yes"), "{get}");
    let listed = m.shq("kv list hostile/big/");
    assert!(listed.lines().count() >= 140, "kv lists what the hostile client stored:\n{listed}");
    let write = m.shq("write /after-hostile.txt fine");
    assert!(!write.contains("error"), "{write}");
    let cat = m.shq("cat /after-hostile.txt");
    assert!(has_line(&cat, "fine"), "{cat}");
    let info = m.shq("blk info data");
    assert!(info.contains("sectors"), "{info}");

    assert!(
        m.console().contains("already holds 128 sessions; its new connection is refused"),
        "the companions limit the sessions of one client:\n{}",
        m.console()
    );

    assert_no_restarts(&mut m, &before);
    m.shutdown();
}

/// The network stack, the web server and the card's driver (with a card,
/// on QEMU's user network): the same hostile input through their
/// contracts (bad socket numbers, requests that do not suit the socket,
/// oversized sends, frames of bad lengths, batches over the limit, random
/// bytes), then the web server must still serve and none may have
/// restarted.
#[test]
fn hostile_clients_crash_neither_net_nor_httpd() {
    let cfg = QemuConfig { nic: Some(NicModel::Virtio), ..QemuConfig::default() };
    let mut m = boot_with(&cfg);
    m.wait_for_text("[httpd] serving http on port 80", COMMAND_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let before = hostile_check(&mut m, "seed=5 random=60 net httpd nic", &["net", "httpd", "nic"]);
    let net = m.shq("net");
    assert!(net.contains("*:80"), "httpd still listens:\n{net}");
    assert_no_restarts(&mut m, &before);
    m.shutdown();
}

/// The vault, which every companion's checkpoints go through, under the
/// same attack (its own contract: reads of the attacker's own records,
/// commits and appends whose memory handles are missing, lying lengths,
/// floods, a client that never reads): its process must not change (init
/// would restart it after a crash), and the companions must still commit
/// through it (a durable `kv put` is answered only once the vault has it).
#[test]
fn hostile_clients_crash_not_the_vault() {
    let mut m = boot();
    let put = m.shq("kv put before-hostile 1");
    assert!(put.lines().any(|l| l.trim() == "ok"), "{put}");
    let out = m
        .command("run hostile check seed=3 random=60 vault", COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("run hostile: {e}\n{}", m.console()));
    let failures: Vec<&str> = out.lines().filter(|l| l.contains("hostile: FAIL")).collect();
    assert!(failures.is_empty(), "hostile input was mishandled:\n{}\n{}", failures.join("\n"), m.console());
    assert!(out.contains("hostile: verdict OK"), "{out}\n{}", m.console());
    assert!(out.contains("hostile: vault: restarts "), "no figures for the vault:\n{out}");
    let put = m.shq("kv put after-hostile 2");
    assert!(put.lines().any(|l| l.trim() == "ok"), "kv commits through the vault after the attack: {put}");
    let console = m.console();
    assert!(!console.contains("[init] restarted vault"), "the vault restarted:\n{console}");
    assert!(!console.contains("panicked"), "a panic:\n{console}");
    m.shutdown();
}
