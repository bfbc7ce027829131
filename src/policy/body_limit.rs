//! The per-rule request body limit.
//!
//! Owns: parsing `maxBodySize` quantities (once, at compile). Must not:
//! touch bodies (the proxy's `LimitedBody` counts a streamed body against
//! the limit).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Parses a size: plain bytes (`1048576`) or a Kubernetes-style quantity
/// with a binary (`Ki`, `Mi`, `Gi`, `Ti`) or decimal (`k`, `M`, `G`, `T`)
/// suffix. Fractions and exponents are not accepted.
pub fn parse_quantity(value: &IntOrString) -> Result<u64, String> {
    let text = match value {
        IntOrString::Int(n) => {
            return u64::try_from(*n).map_err(|_| format!("{n} must not be negative"))
        }
        IntOrString::String(s) => s.trim(),
    };
    let bad = || {
        format!("{text:?} is not a size: use bytes or a quantity like 512Ki, 10Mi, 1Gi, 10k, 5M")
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit: u64 = match &text[digits..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        for (text, want) in [
            ("0", Ok(0)),
            ("1024", Ok(1024)),
            ("64Ki", Ok(65_536)),
            ("10Mi", Ok(10 * 1024 * 1024)),
            ("1Gi", Ok(1 << 30)),
            ("10k", Ok(10_000)),
            ("5M", Ok(5_000_000)),
            ("2G", Ok(2_000_000_000)),
            ("1.5Mi", Err(())),
            ("1e6", Err(())),
            ("10 Mi", Err(())),
            ("10MB", Err(())),
            ("Mi", Err(())),
            ("-1", Err(())),
            ("99999999999Ti", Err(())),
        ] {
            let got = parse_quantity(&IntOrString::String(text.into())).map_err(|_| ());
            assert_eq!(got, want, "case {text:?}");
        }
        assert_eq!(parse_quantity(&IntOrString::Int(4096)), Ok(4096));
        assert!(parse_quantity(&IntOrString::Int(-1)).is_err());
    }
}
