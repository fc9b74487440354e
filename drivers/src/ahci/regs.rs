//! AHCI register offsets and bits (AHCI 1.3.1, chapter 3).

/// HBA capabilities.
pub const CAP: usize = 0x00;
/// Global HBA control.
pub const GHC: usize = 0x04;
/// Interrupt status, one bit per port (write 1 to clear).
pub const IS: usize = 0x08;
/// Ports implemented.
pub const PI: usize = 0x0c;
/// Version.
pub const VS: usize = 0x10;
/// Capabilities, extended.
pub const CAP2: usize = 0x24;
/// BIOS/OS handoff control.
pub const BOHC: usize = 0x28;

/// CAP: 64-bit addressing.
pub const CAP_S64A: u32 = 1 << 31;
/// GHC: HBA reset.
pub const GHC_HR: u32 = 1 << 0;
/// GHC: interrupt enable.
pub const GHC_IE: u32 = 1 << 1;
/// GHC: AHCI enable.
pub const GHC_AE: u32 = 1 << 31;
/// CAP2: BIOS/OS handoff supported.
pub const CAP2_BOH: u32 = 1 << 0;
/// BOHC: BIOS owns the HBA.
pub const BOHC_BOS: u32 = 1 << 0;
/// BOHC: the OS wants the HBA.
pub const BOHC_OOS: u32 = 1 << 1;
/// BOHC: the BIOS is busy cleaning up.
pub const BOHC_BB: u32 = 1 << 4;

/// First port's registers.
pub const PORT_BASE: usize = 0x100;
/// Bytes of registers per port.
pub const PORT_SIZE: usize = 0x80;

/// Command list base (low, high).
pub const P_CLB: usize = 0x00;
/// Command list base, high.
pub const P_CLBU: usize = 0x04;
/// Received-FIS base.
pub const P_FB: usize = 0x08;
/// Received-FIS base, high.
pub const P_FBU: usize = 0x0c;
/// Interrupt status (write 1 to clear).
pub const P_IS: usize = 0x10;
/// Interrupt enable.
pub const P_IE: usize = 0x14;
/// Command and status.
pub const P_CMD: usize = 0x18;
/// Task file data (ATA status and error).
pub const P_TFD: usize = 0x20;
/// Signature of the attached device.
pub const P_SIG: usize = 0x24;
/// SATA status.
pub const P_SSTS: usize = 0x28;
/// SATA control.
pub const P_SCTL: usize = 0x2c;
/// SATA error (write 1 to clear).
pub const P_SERR: usize = 0x30;
/// Command issue: one bit per slot.
pub const P_CI: usize = 0x38;

/// CMD: start processing the command list.
pub const CMD_ST: u32 = 1 << 0;
/// CMD: spin up device.
pub const CMD_SUD: u32 = 1 << 1;
/// CMD: power on device.
pub const CMD_POD: u32 = 1 << 2;
/// CMD: FIS receive enable.
pub const CMD_FRE: u32 = 1 << 4;
/// CMD: FIS receive running.
pub const CMD_FR: u32 = 1 << 14;
/// CMD: command list running.
pub const CMD_CR: u32 = 1 << 15;

/// TFD status: error.
pub const TFD_ERR: u32 = 1 << 0;
/// TFD status: data request.
pub const TFD_DRQ: u32 = 1 << 3;
/// TFD status: busy.
pub const TFD_BSY: u32 = 1 << 7;

/// Signature of an ATA disk.
pub const SIG_ATA: u32 = 0x0000_0101;

/// IS bits this driver enables: D2H register FIS, PIO setup FIS, DMA
/// setup FIS, set-device-bits FIS, and the error causes below.
pub const IE_MASK: u32 = 0x0f | IS_ERRORS;
/// IS bits that mean a command failed: task file error, host bus fatal,
/// host bus data, interface fatal, overflow.
pub const IS_ERRORS: u32 = 1 << 30 | 1 << 29 | 1 << 28 | 1 << 27 | 1 << 24;

/// The registers of port `n`, relative to the ABAR.
pub fn port(n: usize) -> usize {
    PORT_BASE + n * PORT_SIZE
}
