//! RFC 3339 timestamps as recorded by the CollectorAgent
//! (`2018-04-16T00:12:47Z`, `2019-02-01T00:28:17.949836372Z`).

use std::fmt;

/// A point in time, nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// The text is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {0:?}")]
pub struct TimestampError(pub String);

const NANOS: i64 = 1_000_000_000;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Timestamp {
    /// Parses `YYYY-MM-DD[T ]hh:mm:ss[.frac](Z|±hh:mm)`.
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError(s.to_string());
        let b = s.as_bytes();
        if b.len() < 19 {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            s.get(r)
                .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|t| t.parse().ok())
                .ok_or_else(err)
        };
        if b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(err());
        }
        let (y, mo, d, h, mi, sec) = (
            num(0..4)?,
            num(5..7)?,
            num(8..10)?,
            num(11..13)?,
            num(14..16)?,
            num(17..19)?,
        );
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return Err(err());
        }
        let mut i = 19;
        let mut frac: i64 = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() {
                return Err(err());
            }
            let mut padded: String = digits.chars().take(9).collect();
            while padded.len() < 9 {
                padded.push('0');
            }
            frac = padded.parse().map_err(|_| err())?;
        }
        let offset_secs = match &s[i..] {
            "Z" | "z" => 0,
            tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
                let oh = num(i + 1..i + 3)?;
                let om = num(i + 4..i + 6)?;
                let sign = if tz.starts_with('-') { -1 } else { 1 };
                sign * (oh * 3600 + om * 60)
            }
            _ => return Err(err()),
        };
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
        Ok(Timestamp(secs * NANOS + frac))
    }

    /// Whole seconds since the epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(NANOS)
    }

    /// This timestamp plus `secs` seconds (fractional allowed).
    pub fn plus_seconds(self, secs: f64) -> Self {
        Timestamp(self.0.saturating_add((secs * NANOS as f64) as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "@{}.{:09}",
            self.unix_seconds(),
            self.0.rem_euclid(NANOS)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recorded_forms() {
        let a = Timestamp::parse("1970-01-02T00:00:01Z").unwrap();
        assert_eq!(a.unix_seconds(), 86_401);
        let b = Timestamp::parse("2000-03-01T00:00:00.5Z").unwrap();
        assert_eq!(b.0 % NANOS, 500_000_000);
        assert_eq!(b.unix_seconds(), 951_868_800);
        let c = Timestamp::parse("2000-03-01T09:00:00+09:00").unwrap();
        assert_eq!(c.unix_seconds(), 951_868_800);
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(b.plus_seconds(1.0) > b);
    }
}
