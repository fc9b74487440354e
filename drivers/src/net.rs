//! Network devices: the interface every NIC driver offers ([`NetDevice`])
//! and the frame-size rules they share.

use crate::block::DeviceError;
use alloc::vec::Vec;

/// Shortest frame a driver takes or hands out (an Ethernet header).
pub const MIN_FRAME: usize = 14;
/// Longest frame (1500-byte payload plus header, no FCS, no VLAN tag).
pub const MAX_FRAME: usize = 1514;

/// A network card.
pub trait NetDevice {
    /// What the card is (e.g. `virtio-net`, `Intel 82540EM (e1000)`).
    fn model(&self) -> &str {
        "network card"
    }
    /// Its MAC address.
    fn mac(&self) -> [u8; 6];
    /// Whether the link is up.
    fn link_up(&mut self) -> bool;
    /// Queue frames (each 14..=1514 bytes) for transmission; returns how many were taken (0 if the ring is full).
    fn send(&mut self, frames: &[&[u8]]) -> Result<usize, DeviceError>;
    /// Take up to `max` received frames without waiting.
    fn receive(&mut self, max: usize) -> Result<Vec<Vec<u8>>, DeviceError>;
    /// Wait until frames may have arrived (interrupt) or `timeout_ns` passed.
    fn wait(&mut self, timeout_ns: u64);
}

/// Check that every frame has a legal size before any is queued.
pub fn check_frames(frames: &[&[u8]]) -> Result<(), DeviceError> {
    if frames.iter().all(|f| (MIN_FRAME..=MAX_FRAME).contains(&f.len())) {
        Ok(())
    } else {
        Err(DeviceError::Misaligned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes() {
        assert!(check_frames(&[&[0u8; 14], &[0u8; 1514]]).is_ok());
        assert_eq!(check_frames(&[&[0u8; 60], &[0u8; 13]]), Err(DeviceError::Misaligned));
        assert_eq!(check_frames(&[&[0u8; 1515]]), Err(DeviceError::Misaligned));
        assert!(check_frames(&[]).is_ok());
    }
}
