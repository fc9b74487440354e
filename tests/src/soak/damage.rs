//! Damage to the checkpoint disk between boots (issue 11): after a power
//! cut and the fsck, now and then one record of one service's checkpoint
//! slots is damaged in the image from the host (bytes flipped, or the
//! record cut short: its bytes from some length on zeroed, since a slot is
//! a region of the vault's pool file, `/KINTSUGI/POOL.DAT`, not a file of
//! its own); after the next boot the soak checks that the vault reported
//! it and the service restored the other slot's record, and at the next
//! cut that the service committed again (the damaged slot is the next
//! commit's target). This module owns the choice of what to damage, the
//! damage itself and the reading of what the console said about it.
//!
//! What is damaged where it is meaningful (see RELIABILITY.md): a valid
//! record of kv, tally or fs, the newest only when the other slot holds a
//! valid record to fall back to, and for fs the newest only when its epoch
//! is empty: fs's newest epoch may be on the data disk already, and the
//! older record's epoch written again over it would put older blocks over
//! newer ones, which no fallback can undo.

use super::rng::Rng;
use crate::vault::Slot;
use checkpoint_record::{self as record, Header, RecordError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The services whose checkpoints the vault keeps.
pub const SERVICES: [&str; 3] = ["kv", "tally", "fs"];

/// What is done to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Harm {
    /// `bytes` bytes of the record flipped.
    Flip { bytes: u32 },
    /// The record's bytes from `to` on zeroed (0: the whole record, which
    /// then reads as a slot never written).
    Truncate { to: u64 },
}

/// One damage done.
#[derive(Clone, Debug)]
pub struct Damage {
    /// The service.
    pub service: String,
    /// The slot damaged.
    pub slot: u8,
    /// Whether it held the service's newest record.
    pub newest: bool,
    /// The damaged record's generation.
    pub generation: u64,
    /// The generation the service must restore: the other slot's.
    pub expected: u64,
    /// What was done.
    pub harm: Harm,
    /// The slot reads as empty now (a zeroed record): nothing to report
    /// unless the log shows a newer generation.
    pub silent: bool,
    /// For kv's newest record: kvcommit's ops the older record holds (the
    /// least kv may hold after the boot; 0 when its state does not show).
    pub kv_floor: Option<u64>,
}

impl Damage {
    /// One line for the progress and the report.
    pub fn describe(&self) -> String {
        let harm = match self.harm {
            Harm::Flip { bytes } => format!("{bytes} byte(s) flipped"),
            Harm::Truncate { to: 0 } => "truncated to 0 (zeroed)".to_string(),
            Harm::Truncate { to } => format!("truncated to {to} bytes"),
        };
        format!(
            "{} slot {} ({} record, generation {}): {harm}",
            self.service,
            self.slot,
            if self.newest { "newest" } else { "older" },
            self.generation
        )
    }
}

/// The slots that may be damaged: indexes into `slots`.
pub fn candidates(slots: &[Slot]) -> Vec<usize> {
    let valid = |s: &Slot| s.record.is_ok();
    (0..slots.len())
        .filter(|&i| {
            let s = &slots[i];
            let Ok(h) = &s.record else { return false };
            if !SERVICES.contains(&s.service.as_str()) {
                return false;
            }
            let other = slots.iter().find(|o| o.service == s.service && o.slot != s.slot);
            let other_valid = other.is_some_and(valid);
            if s.current {
                // The newest: only with an older record to fall back to,
                // and for fs only without an epoch.
                other_valid && !(s.service == "fs" && h.epoch_len > 0)
            } else {
                // The older one: the newest stays.
                other.is_some_and(|o| o.current)
            }
        })
        .collect()
}

/// The state of kv after the first `k` of kvcommit's ops that `state` (a
/// kv checkpoint) holds, if some `k <= max` matches; the keys are read from
/// the state's bytes (`u32` length, `k{j}`, `u32` length, `v{i}`).
pub fn kvcommit_ops(state: &[u8], max: u64) -> Option<u64> {
    let contents: Vec<Option<String>> = (0..super::durable::KEYS)
        .map(|j| {
            let key = format!("k{j}");
            let mut pattern = (key.len() as u32).to_le_bytes().to_vec();
            pattern.extend_from_slice(key.as_bytes());
            let at = state.windows(pattern.len()).position(|w| w == pattern.as_slice())? + pattern.len();
            let len = u32::from_le_bytes(state.get(at..at + 4)?.try_into().ok()?) as usize;
            let value = state.get(at + 4..at + 4 + len)?;
            Some(String::from_utf8_lossy(value).into_owned())
        })
        .collect();
    (0..=max).rev().find(|&k| super::durable::history(k) == contents)
}

/// Where the record with header `h` starts in `image` (at a sector
/// boundary), if exactly one copy of it is there (a slot that grew leaves
/// its old record behind in free pool space).
fn locate(image: &[u8], h: &Header) -> Result<usize, String> {
    let found: Vec<usize> = (0..image.len().saturating_sub(record::HEADER_LEN))
        .step_by(512)
        .filter(|&at| image[at..at + 8] == record::MAGIC && Header::parse(&image[at..]).is_ok_and(|x| x == *h))
        .collect();
    match found.as_slice() {
        [at] => Ok(*at),
        [] => Err(format!("{} generation {}: not found in the image", h.service, h.generation)),
        _ => Err(format!("{} generation {}: {} copies in the image", h.service, h.generation, found.len())),
    }
}

/// Damage `record` (its bytes, changed in place) as `harm` says, with
/// positions from `rng`; whether it no longer decodes.
fn harm_bytes(record: &mut [u8], harm: Harm, rng: &mut Rng) -> bool {
    match harm {
        Harm::Flip { bytes } => {
            for _ in 0..bytes {
                // A quarter of the flips in the header, the rest anywhere.
                let at =
                    if rng.chance(25) { rng.below(record::HEADER_LEN as u64) } else { rng.below(record.len() as u64) }
                        as usize;
                record[at] ^= 1 + rng.below(255) as u8;
            }
        }
        Harm::Truncate { to } => {
            let from = (to as usize).min(record.len());
            record[from..].fill(0);
        }
    }
    record::decode(record).is_err()
}

/// Choose a record of `slots` and damage it in the checkpoint image `img`;
/// None when no slot is a candidate (or the record cannot be found).
/// `kv_max`: kvcommit's ops sent so far (for [`Damage::kv_floor`]).
pub fn inject(img: &Path, slots: &[Slot], rng: &mut Rng, kv_max: u64) -> Result<Option<Damage>, String> {
    let candidates = candidates(slots);
    if candidates.is_empty() {
        return Ok(None);
    }
    let s = &slots[candidates[rng.below(candidates.len() as u64) as usize]];
    let Ok(h) = &s.record else { return Ok(None) };
    let Some(other) = slots.iter().find(|o| o.service == s.service && o.slot != s.slot) else { return Ok(None) };
    let Ok(other_h) = &other.record else { return Ok(None) };
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).open(img).map_err(|e| format!("{}: {e}", img.display()))?;
    let mut image = Vec::new();
    file.read_to_end(&mut image).map_err(|e| format!("{}: {e}", img.display()))?;
    let at = locate(&image, h)?;
    let len = h.record_len() as usize;
    let original = image.get(at..at + len).ok_or("a record past the end of the image")?.to_vec();
    // A harm that leaves the record valid (a cut among trailing zeros) is
    // chosen again.
    for _ in 0..8 {
        let harm = if rng.chance(50) {
            Harm::Flip { bytes: rng.range(1, 4) as u32 }
        } else {
            match rng.below(3) {
                0 => Harm::Truncate { to: 0 },
                1 => Harm::Truncate { to: rng.range(1, record::HEADER_LEN as u64 - 1) },
                _ => Harm::Truncate { to: rng.range(record::HEADER_LEN as u64, len as u64 - 1) },
            }
        };
        let mut bytes = original.clone();
        if !harm_bytes(&mut bytes, harm, rng) {
            continue;
        }
        file.seek(SeekFrom::Start(at as u64)).map_err(|e| e.to_string())?;
        file.write_all(&bytes).map_err(|e| format!("{}: {e}", img.display()))?;
        file.sync_all().map_err(|e| e.to_string())?;
        let silent = matches!(record::decode(&bytes), Err(RecordError::Empty));
        let kv_floor = (s.current && s.service == "kv").then(|| kvcommit_ops(&other.state, kv_max).unwrap_or(0));
        return Ok(Some(Damage {
            service: s.service.clone(),
            slot: s.slot,
            newest: s.current,
            generation: h.generation,
            expected: other_h.generation,
            harm,
            silent,
            kv_floor,
        }));
    }
    Ok(None)
}

/// What the boot after a damage said about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// The vault's warning about the damaged slot (or about a log newer
    /// than any record).
    pub vault_reported: bool,
    /// The companion's note that it restored an older record.
    pub companion_noted: bool,
    /// The generation the companion restored, if it said.
    pub restored: Option<u64>,
}

/// Read `console` (a boot's, from its start) for what the vault and the
/// companion of `d.service` said.
pub fn seen(console: &str, d: &Damage) -> Seen {
    let svc = &d.service;
    let slot_damaged = format!(" {svc}: slot {} damaged (", d.slot);
    let log_newer = format!(" {svc}: the log follows generation ");
    let restoring = format!(" {svc}: restoring checkpoint generation ");
    let mut out = Seen::default();
    for line in console.lines() {
        let ours = |text: &str| line.contains(text);
        if line.starts_with("[vault] ") && (ours(&slot_damaged) || ours(&log_newer)) {
            out.vault_reported = true;
        } else if line.starts_with(&format!("[{svc}-companion] ")) {
            if (ours(&slot_damaged) || ours(&log_newer)) && ours("restored generation ") {
                out.companion_noted = true;
            }
            if let Some(at) = line.find(&restoring) {
                let rest = &line[at + restoring.len()..];
                out.restored = rest.split_whitespace().next().and_then(|n| n.parse().ok()).or(out.restored);
            }
        }
    }
    out
}

/// What is wrong with what the boot after `d` said (None: all as it
/// should be).
pub fn judge(d: &Damage, s: &Seen) -> Option<String> {
    if s.restored == Some(d.generation) {
        return Some(format!("{}: the damaged record was restored", d.describe()));
    }
    if s.restored != Some(d.expected) {
        return Some(format!(
            "{}: {} restored {}, not generation {} from the other slot",
            d.describe(),
            d.service,
            s.restored.map_or("nothing it said".to_string(), |g| format!("generation {g}")),
            d.expected
        ));
    }
    if !d.silent && !s.vault_reported {
        return Some(format!("{}: the vault did not report it", d.describe()));
    }
    if d.newest && !d.silent && !s.companion_noted {
        return Some(format!("{}: the companion did not say it restored an older record", d.describe()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkpoint_record::{Kind, Meta};

    fn slot(service: &str, slot: u8, generation: Option<u64>, current: bool, epoch: &[u8]) -> Slot {
        let record = match generation {
            Some(g) => {
                let meta = Meta { service, generation: g, taken_ns: 1, boot: 1, kind: Kind::Logical };
                let mut h = record::header_for(&meta, b"state", b"").unwrap();
                h.epoch_len = epoch.len() as u64;
                Ok(h)
            }
            None => Err(RecordError::Empty),
        };
        Slot {
            service: service.to_string(),
            slot,
            file_size: 1 << 18,
            record,
            state: Vec::new(),
            current,
            log: crate::vault::Log { entries: 0, bytes: 0, capacity: 0, data: Vec::new() },
        }
    }

    #[test]
    fn only_records_with_a_fallback_are_candidates() {
        let slots = vec![
            slot("fs", 0, Some(4), true, b"epoch"), // newest with an epoch: no
            slot("fs", 1, Some(3), false, b""),     // older: yes
            slot("kv", 0, Some(7), true, b""),      // newest with an older: yes
            slot("kv", 1, Some(6), false, b""),     // older: yes
            slot("net", 0, Some(2), true, b""),     // not a vault service
            slot("net", 1, Some(1), false, b""),
            slot("tally", 0, Some(1), true, b""), // newest, nothing older: no
            slot("tally", 1, None, false, b""),
        ];
        assert_eq!(candidates(&slots), vec![1, 2, 3]);
        let mut fs_without_epoch = slots.clone();
        fs_without_epoch[0] = slot("fs", 0, Some(4), true, b"");
        assert_eq!(candidates(&fs_without_epoch), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_damage_breaks_the_chosen_record_and_nothing_else() {
        let path = std::env::temp_dir().join(format!("soak-damage-{}.img", std::process::id()));
        let meta = |g| Meta { service: "kv", generation: g, taken_ns: 1, boot: 1, kind: Kind::Logical };
        let (new, old) =
            (record::encode(&meta(7), &[7; 900], b"").unwrap(), record::encode(&meta(6), &[6; 900], b"").unwrap());
        let mut image = vec![0xa5u8; 32 * 512];
        image[2 * 512..2 * 512 + new.len()].copy_from_slice(&new);
        image[16 * 512..16 * 512 + old.len()].copy_from_slice(&old);
        let mut slots = vec![slot("kv", 0, Some(7), true, b""), slot("kv", 1, Some(6), false, b"")];
        slots[0].record = Ok(Header::parse(&new).unwrap());
        slots[1].record = Ok(Header::parse(&old).unwrap());
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 1..40 {
            std::fs::write(&path, &image).unwrap();
            let d = inject(&path, &slots, &mut Rng::new(seed), 0).unwrap().expect("a damage");
            let after = std::fs::read(&path).unwrap();
            let (at, len, other_at) = if d.slot == 0 { (2, new.len(), 16) } else { (16, old.len(), 2) };
            assert!(record::decode(&after[at * 512..at * 512 + len]).is_err(), "{}", d.describe());
            assert_eq!(d.silent, after[at * 512..at * 512 + len].iter().all(|&b| b == 0));
            assert_eq!(after[other_at * 512..other_at * 512 + 1024], image[other_at * 512..other_at * 512 + 1024]);
            let changed = (0..after.len()).filter(|&i| after[i] != image[i]);
            assert!(changed.clone().all(|i| (at * 512..at * 512 + len).contains(&i)), "{}", d.describe());
            assert_eq!((d.newest, d.expected), if d.slot == 0 { (true, 6) } else { (false, 7) });
            assert_eq!(d.kv_floor, d.newest.then_some(0));
            kinds.insert(match d.harm {
                Harm::Flip { .. } => "flip",
                Harm::Truncate { to: 0 } => "zeroed",
                Harm::Truncate { to } if to < 128 => "header",
                Harm::Truncate { .. } => "payload",
            });
        }
        assert_eq!(kinds.len(), 4, "every kind of damage among 39 seeds: {kinds:?}");
        let _ = std::fs::remove_file(&path);
    }

    /// A kv state as the distillation writes it: the map's entries, each a
    /// `u32` length and the bytes of key and value, among other bytes.
    fn kv_state(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut b = vec![9, 0, 0, 0, 0, 0, 0, 0];
        for (k, v) in pairs {
            for s in [k, v] {
                b.extend_from_slice(&(s.len() as u32).to_le_bytes());
                b.extend_from_slice(s.as_bytes());
            }
        }
        b
    }

    #[test]
    fn kvcommit_ops_in_a_kv_state() {
        let state = kv_state(&[("a", "b"), ("k0", "v5"), ("k1", "v6"), ("k2", "v2"), ("k3", "v3"), ("k4", "v4")]);
        assert_eq!(kvcommit_ops(&state, 100), Some(7));
        assert_eq!(kvcommit_ops(&state, 6), None, "not within what was sent");
        assert_eq!(kvcommit_ops(&kv_state(&[("other", "x")]), 100), Some(0), "no kvcommit key: none of its ops");
        assert_eq!(kvcommit_ops(&kv_state(&[("k0", "v0"), ("k1", "zzz")]), 100), None);
    }

    fn damage(newest: bool, silent: bool) -> Damage {
        Damage {
            service: "kv".into(),
            slot: 1,
            newest,
            generation: 12,
            expected: if newest { 11 } else { 13 },
            harm: Harm::Flip { bytes: 2 },
            silent,
            kv_floor: None,
        }
    }

    const FALLBACK: &str = "[vault] warning: kv: slot 1 damaged (payload checksum mismatch); using slot 0 generation 11
[kv-companion] kv: restoring checkpoint generation 11 from the vault (slot 0, 300 bytes, logical, taken at 5 ms of boot 2)
[kv-companion] warning: kv: slot 1 damaged (payload checksum mismatch); restored generation 11 from slot 0
";

    #[test]
    fn a_fallback_said_by_the_vault_and_the_companion_passes() {
        let d = damage(true, false);
        let s = seen(FALLBACK, &d);
        assert_eq!(s, Seen { vault_reported: true, companion_noted: true, restored: Some(11) });
        assert_eq!(judge(&d, &s), None);
        // Another service's lines are not kv's.
        let other = FALLBACK.replace("kv", "tally").replace("[tally-companion]", "[kv-companion]");
        assert_eq!(seen(&other, &d), Seen::default());
    }

    #[test]
    fn garbage_restored_or_nothing_said_fails() {
        let d = damage(true, false);
        let garbage = "[kv-companion] kv: restoring checkpoint generation 12 from the vault (slot 1, ...)\n";
        assert!(judge(&d, &seen(garbage, &d)).unwrap().contains("the damaged record was restored"));
        let unsaid = "[kv-companion] kv: restoring checkpoint generation 11 from the vault (slot 0, ...)\n";
        assert!(judge(&d, &seen(unsaid, &d)).unwrap().contains("the vault did not report it"));
        // A zeroed newest record reads as a slot never written: the
        // restore of the older one is all there is to see.
        assert_eq!(judge(&damage(true, true), &seen(unsaid, &d)), None);
        // An older record damaged: the vault says so, the newest is restored.
        let older = damage(false, false);
        let text = "[vault] warning: kv: slot 1 damaged (header checksum mismatch); using slot 0 generation 13
[kv-companion] kv: restoring checkpoint generation 13 from the vault (slot 0, 300 bytes)\n";
        assert_eq!(judge(&older, &seen(text, &older)), None);
        assert!(judge(&older, &seen("", &older)).unwrap().contains("restored nothing it said"));
    }
}
