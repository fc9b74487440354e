//! Addresses as the `net` contract carries them: 4 bytes (IPv4) or 16
//! bytes (IPv6) in network order, converted to and from smoltcp's types
//! and text.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;
use smoltcp::wire::{IpAddress, Ipv4Address, Ipv6Address};

/// The address in `bytes` (4 or 16 of them), if it is one.
pub fn from_bytes(bytes: &[u8]) -> Option<IpAddress> {
    match bytes.len() {
        4 => Some(IpAddress::Ipv4(Ipv4Address::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(bytes);
            Some(IpAddress::Ipv6(Ipv6Address::from(b)))
        }
        _ => None,
    }
}

/// The bytes of `address` (4 or 16).
pub fn to_bytes(address: IpAddress) -> Vec<u8> {
    match address {
        IpAddress::Ipv4(a) => a.octets().to_vec(),
        IpAddress::Ipv6(a) => a.octets().to_vec(),
    }
}

/// Parse `10.0.2.2` or `fec0::2` into contract bytes.
pub fn parse(text: &str) -> Option<Vec<u8>> {
    match text.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(a.octets().to_vec()),
        IpAddr::V6(a) => Some(a.octets().to_vec()),
    }
}

/// `bytes` as text (`10.0.2.2`, `fe80::1`), or `-` if they are no address.
pub fn show(bytes: &[u8]) -> String {
    match from_bytes(bytes) {
        Some(a) => format!("{a}"),
        None => String::from("-"),
    }
}

/// An address and port as text: `10.0.2.2:80`, `[fe80::1]:80`.
pub fn show_endpoint(bytes: &[u8], port: u16) -> String {
    match from_bytes(bytes) {
        Some(IpAddress::Ipv6(a)) => format!("[{a}]:{port}"),
        Some(a) => format!("{a}:{port}"),
        None => format!("*:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v4 = parse("10.0.2.2").unwrap();
        assert_eq!(v4, [10, 0, 2, 2]);
        assert_eq!(show(&v4), "10.0.2.2");
        assert_eq!(to_bytes(from_bytes(&v4).unwrap()), v4);
        let v6 = parse("fe80::5054:ff:fe12:3456").unwrap();
        assert_eq!(v6.len(), 16);
        assert_eq!(show(&v6), "fe80::5054:ff:fe12:3456");
        assert_eq!(show_endpoint(&v6, 80), "[fe80::5054:ff:fe12:3456]:80");
        assert_eq!(show_endpoint(&v4, 80), "10.0.2.2:80");
        assert_eq!(parse("10.0.2"), None);
        assert_eq!(parse("nonsense"), None);
        assert_eq!(from_bytes(&[1, 2, 3]), None);
        assert_eq!(show(&[]), "-");
    }
}
