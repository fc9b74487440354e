//! The message and state enums, the wire encoding (`Message` impls and
//! their decoding helpers), and the length and count limits.

use super::out::{Body, Variant};
use super::{binding, or_list, Gen, Side, ENCODE_NAMES};
use crate::model::*;
use crate::names::{self, ident};

impl<'a> Gen<'a> {
    pub(super) fn message_enum(&mut self, side: Side) {
        let messages = self.messages(side);
        self.out.blank();
        let what = match side {
            Side::Request => "from the client to the service",
            Side::Reply => "from the service to the client",
        };
        self.out.prose(&format!("A message of the `{}` contract {what}.", self.c.name));
        let endpoints = messages.iter().any(Message::has_endpoint);
        let handles = messages.iter().any(Message::has_handles);
        if !handles {
            self.out.line("#[derive(Clone, Debug, PartialEq, Eq)]");
        } else if !endpoints {
            self.out.line("#[derive(Debug)]");
        }
        if messages.iter().any(|m| !names::is_camel(&m.name)) {
            self.out.line("#[allow(non_camel_case_types)]");
        }
        self.allow_snake(messages);
        if messages.is_empty() {
            self.out.line(format!("pub enum {} {{}}", side.enum_name()));
            return;
        }
        self.out.open(format!("pub enum {} {{", side.enum_name()));
        let variants: Vec<Variant> = messages
            .iter()
            .map(|m| Variant {
                name: ident(&m.name),
                docs: m.docs.clone(),
                fields: m
                    .fields
                    .iter()
                    .map(|f| (f.docs.clone(), format!("{}: {}", ident(&f.name), Self::rust_type(&f.ty))))
                    .collect(),
            })
            .collect();
        self.out.variants(&variants);
        self.out.close("}");
    }

    pub(super) fn state_enum(&mut self) {
        let c = self.c;
        self.out.blank();
        self.out.prose(&format!("The states of the `{}` protocol.", c.name));
        if c.states.iter().any(|s| !names::is_camel(&s.name)) {
            self.out.line("#[allow(non_camel_case_types)]");
        }
        self.out.line("#[derive(Clone, Copy, Debug, PartialEq, Eq)]");
        self.out.open("pub enum State {");
        for s in &c.states {
            self.out.docs(&s.docs);
            if !s.docs.is_empty() {
                self.out.line("///");
            }
            let allowed: Vec<&str> = s
                .transitions
                .iter()
                .map(|t| match s.turn {
                    Turn::Client => c.requests[t.message].name.as_str(),
                    Turn::Service => c.replies[t.message].name.as_str(),
                })
                .collect();
            let mut doc = match (s.turn, allowed.is_empty()) {
                (Turn::Client, true) => {
                    "The client's turn, but no request is allowed: the session is over.".to_string()
                }
                (Turn::Client, false) => format!("The client may send {}.", or_list(&allowed)),
                (Turn::Service, _) => format!("The service owes {}.", or_list(&allowed)),
            };
            if let Some((parent, request)) = s.origin {
                let (parent, sent) = (&c.states[parent], &c.states[parent].turn);
                let sent = match sent {
                    Turn::Client => &c.requests[request].name,
                    Turn::Service => &c.replies[request].name,
                };
                doc = format!("After `{sent}` in `{}`: {}{}", parent.name, doc[..1].to_lowercase(), &doc[1..]);
            }
            if s.turn == Turn::Service {
                if let Some(e) = c.error_reply {
                    doc.pop();
                    doc.push_str(&format!(" (or the error reply `{}`).", c.replies[e].name));
                }
            }
            self.out.prose(&doc);
            self.out.line(format!("{},", ident(&s.name)));
        }
        self.out.close("}");
    }

    pub(super) fn message_impl(&mut self, side: Side) {
        let messages = self.messages(side);
        let enum_name = side.enum_name();
        let handles = if messages.iter().any(Message::has_handles) { "handles" } else { "_handles" };
        let w = if messages.is_empty() { "_w" } else { "w" };
        self.out.blank();
        self.allow_snake(messages);
        self.out.open(format!("impl channel::Message for {enum_name} {{"));
        self.out.signature(
            "fn encode",
            &["self".into(), format!("{w}: &mut wire::Writer"), format!("{handles}: &mut channel::HandleList")],
            " {",
        );
        if messages.is_empty() {
            self.out.line("match self {}");
        } else {
            self.out.open("match self {");
            for (i, m) in messages.iter().enumerate() {
                let bound: Vec<(String, String)> = m.fields.iter().map(|f| binding(f, ENCODE_NAMES)).collect();
                let patterns: Vec<String> = bound.iter().map(|b| b.0.clone()).collect();
                self.out.struct_lit(&format!("{enum_name}::{}", ident(&m.name)), &patterns, " => {");
                self.out.line(format!("w.u8({});", i + 1));
                for (f, (_, var)) in m.fields.iter().zip(&bound) {
                    self.encode_value(&f.ty, var);
                }
                self.out.close("}");
            }
            self.out.close("}");
        }
        self.out.close("}");

        self.out.blank();
        self.out.signature(
            "fn decode",
            &["r: &mut wire::Reader".into(), format!("{handles}: &mut channel::HandleQueue")],
            " -> Result<Self, wire::DecodeError> {",
        );
        if messages.is_empty() {
            self.out.line("r.u8()?;");
            self.out.line("Err(wire::DecodeError::Invalid)");
        } else {
            self.out.open("Ok(match r.u8()? {");
            for (i, m) in messages.iter().enumerate() {
                let fields: Vec<String> =
                    m.fields.iter().map(|f| format!("{}: {}", ident(&f.name), Self::decode_expr(&f.ty))).collect();
                self.out.struct_lit(&format!("{} => {enum_name}::{}", i + 1, ident(&m.name)), &fields, ",");
            }
            self.out.line("_ => return Err(wire::DecodeError::Invalid),");
            self.out.close("})");
        }
        self.out.close("}");
        self.out.close("}");
    }

    /// The statements that encode `var`, a value of type `ty`.
    fn encode_value(&mut self, ty: &Type, var: &str) {
        self.out.line(match ty {
            Type::U8 => format!("w.u8({var});"),
            Type::U16 => format!("w.raw(&{var}.to_le_bytes());"),
            Type::U32 => format!("w.u32({var});"),
            Type::U64 => format!("w.u64({var});"),
            Type::I32 => format!("w.u32({var} as u32);"),
            Type::I64 => format!("w.i64({var});"),
            Type::Bool => format!("w.bool({var});"),
            Type::String(_) => format!("w.str(&{var});"),
            Type::Bytes(_) => format!("w.bytes(&{var});"),
            Type::Endpoint => format!("w.u8(handles.push_endpoint({var}));"),
            Type::Handle => format!("handles.push({var});"),
            Type::List(element, _) => {
                // The count, then each element as a field of its type.
                self.out.line(format!("w.u32({var}.len() as u32);"));
                self.out.open(format!("for item in {var} {{"));
                self.encode_value(element, "item");
                self.out.close("}");
                return;
            }
        });
    }

    /// The expression that decodes a value of type `ty` (ending in `?`,
    /// or, for a list element, in the `decode_list` closure returning a
    /// `Result`).
    pub(super) fn decode_expr(ty: &Type) -> String {
        match ty {
            Type::U8 => "r.u8()?".into(),
            Type::U16 => "u16::from_le_bytes([r.u8()?, r.u8()?])".into(),
            Type::U32 => "r.u32()?".into(),
            Type::U64 => "r.u64()?".into(),
            Type::I32 => "r.u32()? as i32".into(),
            Type::I64 => "r.i64()?".into(),
            Type::Bool => "r.bool()?".into(),
            Type::String(max) => format!("r.string({max})?"),
            Type::Bytes(max) => format!("r.bytes_vec({max})?"),
            Type::Endpoint => "decode_endpoint(r, handles)?".into(),
            Type::Handle => "handles.take()?".into(),
            Type::List(element, max) => {
                let expr = Self::decode_expr(element);
                let result = match expr.strip_suffix('?') {
                    Some(call) => call.to_string(),
                    None => format!("Ok({expr})"),
                };
                let reader = if **element == Type::Handle { "_" } else { "r" };
                format!("decode_list(r, {max}, |{reader}| {result})?")
            }
        }
    }

    pub(super) fn decode_list(&mut self) {
        self.out.blank();
        self.out.line("/// A list field: a `u32` count of at most `max`, then that many elements.");
        self.out.signature(
            "fn decode_list<T>",
            &[
                "r: &mut wire::Reader".into(),
                "max: u32".into(),
                "mut element: impl FnMut(&mut wire::Reader) -> Result<T, wire::DecodeError>".into(),
            ],
            " -> Result<Vec<T>, wire::DecodeError> {",
        );
        self.out.line("let count = r.u32()?;");
        self.out.open("if count > max {");
        self.out.line("return Err(wire::DecodeError::Invalid);");
        self.out.close("}");
        self.out.line("// Not `Vec::with_capacity(count)`: the count is untrusted, so the");
        self.out.line("// vector grows only as elements actually decode.");
        self.out.line("let mut items = Vec::new();");
        self.out.open("for _ in 0..count {");
        self.out.line("items.push(element(r)?);");
        self.out.close("}");
        self.out.line("Ok(items)");
        self.out.close("}");
    }

    pub(super) fn decode_endpoint(&mut self) {
        self.out.blank();
        self.out.line("/// An endpoint field: its side (0 or 1) on the wire, its three handles in the queue.");
        self.out.signature(
            "fn decode_endpoint",
            &["r: &mut wire::Reader".into(), "handles: &mut channel::HandleQueue".into()],
            " -> Result<channel::EndpointHandles, wire::DecodeError> {",
        );
        self.out.open("match r.u8()? {");
        self.out.line("side @ (0 | 1) => channel::EndpointHandles::take(handles, side),");
        self.out.line("_ => Err(wire::DecodeError::Invalid),");
        self.out.close("}");
        self.out.close("}");
    }

    pub(super) fn limits_impl(&mut self, side: Side) {
        let messages = self.messages(side);
        let enum_name = side.enum_name();
        self.out.blank();
        self.allow_snake(messages);
        self.out.open(format!("impl {enum_name} {{"));
        if messages.iter().flat_map(|m| &m.fields).any(|f| matches!(f.ty, Type::List(..))) {
            self.out.line("/// Whether every `string` and `bytes` field is within its maximum length,");
            self.out.line("/// and every `list` field within its maximum count and its elements within");
            self.out.line("/// theirs (the receiver rejects a message beyond them).");
        } else {
            self.out.line("/// Whether every `string` and `bytes` field is within its maximum length");
            self.out.line("/// (the receiver rejects a message with a longer one).");
        }
        self.out.open("pub fn within_limits(&self) -> bool {");
        let limited: Vec<&Message> =
            messages.iter().filter(|m| m.fields.iter().any(|f| Self::limit_check(&f.ty, "x").is_some())).collect();
        if limited.is_empty() {
            self.out.line("true");
        } else {
            self.out.open("match self {");
            for m in &limited {
                let mut patterns = Vec::new();
                let mut checks = Vec::new();
                for f in &m.fields {
                    if let Some(check) = Self::limit_check(&f.ty, &ident(&f.name)) {
                        patterns.push(ident(&f.name));
                        checks.push(check);
                    }
                }
                if patterns.len() < m.fields.len() {
                    patterns.push("..".into());
                }
                let head = format!("{enum_name}::{}", ident(&m.name));
                self.out.arm(&head, &patterns, &Body::Expr(checks.join(" && ")));
            }
            if limited.len() < messages.len() {
                self.out.line("_ => true,");
            }
            self.out.close("}");
        }
        self.out.close("}");
        self.out.close("}");
    }

    /// The condition that `var`, a value of type `ty`, is within its
    /// limits, if the type has any.
    fn limit_check(ty: &Type, var: &str) -> Option<String> {
        match ty {
            Type::String(max) | Type::Bytes(max) => Some(format!("{var}.len() <= {max}")),
            Type::List(element, max) => {
                let count = format!("{var}.len() <= {max}");
                Some(match Self::limit_check(element, "item") {
                    Some(each) => format!("{count} && {var}.iter().all(|item| {each})"),
                    None => count,
                })
            }
            _ => None,
        }
    }
}
