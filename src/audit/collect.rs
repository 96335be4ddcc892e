//! Gathering the facts of one account through [`AccountIam`]: from the API (ListUsers, then
//! per user ListAccessKeys, ListUserTags, GetAccessKeyLastUsed per key, and for users with an
//! Active key ListGroupsForUser and ListUserPolicies), or from the credential report (then
//! per user holding a key: ListUserTags and the self-service lookups).
//!
//! Users are handled [`Options::concurrency`] at a time (`buffered`: the report keeps the
//! order of ListUsers). Every AWS call goes through a [`Gate`]; `iam-keys audit` passes
//! [`Ungated`] and wraps the client itself in the run's limiter (`aws::limiter::Limited`),
//! which bounds the calls in flight and sends throttled calls again. A failed call becomes a [`Failure`]; the rest of the account
//! is still read.

use super::{Failure, KeyFacts, SelfService, UserFacts, credential_report};
use crate::aws::account::{AccountIam, ReportState};
use crate::aws::{AwsError, ErrorKind, KeyStatus};
use futures_util::StreamExt;
use jiff::Timestamp;
use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

/// Where every AWS call of the audit passes: the seam for a shared, adaptive limiter.
#[allow(async_fn_in_trait)]
pub trait Gate {
    async fn call<T>(&self, call: impl Future<Output = T>) -> T;
}

/// No limit beyond [`Options::concurrency`].
pub struct Ungated;

impl Gate for Ungated {
    async fn call<T>(&self, call: impl Future<Output = T>) -> T {
        call.await
    }
}

/// The names iam-keys gives the self-service grant it hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfServiceNames {
    /// The group (`policy --apply --group`).
    pub group: String,
}

impl SelfServiceNames {
    /// The inline policy `policy --apply --user` puts on `user`.
    pub fn inline_policy(&self, user: &str) -> String {
        crate::policy::inline_policy_name(user)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Users read at the same time (at least 1).
    pub concurrency: usize,
    /// Look for the self-service grant (`NO_SELF_SERVICE`).
    pub self_service: Option<SelfServiceNames>,
}

/// Counts for a progress line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub users_done: usize,
    pub users_total: usize,
    pub keys_done: usize,
}

/// What was read from one account.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    pub users: Vec<UserFacts>,
    pub failures: Vec<Failure>,
    /// Users in the account (with or without keys), when listed.
    pub users_listed: Option<usize>,
    /// When IAM generated the credential report, if that was the source.
    pub report_generated: Option<Timestamp>,
    /// AWS calls made.
    pub calls: usize,
}

struct Counter<'a, G> {
    gate: &'a G,
    calls: Cell<usize>,
}

impl<G: Gate> Counter<'_, G> {
    async fn call<T>(&self, call: impl Future<Output = T>) -> T {
        self.calls.set(self.calls.get() + 1);
        self.gate.call(call).await
    }
}

/// The user list of the account, or the failure that stopped it.
pub async fn list_users<A: AccountIam, G: Gate>(
    iam: &A,
    gate: &G,
) -> Result<Vec<crate::aws::account::IamUser>, AwsError> {
    gate.call(iam.list_users()).await
}

/// The facts of `users` from the API.
pub async fn from_api<A: AccountIam, G: Gate>(
    iam: &A,
    account: &str,
    users: Vec<crate::aws::account::IamUser>,
    options: &Options,
    gate: &G,
    progress: &dyn Fn(Progress),
) -> Collected {
    let counter = Counter {
        gate,
        calls: Cell::new(0),
    };
    let total = users.len();
    let done = Cell::new(Progress {
        users_total: total,
        ..Progress::default()
    });
    let results: Vec<(Option<UserFacts>, Vec<Failure>)> = futures_util::stream::iter(users)
        .map(|user| {
            let counter = &counter;
            let done = &done;
            async move {
                let result = one_user(iam, account, &user, options, counter).await;
                let mut p = done.get();
                p.users_done += 1;
                p.keys_done += result.0.as_ref().map_or(0, |u| u.keys.len());
                done.set(p);
                progress(p);
                result
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    let mut collected = Collected {
        users_listed: Some(total),
        ..Collected::default()
    };
    for (user, failures) in results {
        collected.users.extend(user);
        collected.failures.extend(failures);
    }
    collected.calls = counter.calls.get();
    collected
}

async fn one_user<A: AccountIam, G: Gate>(
    iam: &A,
    account: &str,
    user: &crate::aws::account::IamUser,
    options: &Options,
    counter: &Counter<'_, G>,
) -> (Option<UserFacts>, Vec<Failure>) {
    let mut failures = Vec::new();
    let fail = |error: AwsError| Failure {
        account: account.to_string(),
        user: Some(user.name.clone()),
        error,
    };
    // NoSuchEntity anywhere below: the user (or key) was deleted while the audit ran; it is
    // no longer there to report.
    let gone = |e: &AwsError| e.kind == ErrorKind::NoSuchEntity;
    let mut listed = match counter.call(iam.list_user_keys(&user.name)).await {
        Ok(keys) => keys,
        Err(e) if gone(&e) => return (None, failures),
        Err(e) => return (None, vec![fail(e)]),
    };
    if listed.is_empty() {
        return (None, failures);
    }
    listed.sort_by_key(|k| (k.created.is_none(), k.created));
    let mut keys = Vec::new();
    for meta in listed {
        let last_used = match counter.call(iam.key_last_used(&meta.id)).await {
            Ok(used) => Some(used),
            Err(e) if gone(&e) => continue,
            Err(e) => {
                failures.push(fail(e));
                None
            }
        };
        keys.push(KeyFacts {
            id: Some(meta.id),
            slot: 0,
            status: meta.status,
            created: meta.created,
            last_used,
        });
    }
    if keys.is_empty() {
        return (None, failures);
    }
    for (index, key) in keys.iter_mut().enumerate() {
        key.slot = (index + 1).min(u8::MAX as usize) as u8;
    }
    let mut extra_failures = Vec::new();
    let (exempt_tag, self_service) = user_extras(
        iam,
        &user.name,
        &keys,
        options,
        counter,
        &mut extra_failures,
        &fail,
    )
    .await;
    if extra_failures.iter().any(|f| gone(&f.error)) {
        return (None, failures);
    }
    failures.extend(extra_failures);
    let facts = UserFacts {
        account: account.to_string(),
        user: user.name.clone(),
        arn: user.arn.clone(),
        exempt_tag,
        self_service,
        keys,
    };
    (Some(facts), failures)
}

/// The exemption tag and the self-service grant of a user holding `keys`.
async fn user_extras<A: AccountIam, G: Gate>(
    iam: &A,
    user: &str,
    keys: &[KeyFacts],
    options: &Options,
    counter: &Counter<'_, G>,
    failures: &mut Vec<Failure>,
    fail: &dyn Fn(AwsError) -> Failure,
) -> (Option<String>, SelfService) {
    let exempt_tag = match counter.call(iam.list_user_tags(user)).await {
        Ok(tags) => tags
            .into_iter()
            .find(|(k, _)| k == super::EXEMPT_TAG)
            .map(|(_, v)| v),
        Err(e) => {
            failures.push(fail(e));
            None
        }
    };
    let has_active = keys.iter().any(|k| k.status == KeyStatus::Active);
    let self_service = match &options.self_service {
        Some(names) if has_active => match counter.call(iam.list_groups_for_user(user)).await {
            Ok(groups) if groups.contains(&names.group) => SelfService::Group,
            Ok(_) => match counter.call(iam.list_user_policies(user)).await {
                Ok(policies) if policies.contains(&names.inline_policy(user)) => {
                    SelfService::Inline
                }
                Ok(_) => SelfService::Missing,
                Err(e) => {
                    failures.push(fail(e));
                    SelfService::NotChecked
                }
            },
            Err(e) => {
                failures.push(fail(e));
                SelfService::NotChecked
            }
        },
        _ => SelfService::NotChecked,
    };
    (exempt_tag, self_service)
}

/// How long to wait for a credential report in progress: 1 s doubling to 8 s, at most
/// `REPORT_WAIT` in all.
pub const REPORT_WAIT: Duration = Duration::from_secs(120);

/// The facts from the credential report: generate it, wait with backoff while it is in
/// progress, read it; then the exemption tag and self-service grant of each user holding a key.
/// `sleep` waits (a real timer, or nothing in tests).
pub async fn from_report<A, G, S, F>(
    iam: &A,
    account: &str,
    options: &Options,
    gate: &G,
    sleep: S,
    progress: &dyn Fn(Progress),
) -> Collected
where
    A: AccountIam,
    G: Gate,
    S: Fn(Duration) -> F,
    F: Future<Output = ()>,
{
    let counter = Counter {
        gate,
        calls: Cell::new(0),
    };
    let account_failure = |error: AwsError| Failure {
        account: account.to_string(),
        user: None,
        error,
    };
    let mut collected = Collected::default();
    let mut waited = Duration::ZERO;
    let mut backoff = Duration::from_secs(1);
    let report = loop {
        match counter.call(iam.generate_credential_report()).await {
            Err(e) => {
                collected.failures.push(account_failure(e));
                collected.calls = counter.calls.get();
                return collected;
            }
            Ok(ReportState::Complete) => match counter.call(iam.get_credential_report()).await {
                Ok(Some(report)) => break report,
                Ok(None) => {}
                Err(e) => {
                    collected.failures.push(account_failure(e));
                    collected.calls = counter.calls.get();
                    return collected;
                }
            },
            Ok(ReportState::Started | ReportState::InProgress) => {}
        }
        if waited >= REPORT_WAIT {
            let e = AwsError::new(
                crate::aws::Action::Account(
                    crate::aws::account::AccountAction::GetCredentialReport,
                ),
                crate::aws::ErrorKind::Timeout,
            )
            .with_message(format!(
                "the credential report was not ready after {} s",
                waited.as_secs()
            ));
            collected.failures.push(account_failure(e));
            collected.calls = counter.calls.get();
            return collected;
        }
        sleep(backoff).await;
        waited += backoff;
        backoff = (backoff * 2).min(Duration::from_secs(8));
    };
    collected.report_generated = report.generated;
    let users = match credential_report::read(&report.csv, account) {
        Ok(users) => users,
        Err(e) => {
            let e = AwsError::new(
                crate::aws::Action::Account(
                    crate::aws::account::AccountAction::GetCredentialReport,
                ),
                crate::aws::ErrorKind::Other,
            )
            .with_message(e.to_string());
            collected.failures.push(account_failure(e));
            collected.calls = counter.calls.get();
            return collected;
        }
    };
    let total = users.len();
    let done = Cell::new(Progress {
        users_total: total,
        ..Progress::default()
    });
    let results: Vec<(UserFacts, Vec<Failure>)> = futures_util::stream::iter(users)
        .map(|mut facts| {
            let counter = &counter;
            let done = &done;
            async move {
                let mut failures = Vec::new();
                let name = facts.user.clone();
                let fail = |error: AwsError| Failure {
                    account: account.to_string(),
                    user: Some(name.clone()),
                    error,
                };
                let (tag, self_service) = user_extras(
                    iam,
                    &facts.user,
                    &facts.keys,
                    options,
                    counter,
                    &mut failures,
                    &fail,
                )
                .await;
                facts.exempt_tag = tag;
                facts.self_service = self_service;
                let mut p = done.get();
                p.users_done += 1;
                p.keys_done += facts.keys.len();
                done.set(p);
                progress(p);
                (facts, failures)
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    for (user, failures) in results {
        collected.users.push(user);
        collected.failures.extend(failures);
    }
    collected.calls = counter.calls.get();
    collected
}

#[cfg(test)]
mod tests;
