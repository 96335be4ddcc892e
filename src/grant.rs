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
mod tests;
