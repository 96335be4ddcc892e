//! Every AWS refusal end to end, through moto (and the proxy where moto cannot produce the
//! error): exit code, a message that names the profile and the masked key and says what to
//! do, never "service error", and nothing changed when the rotation fails.

use crate::support::cmd::{Run, Sandbox};
use crate::support::mask;
use crate::support::moto::{Moto, moto};
use crate::support::proxy::{FaultProxy, KeyMatch, Rule};

fn block(name: &str, id: &str, secret: &str) -> String {
    format!("[{name}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

fn sorted_keys(m: &Moto, user: &str) -> Vec<(String, String)> {
    let mut keys = m.list_keys(user);
    keys.sort();
    keys
}

/// A user with one key and a sandbox whose profile `dev` holds it.
struct Case {
    user: String,
    old: String,
    secret: String,
    sandbox: Sandbox,
    before: String,
    keys_before: Vec<(String, String)>,
}

fn case(prefix: &str) -> Case {
    let m = moto();
    let user = m.unique(prefix);
    m.create_user(&user);
    let (old, secret) = m.create_key(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("dev", &old, &secret));
    Case {
        before: sandbox.read_credentials(),
        keys_before: sorted_keys(m, &user),
        user,
        old,
        secret,
        sandbox,
    }
}

impl Case {
    fn rotate(&self, endpoint: &str) -> Run {
        self.sandbox
            .cmd(&["rotate", "--profile", "dev", "--yes"])
            .endpoint(endpoint)
            .run()
    }

    /// Exit 1, the message names the profile and the masked key and holds `advice`, no
    /// "service error", and neither the files nor IAM changed.
    #[track_caller]
    fn assert_failed_cleanly(&self, run: &Run, advice: &str) {
        run.assert_code(1);
        run.assert_stdout_contains(advice);
        run.assert_stdout_contains("`dev`");
        run.assert_stdout_contains(&mask(&self.old));
        assert!(!run.output().contains("service error"), "{run}");
        run.assert_no_secret(&self.secret);
        assert_eq!(
            self.sandbox.read_credentials(),
            self.before,
            "file unchanged"
        );
        assert_eq!(
            sorted_keys(moto(), &self.user),
            self.keys_before,
            "IAM unchanged"
        );
    }
}

#[test]
fn an_explicit_deny_on_create_access_key_suggests_mfa() {
    let m = moto();
    let c = case("err-deny");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::error(
        "CreateAccessKey",
        403,
        "AccessDenied",
        "User: arn:aws:iam::123456789012:user/x is not authorized to perform: iam:CreateAccessKey \
         on resource: user x with an explicit deny in an identity-based policy",
    ));
    let run = c.rotate(&proxy.endpoint);
    c.assert_failed_cleanly(&run, "explicit Deny");
    run.assert_stdout_contains("--mfa-serial");
    run.assert_stdout_contains("mfa_serial");
}

#[test]
fn a_deleted_key_is_invalid_client_token_id_with_what_to_do() {
    let m = moto();
    let c = case("err-invalid");
    m.delete_key(&c.user, &c.old);
    let keys_now = sorted_keys(m, &c.user);
    let run = c.rotate(&m.endpoint);
    run.assert_code(1);
    run.assert_stdout_contains("does not accept key");
    run.assert_stdout_contains("InvalidClientTokenId");
    run.assert_stdout_contains("`dev`");
    run.assert_stdout_contains(&mask(&c.old));
    assert!(!run.output().contains("service error"), "{run}");
    assert_eq!(c.sandbox.read_credentials(), c.before);
    assert_eq!(sorted_keys(m, &c.user), keys_now);
}

#[test]
fn a_wrong_secret_is_signature_does_not_match() {
    let m = moto();
    let c = case("err-signature");
    // Same key id, another (well-formed) secret: moto's real answer.
    let wrong: String = c.secret.chars().rev().collect();
    c.sandbox.write_credentials(&block("dev", &c.old, &wrong));
    let before = c.sandbox.read_credentials();
    let run = c.rotate(&m.endpoint);
    run.assert_code(1);
    run.assert_stdout_contains("does not belong to key");
    run.assert_stdout_contains("aws_secret_access_key");
    run.assert_stdout_contains("`dev`");
    run.assert_stdout_contains(&mask(&c.old));
    assert!(!run.output().contains("service error"), "{run}");
    run.assert_no_secret(&wrong);
    assert_eq!(c.sandbox.read_credentials(), before);
    assert_eq!(sorted_keys(m, &c.user), c.keys_before);
}

#[test]
fn an_expired_session_of_the_auth_profile_says_so() {
    let m = moto();
    let c = case("err-expired");
    let admin = m.unique("err-expired-admin");
    m.create_user(&admin);
    let (admin_key, admin_secret) = m.create_key(&admin);
    c.sandbox.write_credentials(&format!(
        "{}\n{}aws_session_token = FwoGZXIvYXdzEXPIRED\n",
        block("dev", &c.old, &c.secret),
        block("admin", &admin_key, &admin_secret)
    ));
    let before = c.sandbox.read_credentials();
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(
        Rule::error(
            "*",
            400,
            "ExpiredToken",
            "The security token included in the request is expired",
        )
        .key(KeyMatch::Is(admin_key.clone())),
    );
    let run = c
        .sandbox
        .cmd(&[
            "rotate",
            "--profile",
            "dev",
            "--auth-profile",
            "admin",
            "--yes",
        ])
        .endpoint(&proxy.endpoint)
        .run();
    run.assert_code(1);
    run.assert_stdout_contains("has expired");
    run.assert_stdout_contains("`admin`");
    run.assert_stdout_contains("ExpiredToken");
    assert!(!run.output().contains("service error"), "{run}");
    run.assert_no_secret(&admin_secret);
    assert_eq!(c.sandbox.read_credentials(), before);
    assert_eq!(sorted_keys(m, &c.user), c.keys_before);
}

#[test]
fn limit_exceeded_on_create_explains_the_two_key_limit() {
    let m = moto();
    let c = case("err-limit");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::error(
        "CreateAccessKey",
        409,
        "LimitExceeded",
        "Cannot exceed quota for AccessKeysPerUser: 2",
    ));
    let run = c.rotate(&proxy.endpoint);
    run.assert_code(1);
    run.assert_stdout_contains("two access keys (the IAM limit)");
    run.assert_stdout_contains(&mask(&c.old));
    assert!(!run.output().contains("service error"), "{run}");
    assert_eq!(c.sandbox.read_credentials(), c.before);
    assert_eq!(sorted_keys(m, &c.user), c.keys_before);
}

#[test]
fn throttling_is_retried_and_the_rotation_then_succeeds() {
    let m = moto();
    let c = case("err-throttle-ok");
    let proxy = FaultProxy::start(&m.endpoint);
    let rule = proxy.add_rule(Rule::throttle("CreateAccessKey").times(2));
    let run = c.rotate(&proxy.endpoint);
    run.assert_code(0);
    assert_eq!(proxy.fired(rule), 2, "two throttled answers");
    assert_eq!(
        proxy.count("CreateAccessKey"),
        3,
        "retried until it succeeded"
    );
    assert_ne!(
        c.sandbox.read_credentials(),
        c.before,
        "the new key is written"
    );
    let keys = sorted_keys(m, &c.user);
    assert_eq!(keys.len(), 2, "exactly one key created");
    assert!(keys.contains(&(c.old.clone(), "Inactive".to_string())));
}

#[test]
fn throttling_forever_fails_with_nothing_changed() {
    let m = moto();
    let c = case("err-throttle-forever");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::throttle("ListAccessKeys").forever());
    let run = c
        .sandbox
        .cmd(&[
            "rotate",
            "--profile",
            "dev",
            "--yes",
            "--throttle-timeout",
            "3s",
        ])
        .endpoint(&proxy.endpoint)
        .run();
    c.assert_failed_cleanly(&run, "kept throttling ListAccessKeys");
    assert!(proxy.count("ListAccessKeys") >= 2, "it was retried");
    assert_eq!(proxy.count("CreateAccessKey"), 0);
}

#[test]
fn a_closed_endpoint_is_named_in_the_network_error() {
    let c = case("err-network");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = c.rotate(&endpoint);
    run.assert_code(1);
    run.assert_stdout_contains("no answer from");
    run.assert_stdout_contains(&format!("127.0.0.1:{port}"));
    assert!(!run.output().contains("service error"), "{run}");
    assert_eq!(c.sandbox.read_credentials(), c.before);
    assert_eq!(sorted_keys(moto(), &c.user), c.keys_before);
}
