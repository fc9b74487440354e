//! How contract names become Rust names: `snake_case` methods,
//! `UpperCamelCase` types, `r#` for keywords, and the lint checks that
//! decide whether generated items need an `#[allow]`.

/// Rust keywords (all editions, reserved ones included) that `r#` escapes.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else", "enum",
    "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move",
    "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names Rust cannot use as identifiers at all, not even with `r#`.
pub(crate) const UNUSABLE: &[&str] = &["self", "Self", "super", "crate", "_"];

/// `name` as a Rust identifier (`r#type` for `type`).
pub(crate) fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// `EndList` → `end_list`, `HTTPGet` → `http_get`; `_` kept.
pub(crate) fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev != '_'
                && (prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower))
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `kv` → `Kv`, `key_value` → `KeyValue`, `fooBar` → `FooBar`.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// Whether rustc's `non_camel_case_types` lint accepts `name`.
pub(crate) fn is_camel(name: &str) -> bool {
    let name = name.trim_matches('_');
    let chars: Vec<char> = name.chars().collect();
    chars.first().is_none_or(|c| !c.is_lowercase())
        && !name.contains("__")
        && !chars.windows(2).any(|w| (w[0].is_alphabetic() && w[1] == '_') || (w[0] == '_' && w[1].is_alphabetic()))
}

/// Whether rustc's `non_snake_case` lint accepts `name`.
pub(crate) fn is_snake(name: &str) -> bool {
    !name.chars().any(|c| c.is_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case() {
        assert_eq!(snake("Get"), "get");
        assert_eq!(snake("EndList"), "end_list");
        assert_eq!(snake("HTTPGet"), "http_get");
        assert_eq!(snake("Get2Keys"), "get2_keys");
        assert_eq!(snake("already_snake"), "already_snake");
        assert_eq!(snake("Mixed_Case"), "mixed_case");
    }

    #[test]
    fn camel_case() {
        assert_eq!(camel("kv"), "Kv");
        assert_eq!(camel("key_value"), "KeyValue");
        assert_eq!(camel("fooBar"), "FooBar");
        assert_eq!(camel("_"), "");
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(ident("type"), "r#type");
        assert_eq!(ident("key"), "key");
    }

    #[test]
    fn lints() {
        assert!(is_camel("Ready"));
        assert!(is_camel("HTTPGet"));
        assert!(!is_camel("Ready_Get"));
        assert!(!is_camel("ready"));
        assert!(is_snake("key_2"));
        assert!(!is_snake("Key"));
    }
}
