//! blk under attack. It never writes the data disk: every write it sends
//! names the checkpoint disk (refused: it is the vault's) or no disk, or
//! breaks a rule blk checks before it writes anything. Reads go to the
//! sectors the soak's blkpattern uses.

use super::{Seed, Target};
use crate::probe::{call, connect, encode, Expect};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use blk::{Reply, Request};
use testprogs::Rng;

/// blk.
pub struct Blk;

/// A sector of the data disk nobody else reads or writes in the test (the
/// soak's blkpattern area).
const LBA: u64 = 917_504;

fn read(disk: u8, lbas: Vec<u64>, counts: Vec<u32>) -> Vec<u8> {
    encode(Request::Read { disk, lbas, counts })
}

fn write(disk: u8, lbas: Vec<u64>, counts: Vec<u32>, len: usize) -> Vec<u8> {
    encode(Request::Write { disk, lbas, counts, data: vec![0x5a; len] })
}

impl Target for Blk {
    type P = blk::Blk;
    const NAME: &'static str = "blk";
    const LAST_TAG: u8 = 4;

    fn safe(r: &Request) -> bool {
        !matches!(r, Request::Write { disk: 0, .. })
    }

    fn seeds() -> Vec<Seed> {
        vec![
            Seed { name: "Info", bytes: encode(Request::Info { disk: 0 }), lengths: vec![], flags: vec![1] },
            Seed { name: "Read", bytes: read(0, vec![LBA], vec![1]), lengths: vec![2, 14, 18], flags: vec![1] },
            Seed {
                name: "Read of two extents",
                bytes: read(0, vec![LBA, LBA + 8], vec![2, 3]),
                lengths: vec![2, 22],
                flags: vec![],
            },
            Seed {
                name: "Write of the checkpoint disk",
                bytes: write(1, vec![100], vec![1], 512),
                lengths: vec![2, 14, 18, 22],
                flags: vec![],
            },
            Seed { name: "Flush", bytes: encode(Request::Flush { disk: 1 }), lengths: vec![], flags: vec![] },
        ]
    }

    fn crafted() -> Vec<(&'static str, Vec<u8>, Option<Expect>)> {
        let e = Some(Expect::Error);
        vec![
            ("Read of 33 extents", read(0, vec![LBA; 33], vec![1; 33]), Some(Expect::Rejected)),
            ("Write of 70000 bytes", write(1, vec![100], vec![1], 70_000), Some(Expect::Rejected)),
            ("Info of disk 9", encode(Request::Info { disk: 9 }), e),
            ("Info of disk 255", encode(Request::Info { disk: 255 }), e),
            ("Read of no extent", read(0, vec![], vec![]), e),
            ("Read of 2 addresses for 1 count", read(0, vec![LBA, LBA + 1], vec![1]), e),
            ("Read of 1 address for 2 counts", read(0, vec![LBA], vec![1, 1]), e),
            ("Read of an empty extent", read(0, vec![LBA], vec![0]), e),
            ("Read of 129 sectors", read(0, vec![LBA, LBA + 200], vec![100, 29]), e),
            ("Read of u32::MAX sectors", read(0, vec![LBA], vec![u32::MAX]), e),
            ("Read at u64::MAX (wraps)", read(0, vec![u64::MAX], vec![1]), e),
            ("Read at u64::MAX - 1 of 4 sectors (wraps)", read(0, vec![u64::MAX - 1], vec![4]), e),
            ("Read of disk 7", read(7, vec![0], vec![1]), e),
            ("Write of the checkpoint disk", write(1, vec![0], vec![1], 512), e),
            ("Write of disk 7", write(7, vec![0], vec![1], 512), e),
            ("Write of 1 sector with 100 bytes", write(0, vec![LBA], vec![1], 100), e),
            ("Write of 1 sector with 1024 bytes", write(0, vec![LBA], vec![1], 1024), e),
            ("Write of 1 sector with no bytes", write(0, vec![LBA], vec![1], 0), e),
            ("Write at u64::MAX", write(0, vec![u64::MAX], vec![1], 512), e),
            ("Write of mismatched lists", write(0, vec![LBA, LBA + 1], vec![1], 1024), e),
            ("Flush of the checkpoint disk", encode(Request::Flush { disk: 1 }), e),
            ("Flush of disk 9", encode(Request::Flush { disk: 9 }), e),
            ("Read of 128 sectors", read(0, vec![LBA], vec![128]), Some(Expect::Any)),
            (
                "Read of 32 one-sector extents",
                read(0, (0..32).map(|i| LBA + i).collect(), vec![1; 32]),
                Some(Expect::Any),
            ),
            ("Read of the same sector 32 times", read(0, vec![LBA; 32], vec![4; 32]), Some(Expect::Any)),
        ]
    }

    fn random_valid(rng: &mut Rng) -> Vec<u8> {
        let disk = match rng.below(8) {
            0 => 1,
            1 => rng.next() as u8,
            _ => 0,
        };
        let extents = 1 + rng.below(33) as usize;
        let lbas: Vec<u64> = (0..extents)
            .map(|_| match rng.below(3) {
                0 => super::edgy(rng, 2_000_000),
                _ => LBA + rng.below(100_000),
            })
            .collect();
        let counts: Vec<u32> = (0..extents).map(|_| super::edgy(rng, 8) as u32).collect();
        encode(match rng.below(6) {
            0 => Request::Info { disk },
            1 => Request::Flush { disk },
            // Writes only of the checkpoint disk (refused) or no disk.
            2 => Request::Write { disk: disk.max(1), lbas, counts, data: vec![0xa5; 512 * rng.below(4) as usize] },
            _ => Request::Read { disk, lbas, counts },
        })
    }

    fn cheap() -> Vec<u8> {
        encode(Request::Info { disk: 0 })
    }

    fn never_read() -> Result<(Vec<u8>, bool), String> {
        Ok((read(0, vec![LBA], vec![128]), false))
    }

    fn healthy() -> Result<(), String> {
        let mut c = connect(blk::SERVICE)?;
        match call::<blk::Blk>(&mut c, Request::Info { disk: 0 }) {
            Ok(Reply::Geometry { sectors, .. }) if sectors > LBA + 128 => {}
            other => return Err(format!("info: {other:?}")),
        }
        match call::<blk::Blk>(&mut c, Request::Read { disk: 0, lbas: vec![LBA], counts: vec![2] }) {
            Ok(Reply::Data { data }) if data.len() == 1024 => Ok(()),
            Ok(Reply::Data { data }) => Err(format!("read of 2 sectors: {} bytes", data.len())),
            other => Err(format!("read: {other:?}")),
        }
    }
}
