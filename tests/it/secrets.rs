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

/// No secret reaches a child process. By inspection (src/): the only child the product
/// starts is the `--mfa-command` (`src/cli/mfa.rs`, `shell()`: `sh -c COMMAND`, the command
/// line as the user typed it, stdin null, stdout read for the code); the AWS calls go
/// through the SDK, never through the `aws` CLI, and no `Command` is built anywhere else.
/// The child inherits iam-keys' environment, which never holds a key (keys come from the
/// files). Here the MFA command records its own argv and environment, and neither may hold
/// any secret of the run.
#[test]
fn the_mfa_command_child_gets_no_secret_in_its_arguments_or_environment() {
    let m = moto();
    let user = m.unique("secrets-child");
    m.create_user(&user);
    let (old, old_secret) = m.create_key(&user);
    let serial = m.create_virtual_mfa(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {old}\naws_secret_access_key = {old_secret}\n"
    ));
    sandbox.write_config(&format!(
        "[default]\nregion = us-east-1\nmfa_serial = {serial}\n"
    ));
    let argv = sandbox.path("child-argv");
    let env = sandbox.path("child-env");
    let command = format!(
        "tr '\\0' '\\n' < /proc/$$/cmdline > {}; env > {}; echo 123456",
        argv.display(),
        env.display()
    );
    let run = sandbox
        .cmd(&["rotate", "--yes", "-vvv", "--mfa-command", &command])
        .env("RUST_LOG", "trace")
        .run();
    // moto answers GetSessionToken with fixed example credentials that it then rejects, so
    // the rotation stops there (exit 1, nothing changed); the child ran before that.
    run.assert_code(1);
    let argv = std::fs::read_to_string(&argv).expect("the MFA command ran");
    let env = std::fs::read_to_string(&env).expect("the MFA command ran");
    assert!(argv.starts_with("sh\n-c\n"), "sh -c COMMAND: {argv}");
    assert!(
        !argv.contains(&old_secret),
        "a secret is in the child's arguments"
    );
    assert!(
        !env.contains(&old_secret),
        "a secret is in the child's environment"
    );
    assert!(
        !env.contains("AWS_SECRET_ACCESS_KEY") && !env.contains("AWS_SESSION_TOKEN"),
        "no credential variable is passed to the child"
    );
    assert_clean("rotate with an MFA command", &run, &[&old_secret]);
    assert_eq!(
        m.list_keys(&user),
        vec![(old, "Active".to_string())],
        "nothing changed"
    );
}
