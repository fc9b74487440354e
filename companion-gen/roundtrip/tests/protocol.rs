//! The generated protocols, handler dispatch and resiliency annotations
//! behave as their contracts say.

use companion_gen_roundtrip::{edge_cases, files, kv, lists, log_sink};
use libos::protocol::{Checker, Protocol, ReplySink};
use proptest::prelude::*;
use resiliency_lib::{Distillation, Policy, Resilient};

#[test]
fn the_test_contracts_are_the_golden_ones() {
    assert_eq!(include_str!("../contracts/kv.contract"), include_str!("../../tests/golden/kv.contract"));
    assert_eq!(include_str!("../contracts/files.contract"), include_str!("../../tests/golden/files.contract"));
    assert_eq!(include_str!("../contracts/lists.contract"), include_str!("../../tests/golden/lists.contract"));
}

#[test]
fn kv_protocol_tables() {
    use kv::{Reply, Request, State};
    assert_eq!(kv::Kv::NAME, "kv");
    assert_eq!(kv::Kv::INITIAL, State::Ready);
    assert!(kv::Kv::client_turn(State::Ready));
    for s in [State::Ready_Get, State::Ready_Delete, State::Ready_Cas, State::Putting, State::Listing] {
        assert!(!kv::Kv::client_turn(s), "{s:?}");
    }
    let get = Request::Get { key: "k".into() };
    assert_eq!(kv::Kv::after_request(State::Ready, &get), Some(State::Ready_Get));
    assert_eq!(kv::Kv::after_request(State::Listing, &get), None);
    assert_eq!(kv::Kv::after_request(State::Ready, &Request::Ping), Some(State::Ready));
    assert_eq!(kv::Kv::after_reply(State::Listing, &Reply::Key { key: "k".into() }), Some(State::Listing));
    assert_eq!(kv::Kv::after_reply(State::Listing, &Reply::EndList { count: 1 }), Some(State::Ready));
    assert_eq!(kv::Kv::after_reply(State::Putting, &Reply::EndList { count: 1 }), None);
    assert!(kv::Kv::is_error_reply(&Reply::Failed { code: 1, message: String::new() }));
    assert!(!kv::Kv::is_error_reply(&Reply::Done));
    assert_eq!(kv::Kv::request_name(&get), "Get");
    assert_eq!(kv::Kv::reply_name(&Reply::EndList { count: 0 }), "EndList");
}

#[test]
fn a_kv_session_through_the_checker() {
    use kv::{Reply, Request, State};
    let mut c = Checker::<kv::Kv>::new();
    c.on_request(&Request::Put { key: "a".into(), value: vec![1] }).unwrap();
    assert!(!c.is_idle());
    c.on_reply(&Reply::Done).unwrap();
    c.on_request(&Request::List { prefix: String::new() }).unwrap();
    c.on_reply(&Reply::Key { key: "a".into() }).unwrap();
    c.on_reply(&Reply::Key { key: "b".into() }).unwrap();
    c.on_reply(&Reply::EndList { count: 2 }).unwrap();
    c.on_request(&Request::Ping).unwrap();
    assert!(c.is_idle(), "Ping owes no reply");
    // The error reply, mid-stream, returns to where the request was sent.
    c.on_request(&Request::List { prefix: String::new() }).unwrap();
    c.on_reply(&Reply::Key { key: "a".into() }).unwrap();
    c.on_reply(&Reply::Failed { code: 5, message: "disk".into() }).unwrap();
    assert_eq!(c.state(), State::Ready);
    // Violations, by each side.
    let v = c.on_reply(&Reply::Done).unwrap_err();
    assert!(v.by_service);
    c.on_request(&Request::Get { key: "a".into() }).unwrap();
    let v = c.on_request(&Request::Ping).unwrap_err();
    assert!(!v.by_service);
    assert_eq!(v.message, "kv: request Ping not allowed in state Ready_Get");
    let v = c.on_reply(&Reply::Done).unwrap_err();
    assert_eq!(v.message, "kv: reply Done not allowed in state Ready_Get");
}

#[test]
fn sugar_in_a_service_turn_state() {
    use edge_cases::{EdgeCases, Reply, Request, State};
    let mut c = Checker::<EdgeCases>::new();
    c.on_request(&Request::Stream { from: 0 }).unwrap();
    c.on_reply(&Reply::Item { i: 1 }).unwrap();
    c.on_reply(&Reply::Ask { question: "more?".into() }).unwrap();
    assert_eq!(c.state(), State::Streaming_Ask);
    assert!(c.is_idle());
    c.on_request(&Request::Answer { yes: true }).unwrap();
    assert_eq!(c.state(), State::Streaming);
    c.on_reply(&Reply::End).unwrap();
    assert_eq!(c.state(), State::Idle);
    c.on_request(&Request::Quiet).unwrap();
    assert_eq!(c.state(), State::Idle);
}

#[test]
fn a_contract_without_replies() {
    use log_sink::{LogSink, Request, State};
    let mut c = Checker::<LogSink>::new();
    for _ in 0..3 {
        c.on_request(&Request::Line { level: 1, text: "x".into() }).unwrap();
        c.on_request(&Request::Flush).unwrap();
    }
    assert_eq!(c.state(), State::Open);
    assert!(LogSink::client_turn(State::Open));
}

#[test]
fn explicit_turns_and_a_terminal_state() {
    use files::{Files, Reply, Request, State};
    let mut c = Checker::<Files>::new();
    c.on_request(&Request::Close).unwrap();
    assert_eq!(c.state(), State::Closing);
    c.on_reply(&Reply::Closed).unwrap();
    assert_eq!(c.state(), State::Done);
    assert!(c.is_idle());
    assert!(c.on_request(&Request::Stat { path: "/".into() }).is_err(), "nothing may follow Close");
}

#[test]
fn requests_with_lists_in_the_files_protocol() {
    use files::{Files, Reply, Request, State};
    let mut c = Checker::<Files>::new();
    c.on_request(&Request::OpenAll { paths: vec!["/a".into(), "/b".into()], write: false }).unwrap();
    assert_eq!(c.state(), State::Idle_OpenAll);
    c.on_reply(&Reply::OpenedAll { files: vec![], channels: vec![] }).unwrap();
    c.on_request(&Request::ShareBuffers { memories: vec![], pages: vec![1] }).unwrap();
    assert_eq!(c.state(), State::Idle_ShareBuffers);
    assert!(c.on_reply(&Reply::OpenedAll { files: vec![], channels: vec![] }).is_err());
    c.on_reply(&Reply::Shared).unwrap();
    assert!(Files::checkpoint_after(&Request::ShareBuffers { memories: vec![], pages: vec![] }));
    assert!(!Files::idempotent(&Request::OpenAll { paths: vec![], write: true }));
}

/// Records the lists it is handed.
#[derive(Default)]
struct ListRecorder(Vec<String>);

impl lists::ListsHandler for ListRecorder {
    fn put_many(&mut self, keys: Vec<String>, values: Vec<Vec<u8>>, out: &mut dyn ReplySink<lists::Reply>) {
        self.0.push(format!("put {keys:?} {values:?}"));
        out.reply(lists::Reply::Done);
    }

    fn get_many(&mut self, keys: Vec<String>, out: &mut dyn ReplySink<lists::Reply>) {
        self.0.push(format!("get {keys:?}"));
        out.reply(lists::Reply::Values { found: vec![false; keys.len()], values: vec![] });
    }

    fn scalars(
        &mut self,
        a: Vec<u8>,
        b: Vec<u16>,
        c: Vec<u32>,
        d: Vec<u64>,
        e: Vec<i32>,
        f: Vec<i64>,
        g: Vec<bool>,
        out: &mut dyn ReplySink<lists::Reply>,
    ) {
        self.0.push(format!("scalars {a:?} {b:?} {c:?} {d:?} {e:?} {f:?} {g:?}"));
        out.reply(lists::Reply::Done);
    }

    fn corners(
        &mut self,
        item: Vec<String>,
        w: Vec<Vec<u8>>,
        handles: Vec<u8>,
        r: Vec<String>,
        out: &mut dyn ReplySink<lists::Reply>,
    ) {
        self.0.push(format!("corners {item:?} {w:?} {} {r:?}", handles.len()));
        out.reply(lists::Reply::Done);
    }
}

#[test]
fn lists_dispatch_and_resiliency() {
    use lists::{Lists, Reply, Request};
    let mut rec = ListRecorder::default();
    let mut out = Replies::default();
    let mut c = Checker::<Lists>::new();
    let requests = [
        Request::PutMany { keys: vec!["a".into(), "b".into()], values: vec![vec![1], vec![]] },
        Request::GetMany { keys: vec!["a".into(), "z".into()] },
        Request::Scalars { a: vec![1], b: vec![2], c: vec![3], d: vec![4], e: vec![-5], f: vec![-6], g: vec![true] },
        Request::Corners { item: vec![], w: vec![vec![9]], handles: vec![0; 3], r: vec!["r".into()] },
    ];
    for request in requests {
        c.on_request(&request).unwrap();
        lists::dispatch(&mut rec, request, &mut out);
        c.on_reply(out.0.last().unwrap()).unwrap();
        assert!(c.is_idle());
    }
    assert_eq!(
        rec.0,
        [
            "put [\"a\", \"b\"] [[1], []]",
            "get [\"a\", \"z\"]",
            "scalars [1] [2] [3] [4] [-5] [-6] [true]",
            "corners [] [[9]] 3 [\"r\"]",
        ]
    );
    assert_eq!(out.0[1], Reply::Values { found: vec![false, false], values: vec![] });

    assert_eq!(Lists::POLICY, Policy { every_requests: None, every_ms: None, distillation: Distillation::Logical });
    assert!(Lists::idempotent(&Request::GetMany { keys: vec![] }));
    assert!(!Lists::idempotent(&Request::PutMany { keys: vec![], values: vec![] }));
    assert!(Lists::checkpoint_after(&Request::PutMany { keys: vec![], values: vec![] }));
    let lost = Lists::unrecoverable();
    assert_eq!(
        lost,
        Reply::Failed {
            code: 503,
            hints: vec!["the service crashed".into(), "retry".into()],
            offsets: vec![i64::MIN, 0, i64::MAX],
            none: vec![],
        }
    );
    assert!(lost.within_limits());
    c.on_request(&Request::GetMany { keys: vec![] }).unwrap();
    c.on_reply(&lost).unwrap();
    assert!(c.is_idle());
}

/// Replies collected by a test sink.
struct Replies<R>(Vec<R>);

impl<R> Default for Replies<R> {
    fn default() -> Self {
        Replies(Vec::new())
    }
}

impl<R> ReplySink<R> for Replies<R> {
    fn reply(&mut self, reply: R) {
        self.0.push(reply);
    }
}

/// A kv store for `dispatch`.
#[derive(Default)]
struct Store {
    map: std::collections::BTreeMap<String, Vec<u8>>,
    pings: u32,
}

impl kv::KvHandler for Store {
    fn get(&mut self, key: String, out: &mut dyn ReplySink<kv::Reply>) {
        let value = self.map.get(&key).cloned();
        out.reply(kv::Reply::Value { found: value.is_some(), value: value.unwrap_or_default() });
    }
    fn put(&mut self, key: String, value: Vec<u8>, out: &mut dyn ReplySink<kv::Reply>) {
        self.map.insert(key, value);
        out.reply(kv::Reply::Done);
    }
    fn delete(&mut self, key: String, out: &mut dyn ReplySink<kv::Reply>) {
        self.map.remove(&key);
        out.reply(kv::Reply::Done);
    }
    fn cas(
        &mut self,
        key: String,
        expected_present: bool,
        expected: Vec<u8>,
        new_present: bool,
        new: Vec<u8>,
        out: &mut dyn ReplySink<kv::Reply>,
    ) {
        let current = self.map.get(&key).cloned();
        let ok = current == expected_present.then_some(expected);
        if ok {
            if new_present {
                self.map.insert(key.clone(), new);
            } else {
                self.map.remove(&key);
            }
        }
        let current = self.map.get(&key).cloned();
        out.reply(kv::Reply::Swapped { ok, current_present: current.is_some(), current: current.unwrap_or_default() });
    }
    fn list(&mut self, prefix: String, out: &mut dyn ReplySink<kv::Reply>) {
        let keys: Vec<String> = self.map.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
        for key in &keys {
            out.reply(kv::Reply::Key { key: key.clone() });
        }
        out.reply(kv::Reply::EndList { count: keys.len() as u32 });
    }
    fn ping(&mut self, _out: &mut dyn ReplySink<kv::Reply>) {
        self.pings += 1;
    }
}

#[test]
fn dispatch_reaches_the_handler_and_its_replies_satisfy_the_protocol() {
    use kv::{Reply, Request};
    let mut store = Store::default();
    // The service side checks its own replies with the same checker.
    let mut checker = Checker::<kv::Kv>::new();
    let mut run = |request: Request| -> Vec<Reply> {
        checker.on_request(&request).unwrap();
        let mut out = Replies::default();
        kv::dispatch(&mut store, request, &mut out);
        for r in &out.0 {
            checker.on_reply(r).unwrap();
        }
        assert!(checker.is_idle());
        out.0
    };
    assert_eq!(run(Request::Put { key: "ab".into(), value: vec![1] }), [Reply::Done]);
    assert_eq!(run(Request::Put { key: "ac".into(), value: vec![2] }), [Reply::Done]);
    assert_eq!(run(Request::Get { key: "ab".into() }), [Reply::Value { found: true, value: vec![1] }]);
    assert_eq!(
        run(Request::Cas {
            key: "ab".into(),
            expected_present: true,
            expected: vec![1],
            new_present: true,
            new: vec![3]
        }),
        [Reply::Swapped { ok: true, current_present: true, current: vec![3] }]
    );
    assert_eq!(
        run(Request::List { prefix: "a".into() }),
        [Reply::Key { key: "ab".into() }, Reply::Key { key: "ac".into() }, Reply::EndList { count: 2 }]
    );
    assert_eq!(run(Request::Ping), []);
    assert_eq!(run(Request::Delete { key: "ab".into() }), [Reply::Done]);
    assert_eq!(run(Request::Get { key: "ab".into() }), [Reply::Value { found: false, value: vec![] }]);
    assert_eq!(store.pings, 1);
}

/// A handler for the edge-case contract: records what it was given.
#[derive(Default)]
struct Recorder(Vec<String>);

impl edge_cases::EdgeCasesHandler for Recorder {
    #[allow(clippy::too_many_arguments, non_snake_case)]
    fn get_thing(
        &mut self,
        r#type: u8,
        r#match: u16,
        w: u32,
        handles: u64,
        out_: i32,
        handler: i64,
        request: bool,
        r: String,
        Upper: Vec<u8>,
        out: &mut dyn ReplySink<edge_cases::Reply>,
    ) {
        self.0.push(format!("{type} {match} {w} {handles} {out_} {handler} {request} {r} {Upper:?}"));
        out.reply(edge_cases::Reply::Thing { r#loop: 1 });
    }
    fn stream(&mut self, from: u32, out: &mut dyn ReplySink<edge_cases::Reply>) {
        self.0.push(format!("stream {from}"));
        out.reply(edge_cases::Reply::End);
    }
    fn answer(&mut self, yes: bool, _out: &mut dyn ReplySink<edge_cases::Reply>) {
        self.0.push(format!("answer {yes}"));
    }
    fn quiet(&mut self, _out: &mut dyn ReplySink<edge_cases::Reply>) {
        self.0.push("quiet".into());
    }
}

#[test]
fn dispatch_with_fields_named_like_the_generated_variables() {
    let mut rec = Recorder::default();
    let mut out = Replies::default();
    let request = edge_cases::Request::get_thing {
        r#type: 1,
        r#match: 2,
        w: 3,
        handles: 4,
        out: -5,
        handler: -6,
        request: true,
        r: "r".into(),
        Upper: vec![7],
    };
    edge_cases::dispatch(&mut rec, request, &mut out);
    edge_cases::dispatch(&mut rec, edge_cases::Request::Stream { from: 9 }, &mut out);
    edge_cases::dispatch(&mut rec, edge_cases::Request::Quiet, &mut out);
    assert_eq!(rec.0, ["1 2 3 4 -5 -6 true r [7]", "stream 9", "quiet"]);
    assert_eq!(out.0, [edge_cases::Reply::Thing { r#loop: 1 }, edge_cases::Reply::End]);
}

#[test]
fn resiliency_annotations() {
    use kv::{Kv, Reply, Request};
    assert_eq!(
        Kv::POLICY,
        Policy { every_requests: Some(100), every_ms: Some(500), distillation: Distillation::Logical }
    );
    assert!(Kv::idempotent(&Request::Get { key: String::new() }));
    assert!(Kv::idempotent(&Request::Ping));
    assert!(!Kv::idempotent(&Request::Put { key: String::new(), value: vec![] }));
    assert!(Kv::durable(&Request::Put { key: String::new(), value: vec![] }));
    assert!(Kv::durable(&Request::Delete { key: String::new() }));
    assert!(!Kv::durable(&Request::Get { key: String::new() }));
    assert!(Kv::checkpoint_after(&Request::Delete { key: String::new() }));
    assert!(!Kv::checkpoint_after(&Request::List { prefix: String::new() }));
    assert_eq!(
        Kv::unrecoverable(),
        Reply::Failed { code: 503, message: "request lost: the service crashed on it".into() }
    );

    assert_eq!(
        files::Files::POLICY,
        Policy { every_requests: Some(1000), every_ms: None, distillation: Distillation::Image }
    );
    use files::{Files, Request as FileRequest};
    assert_eq!(Files::DEADLINE_MS, 5000);
    assert_eq!(Files::deadline_ms(&FileRequest::Stat { path: "/a".into() }), 500);
    assert_eq!(Files::deadline_ms(&FileRequest::ShareBuffers { memories: vec![], pages: vec![] }), 20_000);
    assert_eq!(Files::deadline_ms(&FileRequest::Close {}), 5000);
    assert_eq!(Kv::deadline_ms(&Request::Ping), Kv::DEADLINE_MS);

    use edge_cases::EdgeCases;
    assert_eq!(EdgeCases::POLICY, Policy { every_requests: None, every_ms: None, distillation: Distillation::Logical });
    assert!(!EdgeCases::idempotent(&edge_cases::Request::Quiet));
    assert!(!EdgeCases::checkpoint_after(&edge_cases::Request::Quiet));
    assert_eq!(
        EdgeCases::unrecoverable(),
        edge_cases::Reply::Oops {
            a: u8::MAX,
            b: u16::MAX,
            c: u32::MAX,
            d: u64::MAX,
            e: i32::MIN,
            f: i64::MIN,
            g: true,
            s: "quote \" backslash \\ newline \n end".into(),
            t: b"\\\n\"".to_vec(),
        }
    );
    // The unrecoverable reply is acceptable in every service-turn state.
    for s in [edge_cases::State::Idle_get_thing, edge_cases::State::Streaming] {
        let mut c = Checker::<EdgeCases>::new();
        match s {
            edge_cases::State::Streaming => c.on_request(&edge_cases::Request::Stream { from: 0 }).unwrap(),
            _ => c
                .on_request(&edge_cases::Request::Quiet)
                .and_then(|_| {
                    c.on_request(&edge_cases::Request::get_thing {
                        r#type: 0,
                        r#match: 0,
                        w: 0,
                        handles: 0,
                        out: 0,
                        handler: 0,
                        request: false,
                        r: String::new(),
                        Upper: vec![],
                    })
                })
                .unwrap(),
        }
        assert_eq!(c.state(), s);
        c.on_reply(&EdgeCases::unrecoverable()).unwrap();
    }
}

proptest! {
    // Integration tests have no lib.rs for proptest to store failures beside.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Random message sequences: the checker never panics, accepts exactly
    /// what the generated tables allow, and is idle exactly in client-turn
    /// states.
    #[test]
    fn random_sessions_follow_the_tables(steps in proptest::collection::vec((any::<bool>(), 0..6usize), 0..40)) {
        use kv::{Kv, Reply, Request};
        let requests = [
            Request::Get { key: String::new() }, Request::Put { key: String::new(), value: vec![] },
            Request::Delete { key: String::new() }, Request::List { prefix: String::new() }, Request::Ping,
            Request::Cas { key: String::new(), expected_present: false, expected: vec![], new_present: false, new: vec![] },
        ];
        let replies = [
            Reply::Value { found: false, value: vec![] }, Reply::Done, Reply::Key { key: String::new() },
            Reply::EndList { count: 0 }, Reply::Failed { code: 0, message: String::new() },
            Reply::Swapped { ok: false, current_present: false, current: vec![] },
        ];
        let mut c = Checker::<Kv>::new();
        for (is_request, i) in steps {
            let before = c.state();
            prop_assert_eq!(c.is_idle(), Kv::client_turn(before));
            if is_request {
                let expected = if Kv::client_turn(before) { Kv::after_request(before, &requests[i]) } else { None };
                prop_assert_eq!(c.on_request(&requests[i]).is_ok(), expected.is_some());
                prop_assert_eq!(c.state(), expected.unwrap_or(before));
            } else {
                let allowed = !Kv::client_turn(before)
                    && (Kv::is_error_reply(&replies[i]) || Kv::after_reply(before, &replies[i]).is_some());
                prop_assert_eq!(c.on_reply(&replies[i]).is_ok(), allowed);
            }
        }
    }
}
