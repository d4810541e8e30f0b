//! Timestamps and dates in JSON answers, written exactly as chrono's serde
//! support writes them, without its formatting machinery (issue 8).
//!
//! chrono serialises a `DateTime<Utc>` through `Display` and serde_json's
//! `collect_str`: one formatter call and one escaping check per character.
//! A client read carries up to three timestamps and two dates; written that
//! way they were about 5 % of the server's instructions per read. Here the
//! common case (years 0–9999, no leap second) is written into a small
//! buffer directly; anything else goes through chrono as before. The unit
//! tests hold both to the same output, byte for byte.
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Serialize, Serializer};

/// A value chrono serialises as text, written here into a buffer where
/// [`Text::write`] can (`None`: chrono's own serialisation writes it).
trait Text: Serialize {
    fn write(&self, buf: &mut [u8; 30]) -> Option<usize>;
}

impl Text for DateTime<Utc> {
    fn write(&self, buf: &mut [u8; 30]) -> Option<usize> {
        write_datetime(self, buf)
    }
}

impl Text for NaiveDate {
    fn write(&self, buf: &mut [u8; 30]) -> Option<usize> {
        write_date(self, buf)
    }
}

/// Serialises its value through [`Text::write`].
struct Fast<'a, T>(&'a T);

impl<T: Text> Serialize for Fast<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 30];
        match self.0.write(&mut buf).and_then(|n| std::str::from_utf8(&buf[..n]).ok()) {
            Some(text) => s.serialize_str(text),
            None => self.0.serialize(s),
        }
    }
}

/// `serialize_with` for a `DateTime<Utc>`.
pub fn datetime<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    Fast(t).serialize(s)
}

/// `serialize_with` for an `Option<DateTime<Utc>>`.
pub fn option_datetime<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    t.as_ref().map(Fast).serialize(s)
}

/// `serialize_with` for an `Option<NaiveDate>`.
pub fn option_date<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    d.as_ref().map(Fast).serialize(s)
}

/// `YYYY-MM-DD` into `buf`; `None` outside the years 0–9999 (chrono then
/// writes a sign and more digits).
fn write_date(d: &NaiveDate, buf: &mut [u8]) -> Option<usize> {
    let year = u32::try_from(d.year()).ok().filter(|y| *y <= 9999)?;
    digits(&mut buf[0..4], year);
    buf[4] = b'-';
    digits(&mut buf[5..7], d.month());
    buf[7] = b'-';
    digits(&mut buf[8..10], d.day());
    Some(10)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z` into `buf` (chrono's
/// `SecondsFormat::AutoSi` with `Z`: as many fraction digits as the value
/// needs, in groups of three); `None` for what chrono writes differently
/// (years outside 0–9999, a leap second).
fn write_datetime(t: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    write_date(&t.date_naive(), buf)?;
    buf[10] = b'T';
    digits(&mut buf[11..13], t.hour());
    buf[13] = b':';
    digits(&mut buf[14..16], t.minute());
    buf[16] = b':';
    digits(&mut buf[17..19], t.second());
    let mut n = 19;
    let (value, width) = match nanos {
        0 => (0, 0),
        _ if nanos.is_multiple_of(1_000_000) => (nanos / 1_000_000, 3),
        _ if nanos.is_multiple_of(1_000) => (nanos / 1_000, 6),
        _ => (nanos, 9),
    };
    if width > 0 {
        buf[n] = b'.';
        digits(&mut buf[n + 1..n + 1 + width], value);
        n += 1 + width;
    }
    buf[n] = b'Z';
    Some(n + 1)
}

/// `value` as `out.len()` decimal digits, zero-padded.
fn digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;
    use rand::Rng;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "datetime")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "option_datetime")]
        maybe: Option<DateTime<Utc>>,
        #[serde(serialize_with = "option_date")]
        day: Option<NaiveDate>,
    }

    #[derive(Serialize)]
    struct Chrono {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
        day: Option<NaiveDate>,
    }

    fn same(at: DateTime<Utc>, maybe: Option<DateTime<Utc>>, day: Option<NaiveDate>) {
        let ours = serde_json::to_string(&Ours { at, maybe, day }).unwrap();
        let chrono = serde_json::to_string(&Chrono { at, maybe, day }).unwrap();
        assert_eq!(ours, chrono);
    }

    #[test]
    fn writes_what_chrono_writes_for_every_precision_and_year() {
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            // Years -5000..15000: inside 0–9999 written here, outside by chrono.
            let secs = rng.random_range(-220_000_000_000_i64..411_000_000_000);
            let nanos = match rng.random_range(0..4) {
                0 => 0,
                1 => rng.random_range(0..1_000) * 1_000_000,
                2 => rng.random_range(0..1_000_000) * 1_000,
                _ => rng.random_range(0..1_000_000_000),
            };
            let at = Utc.timestamp_opt(secs, nanos).unwrap();
            let day = NaiveDate::from_num_days_from_ce_opt(rng.random_range(-2_000_000..5_000_000));
            same(at, Some(at), day);
        }
    }

    #[test]
    fn edges_and_absent_values_are_written_as_chrono_writes_them() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        for at in [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 12, 31, 23, 59, 59).unwrap(),
            Utc.from_utc_datetime(&leap),
            Utc.timestamp_opt(1_765_000_000, 1).unwrap(),
            Utc.timestamp_opt(1_765_000_000, 999_999_999).unwrap(),
            Utc.timestamp_opt(1_765_000_000, 1_000).unwrap(),
        ] {
            same(at, None, None);
            same(at, Some(at), Some(at.date_naive()));
        }
    }
}
