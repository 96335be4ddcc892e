//! MFA end to end through the recording proxy in front of moto. moto checks no codes and hands
//! out constant session credentials that it then rejects (see `shared/reference/moto.md`), so
//! these tests check the request shape: GetSessionToken carried the serial and the code and was
//! signed with the old key, the calls after it (STS and IAM) were signed with the session, one code per
//! device; and that the refused session changes nothing.

use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use crate::support::proxy::{FaultProxy, Recorded};

/// The access key id moto gives every GetSessionToken answer.
const MOTO_SESSION_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

fn profile(name: &str, id: &str, secret: &str, extra: &str) -> String {
    format!("[{name}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n{extra}")
}

fn sorted_keys(user: &str) -> Vec<(String, String)> {
    let mut keys = moto().list_keys(user);
    keys.sort();
    keys
}

/// The requests after the first GetSessionToken (to STS and IAM alike).
fn after_session(requests: &[Recorded]) -> Vec<Recorded> {
    requests
        .iter()
        .skip_while(|r| r.action != "GetSessionToken")
        .skip(1)
        .cloned()
        .collect()
}

#[test]
fn a_profile_with_mfa_serial_gets_one_session_and_signs_iam_calls_with_it() {
    let m = moto();
    let user = m.unique("mfa-shape");
    m.create_user(&user);
    let serial = m.create_virtual_mfa(&user);
    let (old, secret) = m.create_key(&user);
    let proxy = FaultProxy::start(&m.endpoint);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&profile(
        "dev",
        &old,
        &secret,
        &format!("mfa_serial = {serial}\n"),
    ));
    let before = sandbox.read_credentials();
    let keys_before = sorted_keys(&user);

    let run = sandbox
        .cmd(&[
            "rotate",
            "--profile",
            "dev",
            "--yes",
            "--mfa-code",
            "123456",
        ])
        .endpoint(&proxy.endpoint)
        .run();

    let requests = proxy.requests();
    let sessions: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.action == "GetSessionToken")
        .collect();
    assert_eq!(sessions.len(), 1, "one GetSessionToken: {requests:?}");
    let gst = sessions[0];
    assert_eq!(gst.params.get("SerialNumber"), Some(&serial));
    assert!(
        gst.params.get("TokenCode").map(String::as_str) == Some("123456"),
        "GetSessionToken carried the code given with --mfa-code"
    );
    assert_eq!(
        gst.key_id.as_deref(),
        Some(old.as_str()),
        "signed with the old key"
    );
    assert!(!gst.has_session_token);
    let after = after_session(&requests);
    assert!(!after.is_empty(), "calls follow the session: {requests:?}");
    for r in &after {
        assert_eq!(
            r.key_id.as_deref(),
            Some(MOTO_SESSION_KEY),
            "{} signed with the session's key",
            r.action
        );
        assert!(
            r.has_session_token,
            "{} carries X-Amz-Security-Token",
            r.action
        );
    }
    assert!(
        requests
            .iter()
            .all(|r| r.service.as_deref() != Some("iam") || r.key_id.as_deref() != Some(&old)),
        "no IAM call signed with the old key itself"
    );

    // moto rejects its own session credentials: the rotation fails and nothing changes.
    run.assert_code(1);
    assert!(run.stdout.contains("MFA session"), "{}", run.stdout);
    assert!(run.stdout.contains("`dev`"), "{}", run.stdout);
    assert!(!run.output().contains("service error"));
    assert!(
        !run.output().contains("123456"),
        "the code is never printed"
    );
    run.assert_no_secret(&secret);
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(sorted_keys(&user), keys_before);
    assert_eq!(proxy.count("CreateAccessKey"), 0);
}

#[test]
fn two_keys_of_one_user_sharing_a_device_need_one_code_and_one_command_run() {
    let m = moto();
    let user = m.unique("mfa-once");
    m.create_user(&user);
    let serial = m.create_virtual_mfa(&user);
    let (k1, s1) = m.create_key(&user);
    let (k2, s2) = m.create_key(&user);
    let proxy = FaultProxy::start(&m.endpoint);
    let sandbox = Sandbox::new();
    let with_serial = format!("mfa_serial = {serial}\n");
    sandbox.write_credentials(&format!(
        "{}\n{}",
        profile("one", &k1, &s1, &with_serial),
        profile("two", &k2, &s2, &with_serial)
    ));
    let before = sandbox.read_credentials();
    let keys_before = sorted_keys(&user);
    let counter = sandbox.path("mfa-command-runs");
    let command = format!(
        "echo run >> '{}'; echo 'aws:{user}  424242'",
        counter.display()
    );

    let run = sandbox
        .cmd(&[
            "rotate",
            "--profile",
            "one",
            "--profile",
            "two",
            "--yes",
            "--mfa-command",
            &command,
        ])
        .endpoint(&proxy.endpoint)
        .run();

    let runs = std::fs::read_to_string(&counter).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "the code command ran once for the device"
    );
    let requests = proxy.requests();
    let sessions: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.action == "GetSessionToken")
        .collect();
    assert_eq!(
        sessions.len(),
        1,
        "one session for the device: {requests:?}"
    );
    assert_eq!(sessions[0].params.get("SerialNumber"), Some(&serial));
    assert!(sessions[0].params.get("TokenCode").map(String::as_str) == Some("424242"));
    let signer = sessions[0].key_id.clone().unwrap_or_default();
    assert!(
        signer == k1 || signer == k2,
        "signed with one of the old keys"
    );
    let after = after_session(&requests);
    assert!(!after.is_empty());
    assert!(
        after
            .iter()
            .all(|r| r.key_id.as_deref() == Some(MOTO_SESSION_KEY) && r.has_session_token),
        "both keys' calls go through the one session: {after:?}"
    );

    run.assert_code(1);
    assert!(
        !run.output().contains("424242"),
        "the code is never printed"
    );
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(sorted_keys(&user), keys_before);
}

#[test]
fn mfa_without_a_serial_lists_the_devices_and_uses_the_only_one() {
    let m = moto();
    let user = m.unique("mfa-pick");
    m.create_user(&user);
    let serial = m.create_virtual_mfa(&user);
    let (old, secret) = m.create_key(&user);
    let proxy = FaultProxy::start(&m.endpoint);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&profile("default", &old, &secret, ""));
    let before = sandbox.read_credentials();

    let run = sandbox
        .cmd(&["rotate", "--yes", "--mfa", "--mfa-code", "000000"])
        .endpoint(&proxy.endpoint)
        .run();

    let requests = proxy.requests();
    let list = requests
        .iter()
        .find(|r| r.action == "ListMFADevices")
        .unwrap_or_else(|| panic!("no ListMFADevices: {requests:?}"));
    assert_eq!(list.key_id.as_deref(), Some(old.as_str()));
    assert_eq!(list.params.get("UserName"), Some(&user));
    let gst = requests
        .iter()
        .find(|r| r.action == "GetSessionToken")
        .unwrap_or_else(|| panic!("no GetSessionToken: {requests:?}"));
    assert_eq!(
        gst.params.get("SerialNumber"),
        Some(&serial),
        "the only device"
    );
    let list_at = requests
        .iter()
        .position(|r| r.action == "ListMFADevices")
        .unwrap();
    let gst_at = requests
        .iter()
        .position(|r| r.action == "GetSessionToken")
        .unwrap();
    assert!(list_at < gst_at, "devices listed before the session");
    run.assert_code(1);
    assert_eq!(sandbox.read_credentials(), before);
}

#[test]
fn dry_run_and_status_say_that_mfa_will_be_needed() {
    let m = moto();
    let user = m.unique("mfa-dry");
    m.create_user(&user);
    let serial = m.create_virtual_mfa(&user);
    let (old, secret) = m.create_key(&user);
    let proxy = FaultProxy::start(&m.endpoint);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&profile(
        "dev",
        &old,
        &secret,
        &format!("mfa_serial = {serial}\n"),
    ));

    let plan = sandbox
        .cmd(&["rotate", "--profile", "dev", "--dry-run"])
        .endpoint(&proxy.endpoint)
        .run();
    plan.assert_code(0);
    assert!(plan.stdout.contains("MFA needed"), "{}", plan.stdout);
    assert!(plan.stdout.contains(&serial), "{}", plan.stdout);
    assert_eq!(
        proxy.count("GetSessionToken"),
        0,
        "a dry run asks for no code"
    );

    let json = sandbox
        .cmd(&[
            "rotate",
            "--profile",
            "dev",
            "--dry-run",
            "--output",
            "json",
        ])
        .endpoint(&proxy.endpoint)
        .run();
    json.assert_code(0);
    assert_eq!(json.json()["keys"][0]["mfa_serial"], serial.as_str());

    let status = sandbox
        .cmd(&["status", "--profile", "dev", "--output", "json"])
        .endpoint(&proxy.endpoint)
        .run();
    assert_eq!(status.json()["profiles"][0]["mfa_serial"], serial.as_str());
    let text = sandbox
        .cmd(&["status", "--profile", "dev"])
        .endpoint(&proxy.endpoint)
        .run();
    assert!(text.stdout.contains("[MFA]"), "{}", text.stdout);
}
