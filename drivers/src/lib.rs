//! Device drivers as user-level libraries over the resources the exokernel
//! exports (I/O ports, MMIO ranges, interrupt lines as events, physical
//! addresses of memory objects for DMA): PCI enumeration, virtio-blk,
//! virtio-net, AHCI and e1000 (DESIGN.md sections 1 and 6).
//!
//! Skeleton: the drivers are built by the drivers-and-vault issue. The
//! kernel exports they need are exercised today by the `devtest` program.
#![no_std]
