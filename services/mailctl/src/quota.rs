//! Size arguments: `0` or `unlimited`, a number of bytes, or a number with a binary unit
//! (`K`, `M`, `G`, `T`, optionally followed by `B` or `iB`: `500M`, `1.5GiB`).

/// Parses a size into bytes; the error says what is accepted.
pub fn parse_size(input: &str) -> Result<i64, String> {
    let text = input.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(0);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let multiplier: f64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad(input)),
    };
    if number.is_empty() || number.matches('.').count() > 1 {
        return Err(bad(input));
    }
    let value: f64 = number.parse().map_err(|_| bad(input))?;
    let bytes = (value * multiplier).round();
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(bad(input));
    }
    if unit.is_empty() && number.contains('.') {
        return Err(bad(input));
    }
    Ok(bytes as i64)
}

fn bad(input: &str) -> String {
    format!(
        "invalid size {input:?}: use a number of bytes, a number with K, M, G or T (binary units, e.g. 500M, \
         1.5G), or 0 / unlimited"
    )
}

/// Formats bytes for tables: `0` reads as "unlimited" where it is a limit.
pub fn human(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("unlimited"), Ok(0));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size("500M"), Ok(500 * 1024 * 1024));
        assert_eq!(parse_size("500 MB"), Ok(500 * 1024 * 1024));
        assert_eq!(parse_size("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size("2t"), Ok(2 * 1024_i64.pow(4)));
    }

    #[test]
    fn malformed_sizes_are_refused() {
        for bad in [
            "",
            "M",
            "-5M",
            "5X",
            "1.2.3G",
            "1.5",
            "five",
            "5 M B",
            "99999999999999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(500 * 1024 * 1024), "500.0 MiB");
    }
}
