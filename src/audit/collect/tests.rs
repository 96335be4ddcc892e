//! Tests of [`super`] (collect.rs), kept apart so the module reads on its own.

use super::*;
use crate::audit::test_time::{days_ago, now};
use crate::audit::{Finding, Thresholds, evaluate};
use crate::aws::account::AccountAction;
use crate::aws::fake::account::{FakeAccount, FakeUser, fake_key};
use crate::aws::{ErrorKind, KeyStatus};
use crate::time::block_on;

fn options() -> Options {
    Options {
        concurrency: 3,
        self_service: Some(SelfServiceNames {
            group: crate::policy::SELF_SERVICE_NAME.into(),
        }),
    }
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
    let collected = block_on(async {
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
    let collected = block_on(async {
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
    let collected = block_on(async {
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
    let e = block_on(list_users(&fake, &Ungated)).unwrap_err();
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
    let collected = block_on(from_report(
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
    let collected = block_on(from_report(
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
