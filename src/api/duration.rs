//! Durations as manifests write them: `500ms`, `1s`, `5m`, `1h30m`, `7d`.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration written as a sequence of `<number><unit>` with units `ms`,
/// `s`, `m`, `h` and `d` (a day is 24 hours), e.g. `500ms`, `90s`, `1h30m`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// The pattern a duration must match; also what the JSON Schema checks.
pub const PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

static COMPACT: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(PATTERN).expect("duration PATTERN is a valid regex"));

/// A duration that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("duration {text:?}: {reason}")]
pub struct ParseError {
    text: String,
    reason: String,
}

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }
}

impl FromStr for Duration {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        if !COMPACT.is_match(text) {
            return Err(err("expected <number><unit>… with units ms, s, m, h, d"));
        }
        let span: jiff::Span = text.parse().map_err(|e: jiff::Error| err(&e.to_string()))?;
        let signed = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| err(&e.to_string()))?;
        std::time::Duration::try_from(signed)
            .map(Self)
            .map_err(|e| err(&e.to_string()))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "description": "A duration: <number><unit>… with units ms, s, m, h, d (a day is 24 hours), e.g. 500ms, 90s, 1h30m, 7d."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_should_parse_compact_forms() {
        let cases = [
            ("500ms", 500),
            ("1s", 1000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("7d", 604_800_000),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.0.as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn duration_should_reject_other_forms() {
        for text in ["", "5", "1.5s", "-1s", "2 hours", "1w", "5M"] {
            assert!(text.parse::<Duration>().is_err(), "{text} parsed");
        }
    }

    #[test]
    fn duration_should_display_in_its_own_format() {
        for text in ["500ms", "1s", "1h30m", "7d", "0s", "1m5s"] {
            assert_eq!(text.parse::<Duration>().unwrap().to_string(), text);
        }
    }
}
