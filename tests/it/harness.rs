//! Tests of the test harness itself (`support/`): if these fail, no other integration test
//! result can be trusted. They check that moto enforces authentication, that every fault the
//! proxy offers does what it says (driven with the Rust SDK and with raw HTTP), that the
//! scrubbed environment holds nothing from the host, that the venv has its tools, and that
//! moto does not outlive its test process.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::retry::RetryConfig;

use crate::support::moto::{iam_client, policy_allowing, sts_client};
use crate::support::python::{venv_bin, venv_python};
use crate::support::{
    Fault, FaultProxy, KeyMatch, Rule, Sandbox, finish, mask, moto, redact_secrets, unique,
};

/// A key id moto never issued.
const UNKNOWN_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const UNKNOWN_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A user with a key, made for one test.
fn user_with_key(prefix: &str) -> (String, String, String) {
    let m = moto();
    let user = unique(prefix);
    m.create_user(&user);
    let (id, secret) = m.create_key(&user);
    (user, id, secret)
}

#[test]
fn venv_has_the_tools() {
    for tool in ["aws", "moto_server", "parliament"] {
        assert!(venv_bin(tool).is_file(), "{tool} missing from the venv");
    }
    let out = Command::new(venv_python())
        .args([
            "-c",
            "import botocore, boto3, moto, parliament, awscli; print(botocore.__version__, moto.__version__)",
        ])
        .env_clear()
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "imports failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.44.5 5.2.5");

    let sandbox = Sandbox::new();
    sandbox
        .aws_cli(&["--version"])
        .assert_success()
        .assert_output_contains("aws-cli/1.");
}

#[test]
fn parliament_lints_a_policy() {
    let good = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListAccessKeys","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#;
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:NoSuchAction","Resource":"*"}]}"#;
    let lint = |policy: &str| {
        let out = Command::new(venv_bin("parliament"))
            .args(["--string", policy, "--json"])
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .output()
            .expect("run parliament");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(lint(good).trim(), "", "a valid policy has no findings");
    assert!(
        lint(bad).contains("UNKNOWN_ACTION"),
        "parliament flags an unknown action"
    );
}

#[test]
fn moto_enforces_authentication() {
    let m = moto();
    let (user, id, secret) = user_with_key("auth");
    assert!(m.key_works_as(&id, &secret, &user));

    // Unknown key, through the proxy so the status is visible: moto's 403 with no code.
    let proxy = FaultProxy::start(&m.endpoint);
    let err = m
        .whoami_at(&proxy.endpoint, UNKNOWN_KEY, UNKNOWN_SECRET, None)
        .expect_err("an unknown key is refused");
    assert!(err.starts_with("<no code>"), "moto's envelope: {err}");
    let wrong_secret = m.whoami_at(&proxy.endpoint, &id, UNKNOWN_SECRET, None);
    assert!(wrong_secret.is_err(), "a wrong secret is refused");
    let seen = proxy.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].action, "GetCallerIdentity");
    assert_eq!(seen[0].service.as_deref(), Some("sts"));
    assert_eq!(seen[0].key_id.as_deref(), Some(UNKNOWN_KEY));
    assert_eq!(seen[0].status, 403);
    assert_eq!(seen[1].status, 403);

    // A deleted key stops working; an inactive one (moto's gap) still works.
    let (id2, secret2) = m.create_key(&user);
    m.set_key_status(&user, &id, "Inactive");
    assert!(
        m.key_works_as(&id, &secret, &user),
        "moto accepts inactive keys"
    );
    m.delete_key(&user, &id);
    assert!(m.whoami(&id, &secret).is_err(), "a deleted key is refused");
    assert_eq!(
        m.list_keys(&user),
        vec![(id2.clone(), "Active".to_string())]
    );
    assert!(m.key_works_as(&id2, &secret2, &user));
}

#[test]
fn moto_enforces_policies_by_action() {
    let m = moto();
    let user = unique("narrow");
    m.create_user_with_policy(&user, &policy_allowing(&["iam:GetUser"]));
    let (id, secret) = m.create_key(&user);
    let iam = iam_client(&m.endpoint, &id, &secret, None);
    let denied = m
        .block_on(iam.list_access_keys().user_name(&user).send())
        .expect_err("ListAccessKeys is not allowed");
    // moto sends AccessDenied in its auth envelope too: the Rust SDK sees 403 and no code.
    assert_eq!(denied.code(), None, "{denied:?}");
    assert_eq!(
        denied.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
    let allowed = m.block_on(iam.get_user().user_name(&user).send());
    assert!(allowed.is_ok(), "GetUser is allowed: {allowed:?}");

    // The default self-service user can manage its keys, and a second key fits; a third not.
    let (user2, id2, secret2) = user_with_key("selfservice");
    let iam2 = iam_client(&m.endpoint, &id2, &secret2, None);
    let created = m
        .block_on(iam2.create_access_key().user_name(&user2).send())
        .expect("CreateAccessKey with the user's own key");
    let new_id = created.access_key().unwrap().access_key_id().to_string();
    let third = m
        .block_on(iam2.create_access_key().user_name(&user2).send())
        .expect_err("a third key exceeds the quota");
    assert_eq!(third.code(), Some("LimitExceeded"));
    let ids: BTreeSet<String> = m.list_keys(&user2).into_iter().map(|k| k.0).collect();
    assert_eq!(ids, BTreeSet::from([id2, new_id]));
}

#[test]
fn moto_makes_virtual_mfa_devices() {
    let m = moto();
    let (user, _, _) = user_with_key("mfa");
    let serial = m.create_virtual_mfa(&user);
    assert_eq!(serial, format!("arn:aws:iam::123456789012:mfa/{user}"));
    let devices = m
        .block_on(m.admin_iam().list_mfa_devices().user_name(&user).send())
        .expect("ListMFADevices");
    assert_eq!(devices.mfa_devices().len(), 1);
}

#[test]
fn proxy_forwards_and_records_requests() {
    let m = moto();
    let (user, id, secret) = user_with_key("record");
    let proxy = FaultProxy::start(&m.endpoint);
    assert!(m.key_works_as(&id, &secret, &user));
    assert_eq!(
        m.whoami_at(&proxy.endpoint, &id, &secret, None).as_deref(),
        Ok(format!("arn:aws:iam::123456789012:user/{user}").as_str())
    );
    let iam = iam_client(&proxy.endpoint, &id, &secret, None);
    m.block_on(iam.list_access_keys().user_name(&user).send())
        .expect("ListAccessKeys through the proxy");
    // A session's credentials (moto refuses them, but the request shape is what counts).
    let _ = m.whoami_at(
        &proxy.endpoint,
        &id,
        &secret,
        Some("session-token-for-test"),
    );
    let sts = sts_client(&proxy.endpoint, &id, &secret, None);
    let _ = m.block_on(
        sts.get_session_token()
            .serial_number("arn:aws:iam::123456789012:mfa/x")
            .token_code("123456")
            .send(),
    );

    let seen = proxy.requests();
    let actions: Vec<&str> = seen.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "GetCallerIdentity",
            "ListAccessKeys",
            "GetCallerIdentity",
            "GetSessionToken"
        ]
    );
    assert_eq!(seen[0].status, 200);
    assert_eq!(seen[0].key_id.as_deref(), Some(id.as_str()));
    assert!(!seen[0].has_session_token);
    assert_eq!(seen[1].service.as_deref(), Some("iam"));
    assert_eq!(seen[1].params.get("UserName"), Some(&user));
    assert_eq!(seen[1].status, 200);
    assert!(seen[2].has_session_token);
    assert_eq!(
        seen[3].params["SerialNumber"],
        "arn:aws:iam::123456789012:mfa/x"
    );
    assert_eq!(seen[3].params["TokenCode"], "123456");
    assert_eq!(proxy.count("GetCallerIdentity"), 2);
    assert!(seen.iter().all(|r| r.injected.is_none()));
    // Debug shows parameter names, never values.
    let debug = format!("{seen:?}");
    assert!(!debug.contains("123456\"") && debug.contains("TokenCode"));
    assert!(!debug.contains(&id), "Debug masks key ids");
}

#[test]
fn proxy_injects_errors_with_and_without_code() {
    let m = moto();
    let (_, id, secret) = user_with_key("errors");
    let proxy = FaultProxy::start(&m.endpoint);
    let rule = proxy.add_rule(
        Rule::error("GetCallerIdentity", 503, "ServiceUnavailable", "try later").times(1),
    );
    let sts = sts_client(&proxy.endpoint, &id, &secret, None);
    let err = m
        .block_on(sts.get_caller_identity().send())
        .expect_err("the injected 503");
    assert_eq!(err.code(), Some("ServiceUnavailable"));
    assert_eq!(err.message(), Some("try later"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    assert!(
        m.block_on(sts.get_caller_identity().send()).is_ok(),
        "used up"
    );
    assert_eq!(proxy.fired(rule), 1);

    proxy.clear_rules();
    proxy.add_rule(Rule::error("GetCallerIdentity", 403, None, "denied"));
    let err = m
        .block_on(sts.get_caller_identity().send())
        .expect_err("the injected 403");
    assert_eq!(err.code(), None, "no code, like moto's auth errors");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));

    let statuses: Vec<(u16, Option<String>)> = proxy
        .requests()
        .into_iter()
        .map(|r| (r.status, r.injected))
        .collect();
    assert_eq!(
        statuses,
        [
            (503, Some("error 503 ServiceUnavailable".to_string())),
            (200, None),
            (403, Some("error 403 <no code>".to_string())),
        ]
    );
}

#[test]
fn proxy_throttles_and_the_sdk_retries() {
    let m = moto();
    let (_, id, secret) = user_with_key("throttle");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::throttle("GetCallerIdentity").times(2));
    let retrying = sts_client(&proxy.endpoint, &id, &secret, None)
        .config()
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10)),
        )
        .build();
    let sts = aws_sdk_sts::Client::from_conf(retrying);
    assert!(m.block_on(sts.get_caller_identity().send()).is_ok());
    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 400, 200]);
}

#[test]
fn proxy_skips_and_matches_keys() {
    let m = moto();
    let (user, old_id, old_secret) = user_with_key("drill");
    let (new_id, new_secret) = m.create_key(&user);
    let proxy = FaultProxy::start(&m.endpoint);
    let drill = proxy.add_rule(Rule::invalid_token_for_new_keys(&old_id, 2));
    let at = |id: &str, secret: &str| m.whoami_at(&proxy.endpoint, id, secret, None);
    assert!(
        at(&old_id, &old_secret).is_ok(),
        "the old key is never refused"
    );
    assert_eq!(
        at(&new_id, &new_secret).unwrap_err(),
        "InvalidClientTokenId: The security token included in the request is invalid."
    );
    assert!(at(&new_id, &new_secret).is_err());
    assert!(
        at(&new_id, &new_secret).is_ok(),
        "propagated after 2 refusals"
    );
    assert_eq!(proxy.fired(drill), 2);

    proxy.clear_rules();
    proxy.add_rule(
        Rule::error("GetCallerIdentity", 500, "InternalFailure", "boom")
            .key(KeyMatch::Is(new_id.clone()))
            .skip(1)
            .times(1),
    );
    assert!(at(&new_id, &new_secret).is_ok(), "skipped");
    assert!(at(&old_id, &old_secret).is_ok(), "another key");
    assert!(
        at(&new_id, &new_secret)
            .unwrap_err()
            .starts_with("InternalFailure")
    );
    assert!(at(&new_id, &new_secret).is_ok(), "used up");
}

#[test]
fn proxy_delays() {
    let m = moto();
    let (_, id, secret) = user_with_key("delay");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::delay("GetCallerIdentity", Duration::from_millis(700)));
    let started = Instant::now();
    assert!(m.whoami_at(&proxy.endpoint, &id, &secret, None).is_ok());
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert_eq!(proxy.requests()[0].injected.as_deref(), Some("delay 700ms"));
}

#[test]
fn proxy_resets_connections() {
    let m = moto();
    let (_, id, secret) = user_with_key("reset");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::reset("*").times(2));

    let sts = sts_client(&proxy.endpoint, &id, &secret, None);
    let err = m
        .block_on(sts.get_caller_identity().send())
        .expect_err("no answer");
    assert!(
        !matches!(err, SdkError::ServiceError(_)),
        "a transport error, not a service error: {err:?}"
    );

    // Raw HTTP: the request is read, then the connection closes with no byte of answer.
    let mut raw = TcpStream::connect(proxy.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    write!(
        raw,
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        proxy.addr,
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(answer.is_empty(), "got {} bytes", answer.len());

    let seen = proxy.requests();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|r| r.status == 0 && r.injected.as_deref() == Some("reset"))
    );
    assert!(
        m.whoami_at(&proxy.endpoint, &id, &secret, None).is_ok(),
        "used up"
    );
}

#[test]
fn proxy_holds_before_forwarding() {
    let m = moto();
    let (user, id, secret) = user_with_key("holdbefore");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::hold_before("CreateAccessKey"));
    let iam = iam_client(&proxy.endpoint, &id, &secret, None);
    std::thread::scope(|s| {
        let call = s.spawn(|| {
            m.block_on(iam.create_access_key().user_name(&user).send())
                .map(|out| out.access_key().is_some())
                .map_err(|e| format!("{e:?}"))
        });
        assert!(
            proxy.wait_held(1, Duration::from_secs(20)),
            "the call is held"
        );
        assert_eq!(proxy.held(), 1);
        assert_eq!(m.list_keys(&user).len(), 1, "not forwarded yet");
        assert!(!call.is_finished());
        proxy.release_all();
        assert_eq!(call.join().unwrap(), Ok(true), "forwarded after release");
    });
    assert_eq!(m.list_keys(&user).len(), 2);
    assert_eq!(proxy.held(), 0);
}

#[test]
fn proxy_holds_answers_and_stops_when_dropped() {
    let m = moto();
    let (user, id, secret) = user_with_key("holdafter");
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::hold_after("CreateAccessKey"));
    let iam = iam_client(&proxy.endpoint, &id, &secret, None);
    std::thread::scope(|s| {
        let call = s.spawn(|| {
            m.block_on(iam.create_access_key().user_name(&user).send())
                .map(|out| out.access_key().is_some())
                .map_err(|e| format!("{e:?}"))
        });
        assert!(proxy.wait_held(1, Duration::from_secs(20)));
        assert_eq!(m.list_keys(&user).len(), 2, "the effect happened");
        assert!(!call.is_finished(), "the client has not heard");
        assert_eq!(proxy.requests()[0].status, 200, "moto answered");
        let started = Instant::now();
        drop(proxy);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "drop ends every proxy thread promptly"
        );
        let lost = call.join().unwrap();
        assert!(lost.is_err(), "the answer was lost");
    });
}

#[test]
fn scrubbed_environment_has_nothing_from_the_host() {
    let sandbox = Sandbox::new();
    let run = sandbox
        .cmd(&[])
        .program("/usr/bin/env")
        .env("EXTRA_FOR_TEST", "1")
        .run();
    run.assert_success();
    let vars: Vec<(&str, &str)> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let names: BTreeSet<&str> = vars.iter().map(|v| v.0).collect();
    let expected = BTreeSet::from([
        "HOME",
        "PATH",
        "LANG",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_ENDPOINT_URL",
        "AWS_EC2_METADATA_DISABLED",
        "NO_PROXY",
        "NO_COLOR",
        "EXTRA_FOR_TEST",
    ]);
    assert_eq!(names, expected);
    let get = |k: &str| vars.iter().find(|v| v.0 == k).map(|v| v.1);
    assert_eq!(get("HOME"), sandbox.home().to_str());
    assert_eq!(
        get("AWS_SHARED_CREDENTIALS_FILE"),
        sandbox.credentials.to_str()
    );
    assert_eq!(get("AWS_CONFIG_FILE"), sandbox.config.to_str());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(moto().endpoint.as_str()));
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));

    // An endpoint override and an overridden default.
    let run = sandbox
        .cmd(&[])
        .program("/usr/bin/env")
        .endpoint("http://127.0.0.1:9")
        .env("NO_COLOR", "0")
        .run();
    assert!(run.stdout.contains("AWS_ENDPOINT_URL=http://127.0.0.1:9\n"));
    assert!(run.stdout.contains("NO_COLOR=0\n") && !run.stdout.contains("NO_COLOR=1"));
}

#[test]
fn binary_runs_in_the_sandbox() {
    let sandbox = Sandbox::new();
    sandbox
        .iam_keys(&["--version"])
        .assert_success()
        .assert_stdout_contains("iam-keys");
    // Standard input is empty and not a terminal unless a test gives text.
    let run = sandbox
        .cmd(&[])
        .program("/bin/cat")
        .stdin("typed by the test\n")
        .run();
    run.assert_success()
        .assert_stdout_contains("typed by the test");
    sandbox.cmd(&[]).program("/bin/cat").run().assert_success();
}

#[test]
fn commands_time_out_and_can_be_killed() {
    let sandbox = Sandbox::new();
    let started = Instant::now();
    let timed_out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sandbox
            .cmd(&["30"])
            .program("/bin/sleep")
            .timeout(Duration::from_millis(300))
            .run()
    }));
    assert!(
        timed_out.is_err(),
        "a command past its deadline fails the test"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    let mut child = sandbox.cmd(&["30"]).program("/bin/sleep").spawn();
    child.kill().unwrap();
    assert_eq!(finish(child).status, -9, "SIGKILL shows as -9");

    sandbox
        .cmd(&["-c", "echo out; echo err >&2; exit 3"])
        .program("/bin/sh")
        .run()
        .assert_code(3)
        .assert_stdout_contains("out")
        .assert_stderr_contains("err");
}

#[test]
fn aws_cli_uses_the_sandbox_files() {
    let m = moto();
    let (user, id, secret) = user_with_key("cli");
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[p]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    sandbox.write_config("[default]\nregion = us-east-1\n\n[profile p]\nregion = us-east-1\n");
    let run = sandbox.aws_cli(&["sts", "get-caller-identity", "--profile", "p"]);
    run.assert_success().assert_no_secret(&secret);
    assert_eq!(
        run.json()["Arn"],
        format!("arn:aws:iam::123456789012:user/{user}")
    );
    // Files in the sandbox only: there is no default profile, and no key anywhere else.
    sandbox
        .aws_cli(&["sts", "get-caller-identity"])
        .assert_code(255)
        .assert_stderr_contains("Unable to locate credentials");
    // A refused key fails the CLI too.
    m.delete_key(&user, &id);
    sandbox
        .aws_cli(&["sts", "get-caller-identity", "--profile", "p"])
        .assert_code(255)
        .assert_stderr_contains("InvalidClientTokenId");
}

#[test]
fn secrets_are_masked_in_messages() {
    assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
    let text = format!("key={UNKNOWN_SECRET}\nid=AKIAIOSFODNN7EXAMPLE");
    let shown = redact_secrets(&text);
    assert!(!shown.contains(UNKNOWN_SECRET));
    assert!(shown.contains("AKIAIOSFODNN7EXAMPLE"));
    let run = crate::support::Run {
        label: "t".into(),
        status: 1,
        stdout: text,
        stderr: String::new(),
    };
    assert!(!format!("{run}").contains(UNKNOWN_SECRET));
    let leak = std::panic::catch_unwind(|| {
        run.assert_no_secret(UNKNOWN_SECRET);
    });
    let message = *leak
        .expect_err("the leak is caught")
        .downcast::<String>()
        .unwrap();
    assert!(!message.contains(UNKNOWN_SECRET), "the message hides it");
}

/// Set by [`moto_dies_with_its_test_process`] for the child it starts.
const PROBE_VAR: &str = "IAM_KEYS_IT_MOTO_PROBE";

/// Not a test on its own: the child process of [`moto_dies_with_its_test_process`].
#[test]
#[ignore = "helper process for moto_dies_with_its_test_process"]
fn moto_probe_child() {
    if std::env::var_os(PROBE_VAR).is_none() {
        return;
    }
    println!("MOTO_PORT={}", moto().port);
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn moto_dies_with_its_test_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "harness::moto_probe_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_VAR, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the probe process");
    let mut port = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest prints "test harness::moto_probe_child ... " before the line.
        if let Some((_, p)) = line.split_once("MOTO_PORT=") {
            port = Some(p.trim().parse::<u16>().unwrap());
            break;
        }
    }
    let port = port.expect("the probe reports its moto port");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "probe's moto up"
    );
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup code runs
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "moto on port {port} outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn fault_kinds_are_described() {
    // Keep Fault's variants all constructible from the convenience constructors.
    assert_eq!(Rule::reset("X").fault, Fault::Reset);
    assert_eq!(Rule::hold_before("X").fault, Fault::HoldBeforeForward);
    assert_eq!(Rule::hold_after("X").fault, Fault::HoldAfterForward);
    assert_eq!(
        Rule::delay("X", Duration::from_secs(1)).fault,
        Fault::Delay(Duration::from_secs(1))
    );
    let drill = Rule::invalid_token_for_new_keys("AKIAOLD", 3);
    assert_eq!(drill.action, "GetCallerIdentity");
    assert_eq!(drill.key, KeyMatch::IsNot("AKIAOLD".into()));
    assert_eq!(drill.times, Some(3));
    assert_eq!(Rule::throttle("X").forever().times, None);
}

#[test]
fn proxy_throttles_calls_beyond_a_rate() {
    let m = moto();
    let (_, id, secret) = user_with_key("rate");
    let proxy = FaultProxy::start(&m.endpoint);
    let rule = proxy.add_rule(Rule::throttle_above("GetCallerIdentity", 3));
    let started = std::time::Instant::now();
    let answers: Vec<Result<String, String>> = (0..6)
        .map(|_| m.whoami_at(&proxy.endpoint, &id, &secret, None))
        .collect();
    assert!(started.elapsed() < Duration::from_secs(1), "one window");
    assert!(answers[..3].iter().all(Result::is_ok), "{answers:?}");
    for a in &answers[3..] {
        let e = a.as_ref().unwrap_err();
        assert!(e.contains("Throttling"), "{e}");
    }
    assert_eq!(proxy.fired(rule), 3);
    // A second later, the window has room again.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(m.whoami_at(&proxy.endpoint, &id, &secret, None).is_ok());
}

#[test]
fn proxy_refuses_new_keys_until_they_propagate() {
    let m = moto();
    let (user, old_id, old_secret) = user_with_key("propagate");
    let (new_id, new_secret) = m.create_key(&user);
    let proxy = FaultProxy::start(&m.endpoint);
    let rule = proxy.add_rule(Rule::unpropagated_for(
        std::slice::from_ref(&old_id),
        Duration::from_millis(600),
    ));
    let at = |id: &str, secret: &str| m.whoami_at(&proxy.endpoint, id, secret, None);
    assert!(at(&old_id, &old_secret).is_ok(), "a known key always works");
    let refused = at(&new_id, &new_secret).unwrap_err();
    assert!(refused.contains("InvalidClientTokenId"), "{refused}");
    assert!(at(&new_id, &new_secret).is_err(), "still within its delay");
    std::thread::sleep(Duration::from_millis(700));
    assert!(at(&new_id, &new_secret).is_ok(), "propagated");
    assert_eq!(proxy.fired(rule), 2);
}
