//! Device drivers as user-level libraries over the resources the exokernel
//! exports (PCI configuration space, I/O ports, MMIO ranges, interrupt lines
//! and MSI vectors as events, physical addresses of memory objects for DMA).
//!
//! - [`pci`]: enumeration, BARs, capabilities, MSI/MSI-X programming;
//!   pure logic over a [`pci::ConfigAccess`], so it is unit-tested on the
//!   host against a simulated configuration space.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod pci;
