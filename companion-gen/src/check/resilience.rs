//! Checks of the resilience section, and of the literals of its
//! `unrecoverable` reply.

use super::{Checker, Protocol};
use crate::ast::{self, Direction, Every, LiteralValue, Name, ResilienceItem, Turn};
use crate::diagnostics::{did_you_mean, Span};
use crate::model::*;
use std::collections::HashMap;

impl<'a> Checker<'a> {
    pub(super) fn resilience(&mut self, r: &ast::ResilienceDecl, proto: Option<&Protocol>) -> Option<Resilience> {
        let mut checkpoint_after: Vec<usize> = Vec::new();
        let mut idempotent: Vec<usize> = Vec::new();
        let mut durable: Vec<usize> = Vec::new();
        let mut listed_after: HashMap<String, Span> = HashMap::new();
        let mut listed_idempotent: HashMap<String, Span> = HashMap::new();
        let mut listed_durable: HashMap<String, Span> = HashMap::new();
        let mut every_requests: Option<(u32, Span)> = None;
        let mut every_ms: Option<(u32, Span)> = None;
        let mut distillation: Option<(Distillation, Span)> = None;
        let mut unrecoverable: Option<(Option<Unrecoverable>, Span)> = None;
        let mut deadline_ms: Option<(u32, Span)> = None;
        let mut deadlines: Vec<(usize, u32)> = Vec::new();
        let mut listed_deadline: HashMap<String, Span> = HashMap::new();
        for item in &r.items {
            match item {
                ResilienceItem::CheckpointAfter(list, _)
                | ResilienceItem::Idempotent(list, _)
                | ResilienceItem::Durable(list, _) => {
                    let (out, listed, what) = match item {
                        ResilienceItem::CheckpointAfter(..) => {
                            (&mut checkpoint_after, &mut listed_after, "`checkpoint after`")
                        }
                        ResilienceItem::Idempotent(..) => (&mut idempotent, &mut listed_idempotent, "`idempotent`"),
                        _ => (&mut durable, &mut listed_durable, "`durable`"),
                    };
                    for name in list {
                        if let Some(first) = listed.get(&name.text) {
                            self.err(name.span, format!("`{}` is already listed in {what} (at {first})", name.text));
                            continue;
                        }
                        listed.insert(name.text.clone(), name.span);
                        if let Some(i) = self.lookup_as(name, Direction::Request, what) {
                            out.push(i);
                        }
                    }
                }
                ResilienceItem::CheckpointEvery { count, count_span, unit, span } => {
                    let (slot, words) = match unit {
                        Every::Requests => (&mut every_requests, "requests"),
                        Every::Ms => (&mut every_ms, "ms"),
                    };
                    if let Some((_, first)) = slot {
                        let msg = format!("duplicate `checkpoint every ... {words}` (the first is at {first})");
                        self.err(*span, msg);
                    } else if *count == 0 {
                        self.err(
                            *count_span,
                            format!("`checkpoint every 0 {words}` would never checkpoint; give at least 1"),
                        );
                    } else if let Ok(n) = u32::try_from(*count) {
                        *slot = Some((n, *span));
                    } else {
                        self.err(
                            *count_span,
                            format!("{count} is out of range for `checkpoint every` (at most {})", u32::MAX),
                        );
                    }
                }
                ResilienceItem::Deadline { requests, ms, ms_span, span } => {
                    let Some(ms) = u32::try_from(*ms).ok().filter(|ms| *ms > 0) else {
                        self.err(*ms_span, format!("a deadline of {ms} ms is out of range (1 ms to {} ms)", u32::MAX));
                        continue;
                    };
                    if requests.is_empty() {
                        match deadline_ms {
                            Some((_, first)) => {
                                self.err(*span, format!("duplicate service `deadline` (the first is at {first})"))
                            }
                            None => deadline_ms = Some((ms, *span)),
                        }
                    }
                    for name in requests {
                        if let Some(first) = listed_deadline.get(&name.text) {
                            self.err(name.span, format!("`{}` already has a `deadline` (at {first})", name.text));
                            continue;
                        }
                        listed_deadline.insert(name.text.clone(), name.span);
                        if let Some(i) = self.lookup_as(name, Direction::Request, "`deadline`") {
                            deadlines.push((i, ms));
                        }
                    }
                }
                ResilienceItem::Distillation(d, span) => match distillation {
                    Some((_, first)) => self.err(*span, format!("duplicate `distillation` (the first is at {first})")),
                    None => distillation = Some((*d, *span)),
                },
                ResilienceItem::Unrecoverable { message, fields, span } => match unrecoverable {
                    Some((_, first)) => self.err(*span, format!("duplicate `unrecoverable` (the first is at {first})")),
                    None => unrecoverable = Some((self.unrecoverable(message, fields, proto), *span)),
                },
            }
        }
        // A durable request is one whose effect must survive a power cut;
        // an idempotent one has no effect to keep.
        let mut durable_names: Vec<(&String, &Span)> = listed_durable.iter().collect();
        durable_names.sort_by_key(|(_, span)| **span);
        for (name, span) in durable_names {
            if let Some(at) = listed_idempotent.get(name) {
                self.err(
                    *span,
                    format!("`{name}` is `idempotent` (at {at}): it changes nothing, so it cannot be `durable`"),
                );
            }
        }
        let Some((unrecoverable, _)) = unrecoverable else {
            self.err(
                r.span,
                "the `resilience` section needs an `unrecoverable` reply (what a client is told when its request cannot be recovered)",
            );
            return None;
        };
        Some(Resilience {
            checkpoint_after,
            every_requests: every_requests.map(|e| e.0),
            every_ms: every_ms.map(|e| e.0),
            idempotent,
            durable,
            distillation: distillation.map_or(Distillation::Logical, |d| d.0),
            deadline_ms: deadline_ms.map(|d| d.0),
            deadlines,
            unrecoverable: unrecoverable?,
        })
    }

    pub(super) fn unrecoverable(
        &mut self,
        message: &Name,
        given: &[(Name, ast::Literal)],
        proto: Option<&Protocol>,
    ) -> Option<Unrecoverable> {
        let reply = self.lookup_as(message, Direction::Reply, "`unrecoverable`")?;
        let fields = self.replies[reply].fields.clone();
        if let Some(f) = fields.iter().find(|f| f.ty.carries_handles()) {
            let what = match &f.ty {
                Type::Endpoint => "an endpoint",
                Type::Handle => "a handle",
                Type::List(element, _) if **element == Type::Endpoint => "a list of endpoints",
                _ => "a list of handles",
            };
            let msg = format!(
                "reply `{}` cannot be `unrecoverable`: its field `{}` is {what}, which no literal can give",
                message.text, f.name
            );
            self.err(message.span, msg);
            return None;
        }
        let mut values: Vec<Option<Value>> = vec![None; fields.len()];
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for (name, literal) in given {
            if let Some(first) = seen.get(name.text.as_str()) {
                self.err(name.span, format!("field `{}` is given twice (first at {first})", name.text));
                ok = false;
                continue;
            }
            seen.insert(&name.text, name.span);
            let Some(i) = fields.iter().position(|f| f.name == name.text) else {
                let hint = did_you_mean(&name.text, fields.iter().map(|f| f.name.as_str()));
                self.err(name.span, format!("reply `{}` has no field `{}`{hint}", message.text, name.text));
                ok = false;
                continue;
            };
            match self.literal(&format!("field `{}`", fields[i].name), &fields[i].ty, literal) {
                Some(v) => values[i] = Some(v),
                None => ok = false,
            }
        }
        for (f, v) in fields.iter().zip(&values) {
            if v.is_none() && !seen.contains_key(f.name.as_str()) {
                let msg =
                    format!("`unrecoverable {}` lacks field `{}` ({})", message.text, f.name, f.ty.contract_name());
                self.err(message.span, msg);
                ok = false;
            }
        }
        // The companion sends this reply in whatever state the lost request
        // left the session: every service-turn state must allow it.
        if let Some((states, _, error_reply)) = proto {
            if *error_reply != Some(reply) {
                if let Some(s) =
                    states.iter().find(|s| s.turn == Turn::Service && !s.transitions.iter().any(|t| t.message == reply))
                {
                    let msg = format!(
                        "the `unrecoverable` reply must be allowed in every service-turn state, and `{}` is not allowed in `{}`; make it the protocol's `error` reply",
                        message.text, s.name
                    );
                    self.err(message.span, msg);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Unrecoverable { reply, values: values.into_iter().flatten().collect() })
    }

    /// Check `literal` as a value of type `ty`; `what` names the field (or
    /// the list element) in messages.
    pub(super) fn literal(&mut self, what: &str, ty: &Type, literal: &ast::Literal) -> Option<Value> {
        let mismatch = |needs: &str| {
            format!("{what} is {}, so it needs {needs}; found {}", ty.contract_name(), literal.value.kind())
        };
        match (&literal.value, ty) {
            (LiteralValue::Int(v), _) if ty.int_range().is_some() => {
                let (lo, hi) = ty.int_range().unwrap_or((0, 0));
                if *v < lo || *v > hi {
                    let msg = format!("{v} is out of range for {what} ({}: {lo} to {hi})", ty.contract_name());
                    self.err(literal.span, msg);
                    return None;
                }
                Some(Value::Int(*v))
            }
            (LiteralValue::Bool(b), Type::Bool) => Some(Value::Bool(*b)),
            (LiteralValue::Str(s), Type::String(max) | Type::Bytes(max)) => {
                if s.len() > *max as usize {
                    let msg = format!(
                        "this string is {} bytes long, more than the {max} that {what} ({}) allows",
                        s.len(),
                        ty.contract_name()
                    );
                    self.err(literal.span, msg);
                    return None;
                }
                Some(Value::Str(s.clone()))
            }
            (LiteralValue::List(items), Type::List(element, max)) => {
                let mut ok = true;
                if items.len() > *max as usize {
                    let msg = format!(
                        "this list has {} elements, more than the {max} that {what} ({}) allows",
                        items.len(),
                        ty.contract_name()
                    );
                    self.err(literal.span, msg);
                    ok = false;
                }
                let element_what = format!("an element of {what}");
                let mut values = Vec::new();
                for item in items {
                    match self.literal(&element_what, element, item) {
                        Some(v) => values.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(Value::List(values))
            }
            _ => {
                let needs = match ty {
                    Type::Bool => "`true` or `false`",
                    Type::String(_) | Type::Bytes(_) => "a string",
                    Type::List(..) => "a list (`[a, b, ...]`)",
                    _ => "an integer",
                };
                self.err(literal.span, mismatch(needs));
                None
            }
        }
    }
}
