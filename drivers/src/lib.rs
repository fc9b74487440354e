//! Kintsugi's device drivers, as user-level libraries over the resources
//! the exokernel exports: PCI configuration space, MMIO ranges, interrupt
//! lines and MSI vectors as events, and the physical addresses of memory
//! objects for DMA. A driver service (`blk`, `nic`) links this crate, asks
//! init for its PCI functions, and gets [`BlockDevice`]s and a
//! [`NetDevice`] from [`block_devices`] and [`net_device`].
//!
//! The interfaces:
//! - [`block`], with [`BlockDevice`], [`BlockInfo`] and [`DeviceError`];
//! - [`net`], with [`NetDevice`];
//! - [`discover`], which driver takes which granted function.
//!
//! The drivers:
//! - [`virtio`]: virtio-blk and virtio-net over the `virtio-drivers` crate
//!   (its PCI transport and virtqueues), with Kintsugi's HAL, MSI-X set up
//!   by hand (the crate does not), and a block request layer of our own;
//! - [`ahci`]: SATA disks behind an AHCI controller, **written by hand**;
//! - [`e1000`]: the Intel 8254x NIC QEMU emulates, **written by hand**;
//! - [`console`]: the screen (framebuffer or VGA text, drawing a terminal
//!   of our own) and the PS/2 keyboard (with `pc-keyboard`).
//!
//! AHCI and e1000 are written here because no `no_std` crate fits: the
//! published ones assume a kernel (identity-mapped or offset-mapped
//! physical memory, their own interrupt handlers, a global allocator of
//! DMA pages, or `x86_64` port I/O), are unmaintained, or panic on
//! unexpected device state, while these drivers must run as ordinary
//! programs that reach the device only through granted MMIO, DMA memory
//! objects and event-delivered interrupts, and must turn every bad value
//! a device reports into an `Err`. Both devices are small enough (one
//! command list and FIS per port; two descriptor rings) that a careful
//! driver is a few hundred lines.
//!
//! Shared pieces: [`pci`] (enumeration, BARs, capabilities, MSI/MSI-X;
//! pure logic over a [`pci::ConfigAccess`]), [`pcidev`] (a granted
//! function: config access through the kernel, BAR mapping, interrupt
//! choice), [`mmio`], [`dma`], [`transfer`] (where a transfer's data is,
//! and its copies to and from staging buffers), [`irq`] (interrupts as events, waits with
//! timeouts), [`slots`] (requests in flight) and [`ident`] (identification
//! strings).
//!
//! **Drivers never trust the device**: a length, index, status or
//! descriptor id read from a device is checked before use, and a bad one
//! is a [`DeviceError`], never a panic or an out-of-bounds access. Every
//! wait has a timeout and polls the device's completion state, so a lost
//! interrupt costs time, not a hang.
//!
//! The logic that needs no kernel (PCI decoding, request splitting, slot
//! bookkeeping, FIS/PRDT building, descriptor parsing, identify strings)
//! is unit-tested on the host with `cargo test -p drivers`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod ahci;
pub mod block;
pub mod console;
pub mod discover;
pub mod dma;
pub mod e1000;
pub mod ident;
pub mod irq;
pub mod mmio;
pub mod net;
pub mod pci;
pub mod pcidev;
pub mod slots;
pub mod transfer;
pub mod virtio;

pub use block::{BlockDevice, BlockInfo, DeviceError};
pub use discover::{block_devices, net_device};
pub use net::NetDevice;
