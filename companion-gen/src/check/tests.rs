//! One test per error class of the checker (lexical and syntax errors are
//! tested in their modules), plus what a good contract resolves to.

use crate::model::*;

/// The diagnostics of `src`, as `line:column: message`.
fn errors(src: &str) -> Vec<String> {
    match crate::parse("t.contract", src) {
        Ok(_) => panic!("expected errors in:\n{src}"),
        Err(ds) => ds.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect(),
    }
}

/// Assert that `src` has exactly the errors `expected`.
#[track_caller]
fn assert_errors(src: &str, expected: &[&str]) {
    assert_eq!(errors(src), expected, "in:\n{src}");
}

/// A small contract around `protocol` and `extra` items.
fn with(messages: &str, protocol: &str, extra: &str) -> String {
    format!("contract kv {{\n{messages}\nprotocol {{\n{protocol}\n}}\n{extra}\n}}\n")
}

const MESSAGES: &str = "\
request Get { key: string[16] }
request Put { key: string[16] }
request Ping { }
reply Value { v: u32 }
reply Done { }
reply Failed { code: u32, message: string[32], fatal: bool, bytes: bytes[4], delta: i32 }";

const PROTOCOL: &str = "\
start Ready;
error Failed;
state Ready { Get -> Value -> Ready; Put -> Putting; Ping -> Ready; }
state Putting { Done -> Ready; }";

/// A valid `unrecoverable` statement for `good`.
const U: &str = "unrecoverable Failed { code: 1, message: \"\", fatal: false, bytes: \"\", delta: 0 };";

/// Line numbers in `with(MESSAGES, PROTOCOL, ...)`: messages start on line
/// 2, `protocol` is on line 8, its statements on 9..=12, `extra` on 14.
fn good(extra: &str) -> String {
    with(MESSAGES, PROTOCOL, extra)
}

#[test]
fn a_good_contract_resolves() {
    let c = crate::parse("dir/kv.contract", &good("")).unwrap();
    assert_eq!(c.name, "kv");
    assert_eq!(c.source, "kv.contract");
    assert_eq!(c.requests.len(), 3);
    assert_eq!(c.replies.len(), 3);
    let names: Vec<&str> = c.states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Ready", "Ready_Get", "Putting"]);
    assert_eq!(c.states[1].turn, Turn::Service);
    assert_eq!(c.states[1].origin, Some((0, 0)));
    assert_eq!(c.states[0].transitions[0], Transition { message: 0, target: 1 });
    assert_eq!(c.states[1].transitions[0], Transition { message: 0, target: 0 });
    assert_eq!(c.start, 0);
    assert_eq!(c.error_reply, Some(2));
    assert_eq!(c.replies[2].fields[1].ty, Type::String(32));
    assert!(c.resilience.is_none());
}

#[test]
fn resilience_resolves() {
    let c = crate::parse(
        "kv.contract",
        &good(
            "resilience { checkpoint after Put; checkpoint after Get; checkpoint every 7 requests; checkpoint every 9 ms;
             idempotent Get, Ping; distillation image;
             unrecoverable Failed { delta: -5, code: 0x1f7, message: \"a \\\"b\\\"\", fatal: true, bytes: \"\\n\" }; }",
        ),
    )
    .unwrap();
    let r = c.resilience.unwrap();
    assert_eq!(r.checkpoint_after, [1, 0]);
    assert_eq!(r.every_requests, Some(7));
    assert_eq!(r.every_ms, Some(9));
    assert_eq!(r.idempotent, [0, 2]);
    assert_eq!(r.distillation, Distillation::Image);
    assert_eq!(r.unrecoverable.reply, 2);
    assert_eq!(
        r.unrecoverable.values,
        [Value::Int(503), Value::Str("a \"b\"".into()), Value::Bool(true), Value::Str("\n".into()), Value::Int(-5)]
    );
}

#[test]
fn default_distillation_and_length() {
    let c = crate::parse(
        "kv.contract",
        &with(
            "request A { s: string, b: bytes }\nreply F { }",
            "start S; error F; state S { A -> S; }",
            "resilience { unrecoverable F { }; }",
        ),
    )
    .unwrap();
    assert_eq!(c.requests[0].fields[0].ty, Type::String(65536));
    assert_eq!(c.requests[0].fields[1].ty, Type::Bytes(65536));
    assert_eq!(c.resilience.unwrap().distillation, Distillation::Logical);
}

#[test]
fn lexical_and_syntax_errors_come_through_parse() {
    assert_errors("contract kv { ? }", &["1:15: unexpected character `?`"]);
    assert_errors("contract kv { request }", &["1:23: expected the request's name, found `}`"]);
}

#[test]
fn duplicate_message() {
    assert_errors(
        &with("request Get { }\nreply Get { }", "start S; state S { Get -> S; }", ""),
        &["3:7: duplicate message `Get` (first declared at 2:9)"],
    );
}

#[test]
fn duplicate_field() {
    assert_errors(
        &with("request Get { key: u8,\n key: u32 }", "start S; state S { Get -> S; }", ""),
        &["3:2: duplicate field `key` in `Get` (first declared at 2:15)"],
    );
}

#[test]
fn duplicate_state() {
    assert_errors(
        &with("request Get { }", "start S;\nstate S { Get -> S; }\nstate S { }", ""),
        &["6:7: duplicate state `S` (first declared at 5:7)"],
    );
}

#[test]
fn duplicate_transition() {
    assert_errors(
        &with("request Get { }\nreply V { }", "start S;\nstate S { Get -> S;\n Get -> V -> S; }", ""),
        &["7:2: state `S` already has a transition on `Get` (at 6:11)"],
    );
}

#[test]
fn duplicate_sections_and_statements() {
    assert_errors(
        &with("request Get { }", "start S; start S; state S { Get -> S; }", "protocol { }"),
        &["4:10: duplicate `start` (the first is at 4:7)", "6:1: duplicate `protocol` section (the first is at 3:1)"],
    );
    assert_errors(
        &good(&format!("resilience {{ {U} }}\nresilience {{ }}")),
        &["15:1: duplicate `resilience` section (the first is at 14:1)"],
    );
    assert_errors(
        &with("request Get { }\nreply F { }\nreply G { }", "start S; error F; error G; state S { Get -> S; }", ""),
        &["6:19: duplicate `error` (the first is at 6:16)"],
    );
    let r = "resilience { unrecoverable Failed { code: 1, message: \"\", fatal: false, bytes: \"\", delta: 0 };\n distillation image;\n distillation logical;\n checkpoint every 1 ms;\n \
             checkpoint every 2 ms;\n checkpoint every 1 requests;\n checkpoint every 2 requests;\n unrecoverable Done { }; }";
    assert_errors(
        &good(r),
        &[
            "16:2: duplicate `distillation` (the first is at 15:2)",
            "18:2: duplicate `checkpoint every ... ms` (the first is at 17:2)",
            "20:2: duplicate `checkpoint every ... requests` (the first is at 19:2)",
            "21:2: duplicate `unrecoverable` (the first is at 14:14)",
        ],
    );
}

#[test]
fn duplicate_names_in_lists() {
    assert_errors(
        &good(&format!("resilience {{ checkpoint after Put, Get;\n checkpoint after Put; idempotent Get, Get; {U} }}")),
        &[
            "15:19: `Put` is already listed in `checkpoint after` (at 14:31)",
            "15:40: `Get` is already listed in `idempotent` (at 15:35)",
        ],
    );
}

#[test]
fn unknown_type() {
    assert_errors(
        &with("request Get { key: strng }", "start S; state S { Get -> S; }", ""),
        &["2:20: unknown type `strng` (did you mean `string`?); the types are u8, u16, u32, u64, i32, i64, bool, string, bytes, endpoint, handle, list"],
    );
    assert_errors(
        &with("request Get { key: float }", "start S; state S { Get -> S; }", ""),
        &["2:20: unknown type `float`; the types are u8, u16, u32, u64, i32, i64, bool, string, bytes, endpoint, handle, list"],
    );
}

#[test]
fn bad_length() {
    assert_errors(
        &with(
            "request Get { a: string[0], b: bytes[1048577], c: u32[4], d: bytes[1048576] }",
            "start S; state S { Get -> S; }",
            "",
        ),
        &[
            "2:25: a maximum length of 0 allows only empty values; give at least 1",
            "2:38: maximum length 1048577 is too large (the largest is 1048576: a message must fit in a channel)",
            "2:55: `u32` takes no maximum length (only `string` and `bytes` do)",
        ],
    );
}

#[test]
fn list_fields_resolve() {
    let c = crate::parse(
        "kv.contract",
        &with(
            "request A { a: list<u8>[1], b: list<string[8]>[65536], c: list<bytes>[3], d: list<handle>[2], e: list<endpoint>[4] }",
            "start S; state S { A -> S; }",
            "",
        ),
    )
    .unwrap();
    let types: Vec<Type> = c.requests[0].fields.iter().map(|f| f.ty.clone()).collect();
    assert_eq!(
        types,
        [
            Type::List(Box::new(Type::U8), 1),
            Type::List(Box::new(Type::String(8)), 65536),
            Type::List(Box::new(Type::Bytes(65536)), 3),
            Type::List(Box::new(Type::Handle), 2),
            Type::List(Box::new(Type::Endpoint), 4),
        ]
    );
    assert_eq!(types[1].contract_name(), "list<string[8]>[65536]");
    assert!(types[3].carries_handles() && types[4].carries_handles() && !types[2].carries_handles());
    assert!(c.requests[0].has_endpoint() && c.requests[0].has_handles());
}

#[test]
fn list_without_element_type_or_count() {
    let src = |ty: &str| with(&format!("request Get {{ xs: {ty} }}"), "start S; state S { Get -> S; }", "");
    // `list` without `<T>`, with or without `[N]`.
    assert_errors(
        &src("list"),
        &["2:19: `list` needs an element type and a maximum count: `list<T>[N]`, N from 1 to 65536"],
    );
    assert_errors(
        &src("list[4]"),
        &["2:19: `list` needs an element type and a maximum count: `list<T>[N]`, N from 1 to 65536"],
    );
    // `list<T>` without `[N]`.
    assert_errors(&src("list<u8>"), &["2:19: `list` needs a maximum count: `list<T>[N]`, N from 1 to 65536"]);
    // `<T>` on a type other than `list`.
    assert_errors(&src("bytes<u8>[4]"), &["2:25: `bytes` takes no element type (only `list<T>[N]` does)"]);
}

#[test]
fn list_count_out_of_range() {
    assert_errors(
        &with(
            "request Get { a: list<u8>[0], b: list<u8>[65537], c: list<u8>[65536] }",
            "start S; state S { Get -> S; }",
            "",
        ),
        &[
            "2:27: a list of at most 0 elements is always empty; give a maximum count of at least 1",
            "2:43: maximum count 65537 is too large for a list (the largest is 65536)",
        ],
    );
}

#[test]
fn nested_list() {
    assert_errors(
        &with("request Get { a: list<list<u8>[2]>[3] }", "start S; state S { Get -> S; }", ""),
        &["2:23: a list cannot hold a list (`list<list<...>>`): give the inner list's elements a message of their own, or flatten it"],
    );
}

#[test]
fn unknown_or_bad_list_element_type() {
    let src = |ty: &str| with(&format!("request Get {{ xs: {ty} }}"), "start S; state S { Get -> S; }", "");
    assert_errors(
        &src("list<strng[4]>[2]"),
        &["2:24: unknown type `strng` (did you mean `string`?); a list's element types are u8, u16, u32, u64, i32, i64, bool, string, bytes, endpoint, handle"],
    );
    // Errors in the element type and in the count are all reported.
    assert_errors(
        &src("list<float>[0]"),
        &[
            "2:24: unknown type `float`; a list's element types are u8, u16, u32, u64, i32, i64, bool, string, bytes, endpoint, handle",
            "2:31: a list of at most 0 elements is always empty; give a maximum count of at least 1",
        ],
    );
    assert_errors(&src("list<u32[4]>[2]"), &["2:28: `u32` takes no maximum length (only `string` and `bytes` do)"]);
    assert_errors(
        &src("list<string[0]>[2]"),
        &["2:31: a maximum length of 0 allows only empty values; give at least 1"],
    );
    // An unknown type name close to `list` is suggested it.
    assert_errors(
        &src("lst<u8>[2]"),
        &["2:19: unknown type `lst` (did you mean `list`?); the types are u8, u16, u32, u64, i32, i64, bool, string, bytes, endpoint, handle, list"],
    );
}

#[test]
fn unknown_message() {
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; state S { Gte -> V -> S; Get -> Vx -> S; }", ""),
        &["5:20: unknown message `Gte` (did you mean `Get`?)", "5:42: unknown message `Vx` (did you mean `V`?)"],
    );
    assert_errors(
        &good(&format!("resilience {{ checkpoint after Pt; idempotent Zap; {U} }}")),
        &["14:31: unknown message `Pt` (did you mean `Put`?)", "14:46: unknown message `Zap`"],
    );
    assert_errors(&good("resilience { unrecoverable Nope { }; }"), &["14:28: unknown message `Nope`"]);
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; error E; state S { Get -> V -> S; }", ""),
        &["5:16: unknown message `E` (did you mean `V`?)"],
    );
}

#[test]
fn unknown_state() {
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; state S { Get -> V -> Sx; }\nstate T { Get -> Tt; }", ""),
        &["5:32: unknown state `Sx` (did you mean `S`?)", "6:18: unknown state `Tt` (did you mean `T`?)"],
    );
}

#[test]
fn request_where_a_reply_is_needed_and_vice_versa() {
    // In a state marked with its turn.
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; state S { Get -> T; }\nservice state T { Get -> S; }", ""),
        &["6:19: `Get` is a request, but `T` is a service-turn state, which takes replies only"],
    );
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; client state S { V -> S; Get -> V -> S; }", ""),
        &["5:27: `V` is a reply, but `S` is a client-turn state, which takes requests only"],
    );
    // The second message of the sugar form.
    assert_errors(
        &with(
            "request Get { }\nrequest Put { }\nreply V { }",
            "start S; state S { Get -> Put -> S; Put -> V -> S; }",
            "",
        ),
        &["6:27: `Put` is a request, but after request `Get` a reply is needed"],
    );
    // `error`, `checkpoint after`, `idempotent`, `unrecoverable`.
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; error Get; state S { Get -> V -> S; }", ""),
        &["5:16: `Get` is a request, but `error` needs a reply"],
    );
    assert_errors(
        &good(&format!("resilience {{ checkpoint after Done; idempotent Value; {U} }}")),
        &[
            "14:31: `Done` is a reply, but `checkpoint after` needs a request",
            "14:48: `Value` is a reply, but `idempotent` needs a request",
        ],
    );
    assert_errors(
        &good("resilience { unrecoverable Get { key: \"\" }; }"),
        &["14:28: `Get` is a request, but `unrecoverable` needs a reply"],
    );
}

#[test]
fn mixed_turn_state() {
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; state S { Get -> S;\n V -> S; }", ""),
        &["6:2: state `S` mixes requests and replies: `V` is a reply, but `Get` (at 5:20) is a request"],
    );
}

#[test]
fn service_turn_state_without_transitions() {
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; state S { Get -> W; Get2 -> S; }\nservice state W { }", "")
            .replace("request Get { }", "request Get { }\nrequest Get2 { }"),
        &["7:15: service-turn state `W` has no transitions: the client would wait for a reply forever"],
    );
}

#[test]
fn start_state_missing_unknown_or_service_turn() {
    assert_errors(
        &with("request Get { }", "state S { Get -> S; }", ""),
        &["3:1: the protocol has no start state (add `start <State>;`)"],
    );
    assert_errors(
        &with("request Get { }", "start Sx; state S { Get -> S; }", ""),
        &["4:7: unknown state `Sx` (did you mean `S`?)"],
    );
    assert_errors(
        &with("request Get { }\nreply V { }", "start W; state S { Get -> W; }\nstate W { V -> S; }", ""),
        &["5:7: the start state `W` is service-turn; a session must start in a client-turn state"],
    );
}

#[test]
fn unreachable_state() {
    assert_errors(
        &with("request Get { }\nreply V { }", "start S; state S { Get -> V -> S; }\nstate Orphan { Get -> S; }", ""),
        &["6:7: state `Orphan` is unreachable from the start state `S`"],
    );
}

#[test]
fn unrecoverable_fields_missing_duplicate_unknown_or_wrong_type() {
    let r = |fields: &str| good(&format!("resilience {{ unrecoverable Failed {{ {fields} }}; }}"));
    assert_errors(
        &r("code: 1, message: \"x\""),
        &[
            "14:28: `unrecoverable Failed` lacks field `fatal` (bool)",
            "14:28: `unrecoverable Failed` lacks field `bytes` (bytes[4])",
            "14:28: `unrecoverable Failed` lacks field `delta` (i32)",
        ],
    );
    let all = "message: \"\", fatal: false, bytes: \"\", delta: 0";
    assert_errors(&r(&format!("code: 1, {all}, code: 2")), &["14:94: field `code` is given twice (first at 14:37)"]);
    assert_errors(
        &r(&format!("cod: 1, {all}")),
        &[
            "14:37: reply `Failed` has no field `cod` (did you mean `code`?)",
            "14:28: `unrecoverable Failed` lacks field `code` (u32)",
        ]
        .into_iter()
        .rev()
        .collect::<Vec<_>>(),
    );
    assert_errors(
        &r("code: \"1\", message: 2, fatal: 1, bytes: true, delta: false"),
        &[
            "14:43: field `code` is u32, so it needs an integer; found a string",
            "14:57: field `message` is string[32], so it needs a string; found an integer",
            "14:67: field `fatal` is bool, so it needs `true` or `false`; found an integer",
            "14:77: field `bytes` is bytes[4], so it needs a string; found a boolean",
            "14:90: field `delta` is i32, so it needs an integer; found a boolean",
        ],
    );
}

#[test]
fn unrecoverable_cannot_carry_handles() {
    assert_errors(
        &with(
            "request Get { }\nreply F { e: endpoint }\nreply H { h: handle }",
            "start S; error F; state S { Get -> H -> S; }",
            "resilience { unrecoverable F { }; }",
        ),
        &["8:28: reply `F` cannot be `unrecoverable`: its field `e` is an endpoint, which no literal can give"],
    );
}

#[test]
fn unrecoverable_list_literals() {
    let src = |extra: &str| {
        with(
            "request Get { }\nreply F { xs: list<u8>[2], ss: list<string[3]>[1], fs: list<i64>[2] }",
            "start S; error F; state S { Get -> S; }",
            &format!("resilience {{ unrecoverable F {{ {extra} }}; }}"),
        )
    };
    let c = crate::parse("t.contract", &src("xs: [1, 255,], ss: [\"abc\"], fs: []")).unwrap();
    assert_eq!(
        c.resilience.unwrap().unrecoverable.values,
        [
            Value::List(vec![Value::Int(1), Value::Int(255)]),
            Value::List(vec![Value::Str("abc".into())]),
            Value::List(vec![])
        ]
    );
    assert_errors(
        &src("xs: [1, 2, 3], ss: [\"abcd\", 5], fs: 0"),
        &[
            "7:36: this list has 3 elements, more than the 2 that field `xs` (list<u8>[2]) allows",
            "7:51: this list has 2 elements, more than the 1 that field `ss` (list<string[3]>[1]) allows",
            "7:52: this string is 4 bytes long, more than the 3 that an element of field `ss` (string[3]) allows",
            "7:60: an element of field `ss` is string[3], so it needs a string; found an integer",
            "7:68: field `fs` is list<i64>[2], so it needs a list (`[a, b, ...]`); found an integer",
        ],
    );
    assert_errors(
        &src("xs: [256, true], ss: \"a\", fs: [-9223372036854775809]"),
        &[
            "7:37: 256 is out of range for an element of field `xs` (u8: 0 to 255)",
            "7:42: an element of field `xs` is u8, so it needs an integer; found a boolean",
            "7:53: field `ss` is list<string[3]>[1], so it needs a list (`[a, b, ...]`); found a string",
            "7:63: -9223372036854775809 is out of range for an element of field `fs` (i64: -9223372036854775808 to 9223372036854775807)",
        ],
    );
    // A list literal for a field that is not a list.
    assert_errors(
        &good("resilience { unrecoverable Failed { code: [1], message: \"\", fatal: false, bytes: \"\", delta: 0 }; }"),
        &["14:43: field `code` is u32, so it needs an integer; found a list"],
    );
}

#[test]
fn unrecoverable_cannot_carry_lists_of_handles() {
    for (ty, what) in [("list<handle>[2]", "a list of handles"), ("list<endpoint>[2]", "a list of endpoints")] {
        assert_errors(
            &with(
                &format!("request Get {{ }}\nreply F {{ hs: {ty} }}"),
                "start S; error F; state S { Get -> S; }",
                "resilience { unrecoverable F { hs: [] }; }",
            ),
            &[&format!(
                "7:28: reply `F` cannot be `unrecoverable`: its field `hs` is {what}, which no literal can give"
            )],
        );
    }
}

#[test]
fn unrecoverable_must_be_allowed_in_every_service_turn_state() {
    assert_errors(
        &good("resilience { unrecoverable Done { }; }"),
        &["14:28: the `unrecoverable` reply must be allowed in every service-turn state, and `Done` is not allowed in `Ready_Get`; make it the protocol's `error` reply"],
    );
}

#[test]
fn numbers_out_of_range_for_the_field_type() {
    let src = with(
        "request Get { }\nreply F { a: u8, b: u16, c: u32, d: u64, e: i32, f: i64, s: string[2], t: bytes[1] }",
        "start S; error F; state S { Get -> S; }",
        "resilience { unrecoverable F { a: 256, b: -1, c: 4294967296, d: 18446744073709551615, e: -2147483649,\n f: -9223372036854775808, s: \"abc\", t: \"é\" }; }",
    );
    assert_errors(
        &src,
        &[
            "7:35: 256 is out of range for field `a` (u8: 0 to 255)",
            "7:43: -1 is out of range for field `b` (u16: 0 to 65535)",
            "7:50: 4294967296 is out of range for field `c` (u32: 0 to 4294967295)",
            "7:90: -2147483649 is out of range for field `e` (i32: -2147483648 to 2147483647)",
            "8:30: this string is 3 bytes long, more than the 2 that field `s` (string[2]) allows",
            "8:40: this string is 2 bytes long, more than the 1 that field `t` (bytes[1]) allows",
        ],
    );
    assert_errors(
        &good("resilience { unrecoverable Failed { code: 1, message: \"\", fatal: false, bytes: \"\", delta: 0 };\n checkpoint every 4294967296 ms; }"),
        &["15:19: 4294967296 is out of range for `checkpoint every` (at most 4294967295)"],
    );
}

#[test]
fn checkpoint_every_zero() {
    let u = "unrecoverable Failed { code: 1, message: \"\", fatal: false, bytes: \"\", delta: 0 };";
    assert_errors(
        &good(&format!("resilience {{ {u}\n checkpoint every 0 requests;\n checkpoint every 0 ms; }}")),
        &[
            "15:19: `checkpoint every 0 requests` would never checkpoint; give at least 1",
            "16:19: `checkpoint every 0 ms` would never checkpoint; give at least 1",
        ],
    );
}

#[test]
fn resilience_needs_unrecoverable() {
    assert_errors(
        &good("resilience { idempotent Get; }"),
        &["14:1: the `resilience` section needs an `unrecoverable` reply (what a client is told when its request cannot be recovered)"],
    );
}

#[test]
fn missing_protocol_and_no_requests() {
    assert_errors(
        "contract kv { reply V { } }",
        &["1:10: contract `kv` declares no requests", "1:10: contract `kv` has no `protocol` section"],
    );
}

#[test]
fn error_reply_cannot_have_transitions() {
    assert_errors(
        &with("request Get { }\nreply V { }\nreply F { }", "start S; error F; state S { Get -> F -> S; }", ""),
        &["6:36: `F` is the protocol's `error` reply, which every service-turn state allows and which returns to where the request was sent; it cannot have transitions of its own"],
    );
}

#[test]
fn a_request_always_or_never_waits_for_a_reply() {
    assert_errors(
        &with("request Get { }\nrequest Go { }\nreply V { }", "start S; state S { Get -> V -> S; Go -> T; }\nstate T { Get -> T; }", ""),
        &["7:11: request `Get` leads to a client-turn state here but to a service-turn state at 6:20; it must always (or never) wait for a reply"],
    );
}

#[test]
fn unused_messages() {
    assert_errors(
        &with(
            "request Get { }\nrequest Idle { }\nreply V { }\nreply Lost { }",
            "start S; state S { Get -> V -> S; }",
            "",
        ),
        &["3:9: request `Idle` is never used in the protocol", "5:7: reply `Lost` is never used in the protocol"],
    );
}

#[test]
fn names_that_cannot_be_rust() {
    assert_errors(
        &with(
            "request Self { self: u8 }\nrequest Get { }",
            "start S; state crate { Get -> S; }\nstate S { Get -> S; }",
            "",
        ),
        &[
            "2:9: `Self` cannot be a message name: Rust reserves it",
            "2:16: `self` cannot be a field name: Rust reserves it",
            "5:16: `crate` cannot be a state name: Rust reserves it",
        ],
    );
    assert_errors(
        "contract request { request Get { } protocol { start S; state S { Get -> S; } } }",
        &["1:10: contract name `request` would name its marker type `Request`, which the generated code already uses"],
    );
    assert_errors(
        "contract __ { request Get { } protocol { start S; state S { Get -> S; } } }",
        &["1:10: contract name `__` cannot name a Rust type (in UpperCamelCase, which the generated types use, it must start with a letter)"],
    );
}

#[test]
fn method_name_clashes() {
    assert_errors(
        &with(
            "request NextReply { }\nrequest GetX { }\nrequest Get_X { }\nrequest SendRequest { }",
            "start S; state S { NextReply -> S; GetX -> S; Get_X -> S; SendRequest -> S; }",
            "",
        ),
        &[
            "2:9: request `NextReply` would generate the client method `next_reply`, which the client stub already has",
            "4:9: requests `GetX` (at 3:9) and `Get_X` would both generate the method `get_x`",
            "5:9: request `SendRequest` would generate the client method `send_request`, which the client stub already has",
        ],
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let src = with("request Get { a: strng, a: u8 }\nreply V { }", "start S; state S { Get -> V -> Nowhere; }", "");
    assert_eq!(errors(&src).len(), 3, "{:#?}", errors(&src));
}

#[test]
fn anonymous_state_names_avoid_declared_ones() {
    let c = crate::parse(
        "t.contract",
        &with(
            "request Get { }\nrequest Go { }\nreply V { }",
            "start S; state S { Get -> V -> S_Get; }\nstate S_Get { Go -> S; }",
            "",
        ),
    )
    .unwrap();
    let names: Vec<&str> = c.states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["S", "S_Get_2", "S_Get"]);
}

#[test]
fn durable_requests_are_listed_and_not_idempotent() {
    let c = crate::parse("t.contract", &good(&format!("resilience {{ idempotent Get; durable Put; {U} }}")))
        .expect("a good contract");
    let r = c.resilience.expect("a resilience section");
    assert_eq!(r.durable, [1]);
    assert_errors(
        &good(&format!("resilience {{ idempotent Get;\n durable Put, Get, Put; {U} }}")),
        &[
            "15:15: `Get` is `idempotent` (at 14:25): it changes nothing, so it cannot be `durable`",
            "15:20: `Put` is already listed in `durable` (at 15:10)",
        ],
    );
}

#[test]
fn deadlines_are_for_the_service_and_for_requests() {
    let c = crate::parse(
        "t.contract",
        &good(&format!("resilience {{ deadline 5 s; deadline Put 30000 ms; deadline Get 2 s; {U} }}")),
    )
    .expect("a good contract");
    let r = c.resilience.expect("a resilience section");
    assert_eq!((r.deadline_ms, r.deadlines), (Some(5000), vec![(1, 30000), (0, 2000)]));
    assert_errors(
        &good(&format!(
            "resilience {{ deadline 1 s;\n deadline 2 s; deadline Put 0 ms; deadline Put, Nope 1 s; {U} }}"
        )),
        &[
            "15:2: duplicate service `deadline` (the first is at 14:14)",
            "15:29: a deadline of 0 ms is out of range (1 ms to 4294967295 ms)",
            "15:49: unknown message `Nope`",
        ],
    );
}
