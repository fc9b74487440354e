//! Client paths: absolute, `/`-separated. [`normalize`] resolves `.`,
//! `..` and empty components and checks every name against FAT's rules
//! for long names, so fatfs only ever sees plain names.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Most UTF-16 units in a long file name.
pub const MAX_NAME_UNITS: usize = 255;

/// Most bytes in a path.
pub const MAX_PATH: usize = 1024;

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not starting with `/`.
    NotAbsolute,
    /// A component FAT cannot hold (too long, a forbidden character, only
    /// dots and spaces); the component and why.
    BadName(String, &'static str),
    /// Longer than [`MAX_PATH`].
    TooLong,
}

impl core::fmt::Display for PathError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PathError::NotAbsolute => f.write_str("not an absolute path (it must start with /)"),
            PathError::BadName(n, why) => write!(f, "name too long or invalid: `{n}` ({why})"),
            PathError::TooLong => write!(f, "path longer than {MAX_PATH} bytes"),
        }
    }
}

/// Whether `name` can be a FAT long file name; why not.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.encode_utf16().count() > MAX_NAME_UNITS {
        return Err("longer than 255 characters");
    }
    if let Some(c) = name.chars().find(|c| (*c as u32) < 0x20 || "\"*/:<>?\\|\u{7f}".contains(*c)) {
        return Err(if (c as u32) < 0x20 || c == '\u{7f}' {
            "a control character"
        } else {
            "one of \" * / : < > ? \\ | is not allowed"
        });
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return Err("only dots and spaces");
    }
    if name.ends_with(' ') || name.ends_with('.') {
        return Err("ends with a space or a dot");
    }
    if name.starts_with(' ') {
        return Err("starts with a space");
    }
    Ok(())
}

/// The components of `path`, normalised: `.` and empty ones dropped, `..`
/// removing the one before (never above the root). `[]` is the root.
pub fn normalize(path: &str) -> Result<Vec<String>, PathError> {
    if path.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            name => {
                check_name(name).map_err(|why| PathError::BadName(String::from(name), why))?;
                out.push(String::from(name));
            }
        }
    }
    Ok(out)
}

/// Components joined as an absolute path (`/` for none).
pub fn join(parts: &[String]) -> String {
    if parts.is_empty() {
        return String::from("/");
    }
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(p);
    }
    s
}

/// Components joined relative to the root (what fatfs takes; "" for the
/// root).
pub fn relative(parts: &[String]) -> String {
    parts.join("/")
}

/// Whether `inner` is `outer` or lies below it.
pub fn within(inner: &[String], outer: &[String]) -> bool {
    inner.len() >= outer.len() && inner[..outer.len()] == *outer
}

/// A short description for messages: the path, clipped.
pub fn show(path: &str) -> String {
    if path.len() <= 200 {
        return String::from(path);
    }
    format!("{}...", libos::wire::char_prefix(path, 200))
}
