//! The wire encoding of generated messages: every message decodes to what
//! was encoded, the encoding is canonical (bytes that decode re-encode to
//! themselves), and malformed bytes are rejected with an error, never a
//! panic.

use companion_gen_roundtrip::{edge_cases, files, kv, lists, log_sink};
use libos::abi::Handle;
use libos::channel::{EndpointHandles, HandleList, HandleQueue, Message};
use libos::handle::OwnedHandle;
use libos::protocol::Protocol;
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
/// trips, within the contract's largest message size `max`, and every
/// strict prefix and any extra byte are rejected.
fn round_trip<M: Message + Clone + PartialEq + std::fmt::Debug>(m: M, max: usize) -> Result<(), TestCaseError> {
    let bytes = encode(m.clone());
    prop_assert!(bytes.len() <= max, "{} bytes encoded, the contract says at most {}", bytes.len(), max);
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
            |(key, expected_present, expected, new_present, new)| Cas {
                key,
                expected_present,
                expected,
                new_present,
                new
            }
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
        (
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u64>(),
            any::<i32>(),
            any::<i64>(),
            any::<bool>(),
            string(3),
            bytes(2)
        )
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
        (
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            any::<u64>(),
            any::<i32>(),
            any::<i64>(),
            any::<bool>(),
            string(40),
            bytes(8)
        )
            .prop_map(|(a, b, c, d, e, f, g, s, t)| Oops { a, b, c, d, e, f, g, s, t }),
    ]
}

fn sink_request() -> impl Strategy<Value = log_sink::Request> {
    use log_sink::Request::*;
    prop_oneof![(any::<u8>(), string(200)).prop_map(|(level, text)| Line { level, text }), Just(Flush)]
}

fn lists_request() -> impl Strategy<Value = lists::Request> {
    use lists::Request::*;
    prop_oneof![
        (vec(string(64), 0..=16), vec(bytes(256), 0..=16)).prop_map(|(keys, values)| PutMany { keys, values }),
        vec(string(64), 0..=16).prop_map(|keys| GetMany { keys }),
        (
            vec(any::<u8>(), 0..=4),
            vec(any::<u16>(), 0..=4),
            vec(any::<u32>(), 0..=4),
            vec(any::<u64>(), 0..=4),
            vec(any::<i32>(), 0..=4),
            vec(any::<i64>(), 0..=4),
            vec(any::<bool>(), 0..=4)
        )
            .prop_map(|(a, b, c, d, e, f, g)| Scalars { a, b, c, d, e, f, g }),
        // The largest count (65536) is tested on its own: checking every
        // prefix of such a message would be slow.
        (vec(string(40), 0..=2), vec(bytes(64), 0..=1), vec(any::<u8>(), 0..=64), vec(string(3), 0..=2))
            .prop_map(|(item, w, handles, r)| Corners { item, w, handles, r }),
    ]
}

fn lists_reply() -> impl Strategy<Value = lists::Reply> {
    use lists::Reply::*;
    prop_oneof![
        Just(Done),
        (vec(any::<bool>(), 0..=16), vec(bytes(256), 0..=16)).prop_map(|(found, values)| Values { found, values }),
        (any::<u32>(), vec(string(32), 0..=4), vec(any::<i64>(), 0..=3), vec(any::<u8>(), 0..=1))
            .prop_map(|(code, hints, offsets, none)| Failed { code, hints, offsets, none }),
    ]
}

/// Where a list's `u32` count sits in a message: the bytes before it (the
/// tag and the fields before the list, empty lists encoding as a zero
/// count) and the list's maximum count.
const LIST_COUNTS: &[(&str, &[u8], u32)] = &[
    ("lists::Request::PutMany.keys", &[1], 16),
    ("lists::Request::PutMany.values", &[1, 0, 0, 0, 0], 16),
    ("lists::Request::GetMany.keys", &[2], 16),
    ("lists::Request::Scalars.a", &[3], 4),
    ("lists::Request::Scalars.g", &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4),
    ("lists::Request::Corners.item", &[4], 2),
    ("lists::Request::Corners.handles", &[4, 0, 0, 0, 0, 0, 0, 0, 0], 65536),
    ("lists::Reply::Values.found", &[2], 16),
    ("lists::Reply::Failed.hints", &[3, 1, 0, 0, 0], 4),
    ("lists::Reply::Failed.none", &[3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1),
    ("files::Request::ShareBuffers.memories", &[7], 8),
    ("files::Request::OpenAll.paths", &[8], 16),
    ("files::Reply::OpenedAll.channels", &[8, 0, 0, 0, 0], 16),
];

/// Decode `bytes` as the message type `name` starts with; handles are
/// offered in case the list wants them. Only the error matters.
fn decode_list_message(name: &str, bytes: &[u8]) -> Result<(), DecodeError> {
    let handles = || raw_handles(&[1, 2, 3, 4, 5, 6]);
    match name.split("::").take(2).collect::<Vec<_>>()[..] {
        ["lists", "Request"] => decode::<lists::Request>(bytes, handles()).map(drop),
        ["lists", "Reply"] => decode::<lists::Reply>(bytes, handles()).map(drop),
        ["files", "Request"] => decode::<files::Request>(bytes, handles()).map(drop),
        ["files", "Reply"] => decode::<files::Reply>(bytes, handles()).map(drop),
        _ => unreachable!("{name}"),
    }
}

proptest! {
    // Integration tests have no lib.rs for proptest to store failures beside.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn lists_requests_round_trip(m in lists_request()) {
        prop_assert!(m.within_limits());
        round_trip(m, <lists::Lists as Protocol>::MAX_REQUEST_BYTES)?;
    }

    #[test]
    fn lists_replies_round_trip(m in lists_reply()) {
        prop_assert!(m.within_limits());
        round_trip(m, <lists::Lists as Protocol>::MAX_REPLY_BYTES)?;
    }

    /// A count over the list's maximum is invalid, whatever follows it (no
    /// element is read, nothing is allocated for it).
    #[test]
    fn list_counts_over_their_maximum_are_invalid(
        which in 0..LIST_COUNTS.len(), over in any::<u32>(), tail in vec(any::<u8>(), 0..64),
    ) {
        let (name, before, max) = LIST_COUNTS[which];
        let count = max + 1 + over % (u32::MAX - max);
        for count in [count, max + 1, u32::MAX] {
            let mut bytes = before.to_vec();
            bytes.extend_from_slice(&count.to_le_bytes());
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(decode_list_message(name, &bytes), Err(DecodeError::Invalid), "{} with count {}", name, count);
        }
    }

    /// A count within the maximum but more elements than the bytes (or
    /// handles) hold: an error, never a panic.
    #[test]
    fn list_counts_beyond_the_bytes_are_errors(which in 0..LIST_COUNTS.len(), count in 1..=16u32, tail in vec(any::<u8>(), 0..8)) {
        let (name, before, max) = LIST_COUNTS[which];
        let count = count.min(max);
        let mut bytes = before.to_vec();
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let _ = decode_list_message(name, &bytes);
        bytes.truncate(before.len() + 4);
        let result = decode_list_message(name, &bytes);
        prop_assert!(
            matches!(result, Err(DecodeError::Truncated | DecodeError::MissingHandle)),
            "{} with count {} and no elements: {:?}", name, count, result
        );
    }

    /// Valid list messages with bytes overwritten, inserted or removed.
    #[test]
    fn mutated_list_messages_never_panic(
        m in lists_request(), r in lists_reply(),
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
            canonical::<lists::Request>(&bytes)?;
            canonical::<lists::Reply>(&bytes)?;
        }
    }

    #[test]
    fn lists_over_their_limits_are_rejected(extra in 1..20usize) {
        // Too many elements.
        let m = lists::Request::GetMany { keys: vec![String::new(); 16 + extra] };
        prop_assert!(!m.within_limits());
        prop_assert_eq!(decode::<lists::Request>(&encode(m), vec![]), Err(DecodeError::Invalid));
        // An element over its own maximum length.
        let m = lists::Request::GetMany { keys: vec!["k".into(), "k".repeat(64 + extra)] };
        prop_assert!(!m.within_limits());
        prop_assert_eq!(decode::<lists::Request>(&encode(m), vec![]), Err(DecodeError::Invalid));
        let m = lists::Reply::Values { found: vec![], values: vec![vec![0; 256 + extra]] };
        prop_assert!(!m.within_limits());
        prop_assert_eq!(decode::<lists::Reply>(&encode(m), vec![]), Err(DecodeError::Invalid));
        let m = lists::Request::Scalars { a: vec![], b: vec![], c: vec![], d: vec![], e: vec![], f: vec![], g: vec![true; 4 + extra] };
        prop_assert!(!m.within_limits());
        prop_assert_eq!(decode::<lists::Request>(&encode(m), vec![]), Err(DecodeError::Invalid));
        let m = files::Request::ShareBuffers { memories: raw_handles(&vec![1; 8 + extra]), pages: vec![] };
        prop_assert!(!m.within_limits());
    }

    /// Handles in a list travel beside the bytes, in element order.
    #[test]
    fn lists_of_handles_and_endpoints_round_trip(
        memories in vec(1..1000u32, 0..=8), pages in vec(any::<u16>(), 0..=8),
        files in vec(any::<u64>(), 0..=16), ends in vec(([1..1000u32, 1..1000u32, 1..1000u32], 0..=1u8), 0..=16),
    ) {
        let m = files::Request::ShareBuffers { memories: raw_handles(&memories), pages: pages.clone() };
        prop_assert!(m.within_limits());
        let bytes = encode(m);
        match decode::<files::Request>(&bytes, raw_handles(&memories)) {
            Ok(files::Request::ShareBuffers { memories: m, pages: p }) => {
                prop_assert_eq!(m.iter().map(|h| h.raw().0).collect::<Vec<_>>(), memories.clone());
                prop_assert_eq!(p, pages);
            }
            other => prop_assert!(false, "decoded {:?}", other),
        }
        if !memories.is_empty() {
            let fewer = raw_handles(&memories[1..]);
            prop_assert_eq!(decode::<files::Request>(&bytes, fewer).err(), Some(DecodeError::MissingHandle));
        }

        let raw: Vec<u32> = ends.iter().flat_map(|(h, _)| h.iter().copied()).collect();
        let channels = ends.iter().map(|&([a, b, c], side)| EndpointHandles::from_raw(Handle(a), Handle(b), Handle(c), side)).collect();
        let m = files::Reply::OpenedAll { files: files.clone(), channels };
        prop_assert!(m.within_limits());
        let bytes = encode(m);
        match decode::<files::Reply>(&bytes, raw_handles(&raw)) {
            Ok(files::Reply::OpenedAll { files: f, channels: c }) => {
                prop_assert_eq!(f, files);
                let got: Vec<([u32; 3], u8)> = c.iter().map(|e| ([e.memory.raw().0, e.link.raw().0, e.event.raw().0], e.side)).collect();
                prop_assert_eq!(got, ends.clone());
            }
            Ok(_) => prop_assert!(false, "decoded another reply"),
            Err(e) => prop_assert!(false, "{:?}", e),
        }
        if !ends.is_empty() {
            prop_assert_eq!(decode::<files::Reply>(&bytes, raw_handles(&raw[1..])).err(), Some(DecodeError::MissingHandle));
            // An endpoint side other than 0 or 1, in the list.
            let mut bad_side = bytes.clone();
            *bad_side.last_mut().unwrap() = 2;
            prop_assert_eq!(decode::<files::Reply>(&bad_side, raw_handles(&raw)).err(), Some(DecodeError::Invalid));
        }
    }

    #[test]
    fn kv_requests_round_trip(m in kv_request()) {
        prop_assert!(m.within_limits());
        round_trip(m, <kv::Kv as Protocol>::MAX_REQUEST_BYTES)?;
    }

    #[test]
    fn kv_replies_round_trip(m in kv_reply()) {
        prop_assert!(m.within_limits());
        round_trip(m, <kv::Kv as Protocol>::MAX_REPLY_BYTES)?;
    }

    #[test]
    fn edge_case_requests_round_trip(m in edge_request()) {
        prop_assert!(m.within_limits());
        round_trip(m, <edge_cases::EdgeCases as Protocol>::MAX_REQUEST_BYTES)?;
    }

    #[test]
    fn edge_case_replies_round_trip(m in edge_reply()) {
        prop_assert!(m.within_limits());
        round_trip(m, <edge_cases::EdgeCases as Protocol>::MAX_REPLY_BYTES)?;
    }

    #[test]
    fn log_sink_requests_round_trip(m in sink_request()) {
        round_trip(m, <log_sink::LogSink as Protocol>::MAX_REQUEST_BYTES)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in vec(any::<u8>(), 0..64)) {
        canonical::<kv::Request>(&bytes)?;
        canonical::<kv::Reply>(&bytes)?;
        canonical::<edge_cases::Request>(&bytes)?;
        canonical::<edge_cases::Reply>(&bytes)?;
        canonical::<log_sink::Request>(&bytes)?;
        canonical::<log_sink::Reply>(&bytes)?;
        canonical::<lists::Request>(&bytes)?;
        canonical::<lists::Reply>(&bytes)?;
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
            1, 1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 1, 1, 0, 0, 0, b'r', 1, 0, 0, 0, 7
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

#[test]
fn the_list_wire_format_is_as_documented() {
    // A u32 count, then each element as a field of its type.
    assert_eq!(
        encode(lists::Request::GetMany { keys: vec!["ab".into(), String::new()] }),
        [2, 2, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]
    );
    assert_eq!(
        encode(lists::Request::Scalars {
            a: vec![7],
            b: vec![0x0302],
            c: vec![],
            d: vec![],
            e: vec![-1],
            f: vec![],
            g: vec![true, false],
        }),
        [
            3, 1, 0, 0, 0, 7, 1, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
            2, 0, 0, 0, 1, 0
        ]
    );
    // Handles add nothing to the bytes; endpoints add their side.
    assert_eq!(
        encode(files::Request::ShareBuffers { memories: raw_handles(&[5, 6]), pages: vec![] }),
        [7, 2, 0, 0, 0, 0, 0, 0, 0]
    );
    let channels = vec![EndpointHandles::from_raw(Handle(1), Handle(2), Handle(3), 1)];
    assert_eq!(encode(files::Reply::OpenedAll { files: vec![], channels }), [8, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
}

#[test]
fn the_largest_list_count_round_trips_and_one_more_is_invalid() {
    let m = lists::Request::Corners { item: vec![], w: vec![], handles: vec![0xab; 65536], r: vec![] };
    assert!(m.within_limits());
    let bytes = encode(m.clone());
    assert_eq!(decode::<lists::Request>(&bytes, vec![]), Ok(m));
    let m = lists::Request::Corners { item: vec![], w: vec![], handles: vec![0xab; 65537], r: vec![] };
    assert!(!m.within_limits());
    assert_eq!(decode::<lists::Request>(&encode(m), vec![]), Err(DecodeError::Invalid));
    // Default maximum lengths of list elements: 65536 bytes.
    let m =
        lists::Request::Corners { item: vec!["x".repeat(65536)], w: vec![vec![1; 65536]], handles: vec![], r: vec![] };
    assert!(m.within_limits());
    assert_eq!(decode::<lists::Request>(&encode(m.clone()), vec![]), Ok(m));
    let m = lists::Request::Corners { item: vec![], w: vec![vec![1; 65537]], handles: vec![], r: vec![] };
    assert!(!m.within_limits());
    assert_eq!(decode::<lists::Request>(&encode(m), vec![]), Err(DecodeError::Invalid));
}

#[test]
fn malformed_list_elements_are_invalid() {
    // A bool element that is neither 0 nor 1.
    assert_eq!(decode::<lists::Reply>(&[2, 1, 0, 0, 0, 2, 0, 0, 0, 0], vec![]), Err(DecodeError::Invalid));
    // A string element that is not UTF-8.
    assert_eq!(decode::<lists::Request>(&[2, 1, 0, 0, 0, 1, 0, 0, 0, 0xff], vec![]), Err(DecodeError::Invalid));
    // The largest count with no elements after it: truncated at once.
    assert_eq!(decode::<lists::Request>(&[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], vec![]), Err(DecodeError::Truncated));
    // A count of u32::MAX is rejected before any element is read.
    assert_eq!(decode::<lists::Request>(&[2, 0xff, 0xff, 0xff, 0xff], vec![]), Err(DecodeError::Invalid));
    // A list of handles wanting more handles than arrived.
    assert_eq!(
        decode::<files::Request>(&[7, 3, 0, 0, 0, 0, 0, 0, 0], raw_handles(&[1, 2])).err(),
        Some(DecodeError::MissingHandle)
    );
}
