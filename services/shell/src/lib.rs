//! The shell's logic that needs no kernel: line editing and command-line
//! parsing, unit-tested on the host. The program itself is `main.rs`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod args;
pub mod command;
pub mod complete;
pub mod files;
pub mod line;
pub mod network;
