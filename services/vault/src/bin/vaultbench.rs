//! `vaultbench`: the vault's write and read times by state size, for
//! `cargo xtask bench` (which boots with fresh disks), as `BENCH name
//! value` lines. For states of 4 KiB, 64 KiB and 1 MiB it commits through
//! the vault directly (as a companion would: a memory object handed over;
//! the vault files them under `vaultbench`, its identity) and prints the
//! medians of the round trip (`vault_commit_ns_SIZE`), of the time the vault
//! itself reports (`vault_commit_disk_ns_SIZE`: record built, written in
//! place, disk flushed) and of fetching the newest record back
//! (`vault_latest_ns_SIZE`). The first two commits of each size make (and
//! grow) the slots and are not counted. The reference
//! (`vault_reference_ns_SIZE`) is the same bytes written straight through
//! blk to the data disk and flushed, measured in the same run.
//!
//! `vaultbench commit KIB`: one commit of a KIB-KiB state, between the
//! lines `vaultbench: committing` and `vaultbench: committed generation G`
//! (the vault tests kill the vault in between).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod bench {
    extern crate alloc;

    use alloc::vec;
    use alloc::vec::Vec;
    use libos::channel::Channel;
    use libos::handle::Memory;
    use libos::println;
    use resiliency_lib::vault::{Reply, VaultClient};

    fn median(v: &mut [u64]) -> u64 {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }

    fn memory_with(bytes: &[u8]) -> Memory {
        Memory::from_bytes(bytes).expect("memory")
    }

    /// One commit of `kib` KiB.
    fn commit_once(client: &mut VaultClient, kib: usize) -> i32 {
        let state: Vec<u8> = (0..kib * 1024).map(|i| (i * 13) as u8).collect();
        let memory = memory_with(&state);
        println!("vaultbench: committing {kib} KiB");
        match client.commit(1, libos::time::now_ns(), memory.0, state.len() as u64, vec![], 0) {
            Ok(Reply::Committed { generation, .. }) => {
                println!("vaultbench: committed generation {generation}");
                0
            }
            other => {
                println!("vaultbench: commit: {other:?}");
                1
            }
        }
    }

    pub fn main() -> i32 {
        let Ok(ep) = libos::directory::connect(vault::SERVICE, true) else {
            println!("vaultbench: no vault");
            return 1;
        };
        let mut client = VaultClient::new(Channel::new(ep));
        let mut args = libos::start::args().split_whitespace();
        if args.next() == Some("commit") {
            let kib = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
            return commit_once(&mut client, kib);
        }
        let mut data_disk = match blk::Disk::connect(blk::DATA_DISK) {
            Ok(d) => d,
            Err(e) => {
                println!("vaultbench: no blk: {e}");
                return 1;
            }
        };
        for (size, rounds) in [(4096usize, 30), (65536, 20), (1 << 20, 10)] {
            let state: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
            let (mut trip, mut disk, mut read, mut raw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for i in 0..rounds + 2 {
                let memory = memory_with(&state);
                let t0 = libos::time::now_ns();
                let reply = client.commit(1, t0, memory.0, size as u64, vec![], 0);
                let t = libos::time::now_ns() - t0;
                match reply {
                    Ok(Reply::Committed { ns, .. }) if i >= 2 => {
                        trip.push(t);
                        disk.push(ns);
                    }
                    Ok(Reply::Committed { .. }) => {}
                    other => {
                        println!("vaultbench: commit of {size} bytes: {other:?}");
                        return 1;
                    }
                }
                let t0 = libos::time::now_ns();
                if let Err(e) = data_disk.write(0, &state).and_then(|()| data_disk.flush()) {
                    println!("vaultbench: blk write of {size} bytes: {e}");
                    return 1;
                }
                raw.push(libos::time::now_ns() - t0);
                let t0 = libos::time::now_ns();
                match client.latest() {
                    Ok(Reply::Record { len, .. }) if len == size as u64 => read.push(libos::time::now_ns() - t0),
                    other => {
                        println!("vaultbench: latest of {size} bytes: {other:?}");
                        return 1;
                    }
                }
            }
            println!("BENCH vault_commit_ns_{size} {}", median(&mut trip));
            println!("BENCH vault_commit_disk_ns_{size} {}", median(&mut disk));
            println!("BENCH vault_latest_ns_{size} {}", median(&mut read));
            println!("BENCH vault_reference_ns_{size} {}", median(&mut raw));
        }
        0
    }
}

#[cfg(target_os = "none")]
libos::main!(bench::main);

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("vaultbench runs in the Kintsugi guest");
}
