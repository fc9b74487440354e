//! The code generator: a checked [`Contract`] to Rust source. The output
//! is meant to be read: rustfmt-like layout, the contract's doc comments,
//! and generated ones that say what each item does.
//!
//! Layout of the generated file: imports; `Request` and `Reply` (message
//! enums with their length limits); `State`; the marker type and its
//! `Protocol` impl; the `Message` impls (wire encoding) and their decoding
//! helpers (`decode_endpoint`, `decode_list`); the client stub;
//! the handler trait and `dispatch`; with a resiliency path and a
//! `resilience` section, the `Resilient` impl and `run_companion`.

mod client;
mod out;
mod protocol;
mod resilience;
mod service;
mod types;

use crate::model::*;
use crate::names::{self, ident};
use crate::Options;
use out::Out;

/// Parameter names of `encode`/`decode` that a field binding must not shadow.
const ENCODE_NAMES: &[&str] = &["w", "handles"];
/// Parameter names of `dispatch` that a field binding must not shadow.
const DISPATCH_NAMES: &[&str] = &["handler", "out"];

/// Generate the Rust code of `contract`.
pub fn generate(contract: &Contract, options: &Options) -> String {
    let mut g = Gen { c: contract, o: options, out: Out::new(), marker: names::camel(&contract.name) };
    g.file();
    g.out.finish()
}

struct Gen<'a> {
    c: &'a Contract,
    o: &'a Options,
    out: Out,
    marker: String,
}

/// The two message enums.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Reply,
}

impl Side {
    fn enum_name(self) -> &'static str {
        match self {
            Side::Request => "Request",
            Side::Reply => "Reply",
        }
    }
}

/// How a field is bound in a pattern (`key` or `w: w_`) and the variable.
fn binding(field: &Field, reserved: &[&str]) -> (String, String) {
    let name = ident(&field.name);
    if reserved.contains(&field.name.as_str()) {
        (format!("{name}: {}_", field.name), format!("{}_", field.name))
    } else {
        (name.clone(), name)
    }
}

/// A quoted Rust string literal.
fn str_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A quoted Rust byte string literal.
fn bytes_literal(s: &str) -> String {
    let mut out = String::from("b\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// `a`, `a or b`, `a, b or c` with each name in backticks.
fn or_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl<'a> Gen<'a> {
    fn messages(&self, side: Side) -> &'a [Message] {
        match side {
            Side::Request => &self.c.requests,
            Side::Reply => &self.c.replies,
        }
    }

    fn runtime(&self) -> &str {
        &self.o.runtime
    }

    fn rust_type(ty: &Type) -> String {
        match ty {
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::I32 => "i32".into(),
            Type::I64 => "i64".into(),
            Type::Bool => "bool".into(),
            Type::String(_) => "String".into(),
            Type::Bytes(_) => "Vec<u8>".into(),
            Type::Endpoint => "channel::EndpointHandles".into(),
            Type::Handle => "handle::OwnedHandle".into(),
            Type::List(element, _) => format!("Vec<{}>", Self::rust_type(element)),
        }
    }

    fn any_field(&self, f: impl Fn(&Field) -> bool) -> bool {
        self.c.requests.iter().chain(&self.c.replies).flat_map(|m| &m.fields).any(f)
    }

    /// Whether some field's type, or a list field's element type, is one
    /// that `pred` accepts.
    fn any_type(&self, pred: impl Fn(&Type) -> bool) -> bool {
        self.any_field(|f| f.ty.contains(&pred))
    }

    /// `#[allow(non_snake_case)]` if a field name needs it.
    fn allow_snake(&mut self, messages: &[Message]) {
        if messages.iter().flat_map(|m| &m.fields).any(|f| !names::is_snake(&f.name)) {
            self.out.line("#[allow(non_snake_case)]");
        }
    }

    /// `Request::Get { .. }` or `Request::Ping`: matches the variant.
    fn pattern(&self, side: Side, m: &Message) -> String {
        let v = format!("{}::{}", side.enum_name(), ident(&m.name));
        if m.fields.is_empty() {
            v
        } else {
            format!("{v} {{ .. }}")
        }
    }

    fn file(&mut self) {
        let c = self.c;
        self.out.line(format!("// @generated by companion-gen from {}. Do not edit.", c.source));
        self.out.blank();
        if self.any_type(|t| matches!(t, Type::String(_))) {
            self.out.line("use alloc::string::String;");
        }
        if self.any_type(|t| matches!(t, Type::Bytes(_) | Type::List(..))) {
            self.out.line("use alloc::vec::Vec;");
        }
        let mut modules = vec!["channel"];
        if self.any_type(|t| *t == Type::Handle) {
            modules.push("handle");
        }
        modules.extend(["protocol", "wire"]);
        self.out.line(format!("use {}::{{{}}};", self.runtime(), modules.join(", ")));
        self.message_enum(Side::Request);
        self.message_enum(Side::Reply);
        self.state_enum();
        self.marker();
        self.protocol_impl();
        self.message_impl(Side::Request);
        self.message_impl(Side::Reply);
        if self.any_type(|t| *t == Type::Endpoint) {
            self.decode_endpoint();
        }
        if self.any_type(|t| matches!(t, Type::List(..))) {
            self.decode_list();
        }
        self.limits_impl(Side::Request);
        self.limits_impl(Side::Reply);
        self.client();
        self.handler();
        self.dispatch();
        if let (Some(res), Some(r)) = (&self.o.resiliency, &c.resilience) {
            self.resilient(res, r);
        }
    }
}
