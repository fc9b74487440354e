//! The service side: the handler trait and `dispatch`.

use super::out::Body;
use super::{binding, Gen, DISPATCH_NAMES};
use crate::names::{self, ident};

impl<'a> Gen<'a> {
    pub(super) fn handler(&mut self) {
        let c = self.c;
        self.out.blank();
        self.out.prose(&format!(
            "The service side of the `{}` contract: one method per request. Replies go to `out`, as many as the protocol owes (none for a request that waits for none).",
            c.name
        ));
        self.allow_snake(&c.requests);
        self.out.open(format!("pub trait {}Handler {{", self.marker));
        for (i, m) in c.requests.iter().enumerate() {
            if i > 0 {
                self.out.blank();
            }
            if m.docs.is_empty() {
                self.out.prose(&format!("Handle a `{}` request.", m.name));
            }
            self.out.docs(&m.docs);
            let mut params = vec!["&mut self".to_string()];
            params.extend(m.fields.iter().map(|f| {
                let name = if f.name == "out" { "out_".to_string() } else { ident(&f.name) };
                format!("{name}: {}", Self::rust_type(&f.ty))
            }));
            params.push("out: &mut dyn protocol::ReplySink<Reply>".into());
            if params.len() > 7 {
                self.out.line("#[allow(clippy::too_many_arguments)]");
            }
            self.out.signature(&format!("fn {}", ident(&names::snake(&m.name))), &params, ";");
        }
        self.out.close("}");
    }

    pub(super) fn dispatch(&mut self) {
        let c = self.c;
        let handler = format!("{}Handler", self.marker);
        self.out.blank();
        self.out.line("/// Hand `request` to the `handler` method for it.");
        self.allow_snake(&c.requests);
        self.out.signature(
            &format!("pub fn dispatch<H: {handler} + ?Sized>"),
            &["handler: &mut H".into(), "request: Request".into(), "out: &mut dyn protocol::ReplySink<Reply>".into()],
            " {",
        );
        self.out.open("match request {");
        for m in &c.requests {
            let bound: Vec<(String, String)> = m.fields.iter().map(|f| binding(f, DISPATCH_NAMES)).collect();
            let patterns: Vec<String> = bound.iter().map(|b| b.0.clone()).collect();
            let mut args: Vec<String> = bound.iter().map(|b| b.1.clone()).collect();
            args.push("out".into());
            let call = format!("handler.{}", ident(&names::snake(&m.name)));
            self.out.arm(&format!("Request::{}", ident(&m.name)), &patterns, &Body::Call(call, args));
        }
        self.out.close("}");
        self.out.close("}");
    }
}
