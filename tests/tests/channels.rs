//! Channels between processes: ping-pong, one server with four clients, and
//! an endpoint handed on through a third process.

use kintsugi_tests::boot;

#[test]
fn ping_pong_over_a_channel() {
    let mut m = boot();
    let out = m.sh("run pingpong 2000");
    assert!(out.contains("pingpong: 2000 round trips OK"), "{out}");
    assert!(out.contains("child exited with 0"), "{out}");
    assert!(out.contains("pingpong exited with code 0"), "{out}");
    m.shutdown();
}

#[test]
fn one_server_four_clients() {
    let mut m = boot();
    let out = m.sh("run fanin 4 1000");
    assert!(out.contains("fanin: 4 clients x 1000 requests: every reply right"), "{out}");
    assert!(out.contains("fanin exited with code 0"), "{out}");
    // The server was stopped and nothing is left behind.
    let ps = m.sh("ps");
    assert!(!ps.contains("fanin"), "{ps}");
    m.shutdown();
}

#[test]
fn endpoint_handed_through_a_third_process() {
    let mut m = boot();
    let out = m.sh("run handoff");
    assert!(
        out.contains(
            "handoff: C said 'hello A, this is C' then 'got 'hello C, this is A'' over an endpoint passed A -> B -> C"
        ),
        "{out}"
    );
    assert!(out.contains("handoff exited with code 0"), "{out}");
    m.shutdown();
}
