//! Durations as operators write them: `500ms`, `30s`, `2m`, `1h`, or combined (`1m30s`).

use std::time::Duration;

/// Parses a duration: one or more `<integer><unit>` parts with the units `ms`, `s`, `m`, `h`
/// and `d`, e.g. `500ms`, `30s`, `1m30s`. A bare number is refused, since its unit would be a
/// guess. The error says what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("'{s}' is not a duration; write a number and a unit: 500ms, 30s, 2m, 1h, 1m30s");
    let text = s.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit_len = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        if digits == 0 || unit_len == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit_ms: u64 = match &rest[digits..digits + unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(ms))
            .ok_or_else(bad)?;
        rest = &rest[digits + unit_len..];
    }
    Ok(total)
}

/// A time (ms since the epoch) as operators read it: `2026-12-06 12:00 UTC`.
pub fn format_utc_ms(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("{ms} ms since the epoch"),
    }
}

/// Formats a duration the way [`parse_duration`] reads it (`30s`, `500ms`, `1m30s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

/// Reads an optional duration written as text (`"30s"`) with [`parse_duration`]: for config
/// files, as `#[serde(default, deserialize_with = "bigmgr_core::duration::deserialize_opt")]`.
pub fn deserialize_opt<'de, D>(d: D) -> Result<Option<Duration>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    use serde::de::Error;
    Option::<String>::deserialize(d)?
        .map(|text| parse_duration(&text).map_err(D::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_and_combinations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 1m30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "",
            "30",
            "s",
            "1x",
            "1.5s",
            "-1s",
            "1s2",
            "99999999999999999999d",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("500ms, 30s"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_what_it_reads() {
        for d in [500, 1_000, 90_000, 3_600_000, 3_723_004] {
            let d = Duration::from_millis(d);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }
}
