//! Checks of the protocol section: states and their turns, transitions
//! (the sugar expanded into anonymous states), start and error, and the
//! whole-machine rules (reachability, what each request waits for,
//! unused messages).

use super::{Checker, Protocol, Slot};
use crate::ast::{self, Direction, Name, ProtocolItem, Turn};
use crate::diagnostics::{did_you_mean, Span};
use crate::model::*;
use std::collections::{HashMap, HashSet, VecDeque};

impl<'a> Checker<'a> {
    pub(super) fn protocol(&mut self, p: &'a ast::ProtocolDecl) -> Option<Protocol> {
        let errors_before = self.sink_len();
        let mut start: Option<&Name> = None;
        let mut error: Option<&Name> = None;
        let mut decls: Vec<&ast::StateDecl> = Vec::new();
        let mut by_name: HashMap<&str, Span> = HashMap::new();
        for item in &p.items {
            match item {
                ProtocolItem::Start(name, span) | ProtocolItem::Error(name, span) => {
                    let (slot, word) = if matches!(item, ProtocolItem::Start(..)) {
                        (&mut start, "start")
                    } else {
                        (&mut error, "error")
                    };
                    match slot {
                        Some(first) => {
                            let msg = format!("duplicate `{word}` (the first is at {})", first.span);
                            self.err(*span, msg);
                        }
                        None => *slot = Some(name),
                    }
                }
                ProtocolItem::State(s) => {
                    self.usable(&s.name, "state name");
                    if let Some(first) = by_name.get(s.name.text.as_str()) {
                        let msg = format!("duplicate state `{}` (first declared at {first})", s.name.text);
                        self.err(s.name.span, msg);
                    } else {
                        by_name.insert(&s.name.text, s.name.span);
                        decls.push(s);
                    }
                }
            }
        }
        let error_reply = error.and_then(|e| self.lookup_as(e, Direction::Reply, "`error`"));

        // Lay out the states: each declared one, then its anonymous ones.
        let mut slots: Vec<Slot<'a>> = Vec::new();
        let mut taken: HashSet<String> = decls.iter().map(|d| d.name.text.clone()).collect();
        let mut slot_names: Vec<String> = Vec::new();
        let mut index_of: HashMap<&str, usize> = HashMap::new();
        for d in &decls {
            let parent = slots.len();
            index_of.insert(&d.name.text, parent);
            slots.push(Slot::Declared(d));
            slot_names.push(d.name.text.clone());
            let mut seen = HashSet::new();
            for t in d.transitions.iter().filter(|t| t.then.is_some()) {
                if !seen.insert(t.message.text.as_str()) {
                    continue; // a duplicate transition, reported below
                }
                let base = format!("{}_{}", d.name.text, t.message.text);
                let mut name = base.clone();
                let mut n = 2;
                while taken.contains(&name) {
                    name = format!("{base}_{n}");
                    n += 1;
                }
                taken.insert(name.clone());
                slots.push(Slot::Anonymous { parent, transition: t });
                slot_names.push(name);
            }
        }

        // Resolve every state; `spans[i][j]` is where transition j of state i
        // names its message.
        let mut states: Vec<State> = Vec::new();
        let mut spans: Vec<Vec<Span>> = Vec::new();
        for (i, slot) in slots.iter().enumerate() {
            let (state, at) = match slot {
                Slot::Declared(d) => self.declared_state(d, i, &slots, &index_of, error_reply),
                Slot::Anonymous { parent, transition } => {
                    let then = transition.then.as_ref().expect("anonymous states come from sugar");
                    let turn = match states[*parent].turn {
                        Turn::Client => Turn::Service,
                        Turn::Service => Turn::Client,
                    };
                    let mut transitions = Vec::new();
                    let origin = self.messages.get(transition.message.text.as_str()).map_or(0, |m| m.index);
                    if let Some(message) = self.transition_message(then, turn, Some(&transition.message), error_reply) {
                        if let Some(target) = self.state_index(&transition.target, &index_of) {
                            transitions.push(Transition { message, target });
                        }
                    }
                    let state = State {
                        name: slot_names[i].clone(),
                        docs: Vec::new(),
                        turn,
                        transitions,
                        origin: Some((*parent, origin)),
                    };
                    (state, vec![then.span])
                }
            };
            states.push(state);
            spans.push(at);
        }

        let start = match start {
            None => {
                self.err(p.span, "the protocol has no start state (add `start <State>;`)");
                None
            }
            Some(name) => self.state_index(name, &index_of).filter(|&s| {
                if states[s].turn == Turn::Service {
                    self.err(
                        name.span,
                        format!(
                            "the start state `{}` is service-turn; a session must start in a client-turn state",
                            name.text
                        ),
                    );
                    false
                } else {
                    true
                }
            }),
        };
        let start = start?;
        if self.sink_len() != errors_before {
            return None;
        }
        let reached = self.reachability(&states, start, &slots);
        self.request_turns(&states, &spans, &reached);
        self.unused_messages(&states, error_reply);
        Some((states, start, error_reply))
    }

    pub(super) fn sink_len(&self) -> usize {
        self.sink.len()
    }

    pub(super) fn state_index(&mut self, name: &Name, index_of: &HashMap<&str, usize>) -> Option<usize> {
        let found = index_of.get(name.text.as_str()).copied();
        if found.is_none() {
            let hint = did_you_mean(&name.text, index_of.keys().copied());
            self.err(name.span, format!("unknown state `{}`{hint}", name.text));
        }
        found
    }

    /// Resolve a transition's message in a state of `turn`; `after` is the
    /// message a sugar transition's second message answers.
    pub(super) fn transition_message(
        &mut self,
        name: &Name,
        turn: Turn,
        after: Option<&Name>,
        error_reply: Option<usize>,
    ) -> Option<usize> {
        let m = self.lookup(name)?;
        let wanted = if turn == Turn::Client { Direction::Request } else { Direction::Reply };
        if m.direction != wanted {
            let context = match after {
                Some(first) => format!("after {} `{}` a {} is needed", m.direction.word(), first.text, wanted.word()),
                None => format!("a {} state takes {} only", turn.describe(), wanted.plural()),
            };
            self.err(name.span, format!("`{}` is a {}, but {context}", name.text, m.direction.word()));
            return None;
        }
        if m.direction == Direction::Reply && Some(m.index) == error_reply {
            self.err(
                name.span,
                format!(
                    "`{}` is the protocol's `error` reply, which every service-turn state allows and which returns to where the request was sent; it cannot have transitions of its own",
                    name.text
                ),
            );
            return None;
        }
        Some(m.index)
    }

    pub(super) fn declared_state(
        &mut self,
        d: &ast::StateDecl,
        index: usize,
        slots: &[Slot<'_>],
        index_of: &HashMap<&str, usize>,
        error_reply: Option<usize>,
    ) -> (State, Vec<Span>) {
        // The turn: as marked, else decided by the first known message.
        let first_known =
            d.transitions.iter().find_map(|t| self.messages.get(t.message.text.as_str()).map(|m| (m.direction, t)));
        let turn = match (d.turn, first_known) {
            (Some((turn, _)), _) => turn,
            (None, Some((Direction::Reply, _))) => Turn::Service,
            _ => Turn::Client,
        };
        let mut transitions = Vec::new();
        let mut spans = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for t in &d.transitions {
            let Some(m) = self.lookup(&t.message) else { continue };
            let wanted = if turn == Turn::Client { Direction::Request } else { Direction::Reply };
            if m.direction != wanted {
                match (d.turn, first_known) {
                    (None, Some((_, first))) => self.err(
                        t.message.span,
                        format!(
                            "state `{}` mixes requests and replies: `{}` is a {}, but `{}` (at {}) is a {}",
                            d.name.text,
                            t.message.text,
                            m.direction.word(),
                            first.message.text,
                            first.message.span,
                            wanted.word()
                        ),
                    ),
                    _ => self.err(
                        t.message.span,
                        format!(
                            "`{}` is a {}, but `{}` is a {} state, which takes {} only",
                            t.message.text,
                            m.direction.word(),
                            d.name.text,
                            turn.describe(),
                            wanted.plural()
                        ),
                    ),
                }
                continue;
            }
            if let Some(first) = seen.get(t.message.text.as_str()) {
                let msg =
                    format!("state `{}` already has a transition on `{}` (at {first})", d.name.text, t.message.text);
                self.err(t.message.span, msg);
                continue;
            }
            seen.insert(&t.message.text, t.message.span);
            let Some(message) = self.transition_message(&t.message, turn, None, error_reply) else { continue };
            let target = if t.then.is_some() {
                // The anonymous state laid out for this transition.
                slots.iter().position(|s| matches!(s, Slot::Anonymous { parent, transition } if *parent == index && std::ptr::eq(*transition, t)))
            } else {
                self.state_index(&t.target, index_of)
            };
            if let Some(target) = target {
                transitions.push(Transition { message, target });
                spans.push(t.message.span);
            }
        }
        if turn == Turn::Service && d.transitions.is_empty() {
            self.err(
                d.name.span,
                format!(
                    "service-turn state `{}` has no transitions: the client would wait for a reply forever",
                    d.name.text
                ),
            );
        }
        (State { name: d.name.text.clone(), docs: d.docs.clone(), turn, transitions, origin: None }, spans)
    }

    /// Report unreachable states; which states are reachable.
    pub(super) fn reachability(&mut self, states: &[State], start: usize, slots: &[Slot<'_>]) -> Vec<bool> {
        let mut reached = vec![false; states.len()];
        let mut queue = VecDeque::from([start]);
        reached[start] = true;
        while let Some(s) = queue.pop_front() {
            for t in &states[s].transitions {
                if !reached[t.target] {
                    reached[t.target] = true;
                    queue.push_back(t.target);
                }
            }
        }
        // Anonymous states are reachable exactly when their parent is.
        for (slot, reached) in slots.iter().zip(&reached) {
            if let (Slot::Declared(d), false) = (slot, reached) {
                let msg =
                    format!("state `{}` is unreachable from the start state `{}`", d.name.text, states[start].name);
                self.err(d.name.span, msg);
            }
        }
        reached
    }

    /// A request must always, or never, leave the client waiting for a
    /// reply: its client method returns the reply or nothing.
    pub(super) fn request_turns(&mut self, states: &[State], spans: &[Vec<Span>], reached: &[bool]) {
        let mut first: HashMap<usize, (Turn, Span)> = HashMap::new();
        for ((s, spans), reached) in states.iter().zip(spans).zip(reached) {
            if s.turn != Turn::Client || !reached {
                continue;
            }
            for (t, &span) in s.transitions.iter().zip(spans) {
                let next = states[t.target].turn;
                match first.get(&t.message) {
                    Some(&(turn, at)) if turn != next => {
                        let msg = format!(
                            "request `{}` leads to a {} state here but to a {} state at {at}; it must always (or never) wait for a reply",
                            self.requests[t.message].name,
                            next.describe(),
                            turn.describe()
                        );
                        self.err(span, msg);
                    }
                    Some(_) => {}
                    None => {
                        first.insert(t.message, (next, span));
                    }
                }
            }
        }
    }

    pub(super) fn unused_messages(&mut self, states: &[State], error_reply: Option<usize>) {
        let mut used_requests = HashSet::new();
        let mut used_replies: HashSet<usize> = error_reply.into_iter().collect();
        for s in states {
            for t in &s.transitions {
                match s.turn {
                    Turn::Client => used_requests.insert(t.message),
                    Turn::Service => used_replies.insert(t.message),
                };
            }
        }
        let mut unused: Vec<(Span, String)> = Vec::new();
        for m in self.messages.values() {
            let used = match m.direction {
                Direction::Request => used_requests.contains(&m.index),
                Direction::Reply => used_replies.contains(&m.index),
            };
            if !used {
                let name = match m.direction {
                    Direction::Request => &self.requests[m.index].name,
                    Direction::Reply => &self.replies[m.index].name,
                };
                unused.push((m.span, format!("{} `{name}` is never used in the protocol", m.direction.word())));
            }
        }
        for (span, msg) in unused {
            self.err(span, msg);
        }
    }
}
