//! Tests of [`super`] (render.rs), kept apart so the module reads on its own.

use super::*;
use crate::audit::collect::Collected;
use crate::audit::credential_report::parse_csv;
use crate::audit::{KeyFacts, SelfService, UserFacts};
use crate::aws::account::AccountAction;
use crate::aws::{KeyStatus, LastUsed};
use crate::cli::audit::AccountAudit;

fn now() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

fn run() -> AuditRun {
    let key = |id: &str, slot, status, created: &str, used: Option<&str>| KeyFacts {
        id: Some(id.into()),
        slot,
        status,
        created: Some(created.parse().unwrap()),
        last_used: Some(LastUsed {
            date: used.map(|u| u.parse().unwrap()),
            service: used.map(|_| "s3".into()),
            region: used.map(|_| "us-east-1".into()),
        }),
    };
    let users = vec![
        UserFacts {
            account: "111122223333".into(),
            user: "alice, the \"admin\"".into(),
            arn: "arn:aws:iam::111122223333:user/alice".into(),
            exempt_tag: Some("legacy, do not touch until=2027-01-01".into()),
            self_service: SelfService::Group,
            keys: vec![key(
                "AKIAALICE00000000001",
                1,
                KeyStatus::Active,
                "2026-01-01T00:00:00Z",
                Some("2026-11-30T00:00:00Z"),
            )],
        },
        UserFacts {
            account: "111122223333".into(),
            user: "bob".into(),
            arn: "arn:aws:iam::111122223333:user/bob".into(),
            exempt_tag: None,
            self_service: SelfService::Missing,
            keys: vec![
                key(
                    "AKIABOB0000000000001",
                    1,
                    KeyStatus::Active,
                    "2026-01-01T00:00:00Z",
                    None,
                ),
                key(
                    "AKIABOB0000000000002",
                    2,
                    KeyStatus::Active,
                    "2026-11-30T00:00:00Z",
                    Some("2026-11-30T00:00:00Z"),
                ),
            ],
        },
    ];
    let failure = Failure {
        account: "111122223333".into(),
        user: Some("carol".into()),
        error: AwsError::new(
            Action::Account(AccountAction::ListUserTags),
            ErrorKind::AccessDenied,
        )
        .with_code("AccessDenied")
        .with_message("User is not authorized to perform: iam:ListUserTags")
        .with_status(403),
    };
    AuditRun {
        accounts: vec![AccountAudit {
            account: "111122223333".into(),
            name: None,
            source: Some(Source::Api),
            collected: Collected {
                users,
                failures: vec![failure],
                users_listed: Some(3),
                report_generated: None,
                calls: 12,
            },
        }],
    }
}

fn report(fail_on: &[Finding]) -> Report {
    let holders = BTreeMap::from([(
        "AKIABOB0000000000002".to_string(),
        vec!["bob-laptop".to_string()],
    )]);
    Report::build(
        &run(),
        &Thresholds::default(),
        fail_on,
        &holders,
        "admin",
        now(),
    )
}

#[test]
fn csv_has_fixed_columns_rfc4180_quoting_and_error_rows() {
    let text = report(&Finding::default_fail_on()).csv();
    assert!(text.ends_with("\r\n"));
    let records = parse_csv(&text).unwrap();
    assert_eq!(records[0], CSV_COLUMNS.map(String::from).to_vec());
    assert!(records.iter().all(|r| r.len() == CSV_COLUMNS.len()));
    assert_eq!(records.len(), 1 + 3 + 1);
    assert_eq!(records[1][1], "alice, the \"admin\"", "quotes round-trip");
    assert_eq!(records[1][2], "AKIA…0001");
    assert_eq!(records[1][11], "EXEMPT");
    assert_eq!(records[1][15], "legacy, do not touch");
    assert_eq!(records[2][11], "ROTATE");
    assert_eq!(records[2][7], "never");
    assert_eq!(records[3][10], "bob-laptop");
    assert_eq!(records[4][11], "ERROR");
    assert!(
        records[4][17].contains("iam:ListUserTags"),
        "{:?}",
        records[4]
    );
    assert!(text.contains("\"alice, the \"\"admin\"\"\""));
}

#[test]
fn json_has_the_documented_fields() {
    let value: serde_json::Value =
        serde_json::from_str(&report(&Finding::default_fail_on()).json()).unwrap();
    let key = &value["keys"][1];
    for field in [
        "account",
        "user",
        "arn",
        "access_key_id",
        "slot",
        "status",
        "created",
        "age_days",
        "last_used",
        "profiles",
        "finding",
        "findings",
        "exempted",
        "benchmarks",
        "exemption",
    ] {
        assert!(key.get(field).is_some(), "keys[].{field} missing: {key}");
    }
    assert_eq!(key["finding"], "ROTATE");
    assert_eq!(
        key["findings"],
        serde_json::json!(["ROTATE", "NEVER_USED", "TWO_ACTIVE", "NO_SELF_SERVICE"])
    );
    assert_eq!(value["keys"][0]["exemption"]["state"], "valid");
    assert_eq!(value["keys"][0]["exemption"]["until"], "2027-01-01");
    assert_eq!(value["errors"][0]["action"], "ListUserTags");
    assert_eq!(value["errors"][0]["kind"], "AccessDenied");
    assert_eq!(value["summary"]["by_finding"]["ROTATE"], 1);
    assert_eq!(value["summary"]["by_finding"]["TWO_ACTIVE"], 1);
    assert_eq!(value["summary"]["by_finding"]["OK"], 0);
    assert_eq!(value["summary"]["users"], 2);
    assert_eq!(value["accounts"][0]["source"], "api");
    assert_eq!(value["thresholds"]["max_age_days"], 90.0);
}

#[test]
fn text_groups_by_finding_and_ends_with_a_summary() {
    let text = report(&Finding::default_fail_on()).text();
    let rotate = text.find("ROTATE (1)").unwrap();
    let two = text.find("TWO_ACTIVE (1)").unwrap();
    let exempt = text.find("EXEMPT (1)").unwrap();
    let error = text.find("ERROR (1)").unwrap();
    assert!(rotate < two && two < exempt && exempt < error, "{text}");
    assert!(text.contains("other grants"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("3 keys of 2 users in 1 account: 1 ROTATE, 1 TWO_ACTIVE, 1 EXEMPT;"),
        "{last}"
    );
    assert!(last.contains("2 failing"), "{last}");
    assert!(!text.contains("AKIABOB0000000000001"), "key ids are masked");
}

#[test]
fn the_exit_code_follows_fail_on_and_errors_come_first() {
    assert_eq!(report(&[Finding::Rotate]).outcome(), Outcome::Incomplete);
    let mut clean = report(&[Finding::Inactive]);
    clean.errors.clear();
    assert_eq!(clean.outcome(), Outcome::Success);
    let mut failing = report(&[Finding::TwoActive]);
    failing.errors.clear();
    assert_eq!(failing.summary.failing, 2);
    assert_eq!(failing.outcome(), Outcome::Attention);
    let mut exempt = report(&[Finding::Exempt]);
    exempt.errors.clear();
    assert_eq!(exempt.summary.failing, 1);
}

#[test]
fn csv_fields_are_quoted_only_when_needed() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
}
