//! An indenting text buffer with rustfmt-like layout helpers: lists go on
//! one line when they fit (rustfmt's width heuristics), one item per line
//! otherwise.

/// rustfmt's `max_width`.
const MAX_WIDTH: usize = 100;
/// Where generated doc comments wrap.
const DOC_WIDTH: usize = 80;
/// rustfmt's `struct_lit_width`: the widest `{ ... }` body of a struct
/// literal or pattern kept on one line.
const STRUCT_LIT_WIDTH: usize = 18;
/// rustfmt's `struct_variant_width`.
const STRUCT_VARIANT_WIDTH: usize = 35;
/// rustfmt's `fn_call_width`.
const FN_CALL_WIDTH: usize = 60;

pub(crate) struct Out {
    buf: String,
    indent: usize,
}

impl Out {
    pub(crate) fn new() -> Out {
        Out { buf: String::new(), indent: 0 }
    }

    pub(crate) fn finish(self) -> String {
        self.buf
    }

    /// Whether `text` fits on a line at the current indentation.
    pub(crate) fn fits(&self, text: &str) -> bool {
        self.indent * 4 + text.chars().count() <= MAX_WIDTH
    }

    /// One line (an empty `text` makes a blank line).
    pub(crate) fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if !text.is_empty() {
            for _ in 0..self.indent {
                self.buf.push_str("    ");
            }
            self.buf.push_str(text);
        }
        self.buf.push('\n');
    }

    pub(crate) fn blank(&mut self) {
        self.line("");
    }

    /// A line, then indent.
    pub(crate) fn open(&mut self, text: impl AsRef<str>) {
        self.line(text);
        self.indent += 1;
    }

    /// Unindent, then a line.
    pub(crate) fn close(&mut self, text: impl AsRef<str>) {
        self.indent -= 1;
        self.line(text);
    }

    /// `///` lines.
    pub(crate) fn docs(&mut self, docs: &[String]) {
        for d in docs {
            self.line(format!("///{d}"));
        }
    }

    /// Generated prose as `///` lines, wrapped to fit.
    pub(crate) fn prose(&mut self, text: &str) {
        let width = DOC_WIDTH.saturating_sub(self.indent * 4 + 4).max(40);
        let mut line = String::new();
        for word in text.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                self.line(format!("/// {line}"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        self.line(format!("/// {line}"));
    }

    /// `head(params)tail`, or with one parameter per line if too wide. A
    /// `tail` ending in `{` opens a block.
    pub(crate) fn signature(&mut self, head: &str, params: &[String], tail: &str) {
        let one = format!("{head}({}){tail}", params.join(", "));
        let opens = tail.ends_with('{');
        if self.fits(&one) {
            self.line(one);
        } else {
            self.open(format!("{head}("));
            for p in params {
                self.line(format!("{p},"));
            }
            self.close(format!("){tail}"));
        }
        if opens {
            self.indent += 1;
        }
    }

    /// `prefix { a, b }suffix` as a struct literal or pattern: on one line
    /// when the body is short, one field per line otherwise. A `suffix`
    /// ending in `{` opens a block.
    pub(crate) fn struct_lit(&mut self, prefix: &str, fields: &[String], suffix: &str) {
        match self.struct_head(prefix, fields) {
            Some(one) => self.line(format!("{one}{suffix}")),
            None => {
                self.struct_body(prefix, fields);
                self.close(format!("}}{suffix}"));
            }
        }
        if suffix.ends_with('{') {
            self.indent += 1;
        }
    }

    /// `prefix { a, b }` if it stays on one line.
    fn struct_head(&self, prefix: &str, fields: &[String]) -> Option<String> {
        if fields.is_empty() {
            return Some(prefix.to_string());
        }
        let body = fields.join(", ");
        let one = format!("{prefix} {{ {body} }}");
        (body.chars().count() <= STRUCT_LIT_WIDTH && self.fits(&one)).then_some(one)
    }

    /// The opening line and fields of a struct laid out vertically; the
    /// caller closes it. A pattern ending in `..` keeps its fields on one
    /// line when, without the `..`, they are no wider than
    /// `struct_lit_width`, as rustfmt does.
    fn struct_body(&mut self, prefix: &str, fields: &[String]) {
        self.open(format!("{prefix} {{"));
        if let Some((last, named)) = fields.split_last() {
            if last == ".." && named.join(", ").chars().count() <= STRUCT_LIT_WIDTH {
                self.line(fields.join(", "));
                return;
            }
        }
        for f in fields {
            // `..` ends a pattern, without a comma.
            self.line(if f == ".." { f.clone() } else { format!("{f},") });
        }
    }

    /// A match arm: the pattern `prefix { fields }` (or just `prefix`),
    /// `=>`, and `body`.
    pub(crate) fn arm(&mut self, prefix: &str, fields: &[String], body: &Body) {
        let last = match self.struct_head(prefix, fields) {
            Some(one) => one,
            None => {
                self.struct_body(prefix, fields);
                self.indent -= 1;
                "}".to_string()
            }
        };
        let (one, short_args) = match body {
            Body::Expr(e) => (e.clone(), true),
            Body::Call(head, args) => {
                (format!("{head}({})", args.join(", ")), args.join(", ").chars().count() <= FN_CALL_WIDTH)
            }
        };
        let line = format!("{last} => {one},");
        if short_args && self.fits(&line) {
            self.line(line);
            return;
        }
        self.indent += 1;
        let fits_alone = self.fits(&one);
        self.indent -= 1;
        match body {
            Body::Call(head, args) if !(short_args && fits_alone) => {
                self.open(format!("{last} => {head}("));
                for a in args {
                    self.line(format!("{a},"));
                }
                self.close("),");
            }
            Body::Expr(e) if !fits_alone => {
                // A `&&` chain, broken.
                self.open(format!("{last} => {{"));
                let operands: Vec<String> = e.split(" && ").map(String::from).collect();
                self.chain(&operands, "&&");
                self.close("}");
            }
            _ => {
                self.open(format!("{last} => {{"));
                self.line(one);
                self.close("}");
            }
        }
    }

    /// `name!(args)` or `name(args)`, one argument per line if too wide (a
    /// `|` pattern argument then breaks before each `|`); a function call
    /// gets a trailing comma, a macro call does not.
    pub(crate) fn call(&mut self, head: &str, args: &[String], tail: &str) {
        let joined = args.join(", ");
        let one = format!("{head}({joined}){tail}");
        if joined.chars().count() <= FN_CALL_WIDTH && self.fits(&one) {
            self.line(one);
            return;
        }
        self.open(format!("{head}("));
        let last = args.len().saturating_sub(1);
        for (i, a) in args.iter().enumerate() {
            let comma = if i < last || !head.ends_with('!') { "," } else { "" };
            let text = format!("{a}{comma}");
            if self.fits(&text) || !a.contains(" | ") {
                self.line(text);
            } else {
                let alternatives: Vec<&str> = a.split(" | ").collect();
                self.line(alternatives[0]);
                self.indent += 1;
                for (j, alt) in alternatives.iter().enumerate().skip(1) {
                    let end = if j == alternatives.len() - 1 { comma } else { "" };
                    self.line(format!("| {alt}{end}"));
                }
                self.indent -= 1;
            }
        }
        self.close(format!("){tail}"));
    }

    /// Operands joined by a binary operator, one per line (continuations
    /// indented) if too wide.
    pub(crate) fn chain(&mut self, operands: &[String], op: &str) {
        let one = operands.join(&format!(" {op} "));
        if self.fits(&one) {
            self.line(one);
            return;
        }
        self.line(&operands[0]);
        self.indent += 1;
        for o in &operands[1..] {
            self.line(format!("{op} {o}"));
        }
        self.indent -= 1;
    }

    /// The variants of an enum: name, doc lines, and named fields (each
    /// with its doc lines). As rustfmt (style edition 2021) does, short
    /// struct variants stay on one line unless some variant of the enum
    /// spans several lines (doc comments count) and some other does not:
    /// then every struct variant is laid out vertically.
    pub(crate) fn variants(&mut self, variants: &[Variant]) {
        let indent = self.indent;
        let one_line = |v: &Variant, width: usize| -> bool {
            let body: Vec<&str> = v.fields.iter().map(|(_, f)| f.as_str()).collect();
            let one = format!("{} {{ {} }},", v.name, body.join(", "));
            v.fields.is_empty()
                || (v.fields.iter().all(|(d, _)| d.is_empty())
                    && body.join(", ").chars().count() <= width
                    && indent * 4 + one.chars().count() <= MAX_WIDTH)
        };
        let multi_line = |v: &Variant| !v.docs.is_empty() || !one_line(v, STRUCT_VARIANT_WIDTH);
        let width =
            if variants.iter().any(multi_line) && !variants.iter().all(multi_line) { 0 } else { STRUCT_VARIANT_WIDTH };
        for v in variants {
            self.docs(&v.docs);
            if v.fields.is_empty() {
                self.line(format!("{},", v.name));
            } else if one_line(v, width) {
                let body: Vec<&str> = v.fields.iter().map(|(_, f)| f.as_str()).collect();
                self.line(format!("{} {{ {} }},", v.name, body.join(", ")));
            } else {
                self.open(format!("{} {{", v.name));
                for (docs, f) in &v.fields {
                    self.docs(docs);
                    self.line(format!("{f},"));
                }
                self.close("},");
            }
        }
    }
}

/// An enum variant for [`Out::variants`].
pub(crate) struct Variant {
    /// The variant's name.
    pub(crate) name: String,
    /// Its doc lines.
    pub(crate) docs: Vec<String>,
    /// Its fields (`name: Type`) with their doc lines.
    pub(crate) fields: Vec<(Vec<String>, String)>,
}

/// The right side of a match arm.
pub(crate) enum Body {
    /// An expression (a `&&` chain may be broken).
    Expr(String),
    /// A call: the callee and its arguments.
    Call(String, Vec<String>),
}
