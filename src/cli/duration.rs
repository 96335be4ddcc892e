//! `--older-than` and `--verify-timeout` values: `90d`, `12w`, `36h`, `1d 12h`, `P90D`.
//! Days are 24 hours and weeks 7 days, as a key's age is counted.

use std::time::Duration;

/// A parsed duration argument; keeps what the user typed for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationArg {
    pub text: String,
    pub duration: Duration,
}

impl std::str::FromStr for DurationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "use a number and a unit, like 90d, 12w, 36h, 30m or 60s";
        let span: jiff::Span = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a duration: {hint}"))?;
        let signed = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| format!("`{s}` is not a duration ({e}): {hint}"))?;
        let duration =
            Duration::try_from(signed).map_err(|_| format!("`{s}` is negative: {hint}"))?;
        Ok(DurationArg {
            text: s.trim().to_string(),
            duration,
        })
    }
}

impl DurationArg {
    /// Whole days, for messages and JSON.
    pub fn days(&self) -> f64 {
        self.duration.as_secs_f64() / 86_400.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        s.parse::<DurationArg>().unwrap().duration.as_secs()
    }

    #[test]
    fn days_weeks_hours_parse_as_fixed_lengths() {
        assert_eq!(secs("90d"), 90 * 86_400);
        assert_eq!(secs("12w"), 12 * 7 * 86_400);
        assert_eq!(secs("36h"), 36 * 3_600);
        assert_eq!(secs("60s"), 60);
        assert_eq!(secs("1d 12h"), 36 * 3_600);
        assert_eq!(secs("P90D"), 90 * 86_400);
    }

    #[test]
    fn garbage_and_negative_values_are_refused_with_a_hint() {
        let err = "ninety".parse::<DurationArg>().unwrap_err();
        assert!(err.contains("90d"), "{err}");
        assert!("-5d".parse::<DurationArg>().is_err());
    }
}
