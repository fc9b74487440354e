//! Intel 8254x register offsets and bits (the 8254x family software
//! developer's manual, section 13).

/// Device control.
pub const CTRL: usize = 0x0000;
/// Device status.
pub const STATUS: usize = 0x0008;
/// EEPROM read.
pub const EERD: usize = 0x0014;
/// Interrupt cause read (reading clears).
pub const ICR: usize = 0x00c0;
/// Interrupt throttling.
pub const ITR: usize = 0x00c4;
/// Interrupt mask set.
pub const IMS: usize = 0x00d0;
/// Interrupt mask clear.
pub const IMC: usize = 0x00d8;
/// Receive control.
pub const RCTL: usize = 0x0100;
/// Transmit control.
pub const TCTL: usize = 0x0400;
/// Transmit inter-packet gap.
pub const TIPG: usize = 0x0410;
/// Receive descriptor ring: base low/high, length, head, tail, delay timer.
pub const RDBAL: usize = 0x2800;
/// Receive ring base, high.
pub const RDBAH: usize = 0x2804;
/// Receive ring length in bytes.
pub const RDLEN: usize = 0x2808;
/// Receive head.
pub const RDH: usize = 0x2810;
/// Receive tail.
pub const RDT: usize = 0x2818;
/// Receive delay timer.
pub const RDTR: usize = 0x2820;
/// Transmit ring base, low.
pub const TDBAL: usize = 0x3800;
/// Transmit ring base, high.
pub const TDBAH: usize = 0x3804;
/// Transmit ring length in bytes.
pub const TDLEN: usize = 0x3808;
/// Transmit head.
pub const TDH: usize = 0x3810;
/// Transmit tail.
pub const TDT: usize = 0x3818;
/// Multicast table array (128 dwords).
pub const MTA: usize = 0x5200;
/// Receive address 0, low and high.
pub const RAL0: usize = 0x5400;
/// Receive address 0, high (bit 31: address valid).
pub const RAH0: usize = 0x5404;

/// CTRL: set link up.
pub const CTRL_SLU: u32 = 1 << 6;
/// CTRL: auto speed detection.
pub const CTRL_ASDE: u32 = 1 << 5;
/// CTRL: link reset.
pub const CTRL_LRST: u32 = 1 << 3;
/// CTRL: invert loss of signal.
pub const CTRL_ILOS: u32 = 1 << 7;
/// CTRL: device reset.
pub const CTRL_RST: u32 = 1 << 26;
/// CTRL: VLAN mode.
pub const CTRL_VME: u32 = 1 << 30;
/// CTRL: PHY reset.
pub const CTRL_PHY_RST: u32 = 1 << 31;
/// STATUS: link up.
pub const STATUS_LU: u32 = 1 << 1;
/// EERD: start a read.
pub const EERD_START: u32 = 1 << 0;
/// EERD: read done.
pub const EERD_DONE: u32 = 1 << 4;
/// RAH: address valid.
pub const RAH_AV: u32 = 1 << 31;

/// RCTL: receiver enable.
pub const RCTL_EN: u32 = 1 << 1;
/// RCTL: accept broadcast.
pub const RCTL_BAM: u32 = 1 << 15;
/// RCTL: strip the Ethernet CRC.
pub const RCTL_SECRC: u32 = 1 << 26;
/// TCTL: transmitter enable.
pub const TCTL_EN: u32 = 1 << 1;
/// TCTL: pad short packets.
pub const TCTL_PSP: u32 = 1 << 3;
/// TCTL: collision threshold (15, as recommended).
pub const TCTL_CT: u32 = 0x0f << 4;
/// TCTL: collision distance (full duplex).
pub const TCTL_COLD: u32 = 0x40 << 12;
/// TCTL: retransmit on late collision.
pub const TCTL_RTLC: u32 = 1 << 24;
/// TIPG for IEEE 802.3 (IPGT 10, IPGR1 8, IPGR2 6).
pub const TIPG_DEFAULT: u32 = 10 | 8 << 10 | 6 << 20;

/// Interrupt causes: link status change, receive descriptor minimum
/// threshold, receiver overrun, receive timer.
pub const INT_LSC: u32 = 1 << 2;
/// Receive descriptors below the threshold.
pub const INT_RXDMT0: u32 = 1 << 4;
/// Receiver overrun.
pub const INT_RXO: u32 = 1 << 6;
/// Receive timer (a frame arrived).
pub const INT_RXT0: u32 = 1 << 7;
