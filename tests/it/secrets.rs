//! No secret access key appears in any output of any command, at any verbosity, except the
//! new key's with `--output env`.

use crate::support::cmd::{Run, Sandbox};
use crate::support::moto::moto;
use crate::support::proxy::{FaultProxy, Rule};

fn assert_clean(what: &str, run: &Run, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret),
            "{what}: a secret reached stdout"
        );
        assert!(
            !run.stderr.contains(secret),
            "{what}: a secret reached stderr"
        );
    }
}

#[test]
fn no_secret_in_any_output_at_the_highest_verbosity() {
    let m = moto();
    let user = m.unique("secrets");
    m.create_user(&user);
    let (old, old_secret) = m.create_key(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {old}\naws_secret_access_key = {old_secret}\naws_session_token = stale-token-value\n"
    ));
    sandbox.write_config("[profile broken]\naws_access_key_id = AKIAZZZZZZZZZZZZZZZZ\naws_secret_access_key = wrong-secret-0000000000000000000000000000\n");
    let verbose = |args: &[&str]| sandbox.cmd(args).env("RUST_LOG", "trace").run();
    let secrets = [
        old_secret.as_str(),
        "stale-token-value",
        "wrong-secret-0000000000000000000000000000",
    ];

    assert_clean("status", &verbose(&["status", "--all", "-vvv"]), &secrets);
    assert_clean(
        "status json",
        &verbose(&["status", "--all", "--output", "json", "-vvv"]),
        &secrets,
    );
    assert_clean("policy", &verbose(&["policy", "-vvv"]), &secrets);
    assert_clean(
        "dry run",
        &verbose(&["rotate", "--all", "--dry-run", "-vvv"]),
        &secrets,
    );

    // A failing rotation (retire refused) and its recovery, through the proxy.
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(
        Rule::error("UpdateAccessKey", 403, Some("AccessDenied"), "not allowed").forever(),
    );
    let partial = sandbox
        .cmd(&[
            "rotate",
            "--profile",
            "default",
            "--yes",
            "-vvv",
            "--verify-timeout",
            "2s",
        ])
        .env("RUST_LOG", "trace")
        .endpoint(&proxy.endpoint)
        .run();
    partial.assert_code(3);
    let text = sandbox.read_credentials();
    let new_secret = text
        .lines()
        .find(|l| l.starts_with("aws_secret_access_key"))
        .and_then(|l| l.split('=').nth(1))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_secret, old_secret);
    let all = [
        old_secret.as_str(),
        new_secret.as_str(),
        "stale-token-value",
    ];
    assert_clean("partial rotation", &partial, &all);
    proxy.clear_rules();
    let recovered = sandbox
        .cmd(&["recover", "--yes", "-vvv"])
        .env("RUST_LOG", "trace")
        .endpoint(&proxy.endpoint)
        .run();
    recovered.assert_code(0);
    assert_clean("recover", &recovered, &all);
    // The user now has the new key and the retired one: make room for a third.
    let rotated = verbose(&[
        "rotate",
        "--profile",
        "default",
        "--yes",
        "--delete-inactive",
        "-vvv",
    ]);
    rotated.assert_code(0);
    assert_clean("rotate", &rotated, &all);
}
