//! The shell's device commands: `blk info|read|write` as a client of the
//! blk service (with a hex dump), and `nic` as a client of the nic service.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::fmt::Write;
use libos::println;
use shell::command::{BlkCommand, DiskName};

/// The shell's sessions with the device services, opened on first use and
/// dropped when they break.
#[derive(Default)]
pub struct Sessions {
    blk: Option<blk::BlkClient>,
    nic: Option<nic::NicClient>,
}

fn blk_session(s: &mut Sessions) -> Option<&mut blk::BlkClient> {
    if s.blk.is_none() {
        match libos::directory::connect_within(blk::SERVICE, crate::SERVICE_PATIENCE) {
            // Resumable: the session survives a restart of blk's companion.
            Ok(ep) => match libos::channel::Channel::resumable_over(ep, blk::SERVICE) {
                Ok(ch) => s.blk = Some(blk::BlkClient::new(ch)),
                Err(e) => {
                    println!("blk: {e}");
                    return None;
                }
            },
            Err(e) => {
                println!("blk: {e}");
                return None;
            }
        }
    }
    s.blk.as_mut()
}

/// Run a `blk` subcommand.
pub fn blk_command(s: &mut Sessions, cmd: BlkCommand) {
    use blk::Reply;
    let Some(client) = blk_session(s) else { return };
    let result = match cmd {
        BlkCommand::Info(disk) => client.info(disk.number()).map(|r| match r {
            Reply::Geometry { sectors, sector_size, max_sectors, model, serial } => {
                let mib = sectors * sector_size as u64 / (1024 * 1024);
                println!(
                    "{}: {sectors} sectors of {sector_size} bytes ({mib} MiB), {model}, serial '{serial}', up to {max_sectors} sectors per request",
                    disk.as_str()
                );
            }
            other => print_failure(other),
        }),
        BlkCommand::Read(disk, lba, count) => {
            client.read(disk.number(), vec![lba], vec![count]).map(|r| match r {
                Reply::Data { data } => print_dump(lba * blk::SECTOR as u64, &data),
                other => print_failure(other),
            })
        }
        BlkCommand::Write(disk, lba, bytes) => write_bytes(client, disk, lba, &bytes),
    };
    if let Err(e) = result {
        println!("blk: {e}");
        s.blk = None;
    }
}

/// Write `bytes` from the start of sector `lba`, keeping the rest of the
/// last sector as it was (read, change, write).
fn write_bytes(
    client: &mut blk::BlkClient,
    disk: DiskName,
    lba: u64,
    bytes: &[u8],
) -> Result<(), libos::protocol::ClientError> {
    use blk::Reply;
    let sectors = bytes.len().div_ceil(blk::SECTOR) as u32;
    let mut data = match client.read(disk.number(), vec![lba], vec![sectors])? {
        Reply::Data { data } => data,
        other => {
            print_failure(other);
            return Ok(());
        }
    };
    data[..bytes.len()].copy_from_slice(bytes);
    match client.write(disk.number(), vec![lba], vec![sectors], data)? {
        Reply::Written { sectors } => {
            println!("wrote {} bytes at sector {lba} of the {} disk ({sectors} sectors)", bytes.len(), disk.as_str())
        }
        other => print_failure(other),
    }
    Ok(())
}

fn print_failure(reply: blk::Reply) {
    match reply {
        blk::Reply::Failed { code, message } => println!("blk: error {code}: {message}"),
        other => println!("blk: unexpected answer {other:?}"),
    }
}

/// A hex dump of `data`, which starts at byte `base` of the disk: offset,
/// sixteen bytes in hex, the same as text.
fn print_dump(base: u64, data: &[u8]) {
    let mut out = String::new();
    for (i, row) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", base + (i * 16) as u64);
        for (j, b) in row.iter().enumerate() {
            let _ = write!(out, "{}{b:02x}", if j == 8 { "  " } else { " " });
        }
        out.push_str("  |");
        out.extend(row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
        out.push_str("|\n");
    }
    libos::print!("{out}");
}

/// `nic`: the card's address, link and model.
pub fn nic_info(s: &mut Sessions) {
    use nic::Reply;
    if s.nic.is_none() {
        match libos::directory::connect_within(nic::SERVICE, crate::SERVICE_PATIENCE) {
            Ok(ep) => s.nic = Some(nic::NicClient::new(libos::channel::Channel::new(ep))),
            Err(e) => {
                println!("nic: {e}");
                return;
            }
        }
    }
    let Some(client) = s.nic.as_mut() else { return };
    match client.info() {
        Ok(Reply::Status { mac, link_up, model }) => {
            let mac: String = mac.iter().map(|b| format!("{b:02x}")).collect::<alloc::vec::Vec<_>>().join(":");
            println!("nic: {model}, mac {mac}, link {}", if link_up { "up" } else { "down" });
        }
        Ok(Reply::Failed { code, message }) => println!("nic: error {code}: {message}"),
        Ok(other) => println!("nic: unexpected answer {other:?}"),
        Err(e) => {
            println!("nic: {e}");
            s.nic = None;
        }
    }
}
