// Over 500 lines: one report in three formats (text, JSON, CSV); the formats share the row model at the top.
//! The audit report in three formats, and its exit code.
//!
//! - `json`: the [`Report`] as documented in the README (field names are stable).
//! - `csv`: [`CSV_COLUMNS`], a header row, RFC 4180 quoting (a field with a comma, a double
//!   quote, CR or LF is quoted, quotes doubled), CRLF line ends; an error is a row with
//!   finding `ERROR`.
//! - `text`: one table per finding (the primary finding of each key, most pressing first),
//!   then the errors, then a summary line.
//!
//! Key ids are masked everywhere (`AKIA…WXYZ`).

use super::{AuditRun, Source};
use crate::audit::{Exemption, Failure, Finding, Row, Thresholds, evaluate};
use crate::aws::{Action, AwsError, ErrorKind};
use crate::cli::render::{ErrorJson, LastUsedJson, table};
use crate::error::Outcome;
use crate::secret::mask_key_id;
use crate::time::rfc3339;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// The columns of `--output csv`, in order.
pub const CSV_COLUMNS: [&str; 18] = [
    "account",
    "user",
    "access_key_id",
    "slot",
    "status",
    "created",
    "age_days",
    "last_used_date",
    "last_used_service",
    "last_used_region",
    "profiles",
    "finding",
    "findings",
    "benchmarks",
    "exemption",
    "exemption_reason",
    "exemption_until",
    "error",
];

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: String,
    pub thresholds: ThresholdsJson,
    pub fail_on: Vec<Finding>,
    pub accounts: Vec<AccountJson>,
    pub keys: Vec<KeyJson>,
    pub errors: Vec<ErrorRow>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct ThresholdsJson {
    pub max_age_days: f64,
    pub max_unused_days: f64,
    pub max_inactive_days: f64,
}

#[derive(Debug, Serialize)]
pub struct AccountJson {
    pub account: String,
    pub name: Option<String>,
    /// `api` or `credential-report`; `null` when the account could not be read at all.
    pub source: Option<&'static str>,
    /// Users listed (with or without keys), when listed.
    pub users: Option<usize>,
    pub keys: usize,
    pub report_generated: Option<String>,
    pub report_age_hours: Option<f64>,
    /// AWS calls made for this account.
    pub calls: usize,
}

#[derive(Debug, Serialize)]
pub struct KeyJson {
    pub account: String,
    pub user: String,
    pub arn: String,
    /// Masked; `null` from the credential report (it has slots, not ids).
    pub access_key_id: Option<String>,
    pub slot: u8,
    pub status: String,
    pub created: Option<String>,
    pub age_days: Option<i64>,
    /// `null` when unknown; all fields `null` for a key never used.
    pub last_used: Option<LastUsedJson>,
    /// Local profiles (on this machine) holding the key.
    pub profiles: Vec<String>,
    /// The primary finding (the first of `findings`).
    pub finding: Finding,
    pub findings: Vec<Finding>,
    /// What an exemption in force hides.
    pub exempted: Vec<Finding>,
    pub benchmarks: Vec<&'static str>,
    pub exemption: Option<ExemptionJson>,
}

#[derive(Debug, Serialize)]
pub struct ExemptionJson {
    /// `valid`, `expired` or `invalid`.
    pub state: &'static str,
    pub reason: Option<String>,
    pub until: Option<String>,
    /// For `invalid`: `no_reason`, `bad_date`, `two_dates`.
    pub problem: Option<&'static str>,
    /// The tag value, for `invalid`.
    pub value: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ErrorRow {
    pub account: String,
    pub user: Option<String>,
    /// The AWS action that failed.
    pub action: String,
    #[serde(flatten)]
    pub error: ErrorJson,
}

impl ErrorRow {
    /// One line for stderr.
    pub fn text(&self) -> String {
        match &self.user {
            Some(user) => format!(
                "account {}, user {user}: {}",
                self.account, self.error.message
            ),
            None => format!("account {}: {}", self.account, self.error.message),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub accounts: usize,
    pub users: usize,
    pub keys: usize,
    /// Keys per primary finding (every finding is present, 0 included).
    pub by_finding: BTreeMap<&'static str, usize>,
    /// Keys with a finding in `fail_on`.
    pub failing: usize,
    pub errors: usize,
}

/// Why an AWS call failed, and what to do.
pub fn explain(e: &AwsError, profile: &str) -> String {
    let permission = match e.action {
        Action::Account(a) => a.permission(),
        other => format!("iam:{}", other.as_str()),
    };
    match e.kind {
        ErrorKind::AccessDenied => format!(
            "{e}. The auditing identity needs `{permission}`: `iam-keys policy --audit` prints \
             the policy it needs"
        ),
        kind if kind.is_auth_failure() => format!(
            "{e}. The credentials of profile `{profile}` were not accepted: check the key, or \
             that the session has not expired"
        ),
        _ => e.to_string(),
    }
}

/// Why a `policy --apply` call failed, and what to do.
pub fn explain_apply(e: &AwsError, profile: &str) -> String {
    let permission = match e.action {
        Action::Account(a) => a.permission(),
        other => format!("iam:{}", other.as_str()),
    };
    match e.kind {
        ErrorKind::AccessDenied => format!(
            "{e}. Applying the policy needs an administrator: profile `{profile}` lacks \
             `{permission}`"
        ),
        _ => explain(e, profile),
    }
}

pub fn hours_text(hours: f64) -> String {
    if hours >= 48.0 {
        format!("{} days", (hours / 24.0).floor())
    } else {
        format!("{hours:.1} hours")
    }
}

fn exemption_json(e: &Exemption) -> ExemptionJson {
    use crate::audit::exempt::TagProblem;
    match e {
        Exemption::Valid { reason, until } => ExemptionJson {
            state: "valid",
            reason: Some(reason.clone()),
            until: until.map(|d| d.to_string()),
            problem: None,
            value: None,
        },
        Exemption::Expired { reason, until } => ExemptionJson {
            state: "expired",
            reason: Some(reason.clone()),
            until: Some(until.to_string()),
            problem: None,
            value: None,
        },
        Exemption::Invalid { value, problem } => ExemptionJson {
            state: "invalid",
            reason: None,
            until: None,
            problem: Some(match problem {
                TagProblem::NoReason => "no_reason",
                TagProblem::BadDate => "bad_date",
                TagProblem::TwoDates => "two_dates",
            }),
            value: Some(value.clone()),
        },
    }
}

fn key_json(row: &Row, holders: &BTreeMap<String, Vec<String>>) -> KeyJson {
    let profiles = row
        .key
        .id
        .as_ref()
        .and_then(|id| holders.get(id))
        .cloned()
        .unwrap_or_default();
    KeyJson {
        account: row.account.clone(),
        user: row.user.clone(),
        arn: row.arn.clone(),
        access_key_id: row.key.id.as_deref().map(mask_key_id),
        slot: row.key.slot,
        status: row.key.status.to_string(),
        created: row.key.created.map(rfc3339),
        age_days: row.age_days,
        last_used: row.key.last_used.as_ref().map(LastUsedJson::from),
        profiles,
        finding: row.finding(),
        findings: row.findings.clone(),
        exempted: row.exempted.clone(),
        benchmarks: row.benchmarks.clone(),
        exemption: row.exemption.as_ref().map(exemption_json),
    }
}

impl Report {
    pub fn build(
        run: &AuditRun,
        thresholds: &Thresholds,
        fail_on: &[Finding],
        holders: &BTreeMap<String, Vec<String>>,
        profile: &str,
        now: Timestamp,
    ) -> Report {
        let users = run.users();
        let rows = evaluate(&users, thresholds, now);
        let keys: Vec<KeyJson> = rows.iter().map(|r| key_json(r, holders)).collect();
        let errors: Vec<ErrorRow> = run
            .failures()
            .iter()
            .map(|f: &Failure| ErrorRow {
                account: f.account.clone(),
                user: f.user.clone(),
                action: f.error.action.to_string(),
                error: ErrorJson::from_aws(&f.error, explain(&f.error, profile)),
            })
            .collect();
        let accounts = run
            .accounts
            .iter()
            .map(|a| AccountJson {
                account: a.account.clone(),
                name: a.name.clone(),
                source: a.source.map(|s| match s {
                    Source::CredentialReport => "credential-report",
                    _ => "api",
                }),
                users: a.collected.users_listed,
                keys: rows.iter().filter(|r| r.account == a.account).count(),
                report_generated: a.collected.report_generated.map(rfc3339),
                report_age_hours: a.collected.report_generated.map(|t| {
                    ((now.as_second() - t.as_second()).max(0) as f64 / 360.0).round() / 10.0
                }),
                calls: a.collected.calls,
            })
            .collect();
        let mut by_finding: BTreeMap<&'static str, usize> =
            Finding::ALL.iter().map(|f| (f.as_str(), 0)).collect();
        for row in &rows {
            *by_finding.entry(row.finding().as_str()).or_default() += 1;
        }
        let failing = rows
            .iter()
            .filter(|r| r.findings.iter().any(|f| fail_on.contains(f)))
            .count();
        let mut user_names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.account.as_str(), r.user.as_str()))
            .collect();
        user_names.dedup();
        let days = |d: std::time::Duration| d.as_secs_f64() / 86_400.0;
        Report {
            generated_at: rfc3339(now),
            thresholds: ThresholdsJson {
                max_age_days: days(thresholds.max_age),
                max_unused_days: days(thresholds.max_unused),
                max_inactive_days: days(thresholds.max_inactive),
            },
            fail_on: fail_on.to_vec(),
            summary: Summary {
                accounts: run.accounts.len(),
                users: user_names.len(),
                keys: rows.len(),
                by_finding,
                failing,
                errors: errors.len(),
            },
            accounts,
            keys,
            errors,
        }
    }

    /// 4 when part of the audit could not be read, else 1 when a key has a `fail_on`
    /// finding, else 0.
    pub fn outcome(&self) -> Outcome {
        if !self.errors.is_empty() {
            Outcome::Incomplete
        } else if self.summary.failing > 0 {
            Outcome::Attention
        } else {
            Outcome::Success
        }
    }

    pub fn json(&self) -> String {
        crate::cli::render::json(self)
    }

    pub fn csv(&self) -> String {
        let mut out = String::new();
        push_record(&mut out, CSV_COLUMNS.iter().map(|s| s.to_string()));
        for k in &self.keys {
            let used = k.last_used.as_ref();
            let (state, reason, until) = match &k.exemption {
                None => (String::new(), String::new(), String::new()),
                Some(e) => (
                    e.state.to_string(),
                    e.reason.clone().unwrap_or_default(),
                    e.until.clone().unwrap_or_default(),
                ),
            };
            push_record(
                &mut out,
                [
                    k.account.clone(),
                    k.user.clone(),
                    k.access_key_id.clone().unwrap_or_default(),
                    k.slot.to_string(),
                    k.status.clone(),
                    k.created.clone().unwrap_or_default(),
                    k.age_days.map(|d| d.to_string()).unwrap_or_default(),
                    used.and_then(|u| u.date.clone())
                        .unwrap_or_else(|| never_or_unknown(used)),
                    used.and_then(|u| u.service.clone()).unwrap_or_default(),
                    used.and_then(|u| u.region.clone()).unwrap_or_default(),
                    k.profiles.join(" "),
                    k.finding.to_string(),
                    join(&k.findings),
                    k.benchmarks.join(" "),
                    state,
                    reason,
                    until,
                    String::new(),
                ]
                .into_iter(),
            );
        }
        for e in &self.errors {
            let mut fields = vec![String::new(); CSV_COLUMNS.len()];
            fields[0] = e.account.clone();
            fields[1] = e.user.clone().unwrap_or_default();
            fields[11] = "ERROR".into();
            fields[12] = "ERROR".into();
            fields[17] = e.error.message.clone();
            push_record(&mut out, fields.into_iter());
        }
        out
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let several_accounts = self.accounts.len() > 1;
        for finding in Finding::ALL {
            let rows: Vec<Vec<String>> = self
                .keys
                .iter()
                .filter(|k| k.finding == finding)
                .map(|k| {
                    let mut cells = Vec::new();
                    if several_accounts {
                        cells.push(k.account.clone());
                    }
                    cells.extend([
                        k.user.clone(),
                        k.access_key_id
                            .clone()
                            .unwrap_or_else(|| format!("slot {}", k.slot)),
                        k.status.clone(),
                        k.age_days
                            .map(|d| format!("{d}d"))
                            .unwrap_or_else(|| "-".into()),
                        last_used_cell(k.last_used.as_ref()),
                        if k.profiles.is_empty() {
                            "-".into()
                        } else {
                            k.profiles.join(",")
                        },
                        join(&k.findings),
                        if k.benchmarks.is_empty() {
                            "-".into()
                        } else {
                            k.benchmarks.join(" ")
                        },
                        exemption_cell(k),
                    ]);
                    cells
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            out.push_str(&format!("{finding} ({})\n", rows.len()));
            let mut header = Vec::new();
            if several_accounts {
                header.push("ACCOUNT");
            }
            header.extend([
                "USER",
                "KEY",
                "STATUS",
                "AGE",
                "LAST USED",
                "PROFILES",
                "FINDINGS",
                "CIS",
                "EXEMPTION",
            ]);
            out.push_str(&table(&header, &rows));
            out.push('\n');
        }
        if !self.errors.is_empty() {
            out.push_str(&format!("ERROR ({})\n", self.errors.len()));
            for e in &self.errors {
                out.push_str(&format!("  {}\n", e.text()));
            }
            out.push('\n');
        }
        if self
            .keys
            .iter()
            .any(|k| k.findings.contains(&Finding::NoSelfService))
        {
            out.push_str(
                "NO_SELF_SERVICE: neither the iam-keys group nor the iam-keys inline policy; \
                 other grants (other groups, managed or inline policies) are not evaluated.\n",
            );
        }
        let counts: Vec<String> = Finding::ALL
            .iter()
            .filter_map(|f| {
                let n = self.summary.by_finding[f.as_str()];
                (n > 0).then(|| format!("{n} {f}"))
            })
            .collect();
        let s = &self.summary;
        out.push_str(&format!(
            "{} keys of {} users in {} account{}: {}; {} failing (--fail-on {}); {} error{}\n",
            s.keys,
            s.users,
            s.accounts,
            if s.accounts == 1 { "" } else { "s" },
            if counts.is_empty() {
                "no keys".to_string()
            } else {
                counts.join(", ")
            },
            s.failing,
            join(&self.fail_on),
            s.errors,
            if s.errors == 1 { "" } else { "s" },
        ));
        out
    }
}

fn join(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn never_or_unknown(used: Option<&LastUsedJson>) -> String {
    match used {
        Some(_) => "never".into(),
        None => String::new(),
    }
}

fn last_used_cell(used: Option<&LastUsedJson>) -> String {
    match used {
        None => "unknown".into(),
        Some(LastUsedJson { date: None, .. }) => "never".into(),
        Some(u) => {
            let day = u.date.as_deref().unwrap_or_default();
            let day = day.get(..10).unwrap_or(day);
            match (&u.service, &u.region) {
                (Some(s), Some(r)) => format!("{day} {s} {r}"),
                (Some(s), None) => format!("{day} {s}"),
                _ => day.to_string(),
            }
        }
    }
}

fn exemption_cell(k: &KeyJson) -> String {
    match &k.exemption {
        None => "-".into(),
        Some(e) => match e.state {
            "invalid" => format!(
                "invalid tag ({})",
                e.problem.unwrap_or_default().replace('_', " ")
            ),
            state => {
                let mut text = format!("{state}: {}", e.reason.as_deref().unwrap_or_default());
                if let Some(until) = &e.until {
                    text.push_str(&format!(" (until {until})"));
                }
                text
            }
        },
    }
}

/// One CSV record, RFC 4180: quoted when needed, CRLF at the end.
fn push_record(out: &mut String, fields: impl Iterator<Item = String>) {
    let fields: Vec<String> = fields.map(|f| csv_field(&f)).collect();
    out.push_str(&fields.join(","));
    out.push_str("\r\n");
}

pub fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests;
