//! Services an older vault kept in slot files of their own
//! (`/KINTSUGI/SERVICE.0` and `SERVICE.1`, one record each at offset 0):
//! at open, the newest valid record of each service the pool table does not
//! know yet is copied, byte for byte, into a slot of its own in the pool,
//! so the service restores from it as before. The old files are left as
//! they are (read only); the pool is what counts from then on.

use super::{Vault, VaultError, SECTOR};
use crate::disk::SectorDisk;
use crate::fatio::FatIo;
use crate::pool::{Runs, DIR};
use crate::store::{fat_error, valid_service_name, SlotState};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use checkpoint_record::{self as record, Header};

/// Most directory entries looked at in `/KINTSUGI` (a bound against a
/// looping chain).
const MAX_ENTRIES: usize = 4096;

/// The slot files found, by service: runs and size of slot 0 and slot 1.
type Found = BTreeMap<String, [Option<(Runs, u64)>; 2]>;

/// Sector runs of a file whose extents (byte offset, length) are given.
fn runs_of(extents: &[(u64, u64)]) -> Option<Runs> {
    let mut runs: Runs = Vec::new();
    for &(offset, len) in extents {
        if offset % SECTOR as u64 != 0 {
            return None;
        }
        let (lba, count) = (offset / SECTOR as u64, len.div_ceil(SECTOR as u64));
        match runs.last_mut() {
            Some((l, c)) if *l + *c == lba => *c += count,
            _ => runs.push((lba, count)),
        }
    }
    Some(runs)
}

/// The old slot files in `/KINTSUGI` (fatfs reads the long names; nothing
/// is written).
fn scan<D: SectorDisk>(v: &mut Vault<D>) -> Result<Found, VaultError> {
    v.cache.clear()?;
    let mut found = Found::new();
    {
        let fs = fatfs::FileSystem::new(FatIo::new(&mut v.cache), fatfs::FsOptions::new())
            .map_err(|e| VaultError::NoDisk(format!("cannot mount the checkpoint disk's FAT file system: {e}")))?;
        let listed = (|| {
            let dir = match fs.root_dir().open_dir(DIR) {
                Ok(d) => d,
                Err(fatfs::Error::NotFound) => return Ok(()),
                Err(e) => return Err(fat_error("open /KINTSUGI", e)),
            };
            for entry in dir.iter().take(MAX_ENTRIES) {
                let Ok(entry) = entry else { break };
                if !entry.is_file() {
                    continue;
                }
                let name = entry.file_name();
                let Some((service, index)) = name.rsplit_once('.') else { continue };
                let index = match index {
                    "0" => 0,
                    "1" => 1,
                    _ => continue,
                };
                if !valid_service_name(service) {
                    continue;
                }
                let size = entry.len();
                let mut file = entry.to_file();
                let mut extents = Vec::new();
                let mut total = 0;
                for e in file.extents() {
                    let Ok(e) = e else { break };
                    if total >= size || e.size == 0 {
                        break;
                    }
                    total += e.size as u64;
                    extents.push((e.offset, e.size as u64));
                }
                if let Some(runs) = runs_of(&extents).filter(|_| total >= size) {
                    found.entry(service.to_string()).or_insert([None, None])[index] = Some((runs, size));
                }
            }
            Ok(())
        })();
        let unmounted = fs.unmount().map_err(|e| fat_error("unmount", e));
        listed.and(unmounted)?;
    }
    v.cache.clear()?;
    Ok(found)
}

/// The valid record at the start of an old slot file, as raw bytes.
fn read_old<D: SectorDisk>(v: &mut Vault<D>, runs: &Runs, size: u64) -> Option<(Header, Vec<u8>)> {
    let mut first = vec![0u8; SECTOR];
    let &(lba, _) = runs.first()?;
    v.cache.disk.read(lba, &mut first).ok()?;
    let header = Header::parse(&first).ok()?;
    let len = header.record_len().next_multiple_of(SECTOR as u64);
    if len > size.next_multiple_of(SECTOR as u64) {
        return None;
    }
    let mut bytes = vec![0u8; len as usize];
    let mut at = 0usize;
    for &(lba, n) in runs {
        if at >= bytes.len() {
            break;
        }
        let take = (n as usize * SECTOR).min(bytes.len() - at);
        v.cache.disk.read(lba, &mut bytes[at..at + take]).ok()?;
        at += take;
    }
    record::validate(&bytes[..header.record_len() as usize]).ok()?;
    Some((header, bytes))
}

/// Move every service the pool does not know from its old slot files into
/// the pool.
pub(super) fn import<D: SectorDisk>(v: &mut Vault<D>) -> Result<(), VaultError> {
    let found = scan(v)?;
    for (service, files) in found {
        if v.services.contains_key(&service) {
            continue;
        }
        let mut newest: Option<(usize, Header, Vec<u8>)> = None;
        for (i, f) in files.iter().enumerate() {
            let Some((runs, size)) = f else { continue };
            if let Some((h, bytes)) = read_old(v, runs, *size) {
                if newest.as_ref().is_none_or(|(_, n, _)| h.generation > n.generation) {
                    newest = Some((i, h, bytes));
                }
            }
        }
        let Some((old_slot, header, bytes)) = newest else { continue };
        if header.service != service {
            continue;
        }
        v.allot(&service, bytes.len() as u64)?;
        let Some(region) = v.services.get(&service).map(|s| s.slots[0].region) else { continue };
        v.write_pool(region.start, &bytes)?;
        v.cache.disk.flush()?;
        let generation = header.generation;
        v.boot = v.boot.max(header.boot + 1);
        if let Some(s) = v.services.get_mut(&service) {
            s.slots[0].state = SlotState::Valid(header);
            s.log.generation = generation;
        }
        log::info!(
            "{service}: moved checkpoint generation {generation} from the old slot file /{DIR}/{service}.{old_slot} into the pool"
        );
    }
    Ok(())
}
