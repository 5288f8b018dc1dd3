//! RFC 3339 timestamps as runc writes them, without a date crate: `created` in UTC to the
//! nanosecond (Go's RFC3339Nano: trailing zeros dropped), log lines to the second in local time
//! (logrus' default).
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

pub fn now_rfc3339() -> String {
    let (secs, nanos) = now();
    format_rfc3339(secs, nanos)
}

/// Go's `time.RFC3339Nano` of a UTC instant: "2026-12-01T21:05:28.18570039Z", "…:28Z".
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let mut s = date_time(secs);
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// logrus' timestamp: `time.RFC3339` in local time, "2026-12-01T21:05:28Z" on a UTC host and
/// "2026-12-01T22:05:28+01:00" elsewhere.
pub fn now_log() -> String {
    let (secs, _) = now();
    format_rfc3339_offset(secs, local_offset(secs))
}

pub fn format_rfc3339_offset(secs: i64, offset: i64) -> String {
    let mut s = date_time(secs + offset);
    if offset == 0 {
        s.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let m = offset.abs() / 60;
        s.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
    }
    s
}

/// Seconds east of UTC of the local time zone (TZ, /etc/localtime) at `secs`.
fn local_offset(secs: i64) -> i64 {
    let t = secs as libc::time_t;
    // SAFETY: tm is plain integers and a pointer, for which all zeroes is a valid value;
    // localtime_r writes only the tm it is given and returns null on failure.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

/// "YYYY-MM-DDTHH:MM:SS" of a count of seconds since the epoch.
fn date_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's civil calendar algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            format_rfc3339(1_795_437_296, 185_700_390),
            "2026-11-23T12:34:56.18570039Z"
        );
        assert_eq!(
            format_rfc3339(1_795_437_296, 123_456_789),
            "2026-11-23T12:34:56.123456789Z"
        );
    }

    #[test]
    fn log_times_carry_the_offset() {
        assert_eq!(format_rfc3339_offset(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339_offset(1_795_437_296, 3600),
            "2026-11-23T13:34:56+01:00"
        );
        assert_eq!(
            format_rfc3339_offset(1_795_437_296, -(5 * 3600 + 30 * 60)),
            "2026-11-23T07:04:56-05:30"
        );
    }
}
