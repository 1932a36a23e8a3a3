//! Time as whole seconds since the Unix epoch, behind a trait so tests can
//! move it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A duration as whole seconds on the clock's scale (saturating).
pub fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A duration as whole milliseconds on the clock's scale (saturating).
pub fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
    /// Milliseconds, for leases that must expire sooner than a second.
    fn now_ms(&self) -> i64 {
        self.now() * 1000
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock tests set and advance by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now: i64) -> Self {
        Self(AtomicI64::new(now))
    }
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The guide's `expires` format: `YYYY-MM-DDTHH:MM:SS`, UTC, no zone suffix.
const GUIDE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
/// RFC 3339 with milliseconds and `Z`: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const RFC3339_MS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Nanoseconds since the epoch in `description` (UTC).
fn format(epoch_nanos: i128, description: &[FormatItem<'static>]) -> String {
    utc(epoch_nanos)
        .format(description)
        .expect("every date in range formats")
}

fn utc(epoch_nanos: i128) -> OffsetDateTime {
    // Outside time's range (years -9999..=9999): the nearest end, so a
    // formatter never panics on a corrupt stored value.
    OffsetDateTime::from_unix_timestamp_nanos(epoch_nanos).unwrap_or(if epoch_nanos < 0 {
        PrimitiveDateTime::MIN.assume_utc()
    } else {
        PrimitiveDateTime::MAX.assume_utc()
    })
}

/// Seconds since the epoch in the guide's `expires` format.
pub fn guide_datetime(epoch_secs: i64) -> String {
    format(i128::from(epoch_secs) * 1_000_000_000, GUIDE)
}

/// RFC 3339 in whole seconds: `YYYY-MM-DDTHH:MM:SSZ`.
const RFC3339: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339).
pub fn rfc3339(epoch_secs: i64) -> String {
    format(i128::from(epoch_secs) * 1_000_000_000, RFC3339)
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339).
pub fn rfc3339_ms(ms: i64) -> String {
    format(i128::from(ms) * 1_000_000, RFC3339_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_guides_example() {
        // 2009-06-15T13:45:30Z, the guide's own example value.
        assert_eq!(guide_datetime(1_245_073_530), "2009-06-15T13:45:30");
    }

    #[test]
    fn formats_epoch_leap_day_and_end_of_year() {
        assert_eq!(guide_datetime(0), "1970-01-01T00:00:00");
        assert_eq!(guide_datetime(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(guide_datetime(1_798_761_599), "2026-12-31T23:59:59");
    }

    #[test]
    fn milliseconds_in_rfc3339() {
        assert_eq!(rfc3339_ms(1_795_806_000_007), "2026-11-27T19:00:00.007Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(10);
        c.advance(5);
        assert_eq!(c.now(), 15);
        c.set(3);
        assert_eq!(c.now(), 3);
    }
}
