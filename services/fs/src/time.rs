//! FAT dates and times (local, two-second resolution, 1980 to 2107) from
//! and to seconds since 1970-01-01, and the clock fatfs stamps entries
//! with: a value the service sets before each request ([`Clock::set`]), so
//! a replay stamps the same times as the first run.

use alloc::rc::Rc;
use core::cell::Cell;
use fatfs::{Date, DateTime, Time};

/// Seconds from 1970-01-01 to 1980-01-01, FAT's first day.
pub const FAT_EPOCH: u64 = 315_532_800;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since 1970 of a FAT date and time (0 for a date FAT cannot
/// hold, such as the zeros of an unset field).
pub fn to_unix(dt: DateTime) -> u64 {
    let (y, m, d) = (dt.date.year as i64, dt.date.month as i64, dt.date.day as i64);
    if !(1980..=2107).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return 0;
    }
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + dt.time.hour as i64 * 3600 + dt.time.min as i64 * 60 + dt.time.sec as i64;
    secs.max(0) as u64
}

/// The midnight of a FAT date, in seconds since 1970.
pub fn date_to_unix(d: Date) -> u64 {
    to_unix(DateTime::new(d, Time::new(0, 0, 0, 0)))
}

/// The FAT date and time of seconds since 1970 (clamped to FAT's range).
pub fn from_unix(secs: u64) -> DateTime {
    let max = to_unix(DateTime::new(Date::new(2107, 12, 31), Time::new(23, 59, 58, 0)));
    let secs = secs.clamp(FAT_EPOCH, max);
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    DateTime::new(
        Date::new(y as u16, m as u16, d as u16),
        Time::new((rest / 3600) as u16, ((rest / 60) % 60) as u16, (rest % 60) as u16, 0),
    )
}

/// The clock fatfs reads: seconds since 1970, set from outside.
#[derive(Clone, Debug, Default)]
pub struct Clock(Rc<Cell<u64>>);

impl Clock {
    /// A clock reading 1980-01-01 until set.
    pub fn new() -> Clock {
        Clock(Rc::new(Cell::new(FAT_EPOCH)))
    }

    /// Set the time (seconds since 1970).
    pub fn set(&self, secs: u64) {
        self.0.set(secs);
    }

    /// The time set.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

impl fatfs::TimeProvider for Clock {
    fn get_current_date(&self) -> Date {
        from_unix(self.0.get()).date
    }
    fn get_current_date_time(&self) -> DateTime {
        from_unix(self.0.get())
    }
}
