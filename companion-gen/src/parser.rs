//! The parser: tokens to the syntax tree of [`crate::ast`], by recursive
//! descent over the grammar in README.md. It stops at the first syntax
//! error ("expected X, found Y"); checking meaning is [`crate::check`]'s
//! job.

use crate::ast::*;
use crate::diagnostics::{Diagnostic, Sink, Span};
use crate::lexer::{Token, TokenKind};

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    sink: &'a Sink,
}

type PResult<T> = Result<T, Diagnostic>;

/// How deeply `<...>` may nest in a type as written: enough for the
/// checker to see (and reject) a list of lists.
const MAX_TYPE_DEPTH: usize = 2;

/// Parse a whole file; `tokens` ends with `Eof`.
pub(crate) fn parse_file(tokens: &[Token], sink: &Sink) -> PResult<File> {
    let mut p = Parser { tokens, pos: 0, sink };
    p.file()
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &'a Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> &'a Token {
        let t = self.peek();
        if t.kind != TokenKind::Eof {
            self.pos += 1;
        }
        t
    }

    fn error<T>(&self, expected: &str) -> PResult<T> {
        let t = self.peek();
        Err(self.sink.make(t.span, format!("expected {expected}, found {}", t.kind.describe())))
    }

    /// Whether the next token is the identifier `word`.
    fn at_word(&self, word: &str) -> bool {
        matches!(&self.peek().kind, TokenKind::Ident(s) if s == word)
    }

    /// Consume the keyword `word` (an identifier); its position.
    fn word(&mut self, word: &str, expected: &str) -> PResult<Span> {
        if self.at_word(word) {
            Ok(self.next().span)
        } else {
            self.error(expected)
        }
    }

    fn punct(&mut self, kind: TokenKind, context: &str) -> PResult<Span> {
        if self.peek().kind == kind {
            Ok(self.next().span)
        } else {
            self.error(&format!("`{}`{context}", kind.punct()))
        }
    }

    fn eat(&mut self, kind: TokenKind) -> bool {
        if self.peek().kind == kind {
            self.next();
            true
        } else {
            false
        }
    }

    fn name(&mut self, what: &str) -> PResult<Name> {
        match &self.peek().kind {
            TokenKind::Ident(s) => {
                let span = self.next().span;
                Ok(Name { text: s.clone(), span })
            }
            _ => self.error(what),
        }
    }

    fn file(&mut self) -> PResult<File> {
        let docs = self.peek().docs.clone();
        self.word("contract", "`contract`")?;
        let name = self.name("the contract's name")?;
        self.punct(TokenKind::LBrace, " after the contract's name")?;
        let mut items = Vec::new();
        loop {
            let t = self.peek();
            match &t.kind {
                TokenKind::RBrace => {
                    self.next();
                    break;
                }
                TokenKind::Ident(w) if w == "request" || w == "reply" => items.push(Item::Message(self.message()?)),
                TokenKind::Ident(w) if w == "protocol" => items.push(Item::Protocol(self.protocol()?)),
                TokenKind::Ident(w) if w == "resilience" => items.push(Item::Resilience(self.resilience()?)),
                _ => return self.error("`request`, `reply`, `protocol`, `resilience` or `}`"),
            }
        }
        if self.peek().kind != TokenKind::Eof {
            return self.error("end of file (one contract per file)");
        }
        Ok(File { docs, name, items })
    }

    fn message(&mut self) -> PResult<MessageDecl> {
        let t = self.next();
        let docs = t.docs.clone();
        let direction =
            if t.kind == TokenKind::Ident("request".into()) { Direction::Request } else { Direction::Reply };
        let name = self.name(&format!("the {}'s name", direction.word()))?;
        self.punct(TokenKind::LBrace, &format!(" after `{} {}`", direction.word(), name.text))?;
        let mut fields = Vec::new();
        while !self.eat(TokenKind::RBrace) {
            let docs = self.peek().docs.clone();
            let fname = self.name("a field name or `}`")?;
            self.punct(TokenKind::Colon, &format!(" after field `{}`", fname.text))?;
            let ty = self.type_ref(0)?;
            fields.push(FieldDecl { docs, name: fname, ty });
            if !self.eat(TokenKind::Comma) {
                self.punct(TokenKind::RBrace, " or `,` after a field")?;
                break;
            }
        }
        Ok(MessageDecl { docs, direction, name, fields })
    }

    /// `name [ "<" type ">" ] [ "[" integer "]" ]`; `depth` counts the
    /// enclosing `<...>` (a list of lists parses, and the checker rejects
    /// it; deeper nesting is a syntax error, so the recursion is bounded).
    fn type_ref(&mut self, depth: usize) -> PResult<TypeRef> {
        let name = self.name("a type")?;
        let element = if self.peek().kind == TokenKind::Lt {
            if depth >= MAX_TYPE_DEPTH {
                let t = self.peek();
                return Err(self.sink.make(t.span, "types nest too deeply (a list cannot hold a list)"));
            }
            self.next();
            let element = self.type_ref(depth + 1)?;
            self.punct(TokenKind::Gt, " after the element type")?;
            Some(Box::new(element))
        } else {
            None
        };
        let max = if self.eat(TokenKind::LBracket) {
            let t = self.peek();
            let TokenKind::Int(n) = t.kind else {
                return self.error(if element.is_some() { "a maximum count" } else { "a maximum length" });
            };
            self.next();
            self.punct(
                TokenKind::RBracket,
                if element.is_some() { " after the maximum count" } else { " after the maximum length" },
            )?;
            Some((n, t.span))
        } else {
            None
        };
        Ok(TypeRef { name, element, max })
    }

    fn protocol(&mut self) -> PResult<ProtocolDecl> {
        let span = self.next().span;
        self.punct(TokenKind::LBrace, " after `protocol`")?;
        let mut items = Vec::new();
        loop {
            let t = self.peek();
            let word = match &t.kind {
                TokenKind::RBrace => {
                    self.next();
                    return Ok(ProtocolDecl { span, items });
                }
                TokenKind::Ident(w) => w.as_str(),
                _ => "",
            };
            match word {
                "start" | "error" => {
                    self.next();
                    let name = self.name(if word == "start" { "a state name" } else { "a reply name" })?;
                    self.punct(TokenKind::Semi, &format!(" after `{word} {}`", name.text))?;
                    items.push(if word == "start" {
                        ProtocolItem::Start(name, t.span)
                    } else {
                        ProtocolItem::Error(name, t.span)
                    });
                }
                "state" | "client" | "service" => items.push(ProtocolItem::State(self.state()?)),
                _ => return self.error("`start`, `error`, `state` or `}`"),
            }
        }
    }

    fn state(&mut self) -> PResult<StateDecl> {
        let docs = self.peek().docs.clone();
        let turn = if self.at_word("client") {
            Some((Turn::Client, self.next().span))
        } else if self.at_word("service") {
            Some((Turn::Service, self.next().span))
        } else {
            None
        };
        self.word("state", "`state`")?;
        let name = self.name("the state's name")?;
        self.punct(TokenKind::LBrace, &format!(" after `state {}`", name.text))?;
        let mut transitions = Vec::new();
        while !self.eat(TokenKind::RBrace) {
            let message = self.name("a message name or `}`")?;
            self.punct(TokenKind::Arrow, &format!(" after `{}`", message.text))?;
            let second = self.name("a state or message name")?;
            let (then, target) =
                if self.eat(TokenKind::Arrow) { (Some(second), self.name("a state name")?) } else { (None, second) };
            self.punct(TokenKind::Semi, " or `->` in a transition")?;
            transitions.push(TransitionDecl { message, then, target });
        }
        Ok(StateDecl { docs, turn, name, transitions })
    }

    fn resilience(&mut self) -> PResult<ResilienceDecl> {
        let span = self.next().span;
        self.punct(TokenKind::LBrace, " after `resilience`")?;
        let mut items = Vec::new();
        loop {
            let t = self.peek();
            let word = match &t.kind {
                TokenKind::RBrace => {
                    self.next();
                    return Ok(ResilienceDecl { span, items });
                }
                TokenKind::Ident(w) => w.as_str(),
                _ => "",
            };
            let item = match word {
                "checkpoint" => {
                    self.next();
                    if self.at_word("after") {
                        self.next();
                        ResilienceItem::CheckpointAfter(self.names()?, t.span)
                    } else if self.at_word("every") {
                        self.next();
                        let n = self.peek();
                        let TokenKind::Int(count) = n.kind else {
                            return self.error("a number after `checkpoint every`");
                        };
                        self.next();
                        let unit = if self.at_word("requests") {
                            Every::Requests
                        } else if self.at_word("ms") {
                            Every::Ms
                        } else {
                            return self.error("`requests` or `ms`");
                        };
                        self.next();
                        ResilienceItem::CheckpointEvery { count, count_span: n.span, unit, span: t.span }
                    } else {
                        return self.error("`after` or `every` after `checkpoint`");
                    }
                }
                "idempotent" => {
                    self.next();
                    ResilienceItem::Idempotent(self.names()?, t.span)
                }
                "durable" => {
                    self.next();
                    ResilienceItem::Durable(self.names()?, t.span)
                }
                "deadline" => {
                    self.next();
                    let requests =
                        if matches!(self.peek().kind, TokenKind::Int(_)) { Vec::new() } else { self.names()? };
                    let n = self.peek();
                    let TokenKind::Int(count) = n.kind else {
                        return self.error("a number of milliseconds or seconds after `deadline`");
                    };
                    self.next();
                    let ms = if self.at_word("ms") {
                        count
                    } else if self.at_word("s") {
                        count.saturating_mul(1000)
                    } else {
                        return self.error("`ms` or `s`");
                    };
                    self.next();
                    ResilienceItem::Deadline { requests, ms, ms_span: n.span, span: t.span }
                }
                "distillation" => {
                    self.next();
                    let d = if self.at_word("logical") {
                        Distillation::Logical
                    } else if self.at_word("image") {
                        Distillation::Image
                    } else {
                        return self.error("`logical` or `image`");
                    };
                    self.next();
                    ResilienceItem::Distillation(d, t.span)
                }
                "unrecoverable" => {
                    self.next();
                    let message = self.name("a reply name")?;
                    self.punct(TokenKind::LBrace, &format!(" after `unrecoverable {}`", message.text))?;
                    let mut fields = Vec::new();
                    while !self.eat(TokenKind::RBrace) {
                        let fname = self.name("a field name or `}`")?;
                        self.punct(TokenKind::Colon, &format!(" after field `{}`", fname.text))?;
                        fields.push((fname, self.literal()?));
                        if !self.eat(TokenKind::Comma) {
                            self.punct(TokenKind::RBrace, " or `,` after a field value")?;
                            break;
                        }
                    }
                    ResilienceItem::Unrecoverable { message, fields, span: t.span }
                }
                _ => {
                    return self.error(
                        "`checkpoint`, `idempotent`, `durable`, `deadline`, `distillation`, `unrecoverable` or `}`",
                    );
                }
            };
            self.punct(TokenKind::Semi, &format!(" after the `{word}` statement"))?;
            items.push(item);
        }
    }

    /// `A, B, C` (at least one).
    fn names(&mut self) -> PResult<Vec<Name>> {
        let mut names = vec![self.name("a request name")?];
        while self.eat(TokenKind::Comma) {
            names.push(self.name("a request name")?);
        }
        Ok(names)
    }

    /// A literal: a scalar one, or `[a, b, ...]` of scalar ones.
    fn literal(&mut self) -> PResult<Literal> {
        let t = self.peek();
        if t.kind != TokenKind::LBracket {
            return self.scalar_literal("a value (a number, `true`, `false`, a string or a `[...]` list)");
        }
        self.next();
        let mut items = Vec::new();
        while !self.eat(TokenKind::RBracket) {
            items.push(self.scalar_literal("a list element (a number, `true`, `false` or a string)")?);
            if !self.eat(TokenKind::Comma) {
                self.punct(TokenKind::RBracket, " or `,` after a list element")?;
                break;
            }
        }
        Ok(Literal { value: LiteralValue::List(items), span: t.span })
    }

    /// A number, `true`, `false` or a string; `expected` says what is
    /// expected otherwise.
    fn scalar_literal(&mut self, expected: &str) -> PResult<Literal> {
        let t = self.peek();
        let value = match &t.kind {
            TokenKind::Int(n) => LiteralValue::Int(i128::from(*n)),
            TokenKind::Minus => {
                self.next();
                match self.peek().kind {
                    TokenKind::Int(n) => LiteralValue::Int(-i128::from(n)),
                    _ => return self.error("a number after `-`"),
                }
            }
            TokenKind::Str(s) => LiteralValue::Str(s.clone()),
            TokenKind::Ident(w) if w == "true" => LiteralValue::Bool(true),
            TokenKind::Ident(w) if w == "false" => LiteralValue::Bool(false),
            _ => return self.error(expected),
        };
        self.next();
        Ok(Literal { value, span: t.span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;

    fn parse(src: &str) -> PResult<File> {
        let mut sink = Sink::new("t.contract");
        let tokens = lex(src, &mut sink);
        assert!(sink.is_empty());
        parse_file(&tokens, &sink)
    }

    fn syntax_error(src: &str) -> String {
        parse(src).expect_err("should not parse").to_string()
    }

    #[test]
    fn a_full_contract_parses() {
        let f = parse(
            "/// doc\ncontract kv {\n request Get { /// the key\n key: string[256], }\n reply Value { v: u32 }\n \
             protocol { start Ready; error Value; state Ready { Get -> Value -> Ready; } service state S { Value -> Ready; } }\n \
             resilience { checkpoint after Get, Get; checkpoint every 5 ms; idempotent Get; distillation image;\n \
             unrecoverable Value { v: -3, w: \"x\", z: true, }; }\n}",
        )
        .unwrap();
        assert_eq!(f.docs, vec![" doc"]);
        assert_eq!(f.name.text, "kv");
        assert_eq!(f.items.len(), 4);
        let Item::Message(m) = &f.items[0] else { panic!() };
        assert_eq!(m.fields[0].docs, vec![" the key"]);
        assert_eq!(m.fields[0].ty.max.map(|m| m.0), Some(256));
        let Item::Protocol(p) = &f.items[2] else { panic!() };
        let ProtocolItem::State(s) = &p.items[3] else { panic!() };
        assert_eq!(s.turn.map(|t| t.0), Some(Turn::Service));
        let Item::Resilience(r) = &f.items[3] else { panic!() };
        let ResilienceItem::Unrecoverable { fields, .. } = &r.items[4] else { panic!() };
        assert_eq!(fields[0].1.value, LiteralValue::Int(-3));
        assert_eq!(fields[1].1.value, LiteralValue::Str("x".into()));
        assert_eq!(fields[2].1.value, LiteralValue::Bool(true));
    }

    #[test]
    fn list_types_and_literals_parse() {
        let f = parse(
            "contract c { request A { xs: list<string[8]>[4], ys: list<u8>[0x10], zs: list<list<u8>[1]>[2] }\n \
             resilience { unrecoverable R { a: [1, -2, \"s\", true,], b: [] }; } }",
        )
        .unwrap();
        let Item::Message(m) = &f.items[0] else { panic!() };
        let xs = &m.fields[0].ty;
        assert_eq!(xs.name.text, "list");
        assert_eq!(xs.max.map(|m| m.0), Some(4));
        let element = xs.element.as_deref().unwrap();
        assert_eq!(
            (element.name.text.as_str(), element.max.map(|m| m.0), element.element.is_none()),
            ("string", Some(8), true)
        );
        assert_eq!(m.fields[1].ty.max.map(|m| m.0), Some(16));
        // A list of lists parses (the checker rejects it).
        let inner = m.fields[2].ty.element.as_deref().unwrap();
        assert_eq!(inner.element.as_deref().map(|t| t.name.text.as_str()), Some("u8"));
        let Item::Resilience(r) = &f.items[1] else { panic!() };
        let ResilienceItem::Unrecoverable { fields, .. } = &r.items[0] else { panic!() };
        let LiteralValue::List(items) = &fields[0].1.value else { panic!() };
        let values: Vec<&LiteralValue> = items.iter().map(|l| &l.value).collect();
        assert_eq!(
            values,
            [&LiteralValue::Int(1), &LiteralValue::Int(-2), &LiteralValue::Str("s".into()), &LiteralValue::Bool(true)]
        );
        assert_eq!((fields[0].1.span.line, fields[0].1.span.column), (2, 36));
        assert_eq!(fields[1].1.value, LiteralValue::List(vec![]));
    }

    #[test]
    fn list_syntax_errors() {
        assert_eq!(
            syntax_error("contract kv { request A { x: list<u8[4] } }"),
            "t.contract:1:41: expected `>` after the element type, found `}`"
        );
        assert_eq!(
            syntax_error("contract kv { request A { x: list<>[4] } }"),
            "t.contract:1:35: expected a type, found `>`"
        );
        assert_eq!(
            syntax_error("contract kv { request A { x: list<u8>[] } }"),
            "t.contract:1:39: expected a maximum count, found `]`"
        );
        assert_eq!(
            syntax_error("contract kv { request A { x: list<u8>[4 } }"),
            "t.contract:1:41: expected `]` after the maximum count, found `}`"
        );
        // Deeper than a list of lists: a syntax error, so that parsing
        // stays shallow whatever the input.
        assert_eq!(
            syntax_error("contract kv { request A { x: list<list<list<u8>[1]>[1]>[1] } }"),
            "t.contract:1:44: types nest too deeply (a list cannot hold a list)"
        );
        assert_eq!(
            syntax_error("contract kv { resilience { unrecoverable F { a: [1 2] }; } }"),
            "t.contract:1:52: expected `]` or `,` after a list element, found number `2`"
        );
        assert_eq!(
            syntax_error("contract kv { resilience { unrecoverable F { a: [[1]] }; } }"),
            "t.contract:1:50: expected a list element (a number, `true`, `false` or a string), found `[`"
        );
        assert_eq!(
            syntax_error("contract kv { resilience { unrecoverable F { a: [1, }; } }"),
            "t.contract:1:53: expected a list element (a number, `true`, `false` or a string), found `}`"
        );
    }

    #[test]
    fn syntax_errors_say_what_was_expected_and_found() {
        assert_eq!(syntax_error("contrat kv {}"), "t.contract:1:1: expected `contract`, found `contrat`");
        assert_eq!(syntax_error("contract {}"), "t.contract:1:10: expected the contract's name, found `{`");
        assert_eq!(syntax_error("contract kv ;"), "t.contract:1:13: expected `{` after the contract's name, found `;`");
        assert_eq!(
            syntax_error("contract kv { message A {} }"),
            "t.contract:1:15: expected `request`, `reply`, `protocol`, `resilience` or `}`, found `message`"
        );
        assert_eq!(
            syntax_error("contract kv { request A { x u32 } }"),
            "t.contract:1:29: expected `:` after field `x`, found `u32`"
        );
        assert_eq!(
            syntax_error("contract kv { request A { x: u32 y: u8 } }"),
            "t.contract:1:34: expected `}` or `,` after a field, found `y`"
        );
        assert_eq!(
            syntax_error("contract kv { request A { x: string[] } }"),
            "t.contract:1:37: expected a maximum length, found `]`"
        );
        assert_eq!(
            syntax_error("contract kv { protocol { state S { A -> B } } }"),
            "t.contract:1:43: expected `;` or `->` in a transition, found `}`"
        );
        assert_eq!(
            syntax_error("contract kv { protocol { begin S; } }"),
            "t.contract:1:26: expected `start`, `error`, `state` or `}`, found `begin`"
        );
        assert_eq!(
            syntax_error("contract kv { resilience { checkpoint every 5 s; } }"),
            "t.contract:1:47: expected `requests` or `ms`, found `s`"
        );
        assert_eq!(
            syntax_error("contract kv { resilience { unrecoverable F { a: x }; } }"),
            "t.contract:1:49: expected a value (a number, `true`, `false`, a string or a `[...]` list), found `x`"
        );
        assert_eq!(
            syntax_error("contract kv { resilience { distillation fast; } }"),
            "t.contract:1:41: expected `logical` or `image`, found `fast`"
        );
        assert_eq!(
            syntax_error("contract kv { }\ncontract b {}"),
            "t.contract:2:1: expected end of file (one contract per file), found `contract`"
        );
        assert_eq!(
            syntax_error("contract kv { request A {"),
            "t.contract:1:26: expected a field name or `}`, found end of file"
        );
    }
}
