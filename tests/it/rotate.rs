//! `iam-keys rotate` end to end against moto with authentication on. After each rotation
//! the AWS CLI itself authenticates with the rewritten files, the old key is Inactive or
//! gone, and the user has exactly the expected keys.

use crate::invariants::setup_user;
use crate::support::cmd::Sandbox;
use crate::support::moto::{Moto, moto};
use crate::support::proxy::{FaultProxy, Rule};
use serde_json::Value;

fn block(name: &str, id: &str, secret: &str) -> String {
    format!("[{name}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

/// The key id a profile holds now, read from a file's text.
fn key_in(text: &str, profile_header: &str) -> String {
    let mut in_section = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t == profile_header;
        } else if in_section && t.to_ascii_lowercase().starts_with("aws_access_key_id") {
            return t.split('=').nth(1).unwrap().trim().to_string();
        }
    }
    panic!("no key for {profile_header}");
}

/// The AWS CLI authenticates as `user` with the profile as the files now say.
fn assert_cli_works(sandbox: &Sandbox, profile: &str, user: &str) {
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
            .unwrap()
            .ends_with(&format!(":user/{user}")),
        "{doc}"
    );
}

/// Journal entries left beside the credentials file.
fn journal_files(sandbox: &Sandbox) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(sandbox.home().join(".aws/.iam-keys")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn keys(m: &Moto, user: &str) -> Vec<(String, String)> {
    let mut keys = m.list_keys(user);
    keys.sort();
    keys
}

#[test]
fn one_profile_is_rotated_and_the_old_key_deactivated() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-one");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "# my key\n{}region = eu-west-1 ; work\n",
        block("default", &old, &secret)
    ));
    let run = sandbox.iam_keys(&["rotate", "--yes"]);
    run.assert_code(0);
    assert!(run.stdout.contains("1 rotated"), "{}", run.stdout);
    let text = sandbox.read_credentials();
    let new = key_in(&text, "[default]");
    assert_ne!(new, old);
    assert!(
        text.starts_with("# my key\n[default]\n"),
        "comments and order kept"
    );
    assert!(
        text.contains("region = eu-west-1 ; work\n"),
        "other lines kept byte for byte"
    );
    assert!(!text.contains(&secret));
    assert_cli_works(&sandbox, "default", &user);
    assert_eq!(keys(m, &user), {
        let mut k = vec![
            (old.clone(), "Inactive".to_string()),
            (new.clone(), "Active".to_string()),
        ];
        k.sort();
        k
    });
}

#[test]
fn profiles_sharing_a_key_and_a_key_in_the_config_file_are_all_updated() {
    let m = moto();
    let (user, shared, shared_secret) = setup_user("rot-shared");
    let (user2, cfg, cfg_secret) = setup_user("rot-cfg");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "{}\n{}\n{}",
        block("a", &shared, &shared_secret),
        block("b", &shared, &shared_secret),
        block("c", &shared, &shared_secret).replace("[c]", "[c]\t")
    ));
    sandbox.write_config(&format!(
        "[profile cfgkey]\r\naws_access_key_id = {cfg}\r\naws_secret_access_key = {cfg_secret}\r\nregion = us-west-2\r\n"
    ));
    let run = sandbox.iam_keys(&[
        "rotate",
        "--profile",
        "a",
        "--profile",
        "cfgkey",
        "--yes",
        "--output",
        "json",
    ]);
    run.assert_code(0);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["summary"]["rotated"], 2, "{doc}");
    let text = sandbox.read_credentials();
    let new = key_in(&text, "[a]");
    assert_eq!(
        key_in(&text, "[b]"),
        new,
        "b shares the key and is updated too"
    );
    assert_eq!(key_in(&text, "[c]"), new);
    let config = sandbox.read_config();
    assert!(config.contains("\r\nregion = us-west-2\r\n"), "CRLF kept");
    let new_cfg = key_in(&config, "[profile cfgkey]");
    assert_ne!(new_cfg, cfg);
    assert_cli_works(&sandbox, "b", &user);
    assert_cli_works(&sandbox, "cfgkey", &user2);
    assert_eq!(m.list_keys(&user).len(), 2);
    // One CreateAccessKey for the shared key: the user has the old (inactive) and one new key.
    assert!(keys(m, &user).contains(&(shared, "Inactive".into())));
}

#[test]
fn a_stale_session_token_beside_a_key_is_dropped() {
    let (user, old, secret) = setup_user("rot-token");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "{}aws_session_token = FQoGZXIvYXdzEXPIRED\n",
        block("dev", &old, &secret)
    ));
    let run = sandbox.iam_keys(&["rotate", "--profile", "dev", "--yes"]);
    run.assert_code(0);
    let text = sandbox.read_credentials();
    assert!(
        !text.contains("aws_session_token"),
        "{}",
        text.lines().count()
    );
    assert_cli_works(&sandbox, "dev", &user);
}

#[test]
fn an_inactive_second_key_needs_delete_inactive() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-inactive");
    let (spare, _) = m.create_key(&user);
    m.set_key_status(&user, &spare, "Inactive");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let before = sandbox.read_credentials();

    let refused = sandbox.iam_keys(&["rotate", "--yes"]);
    refused.assert_code(1);
    assert!(
        refused.stdout.contains("--delete-inactive"),
        "{}",
        refused.stdout
    );
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(m.list_keys(&user).len(), 2);

    let run = sandbox.iam_keys(&["rotate", "--yes", "--delete-inactive"]);
    run.assert_code(0);
    let new = key_in(&sandbox.read_credentials(), "[default]");
    let mut expected = vec![(old, "Inactive".to_string()), (new, "Active".to_string())];
    expected.sort();
    assert_eq!(
        keys(m, &user),
        expected,
        "the spare Inactive key was deleted"
    );
    assert_cli_works(&sandbox, "default", &user);
}

#[test]
fn two_active_keys_are_refused_and_nothing_changes() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-twoactive");
    let (other, _) = m.create_key(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let before = sandbox.read_credentials();
    let before_keys = keys(m, &user);
    let run = sandbox.iam_keys(&["rotate", "--yes", "--delete-inactive"]);
    run.assert_code(1);
    let mask = |id: &str| format!("{}…{}", &id[..4], &id[id.len() - 4..]);
    assert!(
        run.stdout.contains(&mask(&old)) && run.stdout.contains(&mask(&other)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("two Active access keys"),
        "{}",
        run.stdout
    );
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(keys(m, &user), before_keys);
}

#[test]
fn older_than_skips_a_fresh_key() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-fresh");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let before = sandbox.read_credentials();
    let run = sandbox.iam_keys(&["rotate", "--yes", "--older-than", "90d"]);
    run.assert_code(0);
    assert!(run.stdout.contains("not due"), "{}", run.stdout);
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(keys(m, &user), vec![(old, "Active".to_string())]);
}

#[test]
fn dry_run_changes_neither_the_files_nor_iam() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-dry");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "{}aws_session_token = stale\n",
        block("default", &old, &secret)
    ));
    sandbox.write_config("[default]\nregion = eu-west-1\n");
    let before = (sandbox.read_credentials(), sandbox.read_config());
    let run = sandbox.iam_keys(&["rotate", "--dry-run"]);
    run.assert_code(0);
    assert!(run.stdout.contains("dry run"), "{}", run.stdout);
    assert!(
        run.stdout.contains("aws_session_token"),
        "the plan names the lines that change: {}",
        run.stdout
    );
    assert!(run.stdout.contains("deactivated"), "{}", run.stdout);
    assert_eq!((sandbox.read_credentials(), sandbox.read_config()), before);
    assert_eq!(keys(m, &user), vec![(old, "Active".to_string())]);
    assert!(
        !sandbox
            .home()
            .join(".aws/credentials.iam-keys.bak")
            .exists()
    );
}

#[test]
fn delete_removes_the_old_key() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-delete");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let run = sandbox.iam_keys(&["rotate", "--yes", "--delete"]);
    run.assert_code(0);
    let new = key_in(&sandbox.read_credentials(), "[default]");
    assert_eq!(keys(m, &user), vec![(new, "Active".to_string())]);
    assert_cli_works(&sandbox, "default", &user);
    // The old key is really gone: moto rejects it.
    assert!(m.whoami(&old, &secret).is_err());
}

#[test]
fn without_a_terminal_and_without_yes_it_refuses_with_a_hint() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-noyes");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let run = sandbox.iam_keys(&["rotate"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(keys(m, &user), vec![(old, "Active".to_string())]);
}

#[test]
fn output_env_is_the_only_way_the_new_secret_is_printed() {
    let (user, old, secret) = setup_user("rot-env");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let run = sandbox.iam_keys(&["rotate", "--yes", "--output", "env"]);
    run.assert_code(0);
    let text = sandbox.read_credentials();
    let new = key_in(&text, "[default]");
    let new_secret = text
        .lines()
        .find(|l| l.starts_with("aws_secret_access_key"))
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .trim();
    assert!(
        run.stdout
            .contains(&format!("# profiles: default\nAWS_ACCESS_KEY_ID={new}\n")),
        "{}",
        run.stdout.lines().count()
    );
    assert!(
        run.stdout
            .contains(&format!("AWS_SECRET_ACCESS_KEY={new_secret}\n"))
    );
    assert!(!run.stderr.contains(new_secret));
    assert!(!run.stdout.contains(&secret) && !run.stderr.contains(&secret));
    assert_cli_works(&sandbox, "default", &user);
}

#[test]
fn slow_iam_propagation_is_waited_out() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-propagate");
    let proxy = FaultProxy::start(&m.endpoint);
    // The new key is "not yet known" to STS for its first three calls.
    proxy.add_rule(Rule::invalid_token_for_new_keys(&old, 3));
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let run = sandbox
        .cmd(&["rotate", "--yes", "-v"])
        .endpoint(&proxy.endpoint)
        .run();
    run.assert_code(0);
    assert!(run.stderr.contains("waiting for IAM"), "{}", run.stderr);
    let new = key_in(&sandbox.read_credentials(), "[default]");
    let calls = proxy
        .requests()
        .into_iter()
        .filter(|r| r.action == "GetCallerIdentity" && r.key_id.as_deref() == Some(new.as_str()))
        .count();
    assert_eq!(
        calls,
        3 + 3,
        "three rejections, then three consecutive successes"
    );
    assert_cli_works(&sandbox, "default", &user);
}

#[test]
fn a_new_key_that_never_works_is_deleted_and_the_file_is_unchanged() {
    let m = moto();
    let (user, old, secret) = setup_user("rot-neverworks");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::invalid_token_for_new_keys(&old, 1).forever());
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &old, &secret));
    let before = sandbox.read_credentials();
    let run = sandbox
        .cmd(&["rotate", "--yes", "--verify-timeout", "3s"])
        .endpoint(&proxy.endpoint)
        .run();
    run.assert_code(1);
    assert!(run.stdout.contains("did not work within"), "{}", run.stdout);
    assert!(run.stdout.contains("was deleted again"), "{}", run.stdout);
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(keys(m, &user), vec![(old, "Active".to_string())]);
    assert!(journal_files(&sandbox).is_empty());
}
