//! The kernel's exports used from user programs: device resources (I/O
//! ports, an interrupt line delivered as events, MMIO) and the memory calls
//! a supervisor uses on a child (dirty bits, mapping its pages, preloading
//! a suspended child).

use kintsugi_tests::boot;

#[test]
fn ports_interrupts_and_mmio_reach_a_user_driver() {
    let mut m = boot();
    let out = m.sh("run devtest");
    assert!(out.contains("20 rtc interrupts"), "{out}");
    assert!(out.contains("hpet period 10000000 fs"), "{out}");
    assert!(
        out.contains("port outside grant refused; ungranted device refused; mmio outside grant Err(AccessDenied)"),
        "{out}"
    );
    assert!(out.contains("devtest exited with code 0"), "{out}");
    m.shutdown();
}

#[test]
fn supervisor_reads_dirty_bits_and_maps_a_childs_pages() {
    let mut m = boot();
    let out = m.sh("run memtest");
    assert!(
        out.contains("memtest: child dirty pages [4, 5, 9] then [] then [12]; parent read 0x1004; child read 0x77"),
        "{out}"
    );
    assert!(out.contains("unmapped child range Err(NotFound); preloaded child exited with code 0"), "{out}");
    assert!(out.contains("memtest exited with code 0"), "{out}");
    m.shutdown();
}
