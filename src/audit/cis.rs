//! The CIS AWS Foundations Benchmark items each finding maps to.
//!
//! Checked on 2026-12-01 against the published item texts (Tenable's audit files of the
//! benchmark, Steampipe's control pages): in **v7.0.0** the IAM section is section 2, with
//! 2.11 "Ensure credentials unused for 45 days or more are disabled" and 2.12 "Ensure access
//! keys are rotated every 90 days or less". The item "Ensure there is only one active access
//! key for any single IAM user" could not be read in v7.0.0 from a public source; its number
//! is given for **v3.0.0** (1.13, where 1.12 and 1.14 are the other two), which was checked.
//! The version is part of every id, so a report never names an item without its edition.

use super::Finding;

/// Unused credentials (45 days): CIS AWS Foundations v7.0.0, 2.11.
pub const UNUSED_45_DAYS: &str = "CIS-AWS-7.0.0:2.11";
/// Access keys rotated every 90 days or less: CIS AWS Foundations v7.0.0, 2.12.
pub const ROTATED_90_DAYS: &str = "CIS-AWS-7.0.0:2.12";
/// Only one active access key per IAM user: CIS AWS Foundations v3.0.0, 1.13.
pub const ONE_ACTIVE_KEY: &str = "CIS-AWS-3.0.0:1.13";

/// The benchmark items a finding maps to (none for findings the benchmark does not cover).
pub fn items(finding: Finding) -> &'static [&'static str] {
    match finding {
        Finding::Rotate => &[ROTATED_90_DAYS],
        Finding::Unused | Finding::NeverUsed => &[UNUSED_45_DAYS],
        Finding::TwoActive => &[ONE_ACTIVE_KEY],
        Finding::Inactive | Finding::NoSelfService | Finding::Exempt | Finding::Ok => &[],
    }
}
