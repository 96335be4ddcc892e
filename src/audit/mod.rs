//! The account audit: facts about every IAM user's access keys in, one [`Row`] per key with
//! its [`Finding`]s out.
//!
//! - [`rules`]: the rules, judged at an explicit `now` (unit tests use fixed times).
//! - [`exempt`]: the `iam-keys:exempt` user tag.
//! - [`cis`]: the CIS AWS Foundations Benchmark items each finding maps to.
//! - [`credential_report`]: the credential report's CSV read into the same facts.
//! - [`collect`]: the facts gathered through [`crate::aws::account::AccountIam`], several
//!   users at a time.
//!
//! Must not: print, build sentences for people (the CLI says things), read profile files, or
//! call AWS except through the trait in [`collect`].

pub mod cis;
pub mod collect;
pub mod credential_report;
pub mod exempt;
pub mod rules;

pub use exempt::{EXEMPT_TAG, Exemption};
pub use rules::{Thresholds, evaluate};

use crate::aws::{AwsError, KeyStatus, LastUsed};
use jiff::Timestamp;
use std::fmt;

/// What the audit says about one key. The order is the order of the report's groups (most
/// pressing first); a row's primary finding is its first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    /// Active and older than `--max-age`.
    Rotate,
    /// Active, never used, and older than `--max-unused`.
    NeverUsed,
    /// Active and not used for `--max-unused`.
    Unused,
    /// The user has two Active keys.
    TwoActive,
    /// Inactive for longer than `--max-inactive` (as far as IAM tells: see [`rules`]).
    Inactive,
    /// The user holds an Active key but has neither the iam-keys group nor the iam-keys
    /// inline policy (other grants are not evaluated).
    NoSelfService,
    /// The user's exemption tag is in force.
    Exempt,
    /// Nothing to report.
    Ok,
}

impl Finding {
    pub const ALL: [Finding; 8] = [
        Finding::Rotate,
        Finding::NeverUsed,
        Finding::Unused,
        Finding::TwoActive,
        Finding::Inactive,
        Finding::NoSelfService,
        Finding::Exempt,
        Finding::Ok,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Rotate => "ROTATE",
            Finding::NeverUsed => "NEVER_USED",
            Finding::Unused => "UNUSED",
            Finding::TwoActive => "TWO_ACTIVE",
            Finding::Inactive => "INACTIVE",
            Finding::NoSelfService => "NO_SELF_SERVICE",
            Finding::Exempt => "EXEMPT",
            Finding::Ok => "OK",
        }
    }

    /// The finding named `s` (case-insensitive; `-` may stand for `_`).
    pub fn parse(s: &str) -> Option<Finding> {
        let s = s.trim().to_ascii_uppercase().replace('-', "_");
        Finding::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The findings `--fail-on` defaults to: every one but `OK` and `EXEMPT`.
    pub fn default_fail_on() -> Vec<Finding> {
        Finding::ALL
            .into_iter()
            .filter(|f| !matches!(f, Finding::Ok | Finding::Exempt))
            .collect()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether a user holds the self-service grant that iam-keys hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfService {
    /// In the iam-keys group.
    Group,
    /// Has the iam-keys inline policy.
    Inline,
    /// Neither.
    Missing,
    /// Not looked at (no Active key, or the source cannot tell).
    NotChecked,
}

/// What is known about one access key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFacts {
    /// The key id (the credential report has none).
    pub id: Option<String>,
    /// 1 or 2: the older key is 1.
    pub slot: u8,
    pub status: KeyStatus,
    pub created: Option<Timestamp>,
    /// `None`: unknown. `Some` with no date: never used.
    pub last_used: Option<LastUsed>,
}

/// What is known about one IAM user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFacts {
    pub account: String,
    pub user: String,
    pub arn: String,
    /// The `iam-keys:exempt` tag's value, if the user has one.
    pub exempt_tag: Option<String>,
    pub self_service: SelfService,
    pub keys: Vec<KeyFacts>,
}

/// One key's line in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub account: String,
    pub user: String,
    pub arn: String,
    pub key: KeyFacts,
    pub age_days: Option<i64>,
    /// What counts: the rule findings, or `[Exempt]` when an exemption is in force, or
    /// `[Ok]`. Sorted, so the first is the primary finding.
    pub findings: Vec<Finding>,
    /// The rule findings an exemption in force hides.
    pub exempted: Vec<Finding>,
    pub exemption: Option<Exemption>,
    /// The benchmark items of `findings` and `exempted`.
    pub benchmarks: Vec<&'static str>,
}

impl Row {
    pub fn finding(&self) -> Finding {
        self.findings.first().copied().unwrap_or(Finding::Ok)
    }
}

/// A part of the audit that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub account: String,
    /// The user whose facts could not be read; `None` when the whole account failed.
    pub user: Option<String>,
    pub error: AwsError,
}

/// The fixed "now" of the audit's unit tests, and times relative to it.
#[cfg(test)]
pub(crate) mod test_time {
    use jiff::Timestamp;

    pub fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    pub fn days_ago(d: i64) -> Timestamp {
        now()
            .checked_sub(jiff::SignedDuration::from_hours(24 * d))
            .unwrap()
    }
}
