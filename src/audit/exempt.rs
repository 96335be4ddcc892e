//! The exemption tag: an IAM user tagged `iam-keys:exempt` with a reason and an optional
//! `until=YYYY-MM-DD` has its keys reported as `EXEMPT` until the end of that day (UTC).
//!
//! IAM tag values allow letters, digits, spaces and `_ . : / = + - @`, so the value is
//! words: `until=2027-03-31 vendor integration, ticket OPS-12`. The `until=` word may stand
//! anywhere; everything else is the reason, which must not be empty.

use jiff::Timestamp;
use jiff::civil::Date;

/// The tag key that exempts a user's keys.
pub const EXEMPT_TAG: &str = "iam-keys:exempt";

/// What a user's exemption tag says, judged at a given time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exemption {
    /// In force: the user's keys are `EXEMPT`.
    Valid { reason: String, until: Option<Date> },
    /// Its `until` day has passed: the keys are judged as if there were no tag.
    Expired { reason: String, until: Date },
    /// The tag cannot be read: the keys are judged as if there were no tag.
    Invalid { value: String, problem: TagProblem },
}

/// Why a tag value is not an exemption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagProblem {
    /// No reason besides the date.
    NoReason,
    /// `until=` is not a `YYYY-MM-DD` date.
    BadDate,
    /// `until=` appears twice.
    TwoDates,
}

impl Exemption {
    /// Whether the exemption hides the findings.
    pub fn in_force(&self) -> bool {
        matches!(self, Exemption::Valid { .. })
    }

    /// Read the tag value `value` at time `now`.
    pub fn parse(value: &str, now: Timestamp) -> Exemption {
        let invalid = |problem| Exemption::Invalid {
            value: value.to_string(),
            problem,
        };
        let mut until = None;
        let mut reason = Vec::new();
        for word in value.split_whitespace() {
            match word.strip_prefix("until=") {
                Some(date) => {
                    if until.is_some() {
                        return invalid(TagProblem::TwoDates);
                    }
                    let Ok(date) = date.parse::<Date>() else {
                        return invalid(TagProblem::BadDate);
                    };
                    // Only the strict form: jiff also reads other ISO 8601 shapes.
                    if date.to_string() != word["until=".len()..] {
                        return invalid(TagProblem::BadDate);
                    }
                    until = Some(date);
                }
                None => reason.push(word),
            }
        }
        if reason.is_empty() {
            return invalid(TagProblem::NoReason);
        }
        let reason = reason.join(" ");
        match until {
            Some(date) if now_date(now) > date => Exemption::Expired {
                reason,
                until: date,
            },
            _ => Exemption::Valid { reason, until },
        }
    }
}

fn now_date(now: Timestamp) -> Date {
    now.to_zoned(jiff::tz::TimeZone::UTC).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_reason_with_a_date_is_valid_through_the_end_of_that_day() {
        let value = "vendor integration OPS-12 until=2027-03-31";
        let valid = Exemption::Valid {
            reason: "vendor integration OPS-12".into(),
            until: Some("2027-03-31".parse().unwrap()),
        };
        assert_eq!(Exemption::parse(value, at("2027-03-31T23:59:59Z")), valid);
        assert!(Exemption::parse(value, at("2027-03-31T23:59:59Z")).in_force());
        let expired = Exemption::parse(value, at("2027-04-01T00:00:00Z"));
        assert_eq!(
            expired,
            Exemption::Expired {
                reason: "vendor integration OPS-12".into(),
                until: "2027-03-31".parse().unwrap()
            }
        );
        assert!(!expired.in_force());
    }

    #[test]
    fn a_reason_alone_never_expires_and_the_date_may_come_first() {
        assert!(Exemption::parse("break-glass", at("2099-01-01T00:00:00Z")).in_force());
        assert_eq!(
            Exemption::parse("until=2030-01-01 legacy app", at("2029-01-01T00:00:00Z")),
            Exemption::Valid {
                reason: "legacy app".into(),
                until: Some("2030-01-01".parse().unwrap())
            }
        );
    }

    #[test]
    fn unreadable_tags_do_not_exempt_and_say_why() {
        let now = at("2026-12-01T00:00:00Z");
        let problem = |v: &str| match Exemption::parse(v, now) {
            Exemption::Invalid { problem, .. } => Some(problem),
            _ => None,
        };
        assert_eq!(problem(""), Some(TagProblem::NoReason));
        assert_eq!(problem("until=2027-01-01"), Some(TagProblem::NoReason));
        assert_eq!(problem("x until=2027-13-01"), Some(TagProblem::BadDate));
        assert_eq!(problem("x until=20270101"), Some(TagProblem::BadDate));
        assert_eq!(problem("x until=next-week"), Some(TagProblem::BadDate));
        assert_eq!(
            problem("x until=2027-01-01 until=2028-01-01"),
            Some(TagProblem::TwoDates)
        );
        assert!(!Exemption::parse("", now).in_force());
    }
}
