//! The `Resilient` impl and the companion's entry point.

use super::{bytes_literal, str_literal, Gen, Side};
use crate::model::*;
use crate::names::ident;

impl<'a> Gen<'a> {
    pub(super) fn resilient(&mut self, res: &str, r: &Resilience) {
        let c = self.c;
        let option = |v: Option<u32>| v.map_or("None".to_string(), |n| format!("Some({n})"));
        self.out.blank();
        self.out.open(format!("impl {res}::Resilient for {} {{", self.marker));
        self.out.open(format!("const POLICY: {res}::Policy = {res}::Policy {{"));
        self.out.line(format!("every_requests: {},", option(r.every_requests)));
        self.out.line(format!("every_ms: {},", option(r.every_ms)));
        let d = match r.distillation {
            Distillation::Logical => "Logical",
            Distillation::Image => "Image",
        };
        self.out.line(format!("distillation: {res}::Distillation::{d},"));
        self.out.close("};");
        if let Some(ms) = r.deadline_ms {
            self.out.line(format!("const DEADLINE_MS: u32 = {ms};"));
        }
        for (name, list) in
            [("idempotent", &r.idempotent), ("durable", &r.durable), ("checkpoint_after", &r.checkpoint_after)]
        {
            self.out.blank();
            if list.is_empty() {
                self.out.open(format!("fn {name}(_request: &Request) -> bool {{"));
                self.out.line("false");
            } else {
                self.out.open(format!("fn {name}(request: &Request) -> bool {{"));
                let patterns: Vec<String> = list.iter().map(|&i| self.pattern(Side::Request, &c.requests[i])).collect();
                self.matches("request", &patterns);
            }
            self.out.close("}");
        }
        if !r.deadlines.is_empty() {
            // One test per deadline, in the order of their first request.
            let mut groups: Vec<(u32, Vec<String>)> = Vec::new();
            for &(i, ms) in &r.deadlines {
                let pattern = self.pattern(Side::Request, &c.requests[i]);
                match groups.iter_mut().find(|(m, _)| *m == ms) {
                    Some((_, patterns)) => patterns.push(pattern),
                    None => groups.push((ms, vec![pattern])),
                }
            }
            self.out.blank();
            self.out.open("fn deadline_ms(request: &Request) -> u32 {");
            for (ms, patterns) in groups {
                self.out.open(format!("if matches!(request, {}) {{", patterns.join(" | ")));
                self.out.line(format!("return {ms};"));
                self.out.close("}");
            }
            self.out.line(format!("<Self as {res}::Resilient>::DEADLINE_MS"));
            self.out.close("}");
        }
        self.out.blank();
        self.out.open("fn unrecoverable() -> Reply {");
        let reply = &c.replies[r.unrecoverable.reply];
        let fields: Vec<String> = reply
            .fields
            .iter()
            .zip(&r.unrecoverable.values)
            .map(|(f, v)| format!("{}: {}", ident(&f.name), value_expr(v, &f.ty)))
            .collect();
        self.out.struct_lit(&format!("Reply::{}", ident(&reply.name)), &fields, "");
        self.out.close("}");
        self.out.close("}");

        self.out.blank();
        self.out.prose(&format!(
            "The companion of the `{}` service: runs `service_program` and keeps its clients' sessions alive across its crashes (only returns on a fatal error).",
            c.name
        ));
        self.out.open("pub fn run_companion(service_program: &str) -> i32 {");
        self.out.line(format!("{res}::companion::run::<{}>(service_program)", self.marker));
        self.out.close("}");
    }
}

/// The Rust expression of a checked literal of type `ty`.
fn value_expr(v: &Value, ty: &Type) -> String {
    match (v, ty) {
        (Value::Int(n), Type::I64) if *n == i128::from(i64::MIN) => "i64::MIN".to_string(),
        (Value::Int(n), _) => n.to_string(),
        (Value::Bool(b), _) => b.to_string(),
        (Value::Str(s), Type::Bytes(_)) => format!("Vec::from(&{}[..])", bytes_literal(s)),
        (Value::Str(s), _) => format!("String::from({})", str_literal(s)),
        (Value::List(items), _) if items.is_empty() => "Vec::new()".to_string(),
        (Value::List(items), _) => {
            // The checker gives list values to list fields only.
            let element = match ty {
                Type::List(element, _) => element,
                other => other,
            };
            let items: Vec<String> = items.iter().map(|v| value_expr(v, element)).collect();
            format!("Vec::from([{}])", items.join(", "))
        }
    }
}
