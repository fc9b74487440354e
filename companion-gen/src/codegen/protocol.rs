//! The marker type and its `Protocol` impl: the state machine as tables.

use super::out::Body;
use super::{str_literal, Gen, Side};
use crate::model::*;
use crate::names::ident;

impl<'a> Gen<'a> {
    pub(super) fn marker(&mut self) {
        let c = self.c;
        self.out.blank();
        self.out.docs(&c.docs);
        if !c.docs.is_empty() {
            self.out.line("///");
        }
        self.out.prose(&format!("The `{}` contract, as a type: it implements [`protocol::Protocol`].", c.name));
        self.out.line(format!("pub struct {};", self.marker));
        self.out.blank();
    }

    pub(super) fn protocol_impl(&mut self) {
        let c = self.c;
        self.out.open(format!("impl protocol::Protocol for {} {{", self.marker));
        self.out.line("type Request = Request;");
        self.out.line("type Reply = Reply;");
        self.out.line("type State = State;");
        self.out.blank();
        self.out.line(format!("const NAME: &'static str = {};", str_literal(&c.name)));
        self.out.line(format!("const INITIAL: State = State::{};", ident(&c.states[c.start].name)));
        let largest = |ms: &[crate::model::Message]| ms.iter().map(|m| m.max_wire_bytes()).max().unwrap_or(0);
        self.out.line(format!("const MAX_REQUEST_BYTES: usize = {};", largest(&c.requests)));
        self.out.line(format!("const MAX_REPLY_BYTES: usize = {};", largest(&c.replies)));

        self.out.blank();
        let client: Vec<String> =
            c.states.iter().filter(|s| s.turn == Turn::Client).map(|s| format!("State::{}", ident(&s.name))).collect();
        if client.len() == c.states.len() {
            self.out.open("fn client_turn(_state: State) -> bool {");
            self.out.line("true");
        } else {
            self.out.open("fn client_turn(state: State) -> bool {");
            self.matches("state", &client);
        }
        self.out.close("}");

        self.after(Side::Request);
        self.after(Side::Reply);

        self.out.blank();
        match c.error_reply {
            Some(e) => {
                self.out.open("fn is_error_reply(reply: &Reply) -> bool {");
                let p = self.pattern(Side::Reply, &c.replies[e]);
                self.matches("reply", &[p]);
            }
            None => {
                self.out.open("fn is_error_reply(_reply: &Reply) -> bool {");
                self.out.line("false");
            }
        }
        self.out.close("}");

        for side in [Side::Request, Side::Reply] {
            let var = if side == Side::Request { "request" } else { "reply" };
            self.out.blank();
            self.out.open(format!("fn {var}_name({var}: &{}) -> &'static str {{", side.enum_name()));
            if self.messages(side).is_empty() {
                self.out.line(format!("match *{var} {{}}"));
            } else {
                self.out.open(format!("match {var} {{"));
                for m in self.messages(side) {
                    self.out.line(format!("{} => {},", self.pattern(side, m), str_literal(&m.name)));
                }
                self.out.close("}");
            }
            self.out.close("}");
        }
        self.out.close("}");
    }

    /// `matches!(var, A | B)`.
    pub(super) fn matches(&mut self, var: &str, alternatives: &[String]) {
        self.out.call("matches!", &[var.to_string(), alternatives.join(" | ")], "");
    }

    /// `after_request` or `after_reply`.
    pub(super) fn after(&mut self, side: Side) {
        let c = self.c;
        let (var, turn) = match side {
            Side::Request => ("request", Turn::Client),
            Side::Reply => ("reply", Turn::Service),
        };
        let mut arms = Vec::new();
        for s in c.states.iter().filter(|s| s.turn == turn) {
            for t in &s.transitions {
                let m = &self.messages(side)[t.message];
                arms.push((
                    format!("(State::{}, {})", ident(&s.name), self.pattern(side, m)),
                    format!("Some(State::{})", ident(&c.states[t.target].name)),
                ));
            }
        }
        self.out.blank();
        let enum_name = side.enum_name();
        if arms.is_empty() {
            self.out.open(format!("fn after_{var}(_state: State, _{var}: &{enum_name}) -> Option<State> {{"));
            self.out.line("None");
        } else {
            self.out.open(format!("fn after_{var}(state: State, {var}: &{enum_name}) -> Option<State> {{"));
            self.out.open(format!("match (state, {var}) {{"));
            for (pattern, value) in arms.iter().cloned() {
                self.out.arm(&pattern, &[], &Body::Expr(value));
            }
            if arms.len() < c.states.len() * self.messages(side).len() {
                self.out.line("_ => None,");
            }
            self.out.close("}");
        }
        self.out.close("}");
    }
}
