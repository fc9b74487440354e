//! The client stub: a method per request, checked against the protocol.

use super::{or_list, Gen};
use crate::model::*;
use crate::names::{self, ident};

impl<'a> Gen<'a> {
    /// The replies that can answer first a request leading to one of
    /// `targets` (the error reply included), and whether more replies can
    /// follow them (a stream).
    pub(super) fn first_replies(&self, targets: &[usize]) -> (Vec<&'a str>, bool) {
        let c = self.c;
        let mut names: Vec<&str> = Vec::new();
        let mut streams = false;
        for &t in targets {
            for tr in &c.states[t].transitions {
                let name = c.replies[tr.message].name.as_str();
                if !names.contains(&name) {
                    names.push(name);
                }
                streams |= c.states[tr.target].turn == Turn::Service;
            }
        }
        if let Some(e) = c.error_reply {
            names.push(&c.replies[e].name);
        }
        (names, streams)
    }

    pub(super) fn client(&mut self) {
        let c = self.c;
        let client = format!("{}Client", self.marker);
        let channel = "channel::Channel<Request, Reply>";
        self.out.blank();
        self.out.prose(&format!(
            "Client stub of the `{}` contract: one method per request. Every message is checked against the protocol; a violation by either side is an error.",
            c.name
        ));
        self.out.open(format!("pub struct {client} {{"));
        self.out.line(format!("channel: {channel},"));
        self.out.line(format!("checker: protocol::Checker<{}>,", self.marker));
        self.out.close("}");
        self.out.blank();
        self.allow_snake(&c.requests);
        self.out.open(format!("impl {client} {{"));
        self.out.prose(&format!("A session over `channel`, in the start state `{}`.", c.states[c.start].name));
        self.out.open(format!("pub fn new(channel: {channel}) -> Self {{"));
        self.out.struct_lit(&client, &["channel".into(), "checker: protocol::Checker::new()".into()], "");
        self.out.close("}");
        self.out.blank();
        self.out.line("/// The channel to the service.");
        self.out.open(format!("pub fn channel(&self) -> &{channel} {{"));
        self.out.line("&self.channel");
        self.out.close("}");
        self.out.blank();
        self.out.line("/// The channel to the service, mutably.");
        self.out.open(format!("pub fn channel_mut(&mut self) -> &mut {channel} {{"));
        self.out.line("&mut self.channel");
        self.out.close("}");
        self.out.blank();
        self.out.line("/// Whether no reply is owed, so that a request may be sent.");
        self.out.open("pub fn is_idle(&self) -> bool {");
        self.out.line("self.checker.is_idle()");
        self.out.close("}");

        for (i, m) in c.requests.iter().enumerate() {
            let targets: Vec<usize> = c
                .states
                .iter()
                .filter(|s| s.turn == Turn::Client)
                .flat_map(|s| &s.transitions)
                .filter(|t| t.message == i)
                .map(|t| t.target)
                .collect();
            let waits = targets.first().is_some_and(|&t| c.states[t].turn == Turn::Service);
            self.out.blank();
            self.out.docs(&m.docs);
            if !m.docs.is_empty() {
                self.out.line("///");
            }
            let (ret, doc) = if waits {
                let (replies, streams) = self.first_replies(&targets);
                let more = if streams {
                    ", the first of several: more follow through [`next_reply`](Self::next_reply)"
                } else {
                    ""
                };
                (
                    "Result<Reply, protocol::ClientError>",
                    format!("Sends `{}` and returns the reply ({}){more}.", m.name, or_list(&replies)),
                )
            } else {
                ("Result<(), protocol::ClientError>", format!("Sends `{}`; no reply is owed.", m.name))
            };
            self.out.prose(&doc);
            let mut params = vec!["&mut self".to_string()];
            params.extend(m.fields.iter().map(|f| format!("{}: {}", ident(&f.name), Self::rust_type(&f.ty))));
            if params.len() > 7 {
                self.out.line("#[allow(clippy::too_many_arguments)]");
            }
            self.out.signature(&format!("pub fn {}", ident(&names::snake(&m.name))), &params, &format!(" -> {ret} {{"));
            let fields: Vec<String> = m.fields.iter().map(|f| ident(&f.name)).collect();
            self.out.struct_lit(&format!("self.send_request(Request::{}", ident(&m.name)), &fields, ")?;");
            self.out.line(if waits { "self.next_reply()" } else { "Ok(())" });
            self.out.close("}");
        }

        self.out.blank();
        self.out.line("/// The next reply the service owes: after a request that waits for one,");
        self.out.line("/// while [`is_idle`](Self::is_idle) is false (replies that stream).");
        self.out.open("pub fn next_reply(&mut self) -> Result<Reply, protocol::ClientError> {");
        self.out.open("if self.checker.is_idle() {");
        self.out.open("return Err(protocol::ClientError::Violation(protocol::Violation {");
        self.out.line("by_service: false,");
        let text = format!("\"{}: no reply is owed in state {{:?}}\"", c.name);
        self.out.call("message: alloc::format!", &[text, "self.checker.state()".into()], ",");
        self.out.close("}));");
        self.out.close("}");
        self.out.line("let reply = self.channel.recv()?;");
        self.out.line("self.checker.on_reply(&reply)?;");
        self.out.line("Ok(reply)");
        self.out.close("}");

        self.out.blank();
        self.out.line("/// Check `request` (its lengths, then the protocol) and send it.");
        self.out.open("fn send_request(&mut self, request: Request) -> Result<(), protocol::ClientError> {");
        self.out.open("if !request.within_limits() {");
        self.out.open("return Err(protocol::ClientError::Channel(");
        self.out.line("channel::ChannelError::TooBig,");
        self.out.close("));");
        self.out.close("}");
        self.out.line("self.checker.on_request(&request)?;");
        self.out.line("self.channel.send(request)?;");
        self.out.line("Ok(())");
        self.out.close("}");
        self.out.close("}");
    }
}
