//! The checker: every rule of the contract language that the grammar does
//! not express, from duplicate names to unreachable states, resolving the
//! syntax tree into a [`Contract`] on the way. All errors are reported,
//! not just the first; checks of the whole protocol (reachability, unused
//! messages, what a request waits for) run only when the parts they build
//! on are free of errors, so that one typo does not cascade.

mod protocol;
mod resilience;

use crate::ast::{self, Direction, Item, Name};
use crate::diagnostics::{did_you_mean, Sink, Span};
use crate::model::*;
use crate::names;
use std::collections::HashMap;

/// Largest `string[N]` / `bytes[N]`: a message must fit in a channel ring.
pub const MAX_LENGTH: u64 = 1 << 20;
/// Maximum length when none is written.
pub const DEFAULT_LENGTH: u32 = 65536;

/// Client stub methods that requests cannot be named after.
const CLIENT_METHODS: &[&str] = &["new", "channel", "channel_mut", "is_idle", "next_reply", "send_request"];
/// Type names the generated code defines or imports.
const GENERATED_TYPES: &[&str] = &["Request", "Reply", "State", "String", "Vec"];
/// Largest `list<T>[N]`.
pub const MAX_LIST_COUNT: u64 = 65536;
/// The field types (`list` last: it is not a list's element type).
const TYPES: &[&str] =
    &["u8", "u16", "u32", "u64", "i32", "i64", "bool", "string", "bytes", "endpoint", "handle", "list"];

#[derive(Clone, Copy)]
struct MessageRef {
    direction: Direction,
    index: usize,
    span: Span,
}

/// What a state slot of the final state list is.
enum Slot<'a> {
    Declared(&'a ast::StateDecl),
    /// A state created by `Request -> Reply -> Target` in state `parent`.
    Anonymous {
        parent: usize,
        transition: &'a ast::TransitionDecl,
    },
}

struct Checker<'a> {
    sink: &'a mut Sink,
    messages: HashMap<&'a str, MessageRef>,
    requests: Vec<Message>,
    replies: Vec<Message>,
}

/// Check `file`; the contract if no error was found (errors go to `sink`).
pub(crate) fn check(file: &ast::File, source: &str, sink: &mut Sink) -> Option<Contract> {
    let mut c = Checker { sink, messages: HashMap::new(), requests: Vec::new(), replies: Vec::new() };
    c.contract_name(&file.name);
    let mut protocol: Option<&ast::ProtocolDecl> = None;
    let mut resilience: Option<&ast::ResilienceDecl> = None;
    for item in &file.items {
        match item {
            Item::Message(m) => c.message(m),
            Item::Protocol(p) => match protocol {
                Some(first) => c.err(p.span, format!("duplicate `protocol` section (the first is at {})", first.span)),
                None => protocol = Some(p),
            },
            Item::Resilience(r) => match resilience {
                Some(first) => {
                    c.err(r.span, format!("duplicate `resilience` section (the first is at {})", first.span))
                }
                None => resilience = Some(r),
            },
        }
    }
    if c.requests.is_empty() {
        c.err(file.name.span, format!("contract `{}` declares no requests", file.name.text));
    }
    c.method_names(file);
    let Some(protocol) = protocol else {
        c.err(file.name.span, format!("contract `{}` has no `protocol` section", file.name.text));
        return None;
    };
    let proto = c.protocol(protocol);
    let resilience = resilience.and_then(|r| c.resilience(r, proto.as_ref()));
    let (states, start, error_reply) = proto?;
    if !c.sink.is_empty() {
        return None;
    }
    let source =
        std::path::Path::new(source).file_name().map_or(source.to_string(), |f| f.to_string_lossy().into_owned());
    Some(Contract {
        name: file.name.text.clone(),
        source,
        docs: file.docs.clone(),
        requests: c.requests,
        replies: c.replies,
        states,
        start,
        error_reply,
        resilience,
    })
}

type Protocol = (Vec<State>, usize, Option<usize>);

impl<'a> Checker<'a> {
    fn err(&mut self, span: Span, message: impl Into<String>) {
        self.sink.error(span, message);
    }

    /// `self`, `Self`, `super`, `crate` and `_` cannot be Rust names.
    fn usable(&mut self, name: &Name, what: &str) -> bool {
        if names::UNUSABLE.contains(&name.text.as_str()) {
            self.err(name.span, format!("`{}` cannot be a {what}: Rust reserves it", name.text));
            false
        } else {
            true
        }
    }

    fn contract_name(&mut self, name: &Name) {
        if !self.usable(name, "contract name") {
            return;
        }
        let camel = names::camel(&name.text);
        if !camel.starts_with(|c: char| c.is_ascii_alphabetic()) {
            let msg = format!(
                "contract name `{}` cannot name a Rust type (in UpperCamelCase, which the generated types use, it must start with a letter)",
                name.text
            );
            self.err(name.span, msg);
        } else if GENERATED_TYPES.contains(&camel.as_str()) {
            self.err(
                name.span,
                format!(
                    "contract name `{}` would name its marker type `{camel}`, which the generated code already uses",
                    name.text
                ),
            );
        }
    }

    fn message(&mut self, m: &'a ast::MessageDecl) {
        let usable = self.usable(&m.name, "message name");
        if let Some(first) = self.messages.get(m.name.text.as_str()) {
            let msg = format!("duplicate message `{}` (first declared at {})", m.name.text, first.span);
            self.err(m.name.span, msg);
            return;
        }
        let mut fields: Vec<Field> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for f in &m.fields {
            self.usable(&f.name, "field name");
            if let Some(first) = seen.get(f.name.text.as_str()) {
                let msg = format!("duplicate field `{}` in `{}` (first declared at {first})", f.name.text, m.name.text);
                self.err(f.name.span, msg);
                continue;
            }
            seen.insert(&f.name.text, f.name.span);
            if let Some(ty) = self.field_type(&f.ty, false) {
                fields.push(Field { name: f.name.text.clone(), docs: f.docs.clone(), ty });
            }
        }
        let list = match m.direction {
            Direction::Request => &mut self.requests,
            Direction::Reply => &mut self.replies,
        };
        let index = list.len();
        list.push(Message { name: m.name.text.clone(), docs: m.docs.clone(), fields });
        if usable {
            self.messages.insert(&m.name.text, MessageRef { direction: m.direction, index, span: m.name.span });
        }
    }

    /// The type `t` names; `in_list` when it is a list's element type.
    fn field_type(&mut self, t: &ast::TypeRef, in_list: bool) -> Option<Type> {
        let name = t.name.text.as_str();
        if name == "list" {
            return self.list_type(t, in_list);
        }
        if let Some(element) = &t.element {
            if TYPES.contains(&name) {
                self.err(element.name.span, format!("`{name}` takes no element type (only `list<T>[N]` does)"));
                return None;
            }
        }
        let max = match t.max {
            None => DEFAULT_LENGTH,
            Some((_, span)) if name != "string" && name != "bytes" && TYPES.contains(&name) => {
                self.err(span, format!("`{name}` takes no maximum length (only `string` and `bytes` do)"));
                return None;
            }
            Some((0, span)) => {
                self.err(span, "a maximum length of 0 allows only empty values; give at least 1");
                return None;
            }
            Some((n, span)) if n > MAX_LENGTH => {
                self.err(span, format!("maximum length {n} is too large (the largest is {MAX_LENGTH}: a message must fit in a channel)"));
                return None;
            }
            Some((n, _)) => n as u32,
        };
        Some(match name {
            "u8" => Type::U8,
            "u16" => Type::U16,
            "u32" => Type::U32,
            "u64" => Type::U64,
            "i32" => Type::I32,
            "i64" => Type::I64,
            "bool" => Type::Bool,
            "string" => Type::String(max),
            "bytes" => Type::Bytes(max),
            "endpoint" => Type::Endpoint,
            "handle" => Type::Handle,
            _ => {
                let types = if in_list { &TYPES[..TYPES.len() - 1] } else { TYPES };
                let hint = did_you_mean(name, types.iter().copied());
                let what = if in_list { "a list's element types" } else { "the types" };
                self.err(t.name.span, format!("unknown type `{name}`{hint}; {what} are {}", types.join(", ")));
                return None;
            }
        })
    }

    /// `list<T>[N]`; every error in it is reported.
    fn list_type(&mut self, t: &ast::TypeRef, in_list: bool) -> Option<Type> {
        if in_list {
            self.err(t.name.span, "a list cannot hold a list (`list<list<...>>`): give the inner list's elements a message of their own, or flatten it");
            return None;
        }
        let Some(element) = &t.element else {
            self.err(
                t.name.span,
                format!("`list` needs an element type and a maximum count: `list<T>[N]`, N from 1 to {MAX_LIST_COUNT}"),
            );
            return None;
        };
        let element = self.field_type(element, true);
        let max = match t.max {
            None => {
                self.err(
                    t.name.span,
                    format!("`list` needs a maximum count: `list<T>[N]`, N from 1 to {MAX_LIST_COUNT}"),
                );
                None
            }
            Some((0, span)) => {
                self.err(span, "a list of at most 0 elements is always empty; give a maximum count of at least 1");
                None
            }
            Some((n, span)) if n > MAX_LIST_COUNT => {
                self.err(span, format!("maximum count {n} is too large for a list (the largest is {MAX_LIST_COUNT})"));
                None
            }
            Some((n, _)) => Some(n as u32),
        };
        Some(Type::List(Box::new(element?), max?))
    }

    /// Client and handler methods are named after requests in snake_case:
    /// they must be distinct and not clash with the stub's own methods.
    fn method_names(&mut self, file: &ast::File) {
        let mut methods: HashMap<String, &Name> = HashMap::new();
        for item in &file.items {
            let Item::Message(m) = item else { continue };
            if m.direction != Direction::Request
                || self.messages.get(m.name.text.as_str()).map(|r| r.span) != Some(m.name.span)
            {
                continue;
            }
            let method = names::snake(&m.name.text);
            if CLIENT_METHODS.contains(&method.as_str()) {
                self.err(
                    m.name.span,
                    format!(
                        "request `{}` would generate the client method `{method}`, which the client stub already has",
                        m.name.text
                    ),
                );
            } else if let Some(first) = methods.get(&method) {
                let msg = format!(
                    "requests `{}` (at {}) and `{}` would both generate the method `{method}`",
                    first.text, first.span, m.name.text
                );
                self.err(m.name.span, msg);
            } else {
                methods.insert(method, &m.name);
            }
        }
    }

    /// Look a message up; report it if unknown.
    fn lookup(&mut self, name: &Name) -> Option<MessageRef> {
        let found = self.messages.get(name.text.as_str()).copied();
        if found.is_none() {
            let hint = did_you_mean(&name.text, self.messages.keys().copied());
            self.err(name.span, format!("unknown message `{}`{hint}", name.text));
        }
        found
    }

    /// Look a message up and require `direction`; `context` says why.
    fn lookup_as(&mut self, name: &Name, direction: Direction, context: &str) -> Option<usize> {
        let m = self.lookup(name)?;
        if m.direction != direction {
            let msg =
                format!("`{}` is a {}, but {context} needs a {}", name.text, m.direction.word(), direction.word());
            self.err(name.span, msg);
            return None;
        }
        Some(m.index)
    }
}

#[cfg(test)]
mod tests;
