//! Tab completion, pluggable: a [`Completer`] proposes whole words for the
//! word being typed, given the words before it. The shell asks every
//! completer it has ([`Completers`]): [`CommandNames`] completes command
//! names and fixed subcommands; the file commands add one for paths.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Proposes completions for the word being typed.
pub trait Completer {
    /// Whole words that could stand for `partial` (what is typed of the
    /// current word, quotes removed) after `words`. A word ending in `/`
    /// is not followed by a space when it is the only one (a folder).
    fn complete(&self, words: &[String], partial: &str) -> Vec<String>;
}

/// Several completers asked in turn; their proposals merged.
#[derive(Default)]
pub struct Completers(Vec<Box<dyn Completer>>);

impl Completers {
    /// No completers.
    pub fn new() -> Completers {
        Completers(Vec::new())
    }

    /// Add a completer.
    pub fn add(&mut self, c: impl Completer + 'static) {
        self.0.push(Box::new(c));
    }
}

impl Completer for Completers {
    fn complete(&self, words: &[String], partial: &str) -> Vec<String> {
        let mut all: Vec<String> = self.0.iter().flat_map(|c| c.complete(words, partial)).collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Command names (the first word) and the fixed subcommands of some
/// commands (the second word).
pub struct CommandNames {
    names: Vec<&'static str>,
}

/// Commands with a fixed set of words after them.
const SUBCOMMANDS: &[(&str, &[&str])] = &[("kv", &["get", "put", "del", "list"]), ("blk", &["info", "read", "write"])];

impl CommandNames {
    /// The first words of `usages` (e.g. the shell's help table), in order.
    pub fn new(usages: impl IntoIterator<Item = &'static str>) -> CommandNames {
        let mut names: Vec<&'static str> = usages.into_iter().filter_map(|u| u.split_whitespace().next()).collect();
        names.dedup();
        CommandNames { names }
    }
}

impl Completer for CommandNames {
    fn complete(&self, words: &[String], partial: &str) -> Vec<String> {
        let pool: &[&str] = match words {
            [] => &self.names,
            [cmd] => SUBCOMMANDS.iter().find(|(c, _)| c == cmd).map_or(&[], |(_, subs)| subs),
            _ => &[],
        };
        pool.iter().filter(|n| n.starts_with(partial)).map(|n| n.to_string()).collect()
    }
}

/// The longest prefix all `words` share (on character boundaries).
pub fn common_prefix(words: &[String]) -> String {
    let Some((first, rest)) = words.split_first() else { return String::new() };
    let mut prefix: &str = first;
    for w in rest {
        let n = prefix.chars().zip(w.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a.len_utf8()).sum();
        prefix = &prefix[..n];
    }
    prefix.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_names_and_subcommands() {
        let c = CommandNames::new(["help", "ps", "poweroff", "kv get|put", "kill NAME"]);
        assert_eq!(c.complete(&[], "p"), s(&["ps", "poweroff"]));
        assert_eq!(c.complete(&[], "k"), s(&["kv", "kill"]));
        assert_eq!(c.complete(&s(&["kv"]), "d"), s(&["del"]));
        assert!(c.complete(&s(&["ps"]), "").is_empty());
        assert!(c.complete(&s(&["kv", "get"]), "").is_empty());
    }

    struct Paths;
    impl Completer for Paths {
        fn complete(&self, words: &[String], partial: &str) -> Vec<String> {
            if words.first().map(String::as_str) == Some("cat") {
                vec!["/docs/".to_string(), "/data.txt".to_string()]
                    .into_iter()
                    .filter(|p| p.starts_with(partial))
                    .collect()
            } else {
                Vec::new()
            }
        }
    }

    #[test]
    fn completers_are_pluggable() {
        let mut all = Completers::new();
        all.add(CommandNames::new(["cat PATH", "crash NAME"]));
        all.add(Paths);
        assert_eq!(all.complete(&[], "c"), s(&["cat", "crash"]));
        assert_eq!(all.complete(&s(&["cat"]), "/d"), s(&["/data.txt", "/docs/"]));
    }

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix(&s(&["poweroff", "ps"])), "p");
        assert_eq!(common_prefix(&s(&["ключи", "ключ"])), "ключ");
        assert_eq!(common_prefix(&s(&["a", "b"])), "");
        assert_eq!(common_prefix(&[]), "");
    }
}
