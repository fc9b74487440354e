//! The wire encoding of generated messages: every message decodes to what
//! was encoded, the encoding is canonical (bytes that decode re-encode to
//! themselves), and malformed bytes are rejected with an error, never a
//! panic.

use companion_gen_roundtrip::{edge_cases, files, kv, log_sink};
use libos::abi::Handle;
use libos::channel::{EndpointHandles, HandleList, HandleQueue, Message};
use libos::handle::OwnedHandle;
use libos::wire::{DecodeError, Reader, Writer};
use proptest::collection::vec;
use proptest::prelude::*;

/// Encode `m`; the handles it carried are dropped (on the host, closing a
/// handle is a no-op system call).
fn encode<M: Message>(m: M) -> Vec<u8> {
    let mut w = Writer::new();
    let mut handles = HandleList::default();
    m.encode(&mut w, &mut handles);
    w.finish()
}

/// Decode a whole message, as `Channel::recv` does: trailing bytes are an
/// error.
fn decode<M: Message>(bytes: &[u8], handles: Vec<OwnedHandle>) -> Result<M, DecodeError> {
    let mut q = HandleQueue::new(handles);
    let mut r = Reader::new(bytes);
    let m = M::decode(&mut r, &mut q)?;
    r.finish()?;
    Ok(m)
}

fn raw_handles(raw: &[u32]) -> Vec<OwnedHandle> {
    raw.iter().map(|&h| OwnedHandle::from_raw(Handle(h))).collect()
}

/// The properties every handle-free message type must have: it round
/// trips, every strict prefix and any extra byte are rejected.
fn round_trip<M: Message + Clone + PartialEq + std::fmt::Debug>(m: M) -> Result<(), TestCaseError> {
    let bytes = encode(m.clone());
    prop_assert_eq!(decode::<M>(&bytes, vec![]), Ok(m));
    for cut in 0..bytes.len() {
        prop_assert_eq!(decode::<M>(&bytes[..cut], vec![]), Err(DecodeError::Truncated), "prefix of {} bytes", cut);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert_eq!(decode::<M>(&longer, vec![]), Err(DecodeError::Trailing));
    Ok(())
}

/// Arbitrary bytes never panic; if they decode, they are exactly the
/// encoding of what they decode to.
fn canonical<M: Message + Clone + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = decode::<M>(bytes, vec![]) {
        prop_assert_eq!(encode(m), bytes.to_vec());
    }
    Ok(())
}

/// A string of at most `max` bytes (of characters of any width).
fn string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}".prop_map(move |s: String| truncate(s, max)),
        "[a-z]{0,1024}".prop_map(move |s: String| truncate(s, max)),
        Just("x".repeat(max)),
    ]
}

fn truncate(mut s: String, max: usize) -> String {
    while s.len() > max {
        s.pop();
    }
    s
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..=max.min(64)), vec(any::<u8>(), 0..=max), Just(vec![0xff; max])]
}

fn kv_request() -> impl Strategy<Value = kv::Request> {
    use kv::Request::*;
    prop_oneof![
        string(256).prop_map(|key| Get { key }),
        (string(256), bytes(4096)).prop_map(|(key, value)| Put { key, value }),
        string(256).prop_map(|key| Delete { key }),
        (string(256), any::<bool>(), bytes(4096), any::<bool>(), bytes(4096)).prop_map(
            |(key, expected_present, expected, new_present, new)| Cas { key, expected_present, expected, new_present, new }
        ),
        string(256).prop_map(|prefix| List { prefix }),
        Just(Ping),
    ]
}

fn kv_reply() -> impl Strategy<Value = kv::Reply> {
    use kv::Reply::*;
    prop_oneof![
        (any::<bool>(), bytes(4096)).prop_map(|(found, value)| Value { found, value }),
        Just(Done),
        (any::<bool>(), any::<bool>(), bytes(4096)).prop_map(|(ok, current_present, current)| Swapped {
            ok,
            current_present,
            current
        }),
        string(256).prop_map(|key| Key { key }),
        any::<u32>().prop_map(|count| EndList { count }),
        (any::<u32>(), string(256)).prop_map(|(code, message)| Failed { code, message }),
    ]
}

fn edge_request() -> impl Strategy<Value = edge_cases::Request> {
    use edge_cases::Request::*;
    prop_oneof![
        (any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>(), any::<i32>(), any::<i64>(), any::<bool>(), string(3), bytes(2))
            .prop_map(|(r#type, r#match, w, handles, out, handler, request, r, upper)| get_thing {
                r#type,
                r#match,
                w,
                handles,
                out,
                handler,
                request,
                r,
                Upper: upper
            }),
        any::<u32>().prop_map(|from| Stream { from }),
        any::<bool>().prop_map(|yes| Answer { yes }),
        Just(Quiet),
    ]
}

fn edge_reply() -> impl Strategy<Value = edge_cases::Reply> {
    use edge_cases::Reply::*;
    prop_oneof![
        any::<u64>().prop_map(|r#loop| Thing { r#loop }),
        any::<i32>().prop_map(|i| Item { i }),
        Just(End),
        string(8).prop_map(|question| Ask { question }),
        (any::<u8>(), any::<u16>(), any::<u32>(), any::<u64>(), any::<i32>(), any::<i64>(), any::<bool>(), string(40), bytes(8))
            .prop_map(|(a, b, c, d, e, f, g, s, t)| Oops { a, b, c, d, e, f, g, s, t }),
    ]
}

fn sink_request() -> impl Strategy<Value = log_sink::Request> {
    use log_sink::Request::*;
    prop_oneof![(any::<u8>(), string(200)).prop_map(|(level, text)| Line { level, text }), Just(Flush)]
}

proptest! {
    // Integration tests have no lib.rs for proptest to store failures beside.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn kv_requests_round_trip(m in kv_request()) {
        prop_assert!(m.within_limits());
        round_trip(m)?;
    }

    #[test]
    fn kv_replies_round_trip(m in kv_reply()) {
        prop_assert!(m.within_limits());
        round_trip(m)?;
    }

    #[test]
    fn edge_case_requests_round_trip(m in edge_request()) {
        prop_assert!(m.within_limits());
        round_trip(m)?;
    }

    #[test]
    fn edge_case_replies_round_trip(m in edge_reply()) {
        prop_assert!(m.within_limits());
        round_trip(m)?;
    }

    #[test]
    fn log_sink_requests_round_trip(m in sink_request()) {
        round_trip(m)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in vec(any::<u8>(), 0..64)) {
        canonical::<kv::Request>(&bytes)?;
        canonical::<kv::Reply>(&bytes)?;
        canonical::<edge_cases::Request>(&bytes)?;
        canonical::<edge_cases::Reply>(&bytes)?;
        canonical::<log_sink::Request>(&bytes)?;
        canonical::<log_sink::Reply>(&bytes)?;
        let _ = decode::<files::Request>(&bytes, raw_handles(&[1, 2, 3]));
        let _ = decode::<files::Reply>(&bytes, raw_handles(&[1, 2, 3]));
    }

    /// Valid messages with bytes overwritten, inserted or removed.
    #[test]
    fn mutated_messages_never_panic(
        m in kv_request(), r in edge_reply(),
        at in any::<prop::sample::Index>(), value in any::<u8>(), how in 0..3u8,
    ) {
        for mut bytes in [encode(m), encode(r)] {
            let i = at.index(bytes.len() + 1);
            match how {
                0 if i < bytes.len() => bytes[i] = value,
                1 => bytes.insert(i, value),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
            canonical::<kv::Request>(&bytes)?;
            canonical::<edge_cases::Reply>(&bytes)?;
        }
    }

    #[test]
    fn a_tag_of_no_message_is_invalid(tag in 7..=255u8) {
        prop_assert_eq!(decode::<kv::Request>(&[tag], vec![]), Err(DecodeError::Invalid));
        prop_assert_eq!(decode::<kv::Reply>(&[tag], vec![]), Err(DecodeError::Invalid));
    }

    #[test]
    fn strings_and_bytes_over_their_limit_are_rejected(extra in 1..100usize) {
        let m = kv::Request::Get { key: "k".repeat(256 + extra) };
        prop_assert!(!m.within_limits());
        prop_assert_eq!(decode::<kv::Request>(&encode(m), vec![]), Err(DecodeError::Invalid));
        let m = edge_cases::Reply::Oops { a: 0, b: 0, c: 0, d: 0, e: 0, f: 0, g: false, s: String::new(), t: vec![0; 8 + extra] };
        prop_assert!(!m.within_limits());
        prop_assert_eq!(decode::<edge_cases::Reply>(&encode(m), vec![]), Err(DecodeError::Invalid));
    }

    /// Handles travel beside the bytes, in field order.
    #[test]
    fn handles_and_endpoints_round_trip(
        memory in 1..1000u32, pages in any::<u16>(), file in any::<u64>(),
        ends in [1..1000u32, 1..1000u32, 1..1000u32], side in 0..=1u8,
    ) {
        let bytes = encode(files::Request::ShareBuffer { memory: OwnedHandle::from_raw(Handle(memory)), pages });
        match decode::<files::Request>(&bytes, raw_handles(&[memory])) {
            Ok(files::Request::ShareBuffer { memory: m, pages: p }) => {
                prop_assert_eq!(m.raw(), Handle(memory));
                prop_assert_eq!(p, pages);
            }
            other => prop_assert!(false, "decoded {:?}", other),
        }
        prop_assert_eq!(decode::<files::Request>(&bytes, vec![]).err(), Some(DecodeError::MissingHandle));

        let [a, b, c] = ends;
        let channel = EndpointHandles::from_raw(Handle(a), Handle(b), Handle(c), side);
        let bytes = encode(files::Reply::Opened { file, channel });
        match decode::<files::Reply>(&bytes, raw_handles(&[a, b, c])) {
            Ok(files::Reply::Opened { file: f, channel: e }) => {
                prop_assert_eq!(f, file);
                prop_assert_eq!((e.memory.raw(), e.link.raw(), e.event.raw(), e.side), (Handle(a), Handle(b), Handle(c), side));
            }
            Ok(_) => prop_assert!(false, "decoded another reply"),
            Err(e) => prop_assert!(false, "{:?}", e),
        }
        prop_assert_eq!(decode::<files::Reply>(&bytes, raw_handles(&[a, b])).err(), Some(DecodeError::MissingHandle));
        let mut bad_side = bytes.clone();
        *bad_side.last_mut().unwrap() = 2;
        prop_assert_eq!(decode::<files::Reply>(&bad_side, raw_handles(&[a, b, c])).err(), Some(DecodeError::Invalid));
    }

    #[test]
    fn file_service_scalars_round_trip(
        size in any::<u64>(), modified in any::<i64>(), utc_offset_minutes in any::<i32>(),
        attributes in any::<u8>(), kind in any::<u16>(), errno in any::<i32>(), detail in string(65536),
    ) {
        let bytes = encode(files::Reply::Info { size, modified, utc_offset_minutes, attributes, kind });
        match decode::<files::Reply>(&bytes, vec![]) {
            Ok(files::Reply::Info { size: s, modified: m, utc_offset_minutes: u, attributes: a, kind: k }) => {
                prop_assert_eq!((s, m, u, a, k), (size, modified, utc_offset_minutes, attributes, kind));
            }
            _ => prop_assert!(false, "Info did not round trip"),
        }
        let bytes = encode(files::Reply::Error { errno, detail: detail.clone() });
        match decode::<files::Reply>(&bytes, vec![]) {
            Ok(files::Reply::Error { errno: e, detail: d }) => prop_assert_eq!((e, d), (errno, detail)),
            _ => prop_assert!(false, "Error did not round trip"),
        }
    }
}

#[test]
fn the_wire_format_is_as_documented() {
    // Tag (1-based, declaration order), then the fields in order: integers
    // little-endian (u16 in 2 bytes, i32 as its u32 bits), bool as 0/1,
    // strings and bytes as a u32 length and the bytes.
    assert_eq!(encode(kv::Request::Get { key: "ab".into() }), [1, 2, 0, 0, 0, b'a', b'b']);
    assert_eq!(encode(kv::Request::Ping), [6]);
    assert_eq!(encode(kv::Reply::Value { found: true, value: vec![9] }), [1, 1, 1, 0, 0, 0, 9]);
    assert_eq!(
        encode(edge_cases::Request::get_thing {
            r#type: 1,
            r#match: 0x0302,
            w: 4,
            handles: 5,
            out: -1,
            handler: -2,
            request: true,
            r: "r".into(),
            Upper: vec![7],
        }),
        [
            1, 1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 1, 1, 0, 0, 0, b'r', 1, 0, 0, 0, 7
        ]
    );
}

#[test]
fn malformed_fields_are_invalid() {
    // A bool that is neither 0 nor 1.
    assert_eq!(decode::<kv::Reply>(&[1, 2, 0, 0, 0, 0], vec![]), Err(DecodeError::Invalid));
    // A string that is not UTF-8.
    assert_eq!(decode::<kv::Request>(&[1, 1, 0, 0, 0, 0xff], vec![]), Err(DecodeError::Invalid));
    // A length beyond the field's maximum, with or without the bytes.
    assert_eq!(decode::<kv::Request>(&[1, 1, 1, 0, 0], vec![]), Err(DecodeError::Invalid));
    assert_eq!(decode::<edge_cases::Request>(&[2], vec![]), Err(DecodeError::Truncated));
    // Tag 0 and the empty message.
    assert_eq!(decode::<kv::Request>(&[0], vec![]), Err(DecodeError::Invalid));
    assert_eq!(decode::<kv::Request>(&[], vec![]), Err(DecodeError::Truncated));
    // A contract without replies decodes none.
    assert_eq!(decode::<log_sink::Reply>(&[1], vec![]).err(), Some(DecodeError::Invalid));
}
