//! Splitting a command line into words, and reading numbers strictly.
//!
//! Words are separated by spaces or tabs. A double-quoted part keeps its
//! spaces (`"my file.txt"`), and `""` is an empty word; inside quotes `\"`
//! is a quote and `\\` a backslash. Quotes may join other text
//! (`name="a b"` is one word `name=a b`).
//!
//! Numbers are decimal digits or `0x` and hexadecimal digits, nothing else:
//! no sign, no fraction, no spaces, and within `u64`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// One word of a line, and where it starts (a byte offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The word, quotes removed.
    pub text: String,
    /// Byte offset of its first character in the line.
    pub start: usize,
    /// Whether it is still inside an open quote (only at the end of a
    /// line being completed).
    pub open_quote: bool,
}

/// Split `line` into words. An unterminated quote is an error.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let words = split_words(line);
    if words.last().is_some_and(|w| w.open_quote) {
        return Err(String::from("missing closing quote (\")"));
    }
    Ok(words.into_iter().map(|w| w.text).collect())
}

/// Split `line` into words with their positions; an unterminated quote
/// ends the line inside the last word (for completion).
pub fn split_words(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut quoted = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !quoted && (c == ' ' || c == '\t') {
            if let Some(w) = current.take() {
                words.push(w);
            }
            continue;
        }
        let w = current.get_or_insert_with(|| Word { text: String::new(), start: i, open_quote: false });
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted && matches!(chars.peek(), Some((_, '"' | '\\'))) => {
                if let Some((_, next)) = chars.next() {
                    w.text.push(next);
                }
            }
            c => w.text.push(c),
        }
    }
    if let Some(mut w) = current {
        w.open_quote = quoted;
        words.push(w);
    }
    words
}

/// `word` as it must be typed to read back as itself: quoted when it has
/// spaces, quotes or backslashes, or is empty.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && !word.contains([' ', '\t', '"', '\\']) {
        return String::from(word);
    }
    let mut s = String::from("\"");
    for c in word.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// A number: decimal digits, or `0x` and hexadecimal digits.
pub fn number(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// A number in `min..=max`, or the one-line error `{what} must be a number
/// from {min} to {max}, not '{s}'`.
pub fn number_in(s: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    number(s)
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{what} must be a number from {min} to {max}, not '{s}'"))
}

/// A percentage with at most one decimal (`0`, `2`, `0.5`, `100`) in
/// thousandths; `None` for anything else (`+1`, `5.`, `.5`, `-5`, `101`).
pub fn per_mille(s: &str) -> Option<u32> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let int = u32::try_from(number_decimal(int)?).ok()?;
    let tenth = match frac {
        None => 0,
        Some(f) if f.len() == 1 => number_decimal(f)? as u32,
        Some(_) => return None,
    };
    let pm = int.checked_mul(10)?.checked_add(tenth)?;
    (pm <= 1000).then_some(pm)
}

fn number_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Check that `word` fits in `max` bytes; the error names the limit:
/// `{command}: {what} longer than {max} bytes`.
pub fn fits(word: &str, max: usize, command: &str, what: &str) -> Result<(), String> {
    if word.len() > max {
        return Err(format!("{command}: {what} longer than {max} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(split("  kv  put a b ").unwrap(), ["kv", "put", "a", "b"]);
        assert_eq!(split(r#"ls "My Documents/a b.txt""#).unwrap(), ["ls", "My Documents/a b.txt"]);
        assert_eq!(split(r#"echo "" x"#).unwrap(), ["echo", "", "x"]);
        assert_eq!(split(r#"echo "say \"hi\" \\ ok""#).unwrap(), ["echo", r#"say "hi" \ ok"#]);
        assert_eq!(split(r#"a="b c"d"#).unwrap(), ["a=b cd"]);
        assert_eq!(split(r"back\slash").unwrap(), [r"back\slash"]);
        assert_eq!(split("kv put ключ значение").unwrap(), ["kv", "put", "ключ", "значение"]);
        assert!(split(r#"echo "open"#).unwrap_err().contains("missing closing quote"));
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn word_positions_for_completion() {
        let w = split_words(r#"cat "my fi"#);
        assert_eq!(w[1], Word { text: "my fi".into(), start: 4, open_quote: true });
        assert_eq!(split_words("ps ")[0].start, 0);
    }

    #[test]
    fn quoting_round_trips() {
        for w in ["plain", "a b", "", r#"q"uote"#, r"back\slash", "ключ"] {
            assert_eq!(split(&quote(w)).unwrap(), [w]);
        }
        assert_eq!(quote("plain"), "plain");
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("42"), Some(42));
        assert_eq!(number("0x1F"), Some(31));
        assert_eq!(number("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-5", "5.", "1.0", " 1", "1 ", "0x", "0xg", "1e3", "18446744073709551616", "١"] {
            assert_eq!(number(bad), None, "{bad:?}");
        }
        assert_eq!(number_in("7", "count", 1, 128), Ok(7));
        assert_eq!(number_in("0", "count", 1, 128).unwrap_err(), "count must be a number from 1 to 128, not '0'");
    }

    #[test]
    fn percentages_are_strict() {
        assert_eq!(per_mille("2"), Some(20));
        assert_eq!(per_mille("0.5"), Some(5));
        assert_eq!(per_mille("100"), Some(1000));
        for bad in ["+1", "5.", ".5", "-5", "101", "0.55", "1e1", "", "0x10"] {
            assert_eq!(per_mille(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn limits_are_named() {
        assert_eq!(fits(&"k".repeat(257), 256, "kv", "key").unwrap_err(), "kv: key longer than 256 bytes");
        assert!(fits("ключ", 8, "kv", "key").is_ok());
        assert!(fits("ключ!", 8, "kv", "key").is_err());
    }
}
