//! Tests of [`super`] (grant.rs), kept apart so the module reads on its own.

use super::*;
use crate::aws::ErrorKind;
use crate::aws::KeyStatus;
use crate::aws::account::AccountAction;
use crate::aws::fake::account::{FakeAccount, FakeUser, fake_key};

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
    let first = crate::time::block_on(to_group(
        &fake,
        "iam-keys-self-service",
        &PolicyOptions::default(),
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
    let second = crate::time::block_on(to_group(
        &fake,
        "iam-keys-self-service",
        &PolicyOptions::default(),
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
    let planned =
        crate::time::block_on(to_group(&fake, "g", &PolicyOptions::default(), true, true)).unwrap();
    assert_eq!(planned.changes.len(), 4);
    assert!(fake.writes().is_empty());
    let inline =
        crate::time::block_on(to_users(&fake, &[], true, &PolicyOptions::default(), true)).unwrap();
    assert_eq!(inline.changes.len(), 1);
    assert!(fake.writes().is_empty());
}

#[test]
fn a_changed_document_is_a_new_default_version_and_the_oldest_goes_at_five() {
    let fake = account();
    crate::time::block_on(to_group(
        &fake,
        "iam-keys-self-service",
        &PolicyOptions::default(),
        false,
        false,
    ))
    .unwrap();
    for round in 0..5 {
        let mfa = PolicyOptions {
            mfa: round % 2 == 0,
            ..PolicyOptions::default()
        };
        let out =
            crate::time::block_on(to_group(&fake, "iam-keys-self-service", &mfa, false, false))
                .unwrap();
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
    let out = crate::time::block_on(to_group(
        &fake,
        "g",
        &PolicyOptions::default(),
        false,
        false,
    ))
    .unwrap();
    assert_eq!(out.changes.len(), 3, "{out:?}");
    assert_eq!(fake.calls(AccountAction::CreatePolicy), 1);
    assert_eq!(fake.calls(AccountAction::CreateGroup), 1);
    assert_eq!(fake.state.borrow().groups["g"].len(), 1, "attached");

    // A new version whose answer is lost: it is the default now, so it is done.
    let mfa = PolicyOptions {
        mfa: true,
        ..PolicyOptions::default()
    };
    fake.state.borrow_mut().lost_answers = vec![AccountAction::CreatePolicyVersion];
    let out = crate::time::block_on(to_group(&fake, "g", &mfa, false, false)).unwrap();
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
    assert!(
        crate::time::block_on(to_group(
            &fake,
            "g",
            &PolicyOptions::default(),
            false,
            false
        ))
        .is_err()
    );
    assert_eq!(fake.calls(AccountAction::CreatePolicy), 1);
}

#[test]
fn the_inline_way_puts_one_policy_per_user_with_the_literal_arn() {
    let fake = account();
    let out = crate::time::block_on(to_users(
        &fake,
        &["alice".into()],
        false,
        &PolicyOptions::default(),
        false,
    ))
    .unwrap();
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
    let again = crate::time::block_on(to_users(&fake, &[], true, &PolicyOptions::default(), false))
        .unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.in_place, ["inline alice"]);
    let mfa = PolicyOptions {
        mfa: true,
        ..PolicyOptions::default()
    };
    let changed =
        crate::time::block_on(to_users(&fake, &["alice".into()], false, &mfa, false)).unwrap();
    assert!(matches!(
        changed.changes[0],
        Change::PutInlinePolicy { replaces: true, .. }
    ));
}
