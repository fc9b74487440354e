//! Unit tests of the record format: layout, precise errors, and that every
//! single-byte change and every truncation is detected.

extern crate std;

use super::epoch::{self, BlockWrite};
use super::*;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;

fn meta(service: &str, generation: u64) -> Meta<'_> {
    Meta { service, generation, taken_ns: 1_234_567, boot: 3, kind: Kind::Logical }
}

fn sample_epoch() -> Vec<u8> {
    epoch::encode(&[
        BlockWrite { disk: 0, lba: 2048, data: vec![0xaa; 512] },
        BlockWrite { disk: 0, lba: 7, data: vec![0x55; 1024] },
    ])
    .unwrap()
}

#[test]
fn round_trip_with_and_without_epoch() {
    let r = encode(&meta("kv", 41), b"state bytes", &[]).unwrap();
    assert_eq!(r.len(), HEADER_LEN + 11);
    let d = decode(&r).unwrap();
    assert_eq!(d.header.service, "kv");
    assert_eq!(d.header.generation, 41);
    assert_eq!(d.header.taken_ns, 1_234_567);
    assert_eq!(d.header.boot, 3);
    assert_eq!(d.header.kind, Kind::Logical);
    assert_eq!(d.state, b"state bytes");
    assert!(d.epoch.is_empty());
    assert!(d.writes().unwrap().is_empty());

    let e = sample_epoch();
    let m = Meta { kind: Kind::Image, ..meta("tally", 7) };
    let r = encode(&m, &[9; 4096], &e).unwrap();
    let d = decode(&r).unwrap();
    assert_eq!(d.header.kind, Kind::Image);
    assert_eq!(d.state, vec![9; 4096]);
    let w = d.writes().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!((w[0].disk, w[0].lba, w[0].data.len()), (0, 2048, 512));
    assert_eq!((w[1].lba, w[1].data[0]), (7, 0x55));
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut r = encode(&meta("kv", 1), b"abc", &[]).unwrap();
    r.extend_from_slice(&[0xee; 700]);
    assert_eq!(decode(&r).unwrap().state, b"abc");
}

#[test]
fn the_header_layout_is_as_documented() {
    let r = encode(&meta("kv", 0x0102030405060708), b"xy", &[]).unwrap();
    assert_eq!(&r[0..8], b"KNTSGREC");
    assert_eq!(&r[8..10], &[1, 0]);
    assert_eq!(&r[10..12], &[128, 0]);
    assert_eq!(r[12], 1);
    assert_eq!(r[13], 2);
    assert_eq!(&r[16..24], &[8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(&r[40..48], &2u64.to_le_bytes());
    assert_eq!(&r[48..56], &0u64.to_le_bytes());
    assert_eq!(&r[56..60], &crc32(b"xy").to_le_bytes());
    assert_eq!(&r[60..62], b"kv");
    assert_eq!(&r[124..128], &crc32(&r[..124]).to_le_bytes());
    assert_eq!(&r[128..], b"xy");
}

#[test]
fn precise_errors() {
    let r = encode(&meta("kv", 5), b"0123456789", &[]).unwrap();
    assert_eq!(decode(&[0u8; 512]).unwrap_err(), RecordError::Empty);
    assert_eq!(decode(&r[..4]).unwrap_err(), RecordError::Truncated { needed: 128, have: 4 });
    assert_eq!(decode(&r[..100]).unwrap_err(), RecordError::Truncated { needed: 128, have: 100 });
    assert_eq!(decode(&r[..130]).unwrap_err(), RecordError::Truncated { needed: 138, have: 130 });

    let mut bad = r.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad).unwrap_err(), RecordError::BadMagic);

    let mut bad = r.clone();
    bad[8] = 2;
    assert_eq!(decode(&bad).unwrap_err(), RecordError::UnsupportedVersion(2));

    let mut bad = r.clone();
    bad[20] ^= 1;
    assert!(matches!(decode(&bad).unwrap_err(), RecordError::HeaderChecksum { .. }));

    let mut bad = r.clone();
    bad[130] ^= 0x40;
    let e = decode(&bad).unwrap_err();
    assert!(matches!(e, RecordError::PayloadChecksum { .. }));
    assert!(e.to_string().starts_with("payload checksum mismatch"), "{e}");

    // A header whose checksum is right but whose lengths are absurd.
    let mut h = decode(&r).unwrap().header;
    h.state_len = u64::MAX;
    h.epoch_len = 2;
    let bytes = h.to_bytes();
    assert!(matches!(Header::parse(&bytes).unwrap_err(), RecordError::LengthsInconsistent(_)));
    h.state_len = MAX_PAYLOAD + 1;
    h.epoch_len = 0;
    assert!(matches!(Header::parse(&h.to_bytes()).unwrap_err(), RecordError::LengthsInconsistent(_)));

    // Header fields with values the format does not allow, checksum right.
    let mut raw = r[..HEADER_LEN].to_vec();
    raw[layout::KIND] = 9;
    let crc = crc32(&raw[..124]);
    raw[124..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(Header::parse(&raw).unwrap_err(), RecordError::BadField("distillation kind"));
    let mut raw = r[..HEADER_LEN].to_vec();
    raw[layout::NAME_LEN] = 0;
    let crc = crc32(&raw[..124]);
    raw[124..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(Header::parse(&raw).unwrap_err(), RecordError::BadField("service name length"));
}

#[test]
fn bad_inputs_to_encode_are_refused() {
    assert!(encode(&meta("", 1), b"", &[]).is_err());
    let long = "x".repeat(65);
    assert!(encode(&meta(&long, 1), b"", &[]).is_err());
    assert!(encode(&meta(&"y".repeat(64), 1), b"", &[]).is_ok());
    assert!(encode(&meta("kv", 1), b"", &[1, 2, 3]).is_err(), "an epoch that is not a redo list");
    assert!(epoch::encode(&[BlockWrite { disk: 0, lba: 0, data: vec![0; 100] }]).is_err());
    assert!(epoch::encode(&[BlockWrite { disk: 0, lba: 0, data: vec![] }]).is_err());
}

#[test]
fn malformed_epochs_are_detected() {
    let e = sample_epoch();
    assert!(epoch::validate(&e).is_ok());
    for cut in 0..e.len() {
        assert!(epoch::validate(&e[..cut]).is_err(), "cut at {cut}");
    }
    let mut more = e.clone();
    more.push(0);
    assert_eq!(epoch::validate(&more).unwrap_err(), RecordError::BadEpoch("bytes after the last write"));
    let huge_count = [0xff, 0xff, 0xff, 0xff];
    assert!(epoch::validate(&huge_count).is_err());
}

/// Every single-byte change anywhere in a record, to every other value of
/// that byte, is detected (exhaustively, for a record with an epoch).
#[test]
fn every_single_byte_change_is_detected_exhaustively() {
    let r = encode(&meta("kv", 99), b"some state", &sample_epoch()).unwrap();
    for i in 0..r.len() {
        for v in 0..=255u8 {
            if v == r[i] {
                continue;
            }
            let mut bad = r.clone();
            bad[i] = v;
            assert!(decode(&bad).is_err(), "byte {i} set to {v:#x} went unnoticed");
        }
    }
}

#[test]
fn every_truncation_is_detected_exhaustively() {
    let r = encode(&meta("kv", 99), b"some state", &sample_epoch()).unwrap();
    for cut in 0..r.len() {
        let e = decode(&r[..cut]).unwrap_err();
        assert!(matches!(e, RecordError::Truncated { .. }), "cut at {cut}: {e:?}");
    }
}

fn arb_writes() -> impl Strategy<Value = Vec<BlockWrite>> {
    prop::collection::vec(
        (any::<u8>(), any::<u64>(), 1usize..4, any::<u8>()).prop_map(|(disk, lba, sectors, fill)| BlockWrite {
            disk,
            lba,
            data: vec![fill; sectors * 512],
        }),
        0..4,
    )
}

fn arb_record() -> impl Strategy<Value = (String, u64, u64, u64, bool, Vec<u8>, Option<Vec<BlockWrite>>)> {
    (
        "[a-z][a-z0-9.-]{0,63}",
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..2000),
        prop::option::of(arb_writes()),
    )
}

proptest! {
    #[test]
    fn round_trip((name, generation, taken_ns, boot, image, state, writes) in arb_record()) {
        let kind = if image { Kind::Image } else { Kind::Logical };
        let ep = match &writes { Some(w) => epoch::encode(w).unwrap(), None => Vec::new() };
        let m = Meta { service: &name, generation, taken_ns, boot, kind };
        let r = encode(&m, &state, &ep).unwrap();
        let d = decode(&r).unwrap();
        prop_assert_eq!(&d.header.service, &name);
        prop_assert_eq!(d.header.generation, generation);
        prop_assert_eq!(d.header.taken_ns, taken_ns);
        prop_assert_eq!(d.header.boot, boot);
        prop_assert_eq!(d.header.kind, kind);
        prop_assert_eq!(&d.state, &state);
        prop_assert_eq!(d.writes().unwrap(), writes.unwrap_or_default());
        prop_assert_eq!(d.header.record_len() as usize, r.len());
    }

    #[test]
    fn a_single_byte_flip_is_detected(
        (name, generation, taken_ns, boot, image, state, writes) in arb_record(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let kind = if image { Kind::Image } else { Kind::Logical };
        let ep = match &writes { Some(w) => epoch::encode(w).unwrap(), None => Vec::new() };
        let mut r = encode(&Meta { service: &name, generation, taken_ns, boot, kind }, &state, &ep).unwrap();
        let i = at.index(r.len());
        r[i] ^= xor;
        prop_assert!(decode(&r).is_err());
    }

    #[test]
    fn a_truncation_is_detected(
        (name, generation, taken_ns, boot, image, state, writes) in arb_record(),
        at in any::<prop::sample::Index>(),
    ) {
        let kind = if image { Kind::Image } else { Kind::Logical };
        let ep = match &writes { Some(w) => epoch::encode(w).unwrap(), None => Vec::new() };
        let r = encode(&Meta { service: &name, generation, taken_ns, boot, kind }, &state, &ep).unwrap();
        let cut = at.index(r.len());
        let truncated = decode(&r[..cut]);
        prop_assert!(matches!(truncated, Err(RecordError::Truncated { .. })), "{:?}", truncated);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes);
        let _ = epoch::decode(&bytes);
    }

    #[test]
    fn arbitrary_headers_with_good_checksums_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 128..400)) {
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32(&bytes[..124]);
        bytes[124..128].copy_from_slice(&crc.to_le_bytes());
        let _ = decode(&bytes);
    }
}
