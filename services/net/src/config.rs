//! How the stack is configured: IPv4 by DHCP or static addresses, IPv6 on
//! or off, and the sizes of socket buffers and tables. The service reads it
//! from its argument string (the system manifest's `args`):
//!
//! ```text
//! ipv4=dhcp                                   # the default
//! ipv4=10.0.2.15/24 gateway=10.0.2.2 dns=10.0.2.3,10.0.2.4
//! ipv6=off                                    # on by default (link-local and SLAAC)
//! tcp-buffer=32768 tcp-send-buffer=131072    # the defaults (receive, send)
//! udp-buffer=16384 max-sockets=96             # the defaults
//! ```
//!
//! The service's state arena holds every socket's buffers, so its size
//! follows from these (about `max-sockets` x (both TCP buffers, or twice
//! the UDP one, the larger), plus 4 MiB: 19 MiB by default); the defaults
//! keep it small for a 256 MiB machine. 20 MiB is also all the service's
//! arena has (it counts twice: the arena and its checkpoint in the
//! companion's memory), so a configuration that needs more is refused:
//! smaller buffers or fewer sockets buy one more of the other.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

/// How IPv4 gets its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ipv4Mode {
    /// Ask a DHCP server (QEMU's user network hands out 10.0.2.15).
    Dhcp,
    /// Fixed addresses.
    Static {
        /// The interface's address.
        address: [u8; 4],
        /// Its prefix length (1 to 32).
        prefix: u8,
        /// The default gateway.
        gateway: Option<[u8; 4]>,
        /// DNS servers (at most 3).
        dns: Vec<[u8; 4]>,
    },
}

/// The stack's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// IPv4 addressing.
    pub ipv4: Ipv4Mode,
    /// IPv6: a link-local address from the MAC, plus addresses from router
    /// advertisements (SLAAC).
    pub ipv6: bool,
    /// Bytes of each TCP connection's receive buffer (the window it
    /// offers its peer).
    pub tcp_buffer: usize,
    /// Bytes of each TCP connection's send buffer: what may be in flight
    /// unacknowledged. A server's downloads move at most this much per
    /// round trip, so it is larger than the receive buffer.
    pub tcp_send_buffer: usize,
    /// Bytes of each UDP socket's receive and send buffers.
    pub udp_buffer: usize,
    /// Most sockets open at once, over every session (listening slots
    /// included).
    pub max_sockets: usize,
}

/// The default send buffer of a TCP connection. With 32 KiB a download
/// ran at 6 MiB/s, with 256 KiB at 9.7 MiB/s (`cargo xtask profile
/// --download 32`, 2026-12-07): the stack takes its peer's
/// acknowledgements on its ticks, so more in flight keeps the wire busy
/// between two.
pub const TCP_SEND_BUFFER: usize = 128 * 1024;
/// The default most sockets open at once.
pub const MAX_SOCKETS: usize = 96;

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            ipv4: Ipv4Mode::Dhcp,
            ipv6: true,
            tcp_buffer: 32 * 1024,
            tcp_send_buffer: TCP_SEND_BUFFER,
            udp_buffer: 16 * 1024,
            max_sockets: MAX_SOCKETS,
        }
    }
}

fn ipv4(text: &str) -> Result<[u8; 4], String> {
    text.parse::<Ipv4Addr>().map(|a| a.octets()).map_err(|_| format!("'{text}' is not an IPv4 address"))
}

fn size(key: &str, text: &str, min: usize, max: usize) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{key}: '{text}' is not a number from {min} to {max}")),
    }
}

impl NetConfig {
    /// Parse an argument string (words `key=value`; unknown keys are errors).
    pub fn parse(args: &str) -> Result<NetConfig, String> {
        let mut c = NetConfig::default();
        let mut gateway = None;
        let mut dns = Vec::new();
        let mut static_addr = None;
        for word in args.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!("'{word}' is not key=value"));
            };
            match key {
                "ipv4" if value == "dhcp" => static_addr = None,
                "ipv4" => {
                    let (a, p) = value.split_once('/').ok_or_else(|| format!("ipv4: '{value}' needs a /prefix"))?;
                    let prefix = p.parse::<u8>().ok().filter(|p| (1..=32).contains(p));
                    let prefix = prefix.ok_or_else(|| format!("ipv4: bad prefix length '{p}'"))?;
                    static_addr = Some((ipv4(a)?, prefix));
                }
                "gateway" => gateway = Some(ipv4(value)?),
                "dns" => {
                    for d in value.split(',') {
                        dns.push(ipv4(d)?);
                    }
                    if dns.len() > 3 {
                        return Err(String::from("dns: at most 3 servers"));
                    }
                }
                "ipv6" => {
                    c.ipv6 = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("ipv6: '{value}' (on or off)")),
                    }
                }
                "tcp-buffer" => c.tcp_buffer = size(key, value, 1024, 1 << 20)?,
                "tcp-send-buffer" => c.tcp_send_buffer = size(key, value, 1024, 1 << 20)?,
                "udp-buffer" => c.udp_buffer = size(key, value, 2048, 1 << 20)?,
                "max-sockets" => c.max_sockets = size(key, value, 4, 4096)?,
                _ => return Err(format!("unknown setting '{key}'")),
            }
        }
        match static_addr {
            Some((address, prefix)) => c.ipv4 = Ipv4Mode::Static { address, prefix, gateway, dns },
            None if gateway.is_some() || !dns.is_empty() => {
                return Err(String::from("gateway and dns go with a static ipv4=ADDRESS/PREFIX"))
            }
            None => {}
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(NetConfig::parse("").unwrap(), NetConfig::default());
        let c = NetConfig::parse(
            "ipv4=10.0.2.15/24 gateway=10.0.2.2 dns=10.0.2.3 ipv6=off tcp-buffer=8192 tcp-send-buffer=65536",
        )
        .unwrap();
        assert_eq!(
            c.ipv4,
            Ipv4Mode::Static {
                address: [10, 0, 2, 15],
                prefix: 24,
                gateway: Some([10, 0, 2, 2]),
                dns: vec![[10, 0, 2, 3]]
            }
        );
        assert!(!c.ipv6);
        assert_eq!((c.tcp_buffer, c.tcp_send_buffer), (8192, 65536));
        for bad in [
            "ipv4=10.0.2.15",
            "ipv4=10.0.2.15/33",
            "ipv4=10.0.2/24",
            "gateway=10.0.2.2",
            "dns=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4",
            "ipv6=maybe",
            "tcp-buffer=1",
            "tcp-send-buffer=2000000",
            "colour=blue",
            "ipv4",
        ] {
            assert!(NetConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
