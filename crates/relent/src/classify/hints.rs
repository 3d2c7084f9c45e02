//! Parsers for every shape in which servers say "come back later".
//!
//! Each parser takes untrusted text and returns `None` for anything it does not fully
//! understand; none of them panics. Results are milliseconds, either a relative wait or an
//! absolute Unix time. Relative waits are clamped to [`MAX_HINT_MS`] by the caller
//! ([`super::classify`]), so an absurd header can never park a call for a year.

/// The longest wait any hint may express after clamping: one day.
pub const MAX_HINT_MS: u64 = 86_400_000;

/// `retry-after-ms` / `x-ms-retry-after-ms`: milliseconds, possibly fractional (`250.5`).
pub fn retry_after_ms(value: &str) -> Option<u64> {
    scaled_ceil(value.trim(), 1, 0)
}

/// `retry-after` as delay-seconds (`7`, and the fractional `1.5` some servers send).
pub fn retry_after_seconds(value: &str) -> Option<u64> {
    scaled_ceil(value.trim(), 1, 3)
}

/// `grpc-retry-pushback-ms`: an int32; negative or garbled means "do not retry" (returned as
/// `Err(())`), a valid value is the wait.
#[allow(clippy::result_unit_err)]
pub fn grpc_pushback_ms(value: &str) -> Result<u64, ()> {
    match value.trim().parse::<i64>() {
        Ok(ms) if (0..=i32::MAX as i64).contains(&ms) => Ok(ms as u64),
        _ => Err(()),
    }
}

/// A Go-style duration as used by `x-ratelimit-reset-*`: `1s`, `6m0s`, `12ms`, `7.66s`,
/// `1h2m3.5s`, `250us`.
pub fn go_duration_ms(value: &str) -> Option<u64> {
    let s = value.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if s == "0" {
        return Some(0);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    // Summed in whole nanoseconds (Go's own unit, so every duration Go prints is exact here)
    // and rounded up to milliseconds once, at the end.
    let mut total_ns = 0u64;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = s.get(start..i)?;
        let unit_start = i;
        // Units are letters; "µs" is non-ASCII, so take every byte up to the next digit.
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        // The unit in nanoseconds, as a small factor times a power of ten.
        let (mul, shift) = match s.get(unit_start..i)? {
            "h" => (36, 11),
            "m" => (6, 10),
            "s" => (1, 9),
            "ms" => (1, 6),
            "us" | "µs" => (1, 3),
            "ns" => (1, 0),
            _ => return None,
        };
        total_ns = total_ns.saturating_add(scaled_ceil(number, mul, shift)?);
    }
    Some(total_ns.div_ceil(1_000_000))
}

/// A protobuf JSON duration as in Gemini's `RetryInfo.retryDelay`: `"34.4s"`, `"0.5s"`, `"2s"`.
pub fn proto_duration_ms(value: &str) -> Option<u64> {
    let secs = value.trim().strip_suffix('s')?;
    scaled_ceil(secs, 1, 3)
}

/// The phrases that introduce a wait in a human message, in the order they are trusted: a
/// wait after an earlier marker of this list wins over one after a later marker, wherever
/// each stands. Each has one word before its first space.
pub const WAIT_MARKERS: &[&str] = &[
    "try again in ",
    "try again after ",
    "retry after ",
    "retry in ",
    "wait ",
    // A window's stated end: Gemini Code Assist's "Your quota will reset after 8h44m7s"
    // (google-gemini/gemini-cli#13004), "resets in 2h".
    "will reset after ",
    "will reset in ",
    "resets after ",
    "resets in ",
];

/// The last letters (lowercase) of the markers' first words: a space after any other letter
/// starts no marker.
const MARKER_WORD_ENDS: &[u8] = b"ytls";

/// Phrases in human messages: "Please try again in 5.289s", "try again in 1m30s",
/// "try again in 20ms", "Please retry after 37 seconds", "retry after 2 minutes". Markers
/// ([`WAIT_MARKERS`]) match in any ASCII case; where a marker stands more than once, its
/// first occurrence followed by a readable wait counts.
pub fn message_wait_ms(message: &str) -> Option<u64> {
    let bytes = message.as_bytes();
    // Found so far: the index of its marker, and the wait.
    let mut best: Option<(usize, u64)> = None;
    // Every marker's first word ends with one of `MARKER_WORD_ENDS` and is followed by a
    // space: look only at such spaces.
    for space in memchr::memchr_iter(b' ', bytes) {
        if space == 0 || !MARKER_WORD_ENDS.contains(&(bytes[space - 1] | 0x20)) {
            continue;
        }
        for (k, marker) in WAIT_MARKERS.iter().enumerate() {
            if best.is_some_and(|(found, _)| found <= k) {
                break;
            }
            let Some((word, _)) = marker.split_once(' ') else {
                continue;
            };
            let Some(start) = space.checked_sub(word.len()) else {
                continue;
            };
            let end = start + marker.len();
            let matched = bytes
                .get(start..end)
                .is_some_and(|b| b.eq_ignore_ascii_case(marker.as_bytes()));
            if matched {
                if let Some(ms) = wait_phrase(&message[end..].to_ascii_lowercase()) {
                    best = Some((k, ms));
                }
            }
        }
    }
    best.map(|(_, ms)| ms)
}

/// Reads "5.289s", "1m30s", "37 seconds", "2 minutes", "500ms" at the start of `text`.
fn wait_phrase(text: &str) -> Option<u64> {
    let token: &str = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ')')
        .next()?;
    let token = token.trim_end_matches('.');
    if let Some(ms) = go_duration_ms(token) {
        return Some(ms);
    }
    let rest = text.get(token.len()..)?.trim_start();
    let unit: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    // The unit in milliseconds, as a small factor times a power of ten.
    let (mul, shift) = match unit.as_str() {
        "ms" | "millisecond" | "milliseconds" => (1, 0),
        "s" | "sec" | "secs" | "second" | "seconds" => (1, 3),
        "m" | "min" | "mins" | "minute" | "minutes" => (6, 4),
        "h" | "hour" | "hours" => (36, 5),
        _ => return None,
    };
    scaled_ceil(token, mul, shift)
}

/// An HTTP-date (RFC 9110 IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete
/// RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994` forms) as
/// Unix milliseconds.
pub fn http_date_unix_ms(value: &str) -> Option<u64> {
    let s = value.trim();
    if s.len() > 64 {
        return None;
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, clock) = match parts.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [_, day, month, year, clock, "GMT"] => (*day, *month, *year, *clock),
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [_, date, clock, "GMT"] => {
            let mut d = date.split('-');
            let (day, month, yy) = (d.next()?, d.next()?, d.next()?);
            let yy: u64 = yy.parse().ok()?;
            let year = if yy < 70 {
                2000 + yy
            } else if yy < 100 {
                1900 + yy
            } else {
                yy
            };
            return civil_to_unix_ms(year, month_number(month)?, day.parse().ok()?, clock);
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [_, month, day, clock, year] => (*day, *month, *year, *clock),
        _ => return None,
    };
    civil_to_unix_ms(
        year.parse().ok()?,
        month_number(month)?,
        day.parse().ok()?,
        clock,
    )
}

/// An RFC 3339 timestamp (`2026-08-21T12:40:59Z`, fractional seconds and offsets allowed)
/// as Unix milliseconds.
pub fn rfc3339_unix_ms(value: &str) -> Option<u64> {
    let s = value.trim();
    if s.len() < 20 || s.len() > 40 || !s.is_ascii() {
        return None;
    }
    let year: u64 = s.get(0..4)?.parse().ok()?;
    let month: u64 = s.get(5..7)?.parse().ok()?;
    let day: u64 = s.get(8..10)?.parse().ok()?;
    let sep = s.as_bytes().get(10)?;
    if s.as_bytes().get(4) != Some(&b'-')
        || s.as_bytes().get(7) != Some(&b'-')
        || !matches!(sep, b'T' | b't' | b' ')
    {
        return None;
    }
    let rest = s.get(11..)?;
    let (clock_and_frac, offset_ms) = split_offset(rest)?;
    let (clock, frac) = match clock_and_frac.split_once('.') {
        Some((c, f)) => (c, Some(f)),
        None => (clock_and_frac, None),
    };
    let base = civil_to_unix_ms(year, month, day, clock)? as i64;
    let frac_ms = match frac {
        // Rounded up to the millisecond: a reset is never read as earlier than stated.
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            i64::try_from(scaled_ceil(f, 1, 3 - f.len() as i64)?).ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let unix = base + frac_ms - offset_ms;
    u64::try_from(unix).ok()
}

fn split_offset(rest: &str) -> Option<(&str, i64)> {
    if let Some(clock) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
        return Some((clock, 0));
    }
    let idx = rest.rfind(['+', '-'])?;
    let (clock, offset) = rest.split_at(idx);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let hh: i64 = offset.get(1..3)?.parse().ok()?;
    let mm: i64 = offset.get(4..6)?.parse().ok()?;
    if offset.len() != 6 || offset.as_bytes().get(3) != Some(&b':') || hh > 23 || mm > 59 {
        return None;
    }
    Some((clock, sign * (hh * 3_600_000 + mm * 60_000)))
}

fn month_number(name: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.get(..3)?.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .map(|i| i as u64 + 1)
}

/// Days-from-civil (proleptic Gregorian), valid for years 1970..=9999.
fn civil_to_unix_ms(year: u64, month: u64, day: u64, clock: &str) -> Option<u64> {
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut hms = clock.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(((days * 86_400) + h * 3600 + m * 60 + sec) * 1000)
}

/// A decimal `number` (ASCII digits with at most one `.`, at least one digit, no sign or
/// exponent) times `mul` × 10^`shift`, rounded up to a whole number and saturating at
/// `u64::MAX`.
///
/// Exact for every input: the digits are scaled by moving the decimal point and multiplied
/// by `mul` digit by digit, never through a float. (A float reads `32.325` seconds as
/// 32 325.000 000 000 004 ms, which rounds up to a wait one millisecond longer than stated.)
fn scaled_ceil(number: &str, mul: u64, shift: i64) -> Option<u64> {
    let bytes = number.as_bytes();
    let dot = bytes.iter().position(|&b| b == b'.');
    let digits = bytes.len() - usize::from(dot.is_some());
    let well_formed = bytes.len() <= 64
        && digits > 0
        && bytes
            .iter()
            .enumerate()
            .all(|(i, &b)| b.is_ascii_digit() || Some(i) == dot);
    if !well_formed {
        return None;
    }
    // The `j`-th digit of the number, the dot skipped; zero outside the digits.
    let digit = |j: i64| -> u64 {
        let Ok(j) = usize::try_from(j) else { return 0 };
        let at = if dot.is_some_and(|d| j >= d) {
            j + 1
        } else {
            j
        };
        bytes
            .get(at)
            .filter(|_| j < digits)
            .map_or(0, |b| u64::from(b - b'0'))
    };
    let digits = digits as i64;
    // Where the point stands once moved: digits before it are the whole part.
    let point = dot.unwrap_or(bytes.len()) as i64 + shift;
    let whole = (0..point).fold(0u64, |v, j| v.saturating_mul(10).saturating_add(digit(j)));
    // The fraction times `mul`, from its last digit: what carries past the point is whole,
    // and any digit left behind makes the result round up.
    let (mut carry, mut left) = (0, false);
    for j in (point..digits).rev() {
        let t = digit(j) * mul + carry;
        left |= t % 10 != 0;
        carry = t / 10;
    }
    Some(
        whole
            .saturating_mul(mul)
            .saturating_add(carry)
            .saturating_add(u64::from(left)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_ms_accepts_fractions_and_rejects_garbage() {
        assert_eq!(retry_after_ms("250.5"), Some(251));
        assert_eq!(retry_after_ms(" 1000 "), Some(1000));
        assert_eq!(retry_after_ms("0"), Some(0));
        assert_eq!(retry_after_ms("-5"), None);
        assert_eq!(retry_after_ms("NaN"), None);
        assert_eq!(retry_after_ms("inf"), None);
        assert_eq!(retry_after_ms("1e3"), None);
        assert_eq!(retry_after_ms(""), None);
    }

    #[test]
    fn retry_after_seconds_integer_and_fractional() {
        assert_eq!(retry_after_seconds("7"), Some(7000));
        assert_eq!(retry_after_seconds("1.5"), Some(1500));
        assert_eq!(retry_after_seconds("0.0001"), Some(1));
        assert_eq!(retry_after_seconds("soon"), None);
        // Absurd but well-formed: saturates here, the classifier clamps it.
        assert_eq!(
            retry_after_seconds("99999999999999999999999999999"),
            Some(u64::MAX)
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_ms("1s"), Some(1000));
        assert_eq!(go_duration_ms("6m0s"), Some(360_000));
        assert_eq!(go_duration_ms("12ms"), Some(12));
        assert_eq!(go_duration_ms("7.66s"), Some(7660));
        assert_eq!(go_duration_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(go_duration_ms("250us"), Some(1));
        assert_eq!(go_duration_ms("0"), Some(0));
        assert_eq!(go_duration_ms("5"), None);
        assert_eq!(go_duration_ms("s"), None);
        assert_eq!(go_duration_ms("1x"), None);
        assert_eq!(go_duration_ms("1.2.3s"), None);
        assert_eq!(go_duration_ms(""), None);
    }

    /// Every wait written to the millisecond in decimal seconds reads back as exactly that
    /// many milliseconds, in each format that carries decimal seconds. A float reading gets
    /// some of these one millisecond long (`32.325` seconds became 32 326 ms).
    #[test]
    fn decimal_seconds_read_exactly() {
        for ms in (0..=200_000u64).chain([32_325, 86_399_999, 3_600_000_001]) {
            let text = format!("{}.{:03}", ms / 1000, ms % 1000);
            assert_eq!(retry_after_seconds(&text), Some(ms), "retry-after {text}");
            assert_eq!(go_duration_ms(&format!("{text}s")), Some(ms), "{text}s");
            assert_eq!(proto_duration_ms(&format!("{text}s")), Some(ms), "{text}s");
            assert_eq!(
                message_wait_ms(&format!("Please try again in {text}s.")),
                Some(ms),
                "message {text}s"
            );
            assert_eq!(
                message_wait_ms(&format!("retry after {text} seconds")),
                Some(ms),
                "message {text} seconds"
            );
            assert_eq!(retry_after_ms(&format!("{ms}.000")), Some(ms));
        }
    }

    #[test]
    fn fractions_of_larger_units_are_exact_and_round_up_only_when_left_over() {
        // 0.1 h is 360 000 ms exactly; a float product is 360 000.000 000 000 06.
        assert_eq!(go_duration_ms("0.1h"), Some(360_000));
        assert_eq!(go_duration_ms("0.7m"), Some(42_000));
        assert_eq!(go_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(message_wait_ms("try again in 0.1 hours"), Some(360_000));
        assert_eq!(message_wait_ms("try again in 2.05 minutes"), Some(123_000));
        // Parts are summed before rounding: 1.5 ms + 500 us is 2 ms, not 3.
        assert_eq!(go_duration_ms("1.5ms500us"), Some(2));
        assert_eq!(go_duration_ms("1ms1ns"), Some(2));
        assert_eq!(go_duration_ms("999999ns"), Some(1));
        assert_eq!(go_duration_ms("1000000ns"), Some(1));
        // Go prints nine decimal places at most; the ninth still counts.
        assert_eq!(go_duration_ms("1.000000001s"), Some(1001));
        assert_eq!(go_duration_ms("1.000000000s"), Some(1000));
        assert_eq!(retry_after_seconds("1.0001"), Some(1001));
        assert_eq!(retry_after_seconds(".5"), Some(500));
        assert_eq!(retry_after_seconds("5."), Some(5000));
        assert_eq!(retry_after_seconds("."), None);
        assert_eq!(retry_after_seconds("1..5"), None);
        assert_eq!(retry_after_seconds("+1"), None);
        assert_eq!(retry_after_ms("0.000000000000000000000000001"), Some(1));
        assert_eq!(rfc3339_unix_ms("1970-01-01T00:00:01.0001Z"), Some(1001));
        assert_eq!(rfc3339_unix_ms("1970-01-01T00:00:01.000Z"), Some(1000));
        assert_eq!(rfc3339_unix_ms("1970-01-01T00:00:01.25Z"), Some(1250));
    }

    #[test]
    fn proto_durations() {
        assert_eq!(proto_duration_ms("34.4s"), Some(34_400));
        assert_eq!(proto_duration_ms("2s"), Some(2000));
        assert_eq!(proto_duration_ms("34.4"), None);
        assert_eq!(proto_duration_ms("-1s"), None);
    }

    #[test]
    fn message_phrases() {
        assert_eq!(
            message_wait_ms("Rate limit reached. Please try again in 5.289s. Visit..."),
            Some(5289)
        );
        assert_eq!(message_wait_ms("Please try again in 1m30s."), Some(90_000));
        assert_eq!(
            message_wait_ms(
                "You have exhausted your capacity on this model. Your quota will reset after 8h44m7s."
            ),
            Some(((8 * 60 + 44) * 60 + 7) * 1000)
        );
        assert_eq!(
            message_wait_ms("Daily limit hit; it resets in 2 hours"),
            Some(7_200_000)
        );
        assert_eq!(
            message_wait_ms("The window will reset in 45s"),
            Some(45_000)
        );
        for marker in WAIT_MARKERS {
            let (word, _) = marker.split_once(' ').expect("a marker has a space");
            let last = word.as_bytes()[word.len() - 1];
            assert!(MARKER_WORD_ENDS.contains(&last), "{marker:?}");
        }
        // "reset" alone, as in a dropped connection, names no wait.
        assert_eq!(message_wait_ms("the connection was reset after 30s"), None);
        assert_eq!(message_wait_ms("please try again in 20ms"), Some(20));
        assert_eq!(
            message_wait_ms("Please retry after 37 seconds."),
            Some(37_000)
        );
        assert_eq!(message_wait_ms("Try again in 2 minutes"), Some(120_000));
        assert_eq!(
            message_wait_ms("try again in a while, retry after 3 seconds"),
            Some(3000)
        );
        assert_eq!(message_wait_ms("try again later"), None);
        assert_eq!(message_wait_ms(""), None);
    }

    /// The plain reading of the rule: lower-case the message, then for each marker in order
    /// of trust, each place it stands in order, the first readable wait.
    fn plain_search(message: &str) -> Option<u64> {
        let lower = message.to_ascii_lowercase();
        for marker in [
            "try again in ",
            "try again after ",
            "retry after ",
            "retry in ",
            "wait ",
        ] {
            for (at, _) in lower.match_indices(marker) {
                if let Some(ms) = wait_phrase(&lower[at + marker.len()..]) {
                    return Some(ms);
                }
            }
        }
        None
    }

    #[test]
    fn a_trusted_marker_wins_wherever_it_stands() {
        assert_eq!(
            message_wait_ms("wait 5s, or retry after 7s, or try again in 9s"),
            Some(9000)
        );
        assert_eq!(
            message_wait_ms("WAIT 5S then Retry In 2 Minutes"),
            Some(120_000)
        );
        assert_eq!(message_wait_ms("retry again in 3s"), Some(3000));
        assert_eq!(message_wait_ms("await 4s"), Some(4000));
        assert_eq!(message_wait_ms(" wait 1s"), Some(1000));
        assert_eq!(message_wait_ms("wait wait 2s"), Some(2000));
        assert_eq!(message_wait_ms("wait 1s, then wait 2s"), Some(1000));
        assert_eq!(message_wait_ms("retry in 3s or retry after 4s"), Some(4000));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn message_waits_read_as_the_plain_search(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                // Markers whole, in several cases, and their parts.
                3 => proptest::sample::select(vec![
                    "try again in ", "Try Again After ", "retry after ", "RETRY IN ",
                    "wait ", "Wait ", "await ", "re", "try", "again", " in ", " after ",
                ]),
                // Waits, readable or not.
                3 => proptest::sample::select(vec![
                    "5s", "1.5 seconds", "20ms", "1m30s", "2 minutes", "3 H", "later",
                    "a while", "-1s", "7",
                ]),
                2 => proptest::sample::select(vec![" ", "  ", ", ", ".", "é", "Please "]),
            ], 0..12)
        ) {
            let message: String = pieces.concat();
            proptest::prop_assert_eq!(message_wait_ms(&message), plain_search(&message), "{:?}", message);
        }
    }

    #[test]
    fn http_dates_in_three_forms() {
        let want = Some(784_111_777_000);
        assert_eq!(http_date_unix_ms("Sun, 06 Nov 1994 08:49:37 GMT"), want);
        assert_eq!(http_date_unix_ms("Sunday, 06-Nov-94 08:49:37 GMT"), want);
        assert_eq!(http_date_unix_ms("Sun Nov  6 08:49:37 1994"), want);
        assert_eq!(
            http_date_unix_ms("Wed, 21 Oct 2026 07:28:00 GMT"),
            Some(1_792_567_680_000)
        );
        assert_eq!(http_date_unix_ms("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(http_date_unix_ms("Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(http_date_unix_ms("garbage"), None);
    }

    #[test]
    fn rfc3339_timestamps() {
        assert_eq!(
            rfc3339_unix_ms("2026-08-21T12:40:59Z"),
            Some(1_787_316_059_000)
        );
        assert_eq!(
            rfc3339_unix_ms("2026-08-21T12:40:59.5Z"),
            Some(1_787_316_059_500)
        );
        assert_eq!(
            rfc3339_unix_ms("2026-08-21T14:40:59+02:00"),
            Some(1_787_316_059_000)
        );
        assert_eq!(
            rfc3339_unix_ms("2026-08-21 12:40:59Z"),
            Some(1_787_316_059_000)
        );
        assert_eq!(rfc3339_unix_ms("2026-13-21T12:40:59Z"), None);
        assert_eq!(rfc3339_unix_ms("2026-08-21T12:40:59"), None);
        assert_eq!(rfc3339_unix_ms("not a timestamp at all!!"), None);
    }

    #[test]
    fn grpc_pushback() {
        assert_eq!(grpc_pushback_ms("100"), Ok(100));
        assert_eq!(grpc_pushback_ms("-1"), Err(()));
        assert_eq!(grpc_pushback_ms("x"), Err(()));
        assert_eq!(grpc_pushback_ms("99999999999"), Err(()));
    }
}
