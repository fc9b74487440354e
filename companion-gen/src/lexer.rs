//! The lexer: contract source to tokens, each with its position and the
//! `///` doc comments written just before it.
//!
//! Whitespace, `//` line comments and `/* */` block comments (which nest)
//! are skipped. Lexical errors (a stray character, an unterminated string
//! or comment, a malformed number, an unknown escape) are all reported;
//! the offending text is skipped so that lexing goes on.

use crate::diagnostics::{Sink, Span};

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `[A-Za-z_][A-Za-z0-9_]*`; keywords are identifiers too (they are
    /// recognised by the parser where they can appear).
    Ident(String),
    /// A decimal or `0x` hexadecimal integer, `_` allowed between digits.
    Int(u64),
    /// A double-quoted string, escapes decoded.
    Str(String),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `:`
    Colon,
    /// `;`
    Semi,
    /// `,`
    Comma,
    /// `->`
    Arrow,
    /// `-` (before a negative number)
    Minus,
    /// The end of the file.
    Eof,
}

impl TokenKind {
    /// How the token reads in an error message ("found ...").
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("`{s}`"),
            TokenKind::Int(n) => format!("number `{n}`"),
            TokenKind::Str(s) => format!("string {s:?}"),
            TokenKind::Eof => "end of file".to_string(),
            other => format!("`{}`", other.punct()),
        }
    }

    /// The text of a punctuation token.
    pub fn punct(&self) -> &'static str {
        match self {
            TokenKind::LBrace => "{",
            TokenKind::RBrace => "}",
            TokenKind::LBracket => "[",
            TokenKind::RBracket => "]",
            TokenKind::Lt => "<",
            TokenKind::Gt => ">",
            TokenKind::Colon => ":",
            TokenKind::Semi => ";",
            TokenKind::Comma => ",",
            TokenKind::Arrow => "->",
            TokenKind::Minus => "-",
            _ => "?",
        }
    }
}

/// A token, where it starts, and the doc comment lines just before it
/// (each without its `///`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it starts.
    pub span: Span,
    /// `///` lines written before it.
    pub docs: Vec<String>,
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

impl Cursor<'_> {
    fn span(&self) -> Span {
        Span { line: self.line, column: self.column }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// The character after the next one.
    fn peek2(&self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// Consume characters while `f` holds; return them.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Split `source` into tokens (ending with [`TokenKind::Eof`]); lexical
/// errors go to `sink`.
pub(crate) fn lex(source: &str, sink: &mut Sink) -> Vec<Token> {
    let mut cur = Cursor { chars: source.chars().peekable(), line: 1, column: 1 };
    let mut tokens = Vec::new();
    let mut docs = Vec::new();
    loop {
        let span = cur.span();
        let Some(c) = cur.peek() else {
            tokens.push(Token { kind: TokenKind::Eof, span, docs });
            return tokens;
        };
        let kind = match c {
            c if c.is_whitespace() => {
                cur.bump();
                continue;
            }
            '/' if cur.peek2() == Some('/') => {
                let text = cur.take_while(|c| c != '\n');
                if let Some(doc) = text.strip_prefix("///").filter(|rest| !rest.starts_with('/')) {
                    docs.push(doc.trim_end().to_string());
                }
                continue;
            }
            '/' if cur.peek2() == Some('*') => {
                block_comment(&mut cur, sink);
                continue;
            }
            '"' => match string(&mut cur, sink) {
                Some(s) => TokenKind::Str(s),
                None => continue,
            },
            c if c.is_ascii_digit() => match number(&mut cur, sink) {
                Some(n) => TokenKind::Int(n),
                None => continue,
            },
            c if is_ident_start(c) => TokenKind::Ident(cur.take_while(is_ident_char)),
            '-' if cur.peek2() == Some('>') => {
                cur.bump();
                cur.bump();
                TokenKind::Arrow
            }
            _ => {
                cur.bump();
                match c {
                    '{' => TokenKind::LBrace,
                    '}' => TokenKind::RBrace,
                    '[' => TokenKind::LBracket,
                    ']' => TokenKind::RBracket,
                    '<' => TokenKind::Lt,
                    '>' => TokenKind::Gt,
                    ':' => TokenKind::Colon,
                    ';' => TokenKind::Semi,
                    ',' => TokenKind::Comma,
                    '-' => TokenKind::Minus,
                    _ => {
                        let shown =
                            if c.is_control() || c.is_whitespace() { format!("{c:?}") } else { format!("`{c}`") };
                        sink.error(span, format!("unexpected character {shown}"));
                        continue;
                    }
                }
            }
        };
        tokens.push(Token { kind, span, docs: std::mem::take(&mut docs) });
    }
}

/// Skip a `/* ... */` comment (nested ones included).
fn block_comment(cur: &mut Cursor<'_>, sink: &mut Sink) {
    let start = cur.span();
    cur.bump();
    cur.bump();
    let mut depth = 1;
    while depth > 0 {
        match (cur.bump(), cur.peek()) {
            (None, _) => {
                sink.error(start, "unterminated block comment (missing `*/`)");
                return;
            }
            (Some('*'), Some('/')) => {
                cur.bump();
                depth -= 1;
            }
            (Some('/'), Some('*')) => {
                cur.bump();
                depth += 1;
            }
            _ => {}
        }
    }
}

/// A string literal; it must end on the line it starts on.
fn string(cur: &mut Cursor<'_>, sink: &mut Sink) -> Option<String> {
    let start = cur.span();
    cur.bump();
    let mut s = String::new();
    let mut ok = true;
    loop {
        let at = cur.span();
        match cur.peek() {
            None | Some('\n') => {
                sink.error(start, "unterminated string (missing closing `\"` on this line)");
                return None;
            }
            Some('"') => {
                cur.bump();
                return ok.then_some(s);
            }
            Some('\\') => {
                cur.bump();
                match cur.peek() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some(c) if c != '\n' => {
                        sink.error(at, format!("unknown escape `\\{c}` in string (use `\\\"`, `\\\\` or `\\n`)"));
                        ok = false;
                    }
                    _ => continue, // unterminated: reported above
                }
                cur.bump();
            }
            Some(c) => {
                s.push(c);
                cur.bump();
            }
        }
    }
}

/// An integer: decimal, or hexadecimal after `0x`; `_` separates digits.
fn number(cur: &mut Cursor<'_>, sink: &mut Sink) -> Option<u64> {
    let start = cur.span();
    let text = cur.take_while(is_ident_char);
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text.as_str(), 10),
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || !clean.chars().all(|c| c.is_digit(radix)) || digits.starts_with('_') {
        sink.error(start, format!("bad number `{text}`"));
        return None;
    }
    match u64::from_str_radix(&clean, radix) {
        Ok(n) => Some(n),
        Err(_) => {
            sink.error(start, format!("number `{text}` is too large (the largest is {})", u64::MAX));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_ok(src: &str) -> Vec<TokenKind> {
        let mut sink = Sink::new("t.contract");
        let tokens = lex(src, &mut sink);
        assert!(sink.is_empty(), "{:?}", sink.finish());
        tokens.into_iter().map(|t| t.kind).collect()
    }

    fn lex_errors(src: &str) -> Vec<String> {
        let mut sink = Sink::new("t.contract");
        lex(src, &mut sink);
        sink.finish().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn tokens_and_positions() {
        let mut sink = Sink::new("t");
        let t = lex("contract kv {\n  a: u32[0x10], // c\n  b -> -5 \"x\\\"y\\n\\\\\" }", &mut sink);
        assert!(sink.is_empty());
        let kinds: Vec<_> = t.iter().map(|t| t.kind.clone()).collect();
        use TokenKind::*;
        assert_eq!(
            kinds,
            vec![
                Ident("contract".into()),
                Ident("kv".into()),
                LBrace,
                Ident("a".into()),
                Colon,
                Ident("u32".into()),
                LBracket,
                Int(16),
                RBracket,
                Comma,
                Ident("b".into()),
                Arrow,
                Minus,
                Int(5),
                Str("x\"y\n\\".into()),
                RBrace,
                Eof
            ]
        );
        assert_eq!(t[3].span, Span { line: 2, column: 3 });
        assert_eq!(t[11].span, Span { line: 3, column: 5 });
    }

    #[test]
    fn doc_comments_attach_to_the_next_token() {
        let mut sink = Sink::new("t");
        let t = lex("/// one\n///two\n//// not a doc\n// plain\n/* block /* nested */ */ x", &mut sink);
        assert!(sink.is_empty());
        assert_eq!(t[0].kind, TokenKind::Ident("x".into()));
        assert_eq!(t[0].docs, vec![" one".to_string(), "two".to_string()]);
    }

    #[test]
    fn angle_brackets_and_arrows() {
        use TokenKind::*;
        assert_eq!(
            lex_ok("list<u8>[4] -> >-> <>"),
            vec![
                Ident("list".into()),
                Lt,
                Ident("u8".into()),
                Gt,
                LBracket,
                Int(4),
                RBracket,
                Arrow,
                Gt,
                Arrow,
                Lt,
                Gt,
                Eof
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            lex_ok("1_000 0xff 18446744073709551615"),
            vec![TokenKind::Int(1000), TokenKind::Int(255), TokenKind::Int(u64::MAX), TokenKind::Eof]
        );
    }

    #[test]
    fn bad_character() {
        assert_eq!(lex_errors("contract @ x"), vec!["t.contract:1:10: unexpected character `@`"]);
        assert_eq!(lex_errors("a\n  / b"), vec!["t.contract:2:3: unexpected character `/`"]);
    }

    #[test]
    fn unterminated_string() {
        assert_eq!(
            lex_errors("x \"abc\ny"),
            vec!["t.contract:1:3: unterminated string (missing closing `\"` on this line)"]
        );
        assert_eq!(
            lex_errors("\"abc"),
            vec!["t.contract:1:1: unterminated string (missing closing `\"` on this line)"]
        );
    }

    #[test]
    fn unknown_escape() {
        assert_eq!(
            lex_errors(r#"  "a\qb""#),
            vec![r#"t.contract:1:5: unknown escape `\q` in string (use `\"`, `\\` or `\n`)"#]
        );
    }

    #[test]
    fn unterminated_comment() {
        assert_eq!(lex_errors("x /* a /* b */"), vec!["t.contract:1:3: unterminated block comment (missing `*/`)"]);
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(lex_errors("12ab"), vec!["t.contract:1:1: bad number `12ab`"]);
        assert_eq!(lex_errors(" 0x"), vec!["t.contract:1:2: bad number `0x`"]);
        assert_eq!(lex_errors("0xfg"), vec!["t.contract:1:1: bad number `0xfg`"]);
        assert_eq!(
            lex_errors("99999999999999999999"),
            vec!["t.contract:1:1: number `99999999999999999999` is too large (the largest is 18446744073709551615)"]
        );
    }

    #[test]
    fn every_error_is_reported() {
        assert_eq!(lex_errors("@ # 1z").len(), 3);
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(lex_errors("\"é\" @"), vec!["t.contract:1:5: unexpected character `@`"]);
    }
}
