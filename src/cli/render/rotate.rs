//! The words and JSON of `rotate`: the plan shown before anything runs, each key's result,
//! the summary line, and the `--output json` document.
//!
//! Must not: decide anything about a key; this only describes what `rotate` decided and did.

use crate::aws::Signer;
use crate::cli::advice;
use crate::cli::auth::AuthProfile;
use crate::cli::duration::DurationArg;
use crate::cli::render::{self, ErrorJson};
use crate::inventory::Destination;
use crate::inventory::KeyGroup;
use crate::profiles::{KeyEdit, ProfileFiles};
use crate::rotation::KeyOutcome;
use crate::rotation::exec::{Cleanup, Failure};
use crate::rotation::preflight::{PreflightError, Refused};
use crate::secret::mask_key_id;
use jiff::Timestamp;
use serde::Serialize;

/// One key in the `rotate --output json` document.
#[derive(Debug, Serialize)]
pub struct KeyReport {
    /// Masked old key id.
    pub access_key_id: String,
    /// Every local profile holding the key (all are updated together).
    pub profiles: Vec<String>,
    pub user: Option<String>,
    /// `rotated`, `planned` (dry run), `not-due`, `refused`, `failed`, `partial`.
    pub result: &'static str,
    /// Masked new key id.
    pub new_access_key_id: Option<String>,
    /// `deactivated` or `deleted` (or what would happen, in a dry run).
    pub old_key: Option<&'static str>,
    /// An Inactive key deleted to make room (masked).
    pub deleted_inactive: Option<String>,
    pub age_days: Option<i64>,
    /// The file lines that change (dry run) or changed.
    pub changes: Vec<String>,
    /// The MFA device whose session makes the IAM calls (a code is needed), if any.
    pub mfa_serial: Option<String>,
    /// The hooks and env files that get the new key before the old key is retired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
    pub error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub profile: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct RotateSummary {
    pub rotated: usize,
    pub not_due: usize,
    pub skipped: usize,
    pub failed: usize,
    pub partial: usize,
}

/// The JSON document of `rotate --output json`.
#[derive(Debug, Serialize)]
pub struct RotateReport {
    pub dry_run: bool,
    pub recovered: Vec<String>,
    pub keys: Vec<KeyReport>,
    pub skipped: Vec<Skipped>,
    pub summary: RotateSummary,
}

/// The file lines a rotation of the group's key changes, described without secrets.
pub fn planned_changes(files: &ProfileFiles, group: &KeyGroup) -> Vec<String> {
    let placeholder = "AKIA................".to_string();
    let edit = match &group.destination {
        Destination::Holders => KeyEdit::Replace {
            old_key_id: group.key_id.clone(),
            new_key_id: placeholder,
            new_secret: crate::secret::Secret::new(""),
        },
        Destination::Profile(profile) => KeyEdit::SetProfile {
            profile: profile.clone(),
            key_id: placeholder,
            secret: crate::secret::Secret::new("x"),
        },
        Destination::Printed => {
            return vec!["no file changes: the new key is printed (--output env)".to_string()];
        }
    };
    match files.plan_edits(&[edit]) {
        Ok(changes) => changes.iter().map(|c| c.to_string()).collect(),
        Err(e) => vec![format!("cannot plan the edit: {e}")],
    }
}

pub fn apply_outcome(
    report: &mut KeyReport,
    group: &KeyGroup,
    auth: Option<&AuthProfile>,
    result: KeyOutcome,
    env_out: &mut String,
) {
    let cx = |signer| advice::Context {
        profiles: &group.holders,
        key_id: &group.key_id,
        region: &group.target.region,
        signer,
    };
    let mfa_used = report.mfa_serial.is_some();
    let failure_json = |failure: &Failure| match failure {
        // With --auth-profile, the "session" is that profile's credentials: name them.
        Failure::Aws {
            error,
            signer: Signer::MfaSession,
        } if auth.is_some() && !mfa_used => {
            let auth = auth.expect("checked");
            ErrorJson::from_aws(error, auth.explain(error, Signer::OldKey))
        }
        Failure::Aws { error, signer } => {
            ErrorJson::from_aws(error, advice::explain(error, &cx(*signer)))
        }
        Failure::VerifyTimeout { .. } => ErrorJson::other("VerifyTimeout", failure.to_string()),
        Failure::Interrupted => ErrorJson::other("Interrupted", failure.to_string()),
        Failure::Gates(_) => ErrorJson::other("HookFailed", failure.to_string()),
        other => ErrorJson::other("Failed", other.to_string()),
    };
    match result {
        KeyOutcome::Rotated {
            new_key_id,
            new_secret,
            retire,
            deleted_inactive,
            saved,
        } => {
            report.result = "rotated";
            report.new_access_key_id = Some(mask_key_id(&new_key_id));
            report.old_key = Some(crate::cli::words::retire_word(retire));
            report.deleted_inactive = deleted_inactive.as_deref().map(mask_key_id);
            report.changes = saved
                .files
                .iter()
                .flat_map(|f| f.changes.iter().map(|c| c.to_string()))
                .collect();
            env_out.push_str(&render::env_lines(
                &group.holders,
                report.user.as_deref().unwrap_or_default(),
                &new_key_id,
                &new_secret,
            ));
        }
        KeyOutcome::Failed {
            step,
            failure,
            cleanup,
            deleted_inactive,
        } => {
            report.old_key = None;
            report.deleted_inactive = deleted_inactive.as_deref().map(mask_key_id);
            report.changes.clear();
            // A key this run made that may still be Active is a partial run (exit 3).
            report.result = if cleanup.leaves_key() {
                "partial"
            } else {
                "failed"
            };
            let mut error = failure_json(&failure);
            error.message = format!(
                "{} failed: {}; {}",
                step,
                error.message,
                match &cleanup {
                    Cleanup::NothingCreated => "no key was created, nothing changed".to_string(),
                    Cleanup::NewKeyDeleted(id) => format!(
                        "the new key {} was deleted again, files unchanged",
                        mask_key_id(id)
                    ),
                    Cleanup::LostKeyDeleted(id) => format!(
                        "CreateAccessKey's answer was lost, but it had made the key {}; its secret was lost with \
                         the answer, so that key was deleted. Files unchanged",
                        mask_key_id(id)
                    ),
                    Cleanup::NewKeyLeft { key_id, .. } => format!(
                        "the new key {} is still in IAM and could not be deleted; it is in the recovery journal: \
                         run `iam-keys recover`",
                        mask_key_id(key_id)
                    ),
                    Cleanup::Unresolved { candidates, .. } if candidates.is_empty() => {
                        "CreateAccessKey's answer was lost and the user's keys could not be listed to find the key \
                         it may have made; the recovery journal is kept: run `iam-keys recover`"
                            .to_string()
                    }
                    Cleanup::Unresolved { candidates, .. } => format!(
                        "CreateAccessKey's answer was lost and more than one unknown key fits its window ({}); none \
                         is touched and the recovery journal is kept: run `iam-keys recover`",
                        candidates
                            .iter()
                            .map(|c| mask_key_id(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            );
            report.error = Some(error);
        }
        KeyOutcome::Partial {
            new_key_id,
            new_secret,
            failure,
            deleted_inactive,
        } => {
            report.result = "partial";
            report.new_access_key_id = Some(mask_key_id(&new_key_id));
            report.old_key = None;
            report.deleted_inactive = deleted_inactive.as_deref().map(mask_key_id);
            let mut error = failure_json(&failure);
            error.message = match failure {
                // It says what to do itself.
                Failure::Gates(_) => format!(
                    "rotated, but the old key {} is still active: {}",
                    report.access_key_id, error.message
                ),
                _ => format!(
                    "rotated, but the old key {} is still active: {}. The files hold the new key; run \
                     `iam-keys recover` to retire the old one",
                    report.access_key_id, error.message
                ),
            };
            report.error = Some(error);
            env_out.push_str(&render::env_lines(
                &group.holders,
                report.user.as_deref().unwrap_or_default(),
                &new_key_id,
                &new_secret,
            ));
        }
        KeyOutcome::Stuck {
            new_key_id,
            failure,
            restore_error,
            ..
        } => {
            report.result = "partial";
            report.new_access_key_id = Some(mask_key_id(&new_key_id));
            report.error = Some(ErrorJson::other(
                "Stuck",
                format!(
                    "writing the files failed ({failure}) and restoring them failed too ({restore_error}); both keys \
                     are active and work. Fix the problem, then run `iam-keys recover`"
                ),
            ));
        }
    }
}

pub fn summarise(reports: &[KeyReport], skipped: &[Skipped]) -> RotateSummary {
    let count = |r: &str| reports.iter().filter(|k| k.result == r).count();
    RotateSummary {
        rotated: count("rotated"),
        not_due: count("not-due"),
        skipped: skipped.len(),
        failed: count("failed") + count("refused"),
        partial: count("partial"),
    }
}

/// The plan, before anything runs. `threshold` is `--older-than` as typed.
pub fn render_plan(
    reports: &[KeyReport],
    skipped: &[Skipped],
    dry_run: bool,
    threshold: Option<&str>,
) -> String {
    let mut out = String::new();
    let head = if dry_run {
        "Plan (dry run, nothing is changed):"
    } else {
        "Plan:"
    };
    out.push_str(head);
    out.push('\n');
    for r in reports {
        let user = r.user.as_deref().unwrap_or("?");
        match r.result {
            "planned" => {
                let age = r
                    .age_days
                    .map(|d| format!(", {d} days old"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  rotate   {} (user {user}{age}): profiles {}\n",
                    r.access_key_id,
                    r.profiles.join(", ")
                ));
                if let Some(inactive) = &r.deleted_inactive {
                    out.push_str(&format!(
                        "           first delete the Inactive key {inactive} to make room\n"
                    ));
                }
                if let Some(serial) = &r.mfa_serial {
                    out.push_str(&format!(
                        "           MFA needed: the IAM calls go through a session for {serial} (one code)\n"
                    ));
                }
                for c in &r.changes {
                    out.push_str(&format!("           {c}\n"));
                }
                for h in &r.hooks {
                    out.push_str(&format!("           then {h} gets the new key\n"));
                }
                out.push_str(&format!(
                    "           then the old key is {}\n",
                    match r.old_key {
                        Some("deleted") => "deleted",
                        _ => "deactivated (Inactive)",
                    }
                ));
            }
            "not-due" => out.push_str(&format!(
                "  not due  {} (user {user}, {} days old, threshold {}): profiles {}\n",
                r.access_key_id,
                r.age_days.unwrap_or_default(),
                threshold.unwrap_or("-"),
                r.profiles.join(", ")
            )),
            _ => out.push_str(&format!(
                "  {:<8} {} (profiles {}): {}\n",
                r.result,
                r.access_key_id,
                r.profiles.join(", "),
                r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
            )),
        }
    }
    for s in skipped {
        out.push_str(&format!("  skipped  profile {}: {}\n", s.profile, s.reason));
    }
    if reports.is_empty() && skipped.is_empty() {
        out.push_str("  nothing selected\n");
    }
    out
}

pub fn render_results(reports: &[KeyReport], summary: &RotateSummary) -> String {
    let mut out = String::new();
    for r in reports {
        match r.result {
            "rotated" => out.push_str(&format!(
                "rotated  {} -> {} (profiles {}); old key {}\n",
                r.access_key_id,
                r.new_access_key_id.as_deref().unwrap_or("?"),
                r.profiles.join(", "),
                r.old_key.unwrap_or("?")
            )),
            "not-due" => out.push_str(&format!(
                "not due  {} (profiles {})\n",
                r.access_key_id,
                r.profiles.join(", ")
            )),
            "planned" => {}
            other => out.push_str(&format!(
                "{other:<8} {} (profiles {}): {}\n",
                r.access_key_id,
                r.profiles.join(", "),
                r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
            )),
        }
    }
    out.push_str(&format!(
        "{} rotated, {} not due, {} skipped, {} failed, {} partial\n",
        summary.rotated, summary.not_due, summary.skipped, summary.failed, summary.partial
    ));
    out
}

/// Why a key is not rotated, in words.
pub fn refused_words(
    why: Refused,
    prune_older_than: Option<&DurationArg>,
    now: Timestamp,
) -> String {
    match why {
        Refused::Plan { refusal, prune } => match (prune, prune_older_than) {
            (Some(kept), Some(older_than)) => format!(
                "{}\n--prune did not delete it: {}",
                advice::refusal(&refusal, now),
                crate::cli::words::prune_verdict(&kept, older_than)
            ),
            _ => advice::refusal(&refusal, now),
        },
        Refused::Uncovered(places) => advice::uncovered(&places),
    }
}

/// The words of a preflight that failed: `(message, JSON error)`.
pub fn failure_words(
    failure: &PreflightError,
    group: &KeyGroup,
    auth: Option<&AuthProfile>,
) -> (String, Option<ErrorJson>) {
    match failure {
        PreflightError::Aws {
            error,
            signer,
            by_auth,
        } => {
            let message = match auth {
                Some(a) if *by_auth => a.explain(error, *signer),
                _ => advice::explain(
                    error,
                    &advice::Context {
                        profiles: &group.holders,
                        key_id: &group.key_id,
                        region: &group.target.region,
                        signer: *signer,
                    },
                ),
            };
            (message.clone(), Some(ErrorJson::from_aws(error, message)))
        }
        other => (other.to_string(), None),
    }
}
