//! `iam-keys status` against moto: every reported fact, in text and JSON.

use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use serde_json::Value;

fn mask(id: &str) -> String {
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

struct Fixture {
    sandbox: Sandbox,
    user_a: String,
    user_b: String,
    shared: (String, String),
    spare: String,
    config_key: (String, String),
}

/// Two profiles sharing one key, a key in the config file, an SSO profile, a role profile,
/// a user with a second key held by no profile, and a profile whose key AWS rejects.
fn fixture() -> Fixture {
    let m = moto();
    let user_a = m.unique("status-a");
    let user_b = m.unique("status-b");
    m.create_user(&user_a);
    m.create_user(&user_b);
    let shared = m.create_key(&user_a);
    let spare = m.create_key(&user_a).0;
    m.set_key_status(&user_a, &spare, "Inactive");
    let config_key = m.create_key(&user_b);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "# team keys\n[shared-a]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n\
         [shared-b]\naws_access_key_id={id}\naws_secret_access_key={secret}\n\n\
         [broken]\naws_access_key_id = AKIAZZZZZZZZZZZZZZZZ\naws_secret_access_key = not-a-real-secret-0000000000000000000000\n",
        id = shared.0,
        secret = shared.1
    ));
    sandbox.write_config(&format!(
        "[profile cfg-only]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = eu-west-1\n\n\
         [profile sso-dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Dev\n\n\
         [sso-session corp]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n\n\
         [profile ops]\nrole_arn = arn:aws:iam::123456789012:role/Ops\nsource_profile = shared-a\nmfa_serial = arn:aws:iam::123456789012:mfa/ops\n",
        config_key.0, config_key.1
    ));
    Fixture {
        sandbox,
        user_a,
        user_b,
        shared,
        spare,
        config_key,
    }
}

fn profile<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["profile"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc}"))
}

#[test]
fn status_json_reports_every_fact_per_profile() {
    let f = fixture();
    let run = f.sandbox.iam_keys(&["status", "--all", "--output", "json"]);
    // The rejected key makes the exit code 1; every other profile is still reported.
    run.assert_code(1);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");

    let a = profile(&doc, "shared-a");
    assert_eq!(a["kind"], "static-key");
    assert_eq!(a["key_location"], "credentials");
    assert_eq!(a["rotatable"], true);
    let key = &a["key"];
    assert_eq!(key["access_key_id"], mask(&f.shared.0));
    assert_eq!(key["user"], f.user_a.as_str());
    assert_eq!(key["account"], "123456789012");
    assert_eq!(
        key["arn"],
        format!("arn:aws:iam::123456789012:user/{}", f.user_a)
    );
    assert_eq!(key["status"], "Active");
    assert_eq!(key["age_days"], 0);
    assert!(key["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        key["shared_with"],
        serde_json::json!(["shared-a", "shared-b"])
    );
    // moto records the lookup itself as a use (AWS updates last use hours later).
    assert!(key["last_used"]["date"].is_string(), "{key}");
    assert!(key["last_used"]["service"].is_string(), "{key}");
    let others = key["other_keys"].as_array().unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["access_key_id"], mask(&f.spare));
    assert_eq!(others[0]["status"], "Inactive");
    assert_eq!(others[0]["held_by"], serde_json::json!([]));
    assert_eq!(others[0]["last_used"]["date"], Value::Null, "never used");

    let b = profile(&doc, "shared-b");
    assert_eq!(b["key"]["access_key_id"], mask(&f.shared.0));

    let cfg = profile(&doc, "cfg-only");
    assert_eq!(cfg["key_location"], "config");
    assert_eq!(cfg["region"], "eu-west-1");
    assert_eq!(cfg["key"]["user"], f.user_b.as_str());
    assert_eq!(cfg["key"]["access_key_id"], mask(&f.config_key.0));

    let sso = profile(&doc, "sso-dev");
    assert_eq!(sso["kind"], "sso");
    assert_eq!(sso["rotatable"], false);
    assert!(
        sso["skip_reason"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("sso"),
        "{sso}"
    );
    assert_eq!(sso["key"], Value::Null);

    let ops = profile(&doc, "ops");
    assert_eq!(ops["kind"], "role");
    assert_eq!(ops["depends_on"], "shared-a");
    assert_eq!(ops["mfa_serial"], "arn:aws:iam::123456789012:mfa/ops");
    assert_eq!(ops["key"]["access_key_id"], mask(&f.shared.0));

    let broken = profile(&doc, "broken");
    assert_eq!(broken["key"], Value::Null);
    let error = &broken["error"];
    // moto's auth errors carry their code only in a non-AWS envelope; it is read anyway.
    assert_eq!(error["kind"], "InvalidClientTokenId", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("broken"),
        "{error}"
    );

    assert_eq!(doc["summary"]["keys"], 3);
    assert_eq!(doc["summary"]["errors"], 1);
    assert_eq!(doc["summary"]["profiles"], 6);
}

#[test]
fn status_text_shows_the_same_facts() {
    let f = fixture();
    let run = f.sandbox.iam_keys(&["status", "--all"]);
    run.assert_code(1);
    let out = &run.stdout;
    for expected in [
        "shared-a",
        "shared-b",
        "cfg-only",
        "sso-dev",
        "ops",
        &mask(&f.shared.0),
        &mask(&f.config_key.0),
        &mask(&f.spare),
        &format!("{}@123456789012", f.user_a),
        "another machine?",
        "(via shared-a)",
        "static-key (config)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.contains("broken:") && out.contains("ERROR"), "{out}");
}

#[test]
fn older_than_marks_due_keys_and_sets_the_exit_code() {
    let m = moto();
    let user = m.unique("status-due");
    m.create_user(&user);
    let (id, secret) = m.create_key(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    let fresh = sandbox.iam_keys(&["status", "--older-than", "90d", "--output", "json"]);
    fresh.assert_code(0);
    let doc: Value = serde_json::from_str(&fresh.stdout).unwrap();
    assert_eq!(doc["profiles"][0]["key"]["due"], false);
    assert_eq!(doc["older_than_days"], 90.0);
    let due = sandbox.iam_keys(&["status", "--older-than", "0s"]);
    due.assert_code(1);
    assert!(
        due.stdout.contains("DUE") && due.stdout.contains("1 due"),
        "{}",
        due.stdout
    );
}

#[test]
fn an_exported_access_key_does_not_change_which_key_is_inspected() {
    let m = moto();
    let user = m.unique("status-env");
    m.create_user(&user);
    let (id, secret) = m.create_key(&user);
    let other_user = m.unique("status-env-other");
    m.create_user(&other_user);
    let (other_id, other_secret) = m.create_key(&other_user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    let run = sandbox
        .cmd(&["status", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", &other_id)
        .env("AWS_SECRET_ACCESS_KEY", &other_secret)
        .run();
    run.assert_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["profiles"][0]["key"]["user"], user.as_str());
    assert!(
        run.stderr.contains("AWS_ACCESS_KEY_ID is set"),
        "{}",
        run.stderr
    );
}
