//! The pure-Rust text pieces of the codec: JSON string escaping, Python's
//! float repr, ISO 8601 datetimes and UUID hex, written and read.
//!
//! Nothing here touches a Python object, so all of it is unit-tested by
//! `cargo test`. The output must be byte-for-byte what Python's `json` module
//! (with `ensure_ascii=False`), `float.__repr__` and `datetime.isoformat()`
//! write, because stored events are compared and shared with eventsourcing.

use super::scan::copy_plain;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// What each byte becomes inside a JSON string: 0 = itself, `u` = `\u00XX`,
/// anything else `c` = the two bytes `\c`. Python's json escapes exactly these.
static ESCAPE: [u8; 256] = escape_table();

const fn escape_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
}

/// Appends `text` (UTF-8) as a quoted JSON string, escaped as Python's json does.
#[inline]
pub fn write_json_str(buf: &mut Vec<u8>, text: &[u8]) {
    if !write_plain_str(buf, text) {
        write_escaped_str(buf, text);
    }
}

/// The common case: nothing to escape, so the text is checked and copied in
/// one pass. Returns false, having written nothing, if it needs escapes.
#[inline(always)]
fn write_plain_str(buf: &mut Vec<u8>, text: &[u8]) -> bool {
    let len = text.len();
    buf.reserve(len + 2);
    let start = buf.len();
    // SAFETY: the writes stay within the capacity reserved above, and the
    // length is set only once all of it is written.
    unsafe {
        let dst = buf.as_mut_ptr().add(start);
        if !copy_plain(text.as_ptr(), len, dst.add(1)) {
            return false;
        }
        *dst = b'"';
        *dst.add(len + 1) = b'"';
        buf.set_len(start + len + 2);
    }
    true
}

#[cold]
fn write_escaped_str(buf: &mut Vec<u8>, text: &[u8]) {
    buf.push(b'"');
    let mut start = 0;
    for (i, &byte) in text.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        buf.extend_from_slice(&text[start..i]);
        if escape == b'u' {
            buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 15) as usize],
            ]);
        } else {
            buf.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&text[start..]);
    buf.push(b'"');
}

/// Appends a float as Python's json writes it: `repr(f)`, or `NaN`,
/// `Infinity`, `-Infinity`.
pub fn write_float(buf: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if value.is_infinite() {
        buf.extend_from_slice(if value > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
    } else {
        let mut ryu_buf = ryu::Buffer::new();
        let text = ryu_buf.format_finite(value).as_bytes();
        // ryu and repr agree on the digits, and on the layout except for
        // exponents and for 1e-5 <= |v| < 1e-4 (ryu: 0.0000ddd).
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        if digits.starts_with(b"0.0000") || text.contains(&b'e') {
            write_python_repr(buf, text);
        } else {
            buf.extend_from_slice(text);
        }
    }
}

/// Rewrites ryu's shortest round-trip digits in Python's `repr` layout:
/// scientific notation when the decimal exponent is < -4 or >= 16, with a
/// signed two-digit-minimum exponent; otherwise positional, with `.0` for
/// whole numbers.
fn write_python_repr(buf: &mut Vec<u8>, ryu_text: &[u8]) {
    let (negative, text) = match ryu_text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, ryu_text),
    };
    let (mantissa, exponent) = match text.iter().position(|&c| c == b'e' || c == b'E') {
        Some(at) => (&text[..at], parse_exponent(&text[at + 1..])),
        None => (text, 0),
    };
    let mut digits = [0u8; 32];
    let mut count = 0;
    let mut int_len = None;
    for &c in mantissa {
        if c == b'.' {
            int_len = Some(count);
        } else if count < digits.len() {
            digits[count] = c;
            count += 1;
        }
    }
    // The value is 0.DIGITS * 10^point.
    let mut point = int_len.unwrap_or(count) as i32 + exponent;
    let mut lo = 0;
    while lo < count && digits[lo] == b'0' {
        lo += 1;
        point -= 1;
    }
    let mut hi = count;
    while hi > lo && digits[hi - 1] == b'0' {
        hi -= 1;
    }
    if negative {
        buf.push(b'-');
    }
    let digits = &digits[lo..hi];
    if digits.is_empty() {
        buf.extend_from_slice(b"0.0");
        return;
    }
    let n = digits.len() as i32;
    if !(-4 < point && point <= 16) {
        buf.push(digits[0]);
        if n > 1 {
            buf.push(b'.');
            buf.extend_from_slice(&digits[1..]);
        }
        let e = point - 1;
        buf.push(b'e');
        buf.push(if e < 0 { b'-' } else { b'+' });
        if e.abs() < 10 {
            buf.push(b'0');
        }
        buf.extend_from_slice(itoa::Buffer::new().format(e.abs()).as_bytes());
    } else if point <= 0 {
        buf.extend_from_slice(b"0.");
        buf.extend(std::iter::repeat_n(b'0', (-point) as usize));
        buf.extend_from_slice(digits);
    } else if point >= n {
        buf.extend_from_slice(digits);
        buf.extend(std::iter::repeat_n(b'0', (point - n) as usize));
        buf.extend_from_slice(b".0");
    } else {
        buf.extend_from_slice(&digits[..point as usize]);
        buf.push(b'.');
        buf.extend_from_slice(&digits[point as usize..]);
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let value = digits
        .iter()
        .fold(0i32, |acc, &d| acc * 10 + i32::from(d - b'0'));
    if negative {
        -value
    } else {
        value
    }
}

/// A datetime's fields, as `datetime.isoformat()` writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeFields {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
    /// UTC offset in microseconds, `None` for a naive datetime.
    pub offset: Option<i64>,
}

fn push_padded(buf: &mut Vec<u8>, value: u32, width: usize) {
    let mut tmp = itoa::Buffer::new();
    let text = tmp.format(value);
    buf.extend(std::iter::repeat_n(b'0', width.saturating_sub(text.len())));
    buf.extend_from_slice(text.as_bytes());
}

/// Appends `datetime.isoformat()` of these fields (separator `T`, microseconds
/// only when non-zero, offset as `+HH:MM[:SS[.ffffff]]`).
pub fn write_iso_datetime(buf: &mut Vec<u8>, dt: &DateTimeFields) {
    push_padded(buf, dt.year.unsigned_abs(), 4);
    buf.push(b'-');
    push_padded(buf, dt.month.into(), 2);
    buf.push(b'-');
    push_padded(buf, dt.day.into(), 2);
    buf.push(b'T');
    push_padded(buf, dt.hour.into(), 2);
    buf.push(b':');
    push_padded(buf, dt.minute.into(), 2);
    buf.push(b':');
    push_padded(buf, dt.second.into(), 2);
    if dt.microsecond != 0 {
        buf.push(b'.');
        push_padded(buf, dt.microsecond, 6);
    }
    if let Some(offset) = dt.offset {
        buf.push(if offset < 0 { b'-' } else { b'+' });
        let offset = offset.unsigned_abs();
        let (seconds, micros) = (offset / 1_000_000, (offset % 1_000_000) as u32);
        push_padded(buf, (seconds / 3600) as u32, 2);
        buf.push(b':');
        push_padded(buf, (seconds / 60 % 60) as u32, 2);
        if seconds % 60 != 0 || micros != 0 {
            buf.push(b':');
            push_padded(buf, (seconds % 60) as u32, 2);
            if micros != 0 {
                buf.push(b'.');
                push_padded(buf, micros, 6);
            }
        }
    }
}

fn digits_at(text: &[u8], at: usize, width: usize) -> Option<u32> {
    let field = text.get(at..at + width)?;
    field.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// The two ASCII digits at `at` (which must be in bounds) as a number.
#[inline(always)]
fn two_digits(text: &[u8], at: usize) -> Option<u32> {
    let (a, b) = (text[at].wrapping_sub(b'0'), text[at + 1].wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
}

fn byte_is(text: &[u8], at: usize, expected: u8) -> bool {
    text.get(at) == Some(&expected)
}

/// Parses what `datetime.isoformat()` writes: `YYYY-MM-DDTHH:MM:SS[.ffffff]`
/// then optionally `+HH:MM[:SS[.ffffff]]` or `Z`. Anything else (other
/// layouts that `fromisoformat` accepts) gives `None`, for the caller to hand
/// to Python. Ranges are checked by whoever builds the datetime.
pub fn parse_iso_datetime(text: &[u8]) -> Option<DateTimeFields> {
    let head: &[u8; 19] = text.get(..19)?.try_into().ok()?;
    if head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let mut dt = DateTimeFields {
        year: (two_digits(head, 0)? * 100 + two_digits(head, 2)?) as i32,
        month: two_digits(head, 5)? as u8,
        day: two_digits(head, 8)? as u8,
        hour: two_digits(head, 11)? as u8,
        minute: two_digits(head, 14)? as u8,
        second: two_digits(head, 17)? as u8,
        microsecond: 0,
        offset: None,
    };
    let mut at = 19;
    if byte_is(text, at, b'.') {
        let micros = text.get(at + 1..at + 7)?;
        dt.microsecond =
            two_digits(micros, 0)? * 10_000 + two_digits(micros, 2)? * 100 + two_digits(micros, 4)?;
        at += 7;
    }
    // The offset of every UTC timestamp (eventsourcing's and esox's).
    if let Ok(tail) = <[u8; 6]>::try_from(&text[at..]) {
        if tail == *b"+00:00" {
            dt.offset = Some(0);
            return Some(dt);
        }
    }
    match text.get(at) {
        None => return Some(dt),
        Some(b'Z') if at + 1 == text.len() => {
            dt.offset = Some(0);
            return Some(dt);
        }
        Some(b'+') | Some(b'-') => {}
        Some(_) => return None,
    }
    let sign: i64 = if text[at] == b'-' { -1 } else { 1 };
    if !byte_is(text, at + 3, b':') {
        return None;
    }
    let hours = i64::from(digits_at(text, at + 1, 2)?);
    let minutes = i64::from(digits_at(text, at + 4, 2)?);
    if hours >= 24 || minutes >= 60 {
        return None;
    }
    let mut seconds = 0;
    let mut micros = 0;
    at += 6;
    if byte_is(text, at, b':') {
        seconds = i64::from(digits_at(text, at + 1, 2)?);
        if seconds >= 60 {
            return None;
        }
        at += 3;
        if byte_is(text, at, b'.') {
            micros = i64::from(digits_at(text, at + 1, 6)?);
            at += 7;
        }
    }
    if at != text.len() {
        return None;
    }
    dt.offset = Some(sign * (((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros));
    Some(dt)
}

/// Appends `date.isoformat()`: `YYYY-MM-DD`.
pub fn write_iso_date(buf: &mut Vec<u8>, year: i32, month: u8, day: u8) {
    push_padded(buf, year.unsigned_abs(), 4);
    buf.push(b'-');
    push_padded(buf, month.into(), 2);
    buf.push(b'-');
    push_padded(buf, day.into(), 2);
}

/// Parses exactly `YYYY-MM-DD` (what `date.isoformat()` writes) into year,
/// month and day; `None` for anything else.
pub fn parse_iso_date(text: &[u8]) -> Option<(i32, u8, u8)> {
    if text.len() != 10 || !byte_is(text, 4, b'-') || !byte_is(text, 7, b'-') {
        return None;
    }
    Some((
        digits_at(text, 0, 4)? as i32,
        digits_at(text, 5, 2)? as u8,
        digits_at(text, 8, 2)? as u8,
    ))
}

/// Appends the 32 lowercase hex digits of a UUID's 128-bit value (`UUID.hex`).
pub fn write_uuid_hex(buf: &mut Vec<u8>, value: u128) {
    for shift in (0..32).rev() {
        buf.push(HEX[((value >> (shift * 4)) & 15) as usize]);
    }
}

/// Parses a UUID's value from 32 hex digits, or the canonical 8-4-4-4-12
/// hyphenated form; `None` for anything else.
pub fn parse_uuid_hex(text: &[u8]) -> Option<u128> {
    let hex_value = |c: u8| (c as char).to_digit(16).map(u128::from);
    match text.len() {
        32 => text
            .iter()
            .try_fold(0u128, |acc, &c| Some(acc << 4 | hex_value(c)?)),
        36 => {
            let mut value = 0u128;
            for (i, &c) in text.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    if c != b'-' {
                        return None;
                    }
                } else {
                    value = value << 4 | hex_value(c)?;
                }
            }
            Some(value)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut buf = Vec::new();
        write_json_str(&mut buf, text.as_bytes());
        String::from_utf8(buf).unwrap()
    }

    fn float(value: f64) -> String {
        let mut buf = Vec::new();
        write_float(&mut buf, value);
        String::from_utf8(buf).unwrap()
    }

    fn iso(dt: &DateTimeFields) -> String {
        let mut buf = Vec::new();
        write_iso_datetime(&mut buf, dt);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn strings_are_escaped_like_python_json_with_non_ascii_kept() {
        assert_eq!(escaped(""), r#""""#);
        assert_eq!(
            escaped("plain text, long enough"),
            r#""plain text, long enough""#
        );
        assert_eq!(escaped("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escaped("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(escaped("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(escaped("héllo ☃ 😀 / <>"), "\"héllo ☃ 😀 / <>\"");
        assert_eq!(
            escaped("0123456789abcdef\"0123456"),
            r#""0123456789abcdef\"0123456""#
        );
        for len in 0..40 {
            let text = "é".repeat(len / 2) + &"x".repeat(len % 7);
            assert_eq!(escaped(&text), format!("\"{text}\""));
            let tail = format!("{text}\n");
            assert_eq!(escaped(&tail), format!("\"{text}\\n\""));
        }
    }

    #[test]
    fn floats_are_written_as_python_repr() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.0000123, "1.23e-05"),
            (-0.00009999, "-9.999e-05"),
            (0.0001234, "0.0001234"),
            (1.5e-7, "1.5e-07"),
            (1e300, "1e+300"),
            (-1e-300, "-1e-300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for &(value, expected) in cases {
            assert_eq!(float(value), expected, "repr of {value:e}");
        }
    }

    #[test]
    fn datetimes_are_written_as_isoformat() {
        let mut dt = DateTimeFields {
            year: 2024,
            month: 2,
            day: 29,
            hour: 7,
            minute: 5,
            second: 9,
            microsecond: 0,
            offset: None,
        };
        assert_eq!(iso(&dt), "2024-02-29T07:05:09");
        dt.microsecond = 42;
        dt.offset = Some(0);
        assert_eq!(iso(&dt), "2024-02-29T07:05:09.000042+00:00");
        dt.year = 7;
        dt.offset = Some(-(5 * 3600 + 30 * 60) * 1_000_000);
        assert_eq!(iso(&dt), "0007-02-29T07:05:09.000042-05:30");
        dt.offset = Some(3_600_000_000 + 1_000_000 + 5);
        assert_eq!(iso(&dt), "0007-02-29T07:05:09.000042+01:00:01.000005");
    }

    #[test]
    fn isoformat_output_parses_back() {
        for text in [
            "2024-02-29T07:05:09",
            "2024-02-29T07:05:09.000042+00:00",
            "0007-02-29T07:05:09.000042-05:30",
            "0007-02-29T07:05:09.000042+01:00:01.000005",
        ] {
            let dt = parse_iso_datetime(text.as_bytes()).unwrap();
            assert_eq!(iso(&dt), text);
        }
        let utc = parse_iso_datetime(b"2024-01-01T00:00:00Z").unwrap();
        assert_eq!(utc.offset, Some(0));
        for other in [
            "2024-01-01",
            "2024-01-01 00:00:00",
            "2024-01-01T00:00:00.123",
            "x",
        ] {
            assert_eq!(parse_iso_datetime(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn dates_round_trip_as_isoformat() {
        let mut buf = Vec::new();
        write_iso_date(&mut buf, 7, 3, 1);
        assert_eq!(buf, b"0007-03-01");
        assert_eq!(parse_iso_date(&buf), Some((7, 3, 1)));
        for other in ["2024-1-01", "2024-01-01T00", "20240101", "2024-01-0x"] {
            assert_eq!(parse_iso_date(other.as_bytes()), None, "{other}");
        }
    }

    #[test]
    fn uuid_hex_round_trips() {
        let value = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321u128;
        let mut buf = Vec::new();
        write_uuid_hex(&mut buf, value);
        assert_eq!(buf, b"123456789abcdef00fedcba987654321");
        assert_eq!(parse_uuid_hex(&buf), Some(value));
        assert_eq!(
            parse_uuid_hex(b"12345678-9ABC-DEF0-0FED-CBA987654321"),
            Some(value)
        );
        assert_eq!(
            parse_uuid_hex(b"12345678-9abc-def0-0fed-cba98765432g"),
            None
        );
        assert_eq!(parse_uuid_hex(b"1234"), None);
    }
}
