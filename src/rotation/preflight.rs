//! Preflight: everything `rotate` checks about one key before anything changes. The files
//! can take the edit, AWS says who owns the key and what other keys the user has (read-only
//! calls), the plan decides, and no line the edit would miss still names the key.
//!
//! Must not: change anything, in AWS or on disk, or put the verdict in words (`cli` does).

use super::plan::{self, Decision, KeyPlan, PlanOptions, Refusal};
use super::prune;
use crate::aws::{Action, AwsError, Connector, Credentials, KeyStatus, Signer};
use crate::inventory::{self, Destination, InspectError, KeyGroup, LastUse};
use crate::profiles::scan::Mention;
use crate::profiles::{ProfileError, ProfileFiles};
use jiff::Timestamp;
use std::cell::RefCell;

/// Who makes the IAM calls of a preflight: the key itself, or an MFA session signed for with
/// it, or an administrator's auth profile (`--auth-profile`), for `--user-name`'s key or the
/// key's own user.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller<'a> {
    /// The credentials of the IAM calls when they are not the key's own.
    pub session: Option<&'a Credentials>,
    /// With `--auth-profile`: its own credentials, and the user named by `--user-name`.
    pub auth: Option<AuthCaller<'a>>,
}

#[derive(Clone, Copy, Debug)]
pub struct AuthCaller<'a> {
    pub credentials: &'a Credentials,
    pub user_name: Option<&'a str>,
}

/// The preflight verdict for one key group.
#[derive(Debug)]
pub enum Verdict {
    Ready {
        plan: KeyPlan,
        age_days: Option<i64>,
    },
    NotDue {
        user: String,
        age_days: i64,
    },
    Refused {
        user: String,
        why: Refused,
    },
    Failed(PreflightError),
}

/// Why a key whose facts were read is not rotated.
#[derive(Debug)]
pub enum Refused {
    /// The plan refused it (two Active keys, an Inactive second key, a key not Active).
    /// `prune`: with `--prune`, why the Inactive second key could not be pruned to make room.
    Plan {
        refusal: Box<Refusal>,
        prune: Option<prune::Verdict>,
    },
    /// Lines the edit would not rewrite also hold the key (see [`plan::uncovered_places`]).
    Uncovered(Vec<Mention>),
}

/// Why a key could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The group cannot be handled as the files stand (holders disagree on its secret...).
    #[error(transparent)]
    Group(#[from] inventory::GroupProblem),
    #[error(transparent)]
    Files(#[from] Box<ProfileError>),
    /// AWS refused a read. `by_auth`: the call was the auth profile's (`--auth-profile`), not
    /// the key's own.
    #[error("{error}")]
    Aws {
        error: AwsError,
        signer: Signer,
        by_auth: bool,
    },
    #[error(transparent)]
    Inspect(InspectError),
}

impl From<ProfileError> for PreflightError {
    fn from(e: ProfileError) -> Self {
        PreflightError::Files(Box::new(e))
    }
}

/// With `--prune`: whether `prune` would delete one of the user's keys (the facts, the key).
pub type Pruner<'a> = &'a dyn Fn(&inventory::KeyFacts, &str) -> prune::Verdict;

/// What checking a key group needs besides the group: the client, the files (read, never
/// written), the plan's options, `--prune`'s rule, and the time.
pub struct Preflight<'a, C> {
    pub connector: &'a C,
    pub files: &'a RefCell<ProfileFiles>,
    pub options: &'a PlanOptions,
    /// With `--prune`: the user's Inactive second key makes room when `prune` would delete it.
    pub pruner: Option<Pruner<'a>>,
    pub now: Timestamp,
}

impl<C: Connector> Preflight<'_, C> {
    /// Check one key group: see the module doc.
    pub async fn check(&self, group: &KeyGroup, caller: Caller<'_>) -> Verdict {
        self.inspect(group, caller)
            .await
            .unwrap_or_else(Verdict::Failed)
    }

    async fn inspect(
        &self,
        group: &KeyGroup,
        caller: Caller<'_>,
    ) -> Result<Verdict, PreflightError> {
        let (connector, files, now) = (self.connector, self.files, self.now);
        if let Some(problem) = &group.problem {
            return Err(problem.clone().into());
        }
        for holder in &group.holders {
            files.borrow().check_editable(holder)?;
        }
        let client = connector.connect(&match caller.session {
            Some(session) => group.target.with_credentials(session.clone()),
            None => group.target.clone(),
        });
        let inspected = match caller.auth {
            Some(AuthCaller {
                user_name: Some(user),
                ..
            }) if group.destination != Destination::Holders => {
                inventory::inspect_user(&client, user).await
            }
            Some(AuthCaller { user_name, .. }) => {
                let own = connector.connect(&group.target);
                inventory::inspect_as(&own, &client, &group.key_id, user_name, LastUse::OtherKeys)
                    .await
            }
            None => {
                inventory::inspect_as(&client, &client, &group.key_id, None, LastUse::OtherKeys)
                    .await
            }
        };
        let facts = match inspected {
            Ok(facts) => facts,
            Err(InspectError::Aws(error)) => {
                // With --auth-profile only GetCallerIdentity (for a local key) uses the key itself.
                let by_auth = caller.auth.is_some()
                    && (error.action != Action::GetCallerIdentity
                        || group.destination != Destination::Holders);
                let signer = match caller.auth {
                    Some(a) if by_auth => Signer::of(
                        caller.session.is_some_and(|s| s != a.credentials),
                        Signer::OldKey,
                    ),
                    _ => Signer::of(
                        caller.session.is_some() && caller.auth.is_none(),
                        Signer::OldKey,
                    ),
                };
                return Err(PreflightError::Aws {
                    error,
                    signer,
                    by_auth,
                });
            }
            Err(e) => return Err(PreflightError::Inspect(e)),
        };
        let held_by = |id: &str| files.borrow().holder_names(id);
        let mut options = self.options.clone();
        let mut kept = None;
        if let Some(pruner) = self.pruner
            && let Some(other) = facts
                .others(&group.key_id)
                .into_iter()
                .find(|k| k.status == KeyStatus::Inactive)
        {
            match pruner(&facts, &other.id) {
                prune::Verdict::Delete { .. } => options.delete_inactive = true,
                verdict => kept = Some(verdict),
            }
        }
        Ok(
            match plan::decide(&facts, &group.key_id, &held_by, &options, now) {
                Decision::Rotate(plan) => {
                    files.borrow().check_writable()?;
                    if group.destination == Destination::Holders {
                        let left = plan::uncovered_places(&files.borrow(), &group.key_id)?;
                        if !left.is_empty() {
                            return Ok(Verdict::Refused {
                                user: facts.user,
                                why: Refused::Uncovered(left),
                            });
                        }
                    }
                    let age_days = plan.old_created.map(|c| crate::time::age_days(now, c));
                    Verdict::Ready { plan, age_days }
                }
                Decision::NotDue { age_days } => Verdict::NotDue {
                    user: facts.user,
                    age_days,
                },
                Decision::Refuse(refusal) => Verdict::Refused {
                    user: facts.user,
                    why: Refused::Plan {
                        refusal: Box::new(refusal),
                        prune: kept,
                    },
                },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ErrorKind;
    use crate::aws::fake::{FakeIam, Fault};
    use crate::profiles::FilePaths;
    use crate::settings::Settings;

    struct World {
        iam: FakeIam,
        files: RefCell<ProfileFiles>,
        group: KeyGroup,
    }

    /// One user `alice` with one Active key, held by `[dev]` (and the extra `credentials`
    /// text), 100 days old.
    fn world(extra_credentials: impl Fn(&str) -> String) -> World {
        let iam = FakeIam::new();
        iam.add_user("alice");
        let created: Timestamp = "2026-08-01T00:00:00Z".parse().unwrap();
        let (key, secret) = iam.add_key("alice", created, KeyStatus::Active);
        let credentials = format!(
            "[dev]\naws_access_key_id = {key}\naws_secret_access_key = {}\n{}",
            secret.expose(),
            extra_credentials(&key)
        );
        let paths = FilePaths {
            credentials: "/nonexistent/credentials".into(),
            config: "/nonexistent/config".into(),
        };
        let files = ProfileFiles::from_texts(&paths, &credentials, "").unwrap();
        let settings = Settings::for_tests(&["dev"]);
        let inventory = inventory::build(&files, &settings, &["dev".to_string()]);
        let group = inventory.groups[0].clone();
        World {
            iam,
            files: RefCell::new(files),
            group,
        }
    }

    fn now() -> Timestamp {
        "2026-11-09T00:00:00Z".parse().unwrap()
    }

    fn check_world(w: &World, options: &PlanOptions) -> Verdict {
        let connector = w.iam.connector();
        let preflight = Preflight {
            connector: &connector,
            files: &w.files,
            options,
            pruner: None,
            now: now(),
        };
        crate::time::block_on(preflight.check(&w.group, Caller::default()))
    }

    #[test]
    fn a_lone_due_key_is_ready_with_its_age_and_nothing_changes() {
        let w = world(|_| String::new());
        let before = w.iam.all_keys();
        let verdict = check_world(&w, &PlanOptions::default());
        let Verdict::Ready { plan, age_days } = verdict else {
            panic!("expected a plan, got {verdict:?}")
        };
        assert_eq!(plan.user, "alice");
        assert_eq!(plan.old_key_id, w.group.key_id);
        assert_eq!(age_days, Some(100));
        assert_eq!(w.iam.all_keys(), before, "preflight changed IAM");
    }

    #[test]
    fn a_fresh_key_is_not_due() {
        let w = world(|_| String::new());
        let options = PlanOptions {
            older_than: Some(std::time::Duration::from_secs(200 * 86_400)),
            ..Default::default()
        };
        let verdict = check_world(&w, &options);
        assert!(
            matches!(&verdict, Verdict::NotDue { user, age_days: 100 } if user == "alice"),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_section_the_edit_would_miss_refuses_the_key_with_its_line() {
        let w = world(|key| format!("[my dev]\naws_access_key_id = {key}\n"));
        let verdict = check_world(&w, &PlanOptions::default());
        match verdict {
            Verdict::Refused {
                why: Refused::Uncovered(places),
                ..
            } => {
                assert_eq!(places.len(), 1, "{places:?}");
                assert_eq!(places[0].section.as_deref(), Some("my dev"));
            }
            other => panic!("expected a refusal naming [my dev], got {other:?}"),
        }
    }

    #[test]
    fn a_second_active_key_is_a_plan_refusal() {
        let w = world(|_| String::new());
        w.iam.add_key("alice", now(), KeyStatus::Active);
        let verdict = check_world(&w, &PlanOptions::default());
        match verdict {
            Verdict::Refused {
                why: Refused::Plan { refusal, .. },
                ..
            } => assert!(
                matches!(*refusal, Refusal::TwoActiveKeys { .. }),
                "{refusal:?}"
            ),
            other => panic!("expected two Active keys, got {other:?}"),
        }
    }

    #[test]
    fn an_aws_refusal_is_a_typed_failure_signed_by_the_old_key() {
        let w = world(|_| String::new());
        w.iam
            .fail(Action::ListAccessKeys, Fault::once(ErrorKind::AccessDenied));
        let verdict = check_world(&w, &PlanOptions::default());
        match verdict {
            Verdict::Failed(PreflightError::Aws {
                error,
                signer,
                by_auth,
            }) => {
                assert_eq!(error.action, Action::ListAccessKeys);
                assert_eq!(error.kind, ErrorKind::AccessDenied);
                assert_eq!(signer, Signer::OldKey);
                assert!(!by_auth);
            }
            other => panic!("expected an AWS failure, got {other:?}"),
        }
    }
}
