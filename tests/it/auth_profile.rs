//! `rotate --auth-profile ADMIN --user-name USER`: an administrator rotates a service user's
//! key with the admin profile's credentials; the new key is verified with its own credentials
//! and written to the profile named by `--profile` (created when missing).

use crate::support::cmd::Sandbox;
use crate::support::moto::{Moto, moto, policy_allowing};
use crate::support::proxy::FaultProxy;
use serde_json::Value;

const ADMIN_ACTIONS: &[&str] = &[
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:GetUser",
];

fn block(name: &str, id: &str, secret: &str) -> String {
    format!("[{name}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

fn key_in(text: &str, header: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == header;
        } else if inside && t.starts_with("aws_access_key_id") {
            return t.split('=').nth(1).map(|v| v.trim().to_string());
        }
    }
    None
}

fn sorted_keys(m: &Moto, user: &str) -> Vec<(String, String)> {
    let mut keys = m.list_keys(user);
    keys.sort();
    keys
}

/// (admin key id, admin secret, service user, its key id)
fn setup(prefix: &str) -> (String, String, String, String, String) {
    let m = moto();
    let admin = m.unique(&format!("{prefix}-admin"));
    m.create_user_with_policy(&admin, &policy_allowing(ADMIN_ACTIONS));
    let (admin_key, admin_secret) = m.create_key(&admin);
    // The service user may not even manage its own keys: the admin does it.
    let svc = m.unique(&format!("{prefix}-svc"));
    m.create_user_with_policy(&svc, &policy_allowing(&["iam:GetUser"]));
    let (svc_key, svc_secret) = m.create_key(&svc);
    (admin_key, admin_secret, svc, svc_key, svc_secret)
}

fn assert_cli_is(sandbox: &Sandbox, profile: &str, user: &str) {
    let run = sandbox.aws_cli(&[
        "sts",
        "get-caller-identity",
        "--profile",
        profile,
        "--output",
        "json",
        "--region",
        "us-east-1",
    ]);
    run.assert_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        doc["Arn"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(":user/{user}")),
        "{doc}"
    );
}

#[test]
fn an_admin_rotates_a_service_users_key_into_a_new_profile() {
    let m = moto();
    let (admin_key, admin_secret, svc, svc_key, svc_secret) = setup("auth-new");
    let proxy = FaultProxy::start(&m.endpoint);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "# admin\n{}",
        block("admin", &admin_key, &admin_secret)
    ));
    let run = sandbox
        .cmd(&[
            "rotate",
            "--auth-profile",
            "admin",
            "--user-name",
            &svc,
            "--profile",
            "svc-profile",
            "--yes",
        ])
        .endpoint(&proxy.endpoint)
        .run();
    run.assert_code(0);
    run.assert_stdout_contains("1 rotated");
    run.assert_no_secret(&admin_secret);
    run.assert_no_secret(&svc_secret);
    let text = sandbox.read_credentials();
    assert!(
        text.starts_with("# admin\n[admin]\n"),
        "the admin profile is kept"
    );
    assert_eq!(
        key_in(&text, "[admin]").as_deref(),
        Some(admin_key.as_str())
    );
    let new = key_in(&text, "[svc-profile]").expect("svc-profile written");
    assert_ne!(new, svc_key);
    assert_cli_is(&sandbox, "svc-profile", &svc);
    let mut expected = vec![
        (svc_key.clone(), "Inactive".to_string()),
        (new.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(sorted_keys(m, &svc), expected);
    // IAM calls signed by the admin for the service user; verification with the new key.
    let requests = proxy.requests();
    let create = requests
        .iter()
        .find(|r| r.action == "CreateAccessKey")
        .expect("CreateAccessKey");
    assert_eq!(create.key_id.as_deref(), Some(admin_key.as_str()));
    assert_eq!(create.params.get("UserName"), Some(&svc));
    let update = requests
        .iter()
        .find(|r| r.action == "UpdateAccessKey")
        .expect("UpdateAccessKey");
    assert_eq!(update.key_id.as_deref(), Some(admin_key.as_str()));
    assert_eq!(update.params.get("AccessKeyId"), Some(&svc_key));
    assert!(
        requests
            .iter()
            .filter(|r| r.action == "GetCallerIdentity" && r.key_id.as_deref() == Some(&new))
            .count()
            >= 3,
        "verified with the new key's own credentials"
    );
}

#[test]
fn an_admin_rotates_a_service_users_key_held_by_an_existing_profile() {
    let m = moto();
    let (admin_key, admin_secret, svc, svc_key, svc_secret) = setup("auth-existing");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "{}\n{}region = us-east-1\n",
        block("admin", &admin_key, &admin_secret),
        block("svc-profile", &svc_key, &svc_secret)
    ));
    let run = sandbox.iam_keys(&[
        "rotate",
        "--auth-profile",
        "admin",
        "--user-name",
        &svc,
        "--profile",
        "svc-profile",
        "--yes",
    ]);
    run.assert_code(0);
    let text = sandbox.read_credentials();
    let new = key_in(&text, "[svc-profile]").unwrap();
    assert_ne!(new, svc_key);
    assert!(!text.contains(&svc_secret), "the old secret is replaced");
    assert!(text.contains("region = us-east-1\n"));
    assert_eq!(
        key_in(&text, "[admin]").as_deref(),
        Some(admin_key.as_str())
    );
    assert_cli_is(&sandbox, "svc-profile", &svc);
    assert!(sorted_keys(m, &svc).contains(&(svc_key, "Inactive".to_string())));
}

#[test]
fn two_active_keys_and_no_local_holder_is_refused() {
    let m = moto();
    let (admin_key, admin_secret, svc, _svc_key, _) = setup("auth-ambiguous");
    m.create_key(&svc);
    let before_keys = sorted_keys(m, &svc);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("admin", &admin_key, &admin_secret));
    let before = sandbox.read_credentials();
    let run = sandbox.iam_keys(&[
        "rotate",
        "--auth-profile",
        "admin",
        "--user-name",
        &svc,
        "--profile",
        "svc-profile",
        "--yes",
    ]);
    run.assert_code(1);
    run.assert_stdout_contains("two Active access keys");
    run.assert_stdout_contains("cannot tell which one");
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(sorted_keys(m, &svc), before_keys);
}

/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from `--output env` output.
fn printed_key(stdout: &str) -> (String, String) {
    let value = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in the output:\n{stdout}"))
            .to_string()
    };
    (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"))
}

/// The AWS CLI, in a sandbox of its own (the rotating one must hold no profile of the user),
/// authenticates as `user` with the key.
fn assert_key_works(id: &str, secret: &str, user: &str) {
    let elsewhere = Sandbox::new();
    elsewhere.write_credentials(&block("svc", id, secret));
    assert_cli_is(&elsewhere, "svc", user);
}

fn journals(sandbox: &Sandbox) -> usize {
    match std::fs::read_dir(sandbox.path(".aws/.iam-keys")) {
        Ok(entries) => entries
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("journal-"))
            })
            .count(),
        Err(_) => 0,
    }
}

#[test]
fn a_key_only_printed_is_kept_in_the_journal_until_it_reaches_the_output() {
    let m = moto();
    let (admin_key, admin_secret, svc, svc_key, svc_secret) = setup("auth-printed");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("admin", &admin_key, &admin_secret));
    let rotate = [
        "rotate",
        "--auth-profile",
        "admin",
        "--user-name",
        svc.as_str(),
        "--output",
        "env",
        "--delete-inactive",
        "--yes",
    ];

    // Printed: the journal goes once the key is out, and the printed key works.
    let run = sandbox.iam_keys(&rotate);
    run.assert_code(0);
    let (first, first_secret) = printed_key(&run.stdout);
    run.assert_stdout_contains(&format!("# user: {svc}\nAWS_ACCESS_KEY_ID="));
    assert_ne!(first, svc_key);
    assert_eq!(journals(&sandbox), 0);
    assert_key_works(&first, &first_secret, &svc);

    // Standard output fails (a full disk, a closed pipe): the old key is already retired,
    // so the new key must survive in the journal, not be lost or deleted.
    let mut cmd = sandbox.cmd(&rotate).command();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = cmd
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .output()
        .expect("run iam-keys");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("run `iam-keys recover --output env` to print them"),
        "{stderr}"
    );
    assert_eq!(journals(&sandbox), 1);
    let keys = sorted_keys(m, &svc);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&(first.clone(), "Inactive".to_string())));
    let (second, _) = keys.iter().find(|(id, _)| *id != first).unwrap().clone();

    // Without --output env, recover keeps it and says how to get it.
    let run = sandbox.iam_keys(&["recover", "--yes"]);
    run.assert_code(3);
    run.assert_stdout_contains("recover --output env");
    assert_eq!(journals(&sandbox), 1);
    // With it, the key is printed, the journal goes, and the key works.
    let run = sandbox.iam_keys(&["recover", "--yes", "--output", "env"]);
    run.assert_code(0);
    let (printed, printed_secret) = printed_key(&run.stdout);
    run.assert_stdout_contains(&format!("# user: {svc}\nAWS_ACCESS_KEY_ID="));
    assert_eq!(printed, second);
    assert_eq!(journals(&sandbox), 0);
    for secret in [&admin_secret, &svc_secret, &first_secret] {
        run.assert_no_secret(secret);
    }
    assert_key_works(&printed, &printed_secret, &svc);
    assert_eq!(sorted_keys(m, &svc), {
        let mut k = vec![
            (first, "Inactive".to_string()),
            (second, "Active".to_string()),
        ];
        k.sort();
        k
    });
}
