//! Function names for addresses, from an ELF's symbol table (the kernel's
//! and each program's; they are static executables, so file addresses are
//! run-time addresses). Rust names are demangled without their hashes.

use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use std::path::Path;

/// The functions of one binary, sorted by address.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    /// (start, size, name); assembly labels have size 0 and reach to the
    /// next symbol.
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// Read the function symbols of the ELF at `path`.
    pub fn load(path: &Path) -> Result<Symbols, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
        // Functions, and the labels of hand-written assembly in code
        // sections (`syscall_entry`, `trap_common`), which have no type.
        let in_code = |s: &object::Symbol| {
            s.section_index()
                .and_then(|i| file.section_by_index(i).ok())
                .is_some_and(|sec| sec.kind() == SectionKind::Text)
        };
        let functions = file
            .symbols()
            .filter(|s| s.address() != 0)
            .filter(|s| match s.kind() {
                SymbolKind::Text => true,
                SymbolKind::Unknown | SymbolKind::Label => {
                    in_code(s) && s.name().is_ok_and(|n| !n.starts_with(".L") && !n.starts_with('$'))
                }
                _ => false,
            })
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        Ok(Symbols::from_list(functions))
    }

    /// From (start, size, raw name) triples.
    pub fn from_list(mut functions: Vec<(u64, u64, String)>) -> Symbols {
        for f in functions.iter_mut() {
            f.2 = format!("{:#}", rustc_demangle::demangle(&f.2));
        }
        functions.sort_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
        functions.dedup_by_key(|f| f.0);
        Symbols { functions }
    }

    /// The function containing `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.functions.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let (start, size, name) = &self.functions[i];
        let inside =
            if *size > 0 { addr < start + size } else { self.functions.get(i + 1).is_none_or(|next| addr < next.0) };
        inside.then_some(name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_containing_function() {
        let s = Symbols::from_list(vec![
            (0x2000, 0x100, "_ZN5libos7channel8Endpoint8recv_raw17h0123456789abcdefE".into()),
            (0x1000, 0x10, "main".into()),
            (0x3000, 0, "trap_common".into()),
            (0x4000, 0x10, "last".into()),
        ]);
        assert_eq!(s.lookup(0x2000), Some("libos::channel::Endpoint::recv_raw"));
        assert_eq!(s.lookup(0x20ff), Some("libos::channel::Endpoint::recv_raw"));
        assert_eq!(s.lookup(0x2100), None);
        assert_eq!(s.lookup(0x1005), Some("main"));
        assert_eq!(s.lookup(0xfff), None);
        assert_eq!(s.lookup(0x3fff), Some("trap_common"), "a label reaches to the next symbol");
        assert_eq!(s.lookup(0x4010), None);
    }

    #[test]
    fn reads_a_real_elf() {
        // This test binary is an ELF with symbols; its own function must be found.
        let me = std::env::current_exe().unwrap();
        let s = Symbols::load(&me).unwrap();
        assert!(!s.functions.is_empty());
        assert!(s.functions.iter().any(|f| f.2.contains("finds_the_containing_function")));
    }
}
