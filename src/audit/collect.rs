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
mod tests {
    use super::*;
    use crate::audit::{Finding, Thresholds, evaluate};
    use crate::aws::account::AccountAction;
    use crate::aws::fake_account::{FakeAccount, FakeUser, fake_key};
    use crate::aws::{ErrorKind, KeyStatus};

    fn now() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn days_ago(d: i64) -> Timestamp {
        now()
            .checked_sub(jiff::SignedDuration::from_hours(24 * d))
            .unwrap()
    }

    fn options() -> Options {
        Options {
            concurrency: 3,
            self_service: Some(SelfServiceNames {
                group: crate::policy::SELF_SERVICE_NAME.into(),
            }),
        }
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// An account of 0, 1 and 2 keys, Active and Inactive, used and never used, exempt.
    fn account() -> FakeAccount {
        let fake = FakeAccount::new("111122223333");
        fake.add_user("nokeys", FakeUser::default());
        fake.add_user(
            "one",
            FakeUser {
                keys: vec![fake_key(
                    "AKIAONE0000000000001",
                    KeyStatus::Active,
                    days_ago(10),
                    Some(days_ago(1)),
                )],
                groups: vec!["iam-keys-self-service".into()],
                ..FakeUser::default()
            },
        );
        fake.add_user(
            "two",
            FakeUser {
                keys: vec![
                    fake_key("AKIATWO0000000000002", KeyStatus::Active, days_ago(5), None),
                    fake_key(
                        "AKIATWO0000000000001",
                        KeyStatus::Active,
                        days_ago(200),
                        None,
                    ),
                ],
                ..FakeUser::default()
            },
        );
        fake.add_user(
            "exempt",
            FakeUser {
                tags: vec![(
                    "iam-keys:exempt".into(),
                    "vendor sync until=2027-01-01".into(),
                )],
                keys: vec![fake_key(
                    "AKIAEXEMPT0000000001",
                    KeyStatus::Inactive,
                    days_ago(300),
                    Some(days_ago(250)),
                )],
                ..FakeUser::default()
            },
        );
        fake
    }

    #[test]
    fn every_user_is_read_across_pages_and_slots_follow_creation() {
        let fake = account();
        let seen = std::cell::RefCell::new(Vec::new());
        let collected = run(async {
            let users = list_users(&fake, &Ungated).await.unwrap();
            from_api(&fake, "111122223333", users, &options(), &Ungated, &|p| {
                seen.borrow_mut().push(p)
            })
            .await
        });
        assert!(collected.failures.is_empty(), "{:?}", collected.failures);
        // 4 users in pages of 2: two ListUsers pages.
        assert_eq!(fake.calls(AccountAction::ListUsers), 2);
        assert_eq!(collected.users_listed, Some(4));
        let names: Vec<&str> = collected.users.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(
            names,
            ["exempt", "one", "two"],
            "no row for a user without keys"
        );
        let two = &collected.users[2];
        assert_eq!(two.keys[0].id.as_deref(), Some("AKIATWO0000000000001"));
        assert_eq!(two.keys[0].slot, 1);
        assert_eq!(two.self_service, SelfService::Missing);
        assert_eq!(collected.users[1].self_service, SelfService::Group);
        // No self-service lookup for a user whose only key is Inactive.
        assert_eq!(collected.users[0].self_service, SelfService::NotChecked);
        let last = *seen.borrow().last().unwrap();
        assert_eq!(
            last,
            Progress {
                users_done: 4,
                users_total: 4,
                keys_done: 4
            }
        );

        let rows = evaluate(&collected.users, &Thresholds::default(), now());
        let findings: Vec<(&str, u8, Vec<Finding>)> = rows
            .iter()
            .map(|r| (r.user.as_str(), r.key.slot, r.findings.clone()))
            .collect();
        assert_eq!(
            findings,
            vec![
                ("exempt", 1, vec![Finding::Exempt]),
                ("one", 1, vec![Finding::Ok]),
                (
                    "two",
                    1,
                    vec![
                        Finding::Rotate,
                        Finding::NeverUsed,
                        Finding::TwoActive,
                        Finding::NoSelfService
                    ]
                ),
                ("two", 2, vec![Finding::TwoActive, Finding::NoSelfService]),
            ]
        );
        assert_eq!(rows[0].exempted, vec![Finding::Inactive]);
    }

    #[test]
    fn a_refused_call_becomes_a_failure_and_the_rest_is_still_read() {
        let fake = account();
        fake.state.borrow_mut().deny_list_keys.push("two".into());
        fake.fail(
            AccountAction::ListUserTags,
            ErrorKind::AccessDenied,
            "AccessDenied",
        );
        let collected = run(async {
            let users = list_users(&fake, &Ungated).await.unwrap();
            from_api(&fake, "111122223333", users, &options(), &Ungated, &|_| {}).await
        });
        let failed: Vec<(Option<&str>, String)> = collected
            .failures
            .iter()
            .map(|f| (f.user.as_deref(), f.error.action.to_string()))
            .collect();
        assert_eq!(
            failed,
            vec![
                (Some("exempt"), "ListUserTags".to_string()),
                (Some("two"), "ListAccessKeys".to_string())
            ]
        );
        let names: Vec<&str> = collected.users.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(names, ["exempt", "one"]);
    }

    #[test]
    fn a_user_deleted_while_the_audit_runs_is_left_out_without_an_error() {
        let fake = account();
        // The first user with keys ("exempt") is gone by the time its tags are read.
        fake.fail(
            AccountAction::ListUserTags,
            ErrorKind::NoSuchEntity,
            "NoSuchEntity",
        );
        let collected = run(async {
            let users = list_users(&fake, &Ungated).await.unwrap();
            from_api(&fake, "111122223333", users, &options(), &Ungated, &|_| {}).await
        });
        assert!(collected.failures.is_empty(), "{:?}", collected.failures);
        let names: Vec<&str> = collected.users.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
    }

    #[test]
    fn listing_users_refused_is_the_error_of_the_whole_account() {
        let fake = account();
        fake.fail(
            AccountAction::ListUsers,
            ErrorKind::AccessDenied,
            "AccessDenied",
        );
        let e = run(list_users(&fake, &Ungated)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AccessDenied);
        assert_eq!(e.action.as_str(), "ListUsers");
    }

    #[test]
    fn the_credential_report_is_awaited_with_backoff_then_read() {
        let fake = account();
        {
            let mut s = fake.state.borrow_mut();
            s.report_pending = 3;
            s.report_generated = Some(days_ago(1));
            s.report_csv = Some(
                "user,arn,user_creation_time,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service\n\
                 two,arn:aws:iam::111122223333:user/two,2020-01-01T00:00:00+00:00,true,2020-01-01T00:00:00+00:00,N/A,N/A,N/A,true,2026-11-26T00:00:00+00:00,N/A,N/A,N/A\n\
                 exempt,arn:aws:iam::111122223333:user/exempt,2020-01-01T00:00:00+00:00,false,2020-01-01T00:00:00+00:00,2020-02-01T00:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A\n"
                    .into(),
            );
        }
        let slept = std::cell::RefCell::new(Vec::new());
        let collected = run(from_report(
            &fake,
            "111122223333",
            &options(),
            &Ungated,
            |d| {
                slept.borrow_mut().push(d.as_secs());
                async {}
            },
            &|_| {},
        ));
        assert_eq!(*slept.borrow(), vec![1, 2, 4]);
        assert_eq!(fake.calls(AccountAction::GenerateCredentialReport), 4);
        assert_eq!(collected.report_generated, Some(days_ago(1)));
        assert!(collected.failures.is_empty(), "{:?}", collected.failures);
        assert_eq!(collected.users.len(), 2);
        assert_eq!(collected.users[0].self_service, SelfService::Missing);
        assert_eq!(
            collected.users[1].exempt_tag.as_deref(),
            Some("vendor sync until=2027-01-01")
        );
        // No key ids, no key calls: only tags and the self-service lookups.
        assert_eq!(fake.state.borrow().key_calls, 0);
        let rows = evaluate(&collected.users, &Thresholds::default(), now());
        assert_eq!(rows[0].findings[0], Finding::Rotate);
        assert_eq!(rows[0].key.id, None);
    }

    #[test]
    fn a_report_that_never_completes_is_a_timeout_failure() {
        let fake = account();
        fake.state.borrow_mut().report_pending = u32::MAX;
        let collected = run(from_report(
            &fake,
            "111122223333",
            &options(),
            &Ungated,
            |_| async {},
            &|_| {},
        ));
        assert_eq!(collected.failures.len(), 1);
        assert_eq!(collected.failures[0].error.kind, ErrorKind::Timeout);
        assert!(collected.users.is_empty());
    }
}
