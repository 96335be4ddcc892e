//! The core's values in words: the steps of a rotation, why one failed, why a recovery
//! stopped, what a save did to the files, and an error with its causes. The core (`rotation`,
//! `inventory`) returns these as data; this is where they become sentences.
//!
//! Must not: decide anything. Every function here only describes.

use crate::aws::{KeyStatus, LastUsed};
use crate::rotation::exec::{Cleanup, Failure, KeyOutcome, Step};
use crate::rotation::hooks::{Gate, GateResult};
use crate::rotation::plan::Retire;
use crate::rotation::recover::{CannotUndo, RecoverError};
use crate::secret::mask_key_id;
use std::fmt;

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Journal => "writing the recovery journal",
            Step::MakeRoom => "deleting the Inactive second key",
            Step::Create => "creating the new key",
            Step::Verify => "verifying the new key",
            Step::Verified => "the new key answered",
            Step::WaitForIam => "waiting for IAM to accept the new key",
            Step::Persist => "writing the files",
            Step::Gates => "updating the hooks and env files",
            Step::Retire => "retiring the old key",
            Step::Done => "done",
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Aws { error, .. } => write!(f, "{error}"),
            // These are the end of the line (shown as one message, not as an error chain):
            // say why, too (`No space left on device`, `Operation not permitted`).
            Failure::Files(e) => write_with_causes(f, e.as_ref()),
            Failure::Journal(e) => write_with_causes(f, e),
            Failure::VerifyTimeout { waited, last } => {
                write!(f, "the new key did not work within {}s", waited.as_secs())?;
                if let Some(e) = last {
                    write!(f, " (last answer: {e})")?;
                }
                write!(
                    f,
                    "; IAM may be slow today: try again later or raise --verify-timeout"
                )
            }
            Failure::WrongIdentity { arn } => write!(
                f,
                "the new key authenticates as {arn}, not as the key's user"
            ),
            Failure::Interrupted => write!(f, "interrupted"),
            Failure::StillHeld(places) => write!(
                f,
                "the old key is still named by {}; it stays Active until no line of either file holds it",
                places
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Failure::InactiveKeyChanged { key_id, status } => write!(
                f,
                "the key {} that was Inactive when planned is now {}; it is left alone",
                mask_key_id(key_id),
                status.as_ref().map(KeyStatus::as_str).unwrap_or("gone")
            ),
            Failure::Gates(failed) => {
                for (i, (gate, result)) in failed.iter().enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{}", describe_gate_failure(gate, result))?;
                }
                write!(
                    f,
                    ". The files hold the new key; fix {}, then run `iam-keys recover`: it runs only the hooks and \
                     env files that have not passed, then retires the old key",
                    if failed.len() == 1 { "it" } else { "them" }
                )
            }
        }
    }
}

/// `hook `cmd` (profile dev)`, `env file /p/.env`.
pub fn describe_gate(gate: &Gate) -> String {
    let what = match gate {
        Gate::Hook { command, .. } => format!("hook `{command}`"),
        Gate::EnvFile { path, .. } => format!("env file {}", path.display()),
    };
    match gate.profile() {
        Some(p) => format!("{what} (profile {p})"),
        None => what,
    }
}

/// `hook `cmd` (profile dev) exited with status 7`, `env file /p/.env: why`.
pub fn describe_gate_failure(gate: &Gate, result: &GateResult) -> String {
    let what = describe_gate(gate);
    match result {
        GateResult::Passed => format!("{what} passed"),
        GateResult::Exited {
            code: Some(code), ..
        } => format!("{what} exited with status {code}"),
        GateResult::Exited {
            signal: Some(signal),
            ..
        } => format!("{what} was killed by signal {signal}"),
        GateResult::Exited { .. } => format!("{what} ended without an exit status"),
        GateResult::TimedOut { after } => format!(
            "{what} did not finish within {}s and was killed (raise --hook-timeout if it needs longer)",
            after.as_secs_f64()
        ),
        GateResult::Error(why) => match gate {
            Gate::Hook { .. } => format!("{what} failed: {why}"),
            // The dotenv error names the file itself.
            Gate::EnvFile { .. } => why.clone(),
        },
    }
}

/// `error`, then each of its sources, as `error (cause: source: source)`.
fn write_with_causes(
    f: &mut fmt::Formatter<'_>,
    error: &(dyn std::error::Error + 'static),
) -> fmt::Result {
    write!(f, "{error}")?;
    let rest: Vec<String> = crate::aws::error::causes(error)
        .skip(1)
        .map(|c| c.to_string())
        .collect();
    if !rest.is_empty() {
        write!(f, " (cause: {})", rest.join(": "))?;
    }
    Ok(())
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Aws { error, .. } => write!(f, "{error}"),
            RecoverError::Files(e) => write_with_causes(f, e.as_ref()),
            RecoverError::Verify(e) | RecoverError::Gates(e) => write!(f, "{e}"),
            RecoverError::CannotUndo(CannotUndo::OldKeyRetired { old_key_id, status }) => write!(
                f,
                "the old key {} is already {}; finish the rotation instead (`iam-keys recover`)",
                mask_key_id(old_key_id),
                status.as_ref().map(KeyStatus::as_str).unwrap_or("deleted")
            ),
            RecoverError::CannotUndo(CannotUndo::OldSecretUnknown {
                new_key_id,
                profiles,
            }) => write!(
                f,
                "the new key {} is already in profile {}, and the old key's secret was never on this \
                 machine to put back; finish the rotation instead (`iam-keys recover`)",
                mask_key_id(new_key_id),
                profiles.join(", ")
            ),
            RecoverError::CannotUndo(CannotUndo::GatesTookNewKey { gates, new_key_id }) => write!(
                f,
                "{} already took the new key {}; undoing would delete the key it holds. Finish the \
                 rotation instead (`iam-keys recover`)",
                gates
                    .iter()
                    .map(describe_gate)
                    .collect::<Vec<_>>()
                    .join(", "),
                mask_key_id(new_key_id)
            ),
            RecoverError::Cleanup(Cleanup::Unresolved { candidates, .. })
                if candidates.len() > 1 =>
            {
                write!(
                    f,
                    "CreateAccessKey's answer was lost, and more than one key of the user ({}) was made in its \
                     window by no one iam-keys knows; none is touched. Delete the one that is not in use by hand",
                    candidates
                        .iter()
                        .map(|c| mask_key_id(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            RecoverError::Cleanup(Cleanup::Unresolved { error: Some(e), .. }) => write!(
                f,
                "could not list the user's keys to look for a key made by a lost CreateAccessKey answer: {e}"
            ),
            RecoverError::Cleanup(Cleanup::NewKeyLeft { key_id, error }) => {
                write!(f, "could not delete the key {}", mask_key_id(key_id))?;
                if let Some(e) = error {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
            RecoverError::Cleanup(c) => write!(f, "could not clean up: {c:?}"),
            RecoverError::PlacesChanged {
                profiles,
                paths,
                undo,
            } => write!(
                f,
                "profile {} in {} held the key when the rotation started and holds neither the old nor the new key \
                 now; {}. Put the profile back (the journal, which is kept, holds both keys), then run {} again",
                profiles.join(", "),
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and "),
                if *undo {
                    "undoing would delete the new key while no file holds the old one, so nothing was changed"
                } else {
                    "the new key would reach no one, so the old key stays Active"
                },
                if *undo {
                    "`iam-keys recover --undo`"
                } else {
                    "`iam-keys recover`"
                }
            ),
            RecoverError::StillHeld(places) => write!(
                f,
                "{} still name the key; it is not retired or deleted while they do. Edit those lines, then run \
                 `iam-keys recover` again",
                places
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// What the save did to the files that the user should be told, beyond the key change:
/// a mode tightened to 0600, an edit made meanwhile by another program that the new key
/// was written into. Carries no secret.
pub fn save_notes(outcome: &KeyOutcome) -> Vec<String> {
    let KeyOutcome::Rotated { saved, .. } = outcome else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    for file in &saved.files {
        if let Some((from, to)) = file.mode_tightened {
            notes.push(format!(
                "{} {}: mode tightened from {from:04o} to {to:04o}, as it holds secret keys",
                file.kind,
                file.path.display()
            ));
        }
        if let Some(note) = file.in_place_note() {
            notes.push(note);
        }
        if file.reapplied_on_newer_content {
            notes.push(format!(
                "{} {} was changed by another program during the rotation; the new key was written into its newer content",
                file.kind,
                file.path.display()
            ));
        }
    }
    notes
}

/// `error: cause: cause`, on one line.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    crate::aws::error::causes(error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// What happened to the old key: `deactivated` or `deleted`.
pub fn retire_word(r: Retire) -> &'static str {
    match r {
        Retire::Deactivate => "deactivated",
        Retire::Delete => "deleted",
    }
}

/// When a key was last used: "2026-11-20 (sts, us-east-1)", "never" (IAM has no use on
/// record), or "unknown" (no answer about it).
pub fn last_used_text(u: Option<&LastUsed>) -> String {
    match u {
        None => "unknown".to_string(),
        Some(LastUsed { date: None, .. }) => "never".to_string(),
        Some(LastUsed {
            date: Some(d),
            service,
            region,
        }) => {
            let day = d.strftime("%Y-%m-%d").to_string();
            match (service, region) {
                (Some(s), Some(r)) => format!("{day} ({s}, {r})"),
                (Some(s), None) => format!("{day} ({s})"),
                _ => day,
            }
        }
    }
}

/// The user-facing reason for a verdict.
pub fn prune_verdict(
    verdict: &crate::rotation::prune::Verdict,
    older_than: &crate::cli::duration::DurationArg,
) -> String {
    use crate::rotation::prune::{Keep, Verdict};
    let day = |t: &jiff::Timestamp| crate::time::rfc3339(*t)[..10].to_string();
    match verdict {
        Verdict::Delete { since, recorded } => {
            if *recorded {
                format!(
                    "retired by iam-keys on {}, unused since, more than {} ago",
                    day(since),
                    older_than.text
                )
            } else {
                format!(
                    "no record here (--unrecorded): Inactive, last created or used on {}, more than {} ago",
                    day(since),
                    older_than.text
                )
            }
        }
        Verdict::Keep(keep) => match keep {
            Keep::Active => "Active: prune never deletes an Active key".into(),
            Keep::OtherStatus(s) => format!("its status is {s}, not Inactive"),
            Keep::HeldLocally(places) => {
                format!("a profile file still names it: {}", places.join(", "))
            }
            Keep::InJournal => {
                "an interrupted rotation's journal names it: run `iam-keys recover` first".into()
            }
            Keep::LastUseUnknown => {
                "its last use could not be read (GetAccessKeyLastUsed refused), so it cannot be shown unused".into()
            }
            Keep::UsedSinceRetired { used, retired } => format!(
                "used on {} after iam-keys retired it on {}: someone turned it back on; delete it by hand once you know who uses it",
                day(used),
                day(retired)
            ),
            Keep::TooRecent {
                since,
                after,
                recorded: true,
            } => format!(
                "retired by iam-keys on {}, prune after {}",
                day(since),
                day(after)
            ),
            Keep::TooRecent { since, after, .. } => format!(
                "no record here; last created or used on {}, prune after {}",
                day(since),
                day(after)
            ),
            Keep::NoRecord => "no record that iam-keys retired it on this machine (retired on another machine or by hand): \
                               pass --unrecorded to judge it by its last use"
                .into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_use_reads_never_for_unused_keys() {
        assert_eq!(last_used_text(Some(&LastUsed::default())), "never");
        let used = LastUsed {
            date: Some("2026-11-20T08:00:00Z".parse().unwrap()),
            service: Some("sts".into()),
            region: Some("us-east-1".into()),
        };
        assert_eq!(last_used_text(Some(&used)), "2026-11-20 (sts, us-east-1)");
    }

    #[test]
    fn a_changed_place_says_what_to_put_back_and_which_way_out_works() {
        let changed = |undo| RecoverError::PlacesChanged {
            profiles: vec!["dev".into()],
            paths: vec!["/home/a/.aws/credentials".into()],
            undo,
        };
        let finish = changed(false).to_string();
        assert!(
            finish.contains("profile dev in /home/a/.aws/credentials"),
            "{finish}"
        );
        assert!(finish.contains("Put the profile back"), "{finish}");
        assert!(finish.contains("the old key stays Active"), "{finish}");
        assert!(finish.ends_with("run `iam-keys recover` again"), "{finish}");
        let undo = changed(true).to_string();
        assert!(undo.contains("nothing was changed"), "{undo}");
        assert!(
            undo.ends_with("run `iam-keys recover --undo` again"),
            "{undo}"
        );
        let retired = RecoverError::CannotUndo(CannotUndo::OldKeyRetired {
            old_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            status: None,
        })
        .to_string();
        assert!(
            retired.contains("AKIA…MPLE is already deleted"),
            "{retired}"
        );
    }
}
