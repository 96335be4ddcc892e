//! Handing out the self-service policy (`iam-keys policy --apply`): read what IAM has,
//! change only what differs, and say each change as a [`Change`] value.
//!
//! - [`to_group`]: one managed policy (`${aws:username}`) attached to a group, created if
//!   missing; a changed document becomes a new default version, and at IAM's limit of five
//!   versions the oldest non-default one is deleted first; optionally every user holding an
//!   access key is added to the group.
//! - [`to_users`]: an inline policy on each user, with the user's literal ARN, named
//!   [`crate::policy::inline_policy_name`].
//!
//! Both are idempotent: a second run finds everything in place and changes nothing. With
//! `dry_run` nothing is written and the changes are those a run would make. Documents are
//! compared as JSON values (IAM returns them URL-encoded and may reformat them).
//!
//! CreatePolicy, CreatePolicyVersion and CreateGroup are not safe to re-send: after a failure
//! the state is read again, and a create that reached IAM counts as done; otherwise the error
//! stands. Nothing is ever re-sent blindly.
//!
//! Must not: print, or touch any policy, group or user beyond the ones named.

use crate::aws::AwsError;
use crate::aws::account::AccountIam;
use crate::policy::{PolicyOptions, inline_policy_name, self_service_policy};
use serde_json::Value;

/// IAM keeps at most this many versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

/// One change to IAM, made (or, in a dry run, to be made).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    CreatePolicy {
        name: String,
        arn: String,
    },
    DeleteVersion {
        arn: String,
        version: String,
    },
    NewDefaultVersion {
        arn: String,
        version: Option<String>,
    },
    CreateGroup {
        name: String,
    },
    AttachPolicy {
        group: String,
        arn: String,
    },
    AddToGroup {
        group: String,
        user: String,
    },
    PutInlinePolicy {
        user: String,
        name: String,
        replaces: bool,
    },
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub changes: Vec<Change>,
    /// Things found already in place, for the report: `policy`, `group`, `attachment`,
    /// `member USER`, `inline USER`.
    pub in_place: Vec<String>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("{0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("IAM returned a policy document that is not JSON: {0}")]
    Document(String),
}

fn same_document(a: &str, b: &Value) -> Result<bool, GrantError> {
    let a: Value = serde_json::from_str(a).map_err(|e| GrantError::Document(e.to_string()))?;
    Ok(&a == b)
}

/// The group way.
pub async fn to_group<A: AccountIam>(
    iam: &A,
    group: &str,
    document_options: &PolicyOptions,
    add_users_with_keys: bool,
    dry_run: bool,
) -> Result<Outcome, GrantError> {
    let mut out = Outcome::default();
    let identity = iam.caller_identity().await?;
    let options = PolicyOptions {
        account: Some(identity.account.clone()),
        user: None,
        ..document_options.clone()
    };
    let document = self_service_policy(&options)?;
    let text = document.to_string();
    let name = group;
    let arn = format!(
        "arn:{}:iam::{}:policy/{name}",
        identity.partition(),
        identity.account
    );

    match iam.get_policy(&arn).await? {
        None => {
            out.changes.push(Change::CreatePolicy {
                name: name.to_string(),
                arn: arn.clone(),
            });
            if !dry_run
                && let Err(e) = iam
                    .create_policy(
                        name,
                        &text,
                        "iam-keys: each user rotates only their own access keys",
                    )
                    .await
            {
                // The answer may have been lost: is the policy there now?
                if iam.get_policy(&arn).await?.is_none() {
                    return Err(e.into());
                }
            }
        }
        Some(policy) => {
            let current = match &policy.default_version {
                Some(v) => Some(iam.get_policy_version(&arn, v).await?),
                None => None,
            };
            let up_to_date = match &current {
                Some(doc) => same_document(doc, &document)?,
                None => false,
            };
            if up_to_date {
                out.in_place.push("policy".into());
            } else {
                let versions = iam.list_policy_versions(&arn).await?;
                if versions.len() >= MAX_POLICY_VERSIONS {
                    let oldest = versions
                        .iter()
                        .filter(|v| !v.is_default)
                        .min_by_key(|v| (v.created, version_number(&v.id)));
                    if let Some(oldest) = oldest {
                        out.changes.push(Change::DeleteVersion {
                            arn: arn.clone(),
                            version: oldest.id.clone(),
                        });
                        if !dry_run {
                            iam.delete_policy_version(&arn, &oldest.id).await?;
                        }
                    }
                }
                let mut version = None;
                if !dry_run {
                    match iam.create_policy_version(&arn, &text).await {
                        Ok(v) => version = Some(v),
                        Err(e) => {
                            // Reconcile: is our document the default now?
                            let now = iam.get_policy(&arn).await?;
                            let default = now.and_then(|p| p.default_version);
                            let ours = match &default {
                                Some(v) => same_document(
                                    &iam.get_policy_version(&arn, v).await?,
                                    &document,
                                )?,
                                None => false,
                            };
                            if !ours {
                                return Err(e.into());
                            }
                            version = default;
                        }
                    }
                }
                out.changes.push(Change::NewDefaultVersion {
                    arn: arn.clone(),
                    version,
                });
            }
        }
    }

    let group_exists = iam.get_group(group).await?.is_some();
    if group_exists {
        out.in_place.push("group".into());
    } else {
        out.changes.push(Change::CreateGroup {
            name: group.to_string(),
        });
        if !dry_run
            && let Err(e) = iam.create_group(group).await
            && iam.get_group(group).await?.is_none()
        {
            return Err(e.into());
        }
    }
    let attached = group_exists
        && iam
            .list_attached_group_policies(group)
            .await?
            .contains(&arn);
    if attached {
        out.in_place.push("attachment".into());
    } else {
        out.changes.push(Change::AttachPolicy {
            group: group.to_string(),
            arn: arn.clone(),
        });
        if !dry_run {
            iam.attach_group_policy(group, &arn).await?;
        }
    }
    if add_users_with_keys {
        for user in users_with_keys(iam).await? {
            // A user deleted meanwhile (NoSuchEntity) is skipped.
            let member = match group_exists {
                false => false,
                true => match iam.list_groups_for_user(&user).await {
                    Ok(groups) => groups.iter().any(|g| g == group),
                    Err(e) if e.kind == crate::aws::ErrorKind::NoSuchEntity => continue,
                    Err(e) => return Err(e.into()),
                },
            };
            if member {
                out.in_place.push(format!("member {user}"));
                continue;
            }
            out.changes.push(Change::AddToGroup {
                group: group.to_string(),
                user: user.clone(),
            });
            if !dry_run {
                match iam.add_user_to_group(group, &user).await {
                    Err(e) if e.kind == crate::aws::ErrorKind::NoSuchEntity => {
                        out.changes.pop();
                    }
                    other => other?,
                }
            }
        }
    }
    Ok(out)
}

/// The inline way: one policy per user, with the user's literal ARN.
pub async fn to_users<A: AccountIam>(
    iam: &A,
    users: &[String],
    all_users_with_keys: bool,
    document_options: &PolicyOptions,
    dry_run: bool,
) -> Result<Outcome, GrantError> {
    let mut out = Outcome::default();
    let identity = iam.caller_identity().await?;
    let users = if all_users_with_keys {
        users_with_keys(iam).await?
    } else {
        users.to_vec()
    };
    for user in users {
        let options = PolicyOptions {
            account: Some(identity.account.clone()),
            user: Some(user.clone()),
            ..document_options.clone()
        };
        let document = self_service_policy(&options)?;
        let name = inline_policy_name(&user);
        let current = iam.get_user_policy(&user, &name).await?;
        if let Some(current) = &current
            && same_document(current, &document)?
        {
            out.in_place.push(format!("inline {user}"));
            continue;
        }
        out.changes.push(Change::PutInlinePolicy {
            user: user.clone(),
            name: name.clone(),
            replaces: current.is_some(),
        });
        if !dry_run {
            iam.put_user_policy(&user, &name, &document.to_string())
                .await?;
        }
    }
    Ok(out)
}

/// The users holding at least one access key, in ListUsers order.
pub async fn users_with_keys<A: AccountIam>(iam: &A) -> Result<Vec<String>, AwsError> {
    let mut out = Vec::new();
    for user in iam.list_users().await? {
        match iam.list_user_keys(&user.name).await {
            Ok(keys) if !keys.is_empty() => out.push(user.name),
            Ok(_) => {}
            Err(e) if e.kind == crate::aws::ErrorKind::NoSuchEntity => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ErrorKind;
    use crate::aws::KeyStatus;
    use crate::aws::account::AccountAction;
    use crate::aws::fake::account::{FakeAccount, FakeUser, fake_key};
    use crate::policy::Partition;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn options() -> PolicyOptions {
        PolicyOptions {
            account: None,
            user: None,
            partition: Partition::Aws,
            mfa: false,
            with_password: false,
        }
    }

    fn account() -> FakeAccount {
        let fake = FakeAccount::new("111122223333");
        let now = jiff::Timestamp::now();
        fake.add_user(
            "alice",
            FakeUser {
                keys: vec![fake_key(
                    "AKIAALICE00000000001",
                    KeyStatus::Active,
                    now,
                    None,
                )],
                ..FakeUser::default()
            },
        );
        fake.add_user("nokey", FakeUser::default());
        fake
    }

    const ARN: &str = "arn:aws:iam::111122223333:policy/iam-keys-self-service";

    #[test]
    fn the_group_way_creates_everything_once_and_then_changes_nothing() {
        let fake = account();
        let first = run(to_group(
            &fake,
            "iam-keys-self-service",
            &options(),
            true,
            false,
        ))
        .unwrap();
        assert_eq!(
            first.changes,
            vec![
                Change::CreatePolicy {
                    name: "iam-keys-self-service".into(),
                    arn: ARN.into()
                },
                Change::CreateGroup {
                    name: "iam-keys-self-service".into()
                },
                Change::AttachPolicy {
                    group: "iam-keys-self-service".into(),
                    arn: ARN.into()
                },
                Change::AddToGroup {
                    group: "iam-keys-self-service".into(),
                    user: "alice".into()
                },
            ]
        );
        let writes = fake.writes().len();
        let second = run(to_group(
            &fake,
            "iam-keys-self-service",
            &options(),
            true,
            false,
        ))
        .unwrap();
        assert!(second.changes.is_empty(), "{:?}", second.changes);
        assert_eq!(
            second.in_place,
            ["policy", "group", "attachment", "member alice"]
        );
        assert_eq!(fake.writes().len(), writes, "no write on the second run");
        // The document has the account and ${aws:username}.
        let doc = fake.state.borrow().policies[ARN].versions[0].1.clone();
        assert!(
            doc.contains("arn:aws:iam::111122223333:user/${aws:username}"),
            "{doc}"
        );
    }

    #[test]
    fn a_dry_run_lists_the_changes_and_writes_nothing() {
        let fake = account();
        let planned = run(to_group(&fake, "g", &options(), true, true)).unwrap();
        assert_eq!(planned.changes.len(), 4);
        assert!(fake.writes().is_empty());
        let inline = run(to_users(&fake, &[], true, &options(), true)).unwrap();
        assert_eq!(inline.changes.len(), 1);
        assert!(fake.writes().is_empty());
    }

    #[test]
    fn a_changed_document_is_a_new_default_version_and_the_oldest_goes_at_five() {
        let fake = account();
        run(to_group(
            &fake,
            "iam-keys-self-service",
            &options(),
            false,
            false,
        ))
        .unwrap();
        for round in 0..5 {
            let mfa = PolicyOptions {
                mfa: round % 2 == 0,
                ..options()
            };
            let out = run(to_group(&fake, "iam-keys-self-service", &mfa, false, false)).unwrap();
            assert!(
                out.changes
                    .iter()
                    .any(|c| matches!(c, Change::NewDefaultVersion { .. })),
                "{out:?}"
            );
        }
        let versions: Vec<String> = fake.state.borrow().policies[ARN]
            .versions
            .iter()
            .map(|v| v.0.clone())
            .collect();
        assert_eq!(versions, ["v2", "v3", "v4", "v5", "v6"]);
        assert!(
            fake.writes()
                .contains(&"DeletePolicyVersion v1".to_string())
        );
    }

    #[test]
    fn a_lost_create_answer_is_reconciled_by_reading_not_by_sending_again() {
        let fake = account();
        fake.state.borrow_mut().lost_answers =
            vec![AccountAction::CreatePolicy, AccountAction::CreateGroup];
        let out = run(to_group(&fake, "g", &options(), false, false)).unwrap();
        assert_eq!(out.changes.len(), 3, "{out:?}");
        assert_eq!(fake.calls(AccountAction::CreatePolicy), 1);
        assert_eq!(fake.calls(AccountAction::CreateGroup), 1);
        assert_eq!(fake.state.borrow().groups["g"].len(), 1, "attached");

        // A new version whose answer is lost: it is the default now, so it is done.
        let mfa = PolicyOptions {
            mfa: true,
            ..options()
        };
        fake.state.borrow_mut().lost_answers = vec![AccountAction::CreatePolicyVersion];
        let out = run(to_group(&fake, "g", &mfa, false, false)).unwrap();
        assert_eq!(fake.calls(AccountAction::CreatePolicyVersion), 1);
        assert!(out.changes.contains(&Change::NewDefaultVersion {
            arn: "arn:aws:iam::111122223333:policy/g".into(),
            version: Some("v2".into())
        }));

        // A create that did not reach IAM: the error stands, sent once.
        let fake = account();
        fake.fail(
            AccountAction::CreatePolicy,
            ErrorKind::ServiceUnavailable,
            "ServiceUnavailable",
        );
        assert!(run(to_group(&fake, "g", &options(), false, false)).is_err());
        assert_eq!(fake.calls(AccountAction::CreatePolicy), 1);
    }

    #[test]
    fn the_inline_way_puts_one_policy_per_user_with_the_literal_arn() {
        let fake = account();
        let out = run(to_users(&fake, &["alice".into()], false, &options(), false)).unwrap();
        assert_eq!(
            out.changes,
            vec![Change::PutInlinePolicy {
                user: "alice".into(),
                name: "iam-keys-self-service-alice".into(),
                replaces: false
            }]
        );
        let doc = fake.state.borrow().users["alice"].inline["iam-keys-self-service-alice"].clone();
        assert!(
            doc.contains("arn:aws:iam::111122223333:user/alice"),
            "{doc}"
        );
        let again = run(to_users(&fake, &[], true, &options(), false)).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.in_place, ["inline alice"]);
        let mfa = PolicyOptions {
            mfa: true,
            ..options()
        };
        let changed = run(to_users(&fake, &["alice".into()], false, &mfa, false)).unwrap();
        assert!(matches!(
            changed.changes[0],
            Change::PutInlinePolicy { replaces: true, .. }
        ));
    }
}
