//! Calendar arithmetic for masking dates on the wire: PostgreSQL's binary
//! dates (days since 2000-01-01) and timestamps (microseconds since then),
//! MySQL's binary DATE/DATETIME fields.

/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;
const US_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// PostgreSQL's `infinity` and `-infinity` stay what they are.
fn infinite_date(days: i32) -> bool {
    days == i32::MAX || days == i32::MIN
}

/// January 1st of a PostgreSQL binary date's year.
pub fn pg_date_year_start(days: i32) -> i32 {
    if infinite_date(days) {
        return days;
    }
    let (y, _, _) = civil_from_days(days as i64 + PG_EPOCH_DAYS);
    (days_from_civil(y, 1, 1) - PG_EPOCH_DAYS) as i32
}

/// Midnight of January 1st of a PostgreSQL binary timestamp's year.
pub fn pg_timestamp_year_start(us: i64) -> i64 {
    if us == i64::MAX || us == i64::MIN {
        return us;
    }
    let days = us.div_euclid(US_PER_DAY);
    let (y, _, _) = civil_from_days(days + PG_EPOCH_DAYS);
    (days_from_civil(y, 1, 1) - PG_EPOCH_DAYS) * US_PER_DAY
}

/// A PostgreSQL binary date as text (`YYYY-MM-DD`).
pub fn pg_date_text(days: i64) -> String {
    let (y, m, d) = civil_from_days(days + PG_EPOCH_DAYS);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A PostgreSQL binary timestamp as text (`YYYY-MM-DD HH:MM:SS[.ffffff]`).
pub fn pg_timestamp_text(us: i64) -> String {
    let days = us.div_euclid(US_PER_DAY);
    let rest = us.rem_euclid(US_PER_DAY);
    let (h, mi, s, f) = (
        rest / 3_600_000_000,
        rest / 60_000_000 % 60,
        rest / 1_000_000 % 60,
        rest % 1_000_000,
    );
    let mut out = format!("{} {h:02}:{mi:02}:{s:02}", pg_date_text(days));
    if f > 0 {
        let frac = format!("{f:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_and_pg_epoch() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 1, 1),
            (1984, 7, 12),
            (2024, 2, 29),
            (1600, 3, 1),
        ] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_DAYS);
        // 1984-07-12 is 5651 days before 2000-01-01.
        let d = (days_from_civil(1984, 7, 12) - PG_EPOCH_DAYS) as i32;
        assert_eq!(pg_date_text(d as i64), "1984-07-12");
        assert_eq!(pg_date_text(pg_date_year_start(d) as i64), "1984-01-01");
        let ts = d as i64 * US_PER_DAY + 3_723_500_000;
        assert_eq!(pg_timestamp_text(ts), "1984-07-12 01:02:03.5");
        assert_eq!(
            pg_timestamp_text(pg_timestamp_year_start(ts)),
            "1984-01-01 00:00:00"
        );
        assert_eq!(pg_date_year_start(i32::MAX), i32::MAX);
    }
}
