//! System values: an exact decimal, dates/times with their precision, and the
//! arithmetic and comparisons FHIRPath defines on them.

use std::cmp::Ordering;
use std::fmt;

/// An exact decimal: `m / 10^s`. Arithmetic is checked; overflow gives `None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dec {
    pub m: i128,
    pub s: u32,
}

/// The most decimal places kept (division and conversions from floats round here).
const MAX_SCALE: u32 = 28;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Dec {
    pub fn from_int(i: i64) -> Dec {
        Dec {
            m: i128::from(i),
            s: 0,
        }
    }

    /// Parses `-12.50`, `3`, `1e-3` (JSON numbers may have an exponent).
    pub fn parse(text: &str) -> Option<Dec> {
        let (mant, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (neg, body) = match mant.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, mant.strip_prefix('+').unwrap_or(mant)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut m: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let mut s = i64::try_from(frac.len()).ok()? - i64::from(exp);
        if s < 0 {
            m = m.checked_mul(pow10(u32::try_from(-s).ok()?)?)?;
            s = 0;
        }
        let s = u32::try_from(s).ok()?;
        if s > 60 {
            return None;
        }
        let d = Dec {
            m: if neg { -m } else { m },
            s,
        };
        Some(if d.s > MAX_SCALE {
            d.round(MAX_SCALE)
        } else {
            d
        })
    }

    pub fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() {
            return None;
        }
        // Shortest representation that round-trips, then at most MAX_SCALE places.
        Dec::parse(&format!("{f:e}")).map(|d| d.round(MAX_SCALE.min(d.s)))
    }

    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Rounds half away from zero to `places` decimal places.
    pub fn round(self, places: u32) -> Dec {
        if self.s <= places {
            return self;
        }
        let Some(p) = pow10(self.s - places) else {
            return Dec { m: 0, s: places };
        };
        let q = self.m / p;
        let r = (self.m % p).unsigned_abs();
        let p = p.unsigned_abs();
        // r >= p / 2, without overflowing.
        let q = if r >= p - r { q + self.m.signum() } else { q };
        Dec { m: q, s: places }
    }

    pub fn truncate(self) -> Dec {
        match pow10(self.s) {
            Some(p) => Dec {
                m: self.m / p,
                s: 0,
            },
            None => Dec { m: 0, s: 0 },
        }
    }

    pub fn floor(self) -> Dec {
        let t = self.truncate();
        if self.m < 0 && t.cmp_to(self) != Ordering::Equal {
            Dec { m: t.m - 1, s: 0 }
        } else {
            t
        }
    }

    pub fn ceiling(self) -> Dec {
        let t = self.truncate();
        if self.m > 0 && t.cmp_to(self) != Ordering::Equal {
            Dec { m: t.m + 1, s: 0 }
        } else {
            t
        }
    }

    /// The value as an i64 if it has no fractional part.
    pub fn to_i64_exact(self) -> Option<i64> {
        let t = self.truncate();
        if t.cmp_to(self) == Ordering::Equal {
            i64::try_from(t.m).ok()
        } else {
            None
        }
    }

    fn rescale(self, s: u32) -> Option<Dec> {
        if s < self.s {
            return None;
        }
        Some(Dec {
            m: self.m.checked_mul(pow10(s - self.s)?)?,
            s,
        })
    }

    fn align(a: Dec, b: Dec) -> Option<(i128, i128, u32)> {
        let s = a.s.max(b.s);
        Some((a.rescale(s)?.m, b.rescale(s)?.m, s))
    }

    pub fn add(self, o: Dec) -> Option<Dec> {
        let (a, b, s) = Dec::align(self, o)?;
        Some(Dec {
            m: a.checked_add(b)?,
            s,
        })
    }

    pub fn sub(self, o: Dec) -> Option<Dec> {
        self.add(o.neg()?)
    }

    pub fn neg(self) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_neg()?,
            s: self.s,
        })
    }

    pub fn abs(self) -> Option<Dec> {
        Some(Dec {
            m: self.m.checked_abs()?,
            s: self.s,
        })
    }

    pub fn mul(self, o: Dec) -> Option<Dec> {
        let d = Dec {
            m: self.m.checked_mul(o.m)?,
            s: self.s + o.s,
        };
        Some(if d.s > MAX_SCALE {
            d.round(MAX_SCALE)
        } else {
            d
        })
    }

    /// Division, to at most 8 significant decimal places beyond the operands', with
    /// trailing zeros removed; `None` for division by zero or overflow.
    pub fn div(self, o: Dec) -> Option<Dec> {
        if o.m == 0 {
            return None;
        }
        // self/o = (a.m / 10^a.s) / (o.m / 10^o.s); compute at scale `target`.
        let target = 16u32;
        // numerator scaled: a.m * 10^(target + o.s - a.s)
        let shift = i64::from(target) + i64::from(o.s) - i64::from(self.s);
        let (num, den) = if shift >= 0 {
            (self.m.checked_mul(pow10(u32::try_from(shift).ok()?)?)?, o.m)
        } else {
            (
                self.m,
                o.m.checked_mul(pow10(u32::try_from(-shift).ok()?)?)?,
            )
        };
        let q = num.checked_div(den)?;
        let r = num.checked_rem(den)?.unsigned_abs();
        let q = if r >= den.unsigned_abs() - r {
            q + if (num < 0) == (den < 0) { 1 } else { -1 }
        } else {
            q
        };
        Some(Dec { m: q, s: target }.normalize())
    }

    /// Removes trailing zeros after the point.
    pub fn normalize(mut self) -> Dec {
        while self.s > 0 && self.m % 10 == 0 {
            self.m /= 10;
            self.s -= 1;
        }
        self
    }

    pub fn cmp_to(self, o: Dec) -> Ordering {
        match Dec::align(self, o) {
            Some((a, b, _)) => a.cmp(&b),
            None => self
                .to_f64()
                .partial_cmp(&o.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// Equivalence: equal when rounded to the precision of the less precise.
    pub fn equivalent(self, o: Dec) -> bool {
        let p = self.s.min(o.s);
        self.round(p).cmp_to(o.round(p)) == Ordering::Equal
    }

    /// The bounds of the interval the value stands for (`1.587` is anything in
    /// [1.5865, 1.5875]), floored (`high` false) or ceiled to `places`.
    pub fn boundary(self, places: u32, high: bool) -> Option<Dec> {
        let half = Dec {
            m: 5,
            s: self.s + 1,
        };
        let bound = if high {
            self.add(half)?
        } else {
            self.sub(half)?
        };
        if bound.s <= places {
            return bound.rescale(places);
        }
        let p = pow10(bound.s - places)?;
        let q = bound.m.div_euclid(p);
        let q = if high && bound.m.rem_euclid(p) != 0 {
            q + 1
        } else {
            q
        };
        Some(Dec { m: q, s: places })
    }

    pub fn is_zero(self) -> bool {
        self.m == 0
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.m < 0;
        let digits = self.m.unsigned_abs().to_string();
        let s = self.s as usize;
        let (int, frac) = if digits.len() > s {
            let (i, fr) = digits.split_at(digits.len() - s);
            (i.to_string(), fr.to_string())
        } else {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat(s - digits.len()), digits),
            )
        };
        if neg {
            f.write_str("-")?;
        }
        f.write_str(&int)?;
        if s > 0 {
            write!(f, ".{frac}")?;
        }
        Ok(())
    }
}

/// Precision of a date, date-time or time: the last component present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Prec {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Milli,
}

/// A date, date-time or time (which of them is the item's variant): components to
/// `prec`, the rest zero; `tz` in minutes east of UTC when given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
    /// Digits written for the fraction of a second (for printing).
    pub frac_digits: u8,
    pub prec: Prec,
    pub tz: Option<i32>,
}

fn num(s: &str, len: usize) -> Option<u32> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

pub(crate) fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl DateTime {
    fn empty(prec: Prec) -> DateTime {
        DateTime {
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            milli: 0,
            frac_digits: 0,
            prec,
            tz: None,
        }
    }

    /// `2012`, `2012-04`, `2012-04-15`.
    pub fn parse_date(s: &str) -> Option<DateTime> {
        let mut parts = s.split('-');
        let mut d = DateTime::empty(Prec::Year);
        d.year = i32::try_from(num(parts.next()?, 4)?).ok()?;
        if let Some(m) = parts.next() {
            d.month = num(m, 2)?;
            d.prec = Prec::Month;
            if !(1..=12).contains(&d.month) {
                return None;
            }
        }
        if let Some(day) = parts.next() {
            d.day = num(day, 2)?;
            d.prec = Prec::Day;
            if d.day < 1 || d.day > days_in_month(d.year, d.month) {
                return None;
            }
        }
        if parts.next().is_some() {
            return None;
        }
        Some(d)
    }

    /// `10`, `10:00`, `10:00:00.123` (FHIRPath allows hour-only times).
    pub fn parse_time(s: &str) -> Option<DateTime> {
        let mut d = DateTime::empty(Prec::Hour);
        d.set_time(s)?;
        Some(d)
    }

    fn set_time(&mut self, s: &str) -> Option<()> {
        let (hms, frac) = match s.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let mut parts = hms.split(':');
        self.hour = num(parts.next()?, 2)?;
        self.prec = Prec::Hour;
        if let Some(m) = parts.next() {
            self.minute = num(m, 2)?;
            self.prec = Prec::Minute;
        }
        if let Some(sec) = parts.next() {
            self.second = num(sec, 2)?;
            self.prec = Prec::Second;
        }
        if parts.next().is_some() || self.hour > 23 || self.minute > 59 || self.second > 59 {
            return None;
        }
        if let Some(f) = frac {
            if self.prec != Prec::Second || f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut ms = 0;
            for (i, b) in f.bytes().take(3).enumerate() {
                ms += u32::from(b - b'0') * [100, 10, 1][i];
            }
            self.milli = ms;
            self.frac_digits = u8::try_from(f.len().min(9)).unwrap_or(3);
            self.prec = Prec::Milli;
        }
        Some(())
    }

    /// `2012-04-15T10:00:00.000+10:00`, `2012T`, `2012-04-15T` (FHIRPath literal
    /// forms) and FHIR's `2012-04-15T10:00:00Z`.
    pub fn parse_date_time(s: &str) -> Option<DateTime> {
        let (date, rest) = match s.split_once('T') {
            Some((d, r)) => (d, Some(r)),
            None => (s, None),
        };
        let mut d = DateTime::parse_date(date)?;
        let Some(rest) = rest else {
            return Some(d);
        };
        if rest.is_empty() {
            return Some(d);
        }
        let (time, tz) = if let Some(t) = rest.strip_suffix('Z') {
            (t, Some(0))
        } else if let Some(i) = rest.rfind(['+', '-']) {
            let (t, z) = rest.split_at(i);
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z[1..].split_once(':')?;
            let h = i32::try_from(num(h, 2)?).ok()?;
            let m = i32::try_from(num(m, 2)?).ok()?;
            if h > 14 || m > 59 {
                return None;
            }
            (t, Some(sign * (h * 60 + m)))
        } else {
            (rest, None)
        };
        if d.prec != Prec::Day && !time.is_empty() {
            return None;
        }
        if !time.is_empty() {
            d.set_time(time)?;
        }
        d.tz = tz;
        Some(d)
    }

    fn fmt_date(&self) -> String {
        let mut s = format!("{:04}", self.year);
        if self.prec >= Prec::Month {
            s += &format!("-{:02}", self.month);
        }
        if self.prec >= Prec::Day {
            s += &format!("-{:02}", self.day);
        }
        s
    }

    pub fn fmt_time(&self) -> String {
        let mut s = format!("{:02}", self.hour);
        if self.prec >= Prec::Minute {
            s += &format!(":{:02}", self.minute);
        }
        if self.prec >= Prec::Second {
            s += &format!(":{:02}", self.second);
        }
        if self.prec >= Prec::Milli {
            s += &format!(".{:03}", self.milli);
        }
        s
    }

    pub fn fmt_date_only(&self) -> String {
        self.fmt_date()
    }

    pub fn fmt_date_time(&self) -> String {
        let mut s = self.fmt_date();
        if self.prec >= Prec::Hour {
            s.push('T');
            s += &self.fmt_time();
            match self.tz {
                Some(0) => s.push('Z'),
                Some(z) => {
                    let sign = if z < 0 { '-' } else { '+' };
                    s += &format!("{sign}{:02}:{:02}", z.abs() / 60, z.abs() % 60);
                }
                None => {}
            }
        }
        s
    }

    /// Milliseconds since the epoch of the instant (UTC when it has a zone).
    fn epoch_ms(&self, with_date: bool) -> i64 {
        let days = if with_date {
            days_from_civil(i64::from(self.year), self.month, self.day)
        } else {
            0
        };
        let mut ms = days * 86_400_000
            + i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.milli);
        if let Some(tz) = self.tz {
            ms -= i64::from(tz) * 60_000;
        }
        ms
    }

    fn set_epoch_ms(&mut self, ms: i64, with_date: bool) -> Option<()> {
        let local = ms + i64::from(self.tz.unwrap_or(0)) * 60_000;
        let days = local.div_euclid(86_400_000);
        let rem = local.rem_euclid(86_400_000);
        if with_date {
            let (y, m, d) = civil_from_days(days);
            if !(1..=9999).contains(&y) {
                return None;
            }
            self.year = i32::try_from(y).ok()?;
            self.month = m;
            self.day = d;
        }
        self.hour = u32::try_from(rem / 3_600_000).ok()?;
        self.minute = u32::try_from(rem / 60_000 % 60).ok()?;
        self.second = u32::try_from(rem / 1000 % 60).ok()?;
        self.milli = u32::try_from(rem % 1000).ok()?;
        Some(())
    }

    /// Compares two values of the same kind (`with_date` false for times): `None`
    /// when they are equal up to the coarser precision but the precisions differ.
    pub fn compare(&self, o: &DateTime, with_date: bool) -> Option<Ordering> {
        // One with a time zone and one without: not comparable.
        if self.prec >= Prec::Hour && o.prec >= Prec::Hour && self.tz.is_some() != o.tz.is_some() {
            return None;
        }
        let (a, b) = if self.tz.is_some()
            && o.tz.is_some()
            && self.prec >= Prec::Hour
            && o.prec >= Prec::Hour
        {
            let mut a = *self;
            let mut b = *o;
            let (ma, mb) = (a.epoch_ms(with_date), b.epoch_ms(with_date));
            a.tz = Some(0);
            b.tz = Some(0);
            a.set_epoch_ms(ma, with_date)?;
            b.set_epoch_ms(mb, with_date)?;
            (a, b)
        } else {
            (*self, *o)
        };
        let comps = |d: &DateTime| {
            [
                (Prec::Year, i64::from(d.year)),
                (Prec::Month, i64::from(d.month)),
                (Prec::Day, i64::from(d.day)),
                (Prec::Hour, i64::from(d.hour)),
                (Prec::Minute, i64::from(d.minute)),
                (
                    Prec::Second,
                    i64::from(d.second) * 1000 + i64::from(d.milli),
                ),
            ]
        };
        // Seconds and milliseconds are one precision.
        let pa = a.prec.min(Prec::Second);
        let pb = b.prec.min(Prec::Second);
        let start = if with_date { Prec::Year } else { Prec::Hour };
        for ((p, x), (_, y)) in comps(&a).into_iter().zip(comps(&b)) {
            if p < start {
                continue;
            }
            if p > pa || p > pb {
                break;
            }
            match x.cmp(&y) {
                Ordering::Equal => {}
                other => return Some(other),
            }
        }
        if pa == pb {
            Some(Ordering::Equal)
        } else {
            None
        }
    }

    /// The earliest (`high` false) or latest value the date/time stands for, to a
    /// precision given in digits (`4` year ... `17` milliseconds for dates and
    /// date-times, `2` ... `9` for times); `None` for a precision the kind has not.
    /// A date-time without a zone gets the widest one (+14:00 low, -12:00 high).
    pub fn boundary(&self, digits: i64, high: bool, kind: char) -> Option<DateTime> {
        let target = match (kind, digits) {
            ('D' | 'T', 4) => Prec::Year,
            ('D' | 'T', 6) => Prec::Month,
            ('D' | 'T', 8) => Prec::Day,
            ('T', 10) | ('t', 2) => Prec::Hour,
            ('T', 12) | ('t', 4) => Prec::Minute,
            ('T', 14) | ('t', 6) => Prec::Second,
            ('T', 17) | ('t', 9) => Prec::Milli,
            _ => return None,
        };
        let mut r = *self;
        // `T08` stands for 08:00.
        if r.prec == Prec::Hour {
            r.minute = 0;
            r.prec = Prec::Minute;
        }
        if r.prec < Prec::Month {
            r.month = if high { 12 } else { 1 };
        }
        if r.prec < Prec::Day {
            r.day = if high {
                days_in_month(r.year, r.month)
            } else {
                1
            };
        }
        if r.prec < Prec::Hour {
            r.hour = if high { 23 } else { 0 };
        }
        if r.prec < Prec::Minute {
            r.minute = if high { 59 } else { 0 };
        }
        if r.prec < Prec::Second {
            r.second = if high { 59 } else { 0 };
        }
        if r.prec < Prec::Milli {
            r.milli = if high { 999 } else { 0 };
        }
        r.prec = target;
        r.frac_digits = 3;
        if kind == 'T' {
            if target >= Prec::Hour {
                r.tz = r.tz.or(Some(if high { -720 } else { 840 }));
            } else {
                r.tz = None;
            }
        }
        Some(r)
    }

    /// Adds `amount` of a calendar unit (`year`, `month`, `week`, `day`, `hour`,
    /// `minute`, `second`, `millisecond`); `with_date` false for a time.
    pub fn add(&self, amount: Dec, unit: &str, with_date: bool) -> Option<DateTime> {
        let mut d = *self;
        let unit = calendar_base(unit)?;
        // Whole units only (the fraction of a unit is dropped).
        let count = i64::try_from(amount.truncate().m).ok()?;
        match unit {
            "year" | "month" => {
                if !with_date {
                    return None;
                }
                let months = if unit == "year" {
                    count.checked_mul(12)?
                } else {
                    count
                };
                let months = if d.prec == Prec::Year {
                    months / 12 * 12
                } else {
                    months
                };
                let total =
                    (i64::from(d.year) * 12 + i64::from(d.month) - 1).checked_add(months)?;
                d.year = i32::try_from(total.div_euclid(12)).ok()?;
                d.month = u32::try_from(total.rem_euclid(12) + 1).ok()?;
                if !(1..=9999).contains(&d.year) {
                    return None;
                }
                d.day = d.day.min(days_in_month(d.year, d.month));
                Some(d)
            }
            _ => {
                let unit_ms: i64 = match unit {
                    "week" => 7 * 86_400_000,
                    "day" => 86_400_000,
                    "hour" => 3_600_000,
                    "minute" => 60_000,
                    "second" => 1000,
                    _ => 1,
                };
                // A value less precise than the unit: whole values of its precision.
                let prec_ms: i64 = match d.prec {
                    Prec::Year => {
                        let years = count.checked_mul(unit_ms)? / (365 * 86_400_000);
                        return d.add(Dec::from_int(years), "year", with_date);
                    }
                    Prec::Month => {
                        let months = count.checked_mul(unit_ms)? / (30 * 86_400_000);
                        return d.add(Dec::from_int(months), "month", with_date);
                    }
                    Prec::Day => 86_400_000,
                    Prec::Hour => 3_600_000,
                    Prec::Minute => 60_000,
                    Prec::Second => 1000,
                    Prec::Milli => 1,
                };
                let delta = count.checked_mul(unit_ms)? / prec_ms * prec_ms;
                let ms = d.epoch_ms(with_date).checked_add(delta)?;
                if with_date {
                    d.set_epoch_ms(ms, true)?;
                } else {
                    d.set_epoch_ms(ms.rem_euclid(86_400_000), false)?;
                }
                Some(d)
            }
        }
    }
}

/// Calendar duration keywords of quantity literals (`4 days`).
pub(crate) fn is_calendar_unit(s: &str) -> bool {
    calendar_base(s).is_some()
        && !s.starts_with('\'')
        && matches!(
            s,
            "year"
                | "years"
                | "month"
                | "months"
                | "week"
                | "weeks"
                | "day"
                | "days"
                | "hour"
                | "hours"
                | "minute"
                | "minutes"
                | "second"
                | "seconds"
                | "millisecond"
                | "milliseconds"
        )
}

/// The calendar unit a quantity unit stands for in date arithmetic: keywords and
/// the UCUM codes of definite durations (`'a'` and `'mo'` are not definite, so
/// they are not allowed).
pub(crate) fn calendar_base(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "year" | "years" => "year",
        "month" | "months" => "month",
        "week" | "weeks" | "wk" => "week",
        "day" | "days" | "d" => "day",
        "hour" | "hours" | "h" => "hour",
        "minute" | "minutes" | "min" => "minute",
        "second" | "seconds" | "s" => "second",
        "millisecond" | "milliseconds" | "ms" => "millisecond",
        _ => return None,
    })
}

/// A UCUM unit as a factor of its base unit (`mg` is 0.001 `g`), for the units
/// fhirconf converts: definite durations, and prefixed grams, metres and litres.
pub(crate) fn ucum_factor(unit: &str) -> Option<(&'static str, Dec)> {
    let d = |s: &str| Dec::parse(s);
    let time = |f: &str| Some(("s", d(f)?));
    match unit {
        "s" | "second" | "seconds" => return time("1"),
        "ms" | "millisecond" | "milliseconds" => return time("0.001"),
        "us" => return time("0.000001"),
        "min" | "minute" | "minutes" => return time("60"),
        "h" | "hour" | "hours" => return time("3600"),
        "d" | "day" | "days" => return time("86400"),
        "wk" | "week" | "weeks" => return time("604800"),
        _ => {}
    }
    match unit {
        "[lb_av]" => return Some(("g", d("453.59237")?)),
        "[oz_av]" => return Some(("g", d("28.349523125")?)),
        "[in_i]" => return Some(("m", d("0.0254")?)),
        "[ft_i]" => return Some(("m", d("0.3048")?)),
        "[mi_i]" => return Some(("m", d("1609.344")?)),
        _ => {}
    }
    for base in ["g", "m", "L", "l"] {
        if let Some(prefix) = unit.strip_suffix(base) {
            let f = match prefix {
                "" => "1",
                "k" => "1000",
                "h" => "100",
                "da" => "10",
                "d" => "0.1",
                "c" => "0.01",
                "m" => "0.001",
                "u" => "0.000001",
                "n" => "0.000000001",
                _ => continue,
            };
            let b = if base == "l" { "L" } else { base };
            return Some((
                match b {
                    "g" => "g",
                    "m" => "m",
                    _ => "L",
                },
                d(f)?,
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(d("0.1").add(d("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(d("1.50").to_string(), "1.50");
        assert_eq!(d("-0.05").to_string(), "-0.05");
        assert_eq!(d("1e-3").to_string(), "0.001");
        assert_eq!(d("2.5E2").to_string(), "250");
        assert_eq!(
            d("1").div(d("3")).unwrap().to_string(),
            "0.3333333333333333"
        );
        assert_eq!(d("1").div(d("4")).unwrap().to_string(), "0.25");
        assert!(d("1").div(d("0")).is_none());
        assert_eq!(d("2.5").round(0).to_string(), "3");
        assert_eq!(d("-2.5").round(0).to_string(), "-3");
        assert_eq!(d("-2.5").floor().to_string(), "-3");
        assert_eq!(d("-2.5").ceiling().to_string(), "-2");
        assert_eq!(d("-2.5").truncate().to_string(), "-2");
        assert!(d("1.0").equivalent(d("1.04")));
        assert!(!d("1.0").equivalent(d("1.1")));
        assert_eq!(d("1.0").cmp_to(d("1")), Ordering::Equal);
        assert!(Dec::parse("1.2.3").is_none());
        assert!(Dec::parse("").is_none());
        assert!(Dec::parse("-").is_none());
        assert!(Dec::parse("99999999999999999999999999999999999999999").is_none());
        let big = Dec { m: i128::MAX, s: 0 };
        assert!(big.add(d("1")).is_none());
        assert!(big.mul(d("2")).is_none());
    }

    #[test]
    fn dates_parse_with_their_precision() {
        let x = DateTime::parse_date_time("2012-04-15T10:00:00.123+10:00").unwrap();
        assert_eq!(x.prec, Prec::Milli);
        assert_eq!(x.tz, Some(600));
        assert_eq!(x.fmt_date_time(), "2012-04-15T10:00:00.123+10:00");
        assert_eq!(DateTime::parse_date("2012-04").unwrap().prec, Prec::Month);
        assert!(DateTime::parse_date("2012-02-30").is_none());
        assert!(DateTime::parse_date("2012-13").is_none());
        assert!(DateTime::parse_date("12-01-01").is_none());
        assert!(DateTime::parse_time("24:00").is_none());
        assert_eq!(DateTime::parse_date_time("2012T").unwrap().prec, Prec::Year);
        assert!(DateTime::parse_date_time("2012-04T10:00").is_none());
    }

    #[test]
    fn comparisons_respect_precision_and_zones() {
        let dt = |s| DateTime::parse_date_time(s).unwrap();
        assert_eq!(
            dt("2012-04-15T10:00:00Z").compare(&dt("2012-04-15T20:00:00+10:00"), true),
            Some(Ordering::Equal)
        );
        assert_eq!(dt("2012-04-15").compare(&dt("2012-04"), true), None);
        assert_eq!(
            dt("2012-05-15").compare(&dt("2012-04"), true),
            Some(Ordering::Greater)
        );
        assert_eq!(
            dt("2012-04-15T10:00:00Z").compare(&dt("2012-04-15T10:00:00"), true),
            None
        );
        assert_eq!(
            dt("2012-04-15T10:00:00").compare(&dt("2012-04-15T10:00:00.000"), true),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn calendar_arithmetic() {
        let date = |s| DateTime::parse_date(s).unwrap();
        let one = Dec::from_int(1);
        assert_eq!(
            date("2012-01-31")
                .add(one, "month", true)
                .unwrap()
                .fmt_date_only(),
            "2012-02-29"
        );
        assert_eq!(
            date("2012-02-29")
                .add(one, "year", true)
                .unwrap()
                .fmt_date_only(),
            "2013-02-28"
        );
        assert_eq!(
            date("2012-12-31")
                .add(one, "day", true)
                .unwrap()
                .fmt_date_only(),
            "2013-01-01"
        );
        assert_eq!(
            date("2012-01-01")
                .add(Dec::from_int(-1), "week", true)
                .unwrap()
                .fmt_date_only(),
            "2011-12-25"
        );
        // Less precise than the unit: whole units of its own precision.
        assert_eq!(
            date("2012")
                .add(Dec::from_int(400), "day", true)
                .unwrap()
                .fmt_date_only(),
            "2013"
        );
        assert!(date("2012-01-01").add(one, "a", true).is_none());
        assert!(date("9999-12-31").add(one, "day", true).is_none());
        let t = DateTime::parse_time("23:30").unwrap();
        assert_eq!(t.add(one, "hour", false).unwrap().fmt_time(), "00:30");
    }

    #[test]
    fn boundaries() {
        assert_eq!(d("1.587").boundary(2, false).unwrap().to_string(), "1.58");
        assert_eq!(d("1.587").boundary(2, true).unwrap().to_string(), "1.59");
        assert_eq!(d("-1.587").boundary(2, false).unwrap().to_string(), "-1.59");
        assert_eq!(
            d("1.587").boundary(8, false).unwrap().to_string(),
            "1.58650000"
        );
        assert_eq!(d("1").boundary(0, true).unwrap().to_string(), "2");
        let dt = DateTime::parse_date_time("2014-01-01T08").unwrap();
        assert_eq!(
            dt.boundary(17, true, 'T').unwrap().fmt_date_time(),
            "2014-01-01T08:00:59.999-12:00"
        );
        let date = DateTime::parse_date("2014-02").unwrap();
        assert_eq!(
            date.boundary(8, true, 'D').unwrap().fmt_date_only(),
            "2014-02-28"
        );
        assert!(date.boundary(10, true, 'D').is_none());
    }

    #[test]
    fn unit_conversions() {
        assert_eq!(ucum_factor("mg").unwrap().0, "g");
        assert_eq!(ucum_factor("kg").unwrap().1.to_string(), "1000");
        assert_eq!(ucum_factor("min").unwrap().1.to_string(), "60");
        assert!(ucum_factor("a").is_none());
        assert!(ucum_factor("xg").is_none());
    }
}
