//! `iam-keys audit` against moto (auth on): users with 0, 1 and 2 keys, Active and Inactive,
//! used and never used, exempt (valid and expired), in the self-service group or not; JSON,
//! CSV and text; the credential-report source on moto's real report; exit codes and bad input.
//!
//! moto is shared by every test of the process, so the audit sees other tests' users too:
//! assertions look only at this test's users. moto cannot backdate a key, so every key here is
//! days old at most: the age rules are tested on fixed times in `src/audit/rules.rs`; here
//! their shape (ages, dates, slots, the findings a fresh account can have).

use crate::support::cmd::Sandbox;
use crate::support::moto::{moto, policy_allowing};
use crate::support::python::venv_bin;
use serde_json::Value;
use std::sync::OnceLock;

const AUDIT_ACTIONS: &[&str] = &[
    "iam:GenerateCredentialReport",
    "iam:GetAccessKeyLastUsed",
    "iam:GetCredentialReport",
    "iam:ListAccessKeys",
    "iam:ListGroupsForUser",
    "iam:ListUserPolicies",
    "iam:ListUserTags",
    "iam:ListUsers",
];

fn mask(id: &str) -> String {
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

struct Fixture {
    sandbox: Sandbox,
    /// name → its keys (id) in creation order
    users: Vec<(String, Vec<String>)>,
    /// The secrets in the sandbox's credentials file (never printed).
    secrets: Vec<String>,
}

impl Fixture {
    fn user(&self, prefix: &str) -> &(String, Vec<String>) {
        self.users
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .unwrap()
    }
}

/// The users of the audit tests, made once per test process.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let m = moto();
        let admin = m.admin_iam();
        let make = |prefix: &str| {
            let name = m.unique(prefix);
            m.create_user_with_policy(&name, &policy_allowing(&["iam:GetUser"]));
            name
        };
        let group = "iam-keys-self-service";
        // Another test may have made it already.
        let _ = m.block_on(admin.create_group().group_name(group).send());

        let none = make("audit-none");
        let one = make("audit-one");
        let one_key = m.create_key(&one);
        m.block_on(
            admin
                .add_user_to_group()
                .group_name(group)
                .user_name(&one)
                .send(),
        )
        .expect("AddUserToGroup");
        assert!(
            m.key_works_as(&one_key.0, &one_key.1, &one),
            "a use of the key"
        );
        let two = make("audit-two");
        let two_keys = [m.create_key(&two).0, m.create_key(&two).0];
        let inactive = make("audit-inactive");
        let inactive_key = m.create_key(&inactive).0;
        m.set_key_status(&inactive, &inactive_key, "Inactive");
        let exempt = make("audit-exempt");
        let exempt_key = m.create_key(&exempt).0;
        let expired = make("audit-expired");
        let expired_keys = [m.create_key(&expired).0, m.create_key(&expired).0];
        // Tagged through the AWS CLI: moto re-signs form bodies botocore's way (a space as
        // `+`), so the Rust SDK's `%20` in a tag value fails its signature check.
        let setup = Sandbox::new();
        let (admin_id, admin_secret) = m.admin_credentials();
        setup.write_credentials(&format!(
            "[admin]\naws_access_key_id = {admin_id}\naws_secret_access_key = {admin_secret}\n"
        ));
        for (user, value) in [
            (&exempt, "build server OPS-7 until=2099-12-31"),
            (&expired, "old vendor until=2020-01-01"),
        ] {
            let tags = serde_json::json!([{ "Key": "iam-keys:exempt", "Value": value }]);
            setup
                .aws_cli(&[
                    "iam",
                    "tag-user",
                    "--user-name",
                    user,
                    "--tags",
                    &tags.to_string(),
                    "--profile",
                    "admin",
                    "--region",
                    "us-east-1",
                ])
                .assert_success();
        }
        let auditor = m.unique("auditor");
        m.create_user_with_policy(&auditor, &policy_allowing(AUDIT_ACTIONS));
        let auditor_key = m.create_key(&auditor);
        let blind = m.unique("audit-blind");
        let without_list_users: Vec<&str> = AUDIT_ACTIONS
            .iter()
            .copied()
            .filter(|a| *a != "iam:ListUsers")
            .collect();
        m.create_user_with_policy(&blind, &policy_allowing(&without_list_users));
        let blind_key = m.create_key(&blind);

        let sandbox = Sandbox::new();
        sandbox.write_credentials(&format!(
            "[auditor]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [blind]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [laptop-one]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            auditor_key.0, auditor_key.1, blind_key.0, blind_key.1, one_key.0, one_key.1
        ));
        Fixture {
            sandbox,
            secrets: vec![
                auditor_key.1.clone(),
                blind_key.1.clone(),
                one_key.1.clone(),
            ],
            users: vec![
                (none, vec![]),
                (one, vec![one_key.0]),
                (two, two_keys.to_vec()),
                (inactive, vec![inactive_key]),
                (exempt, vec![exempt_key]),
                (expired, expired_keys.to_vec()),
            ],
        }
    })
}

fn keys_of<'a>(doc: &'a Value, user: &str) -> Vec<&'a Value> {
    doc["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["user"] == user)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn audit_api_json_reports_every_key_shape_with_findings_and_exemptions() {
    let f = fixture();
    let run = f.sandbox.iam_keys(&[
        "audit",
        "--profile",
        "auditor",
        "--source",
        "api",
        "--output",
        "json",
    ]);
    // TWO_ACTIVE keys exist: findings, exit 1.
    run.assert_code(1);
    let doc = run.json();
    assert_eq!(doc["accounts"][0]["account"], "123456789012");
    assert_eq!(doc["accounts"][0]["source"], "api");

    let (none, _) = f.user("audit-none");
    assert!(
        keys_of(&doc, none).is_empty(),
        "a user with no key has no row"
    );

    let (one, one_keys) = f.user("audit-one");
    let rows = keys_of(&doc, one);
    assert_eq!(rows.len(), 1);
    let k = rows[0];
    assert_eq!(k["access_key_id"], mask(&one_keys[0]));
    assert_eq!(k["slot"], 1);
    assert_eq!(k["status"], "Active");
    assert_eq!(k["age_days"], 0);
    assert!(k["created"].as_str().unwrap().ends_with('Z'));
    assert!(k["last_used"]["date"].is_string(), "used: {k}");
    assert_eq!(k["last_used"]["service"], "sts");
    assert_eq!(strings(&k["profiles"]), ["laptop-one"]);
    assert_eq!(
        strings(&k["findings"]),
        ["OK"],
        "in the group, used, new: {k}"
    );

    let (two, two_keys) = f.user("audit-two");
    let rows = keys_of(&doc, two);
    assert_eq!(rows.len(), 2);
    for (slot, (row, id)) in rows.iter().zip(two_keys).enumerate() {
        assert_eq!(row["slot"], slot + 1);
        assert_eq!(row["access_key_id"], mask(id));
        assert_eq!(row["last_used"]["date"], Value::Null, "never used");
        assert_eq!(
            strings(&row["findings"]),
            ["TWO_ACTIVE", "NO_SELF_SERVICE"],
            "{row}"
        );
        assert_eq!(strings(&row["benchmarks"]), ["CIS-AWS-3.0.0:1.13"]);
    }

    let (inactive, _) = f.user("audit-inactive");
    let rows = keys_of(&doc, inactive);
    assert_eq!(rows[0]["status"], "Inactive");
    assert_eq!(
        strings(&rows[0]["findings"]),
        ["OK"],
        "Inactive for a day only"
    );

    let (exempt, _) = f.user("audit-exempt");
    let row = keys_of(&doc, exempt)[0];
    assert_eq!(strings(&row["findings"]), ["EXEMPT"]);
    assert_eq!(strings(&row["exempted"]), ["NO_SELF_SERVICE"]);
    assert_eq!(row["exemption"]["state"], "valid");
    assert_eq!(row["exemption"]["reason"], "build server OPS-7");
    assert_eq!(row["exemption"]["until"], "2099-12-31");

    let (expired, _) = f.user("audit-expired");
    for row in keys_of(&doc, expired) {
        assert_eq!(row["exemption"]["state"], "expired");
        assert_eq!(row["finding"], "TWO_ACTIVE");
    }
    assert_eq!(
        doc["errors"].as_array().unwrap().len(),
        0,
        "{}",
        doc["errors"]
    );
    assert!(doc["summary"]["failing"].as_u64().unwrap() >= 4);
}

#[test]
fn audit_csv_and_text_have_the_documented_shape() {
    let f = fixture();
    let run = f.sandbox.iam_keys(&[
        "audit",
        "--profile",
        "auditor",
        "--source",
        "api",
        "--output",
        "csv",
    ]);
    run.assert_code(1);
    let records = iam_keys::audit::credential_report::parse_csv(&run.stdout).expect("CSV");
    assert_eq!(
        records[0].join(","),
        "account,user,access_key_id,slot,status,created,age_days,last_used_date,\
         last_used_service,last_used_region,profiles,finding,findings,benchmarks,exemption,\
         exemption_reason,exemption_until,error"
    );
    assert!(records.iter().all(|r| r.len() == 18));
    let (two, _) = f.user("audit-two");
    let rows: Vec<&Vec<String>> = records.iter().filter(|r| r[1] == *two).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][11], "TWO_ACTIVE");
    assert_eq!(rows[0][12], "TWO_ACTIVE,NO_SELF_SERVICE");
    assert!(
        run.stdout.contains("\"TWO_ACTIVE,NO_SELF_SERVICE\""),
        "quoted"
    );
    assert_eq!(rows[0][7], "never");

    let run = f
        .sandbox
        .iam_keys(&["audit", "--profile", "auditor", "--source", "api"]);
    run.assert_code(1);
    assert!(run.stdout.contains("TWO_ACTIVE ("), "{}", run.stdout);
    assert!(run.stdout.contains("other grants"), "{}", run.stdout);
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.contains(" keys of ") && last.contains("failing"),
        "{last}"
    );
}

#[test]
fn fail_on_decides_the_exit_code() {
    let f = fixture();
    // No key in moto is old: none of these findings can occur.
    let run = f.sandbox.iam_keys(&[
        "audit",
        "--profile",
        "auditor",
        "--source",
        "api",
        "--fail-on",
        "ROTATE,UNUSED,never-used,INACTIVE",
        "--output",
        "json",
    ]);
    run.assert_code(0);
    assert_eq!(run.json()["summary"]["failing"], 0);
    assert_eq!(
        strings(&run.json()["fail_on"]),
        ["ROTATE", "UNUSED", "NEVER_USED", "INACTIVE"]
    );
    // A threshold of zero makes every Active key due.
    let run = f.sandbox.iam_keys(&[
        "audit",
        "--profile",
        "auditor",
        "--source",
        "api",
        "--max-age",
        "0s",
        "--fail-on",
        "ROTATE",
        "--output",
        "json",
    ]);
    run.assert_code(1);
    let (one, _) = f.user("audit-one");
    let row = keys_of(&run.json(), one)[0].clone();
    assert_eq!(row["finding"], "ROTATE");
}

#[test]
fn a_missing_permission_is_named_and_exits_4() {
    let f = fixture();
    let run = f
        .sandbox
        .iam_keys(&["audit", "--profile", "blind", "--source", "api"]);
    run.assert_code(4);
    assert!(run.stderr.contains("iam:ListUsers"), "{}", run.stderr);
    assert!(run.stderr.contains("policy --audit"), "{}", run.stderr);
    assert!(run.stdout.contains("ERROR (1)"), "{}", run.stdout);
}

#[test]
fn bad_input_is_a_usage_error_naming_what_to_fix() {
    let f = fixture();
    let run = f
        .sandbox
        .iam_keys(&["audit", "--profile", "auditor", "--fail-on", "ROTTEN"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("`ROTTEN` is not a finding") && run.stderr.contains("TWO_ACTIVE"),
        "{}",
        run.stderr
    );
    let run = f
        .sandbox
        .iam_keys(&["audit", "--profile", "auditor", "--max-unused", "ninety"]);
    run.assert_code(2);
    assert!(run.stderr.contains("90d"), "{}", run.stderr);
    let run = f.sandbox.iam_keys(&["status", "--output", "csv"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("--output csv is for `audit`"),
        "{}",
        run.stderr
    );
    let run = f.sandbox.iam_keys(&["audit", "--profile", "nope"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("profile `nope` is in neither"),
        "{}",
        run.stderr
    );
    let run = f.sandbox.iam_keys(&["audit", "--all"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--profile NAME"), "{}", run.stderr);
    let run = f
        .sandbox
        .iam_keys(&["audit", "--org", "--profile", "auditor"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--role-name"), "{}", run.stderr);
}

#[test]
fn the_credential_report_source_reads_motos_real_report() {
    let f = fixture();
    let run = f.sandbox.iam_keys(&[
        "audit",
        "--profile",
        "auditor",
        "--source",
        "credential-report",
        "--output",
        "json",
    ]);
    run.assert_code(1);
    let doc = run.json();
    let account = &doc["accounts"][0];
    assert_eq!(account["source"], "credential-report");
    // moto's report has a fixed generation time in 2015: the tool says it is stale.
    assert_eq!(account["report_generated"], "2015-02-02T20:02:02Z");
    assert!(
        run.stderr.contains("the credential report is"),
        "{}",
        run.stderr
    );
    let (two, _) = f.user("audit-two");
    let rows = keys_of(&doc, two);
    assert_eq!(rows.len(), 2);
    for (slot, row) in rows.iter().enumerate() {
        assert_eq!(
            row["access_key_id"],
            Value::Null,
            "no key ids in the report"
        );
        assert_eq!(row["slot"], slot + 1);
        assert_eq!(row["finding"], "TWO_ACTIVE");
    }
    let (inactive, _) = f.user("audit-inactive");
    assert_eq!(keys_of(&doc, inactive)[0]["status"], "Inactive");
    let (exempt, _) = f.user("audit-exempt");
    assert_eq!(keys_of(&doc, exempt)[0]["finding"], "EXEMPT");
    let (none, _) = f.user("audit-none");
    assert!(keys_of(&doc, none).is_empty());
}

#[test]
fn the_audit_policy_passes_parliament() {
    let sandbox = Sandbox::new();
    for args in [
        &["policy", "--audit"][..],
        &["policy", "--audit", "--org", "--role-name", "Audit"],
    ] {
        let run = sandbox.iam_keys(args);
        run.assert_code(0);
        let out = std::process::Command::new(venv_bin("parliament"))
            .arg("--string")
            .arg(&run.stdout)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("LANG", "C.UTF-8")
            .output()
            .expect("parliament runs from the test venv");
        assert_eq!(
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
            (Some(0), ""),
            "{args:?}: {}",
            run.stdout
        );
    }
}

#[test]
fn no_secret_reaches_any_output_at_any_verbosity() {
    let f = fixture();
    for output in ["text", "json", "csv"] {
        let run = f
            .sandbox
            .cmd(&[
                "audit",
                "-vvv",
                "--profile",
                "auditor",
                "--source",
                "api",
                "--output",
                output,
            ])
            .env("RUST_LOG", "trace")
            .run();
        run.assert_code(1);
        for secret in &f.secrets {
            run.assert_no_secret(secret);
        }
    }
}
