//! What is logged and shown: every call's one debug line, no secret at any level, ambient
//! `AWS_*` settings change nothing, `Debug` shows no credential. The child-process tests run
//! this test binary again with a scrubbed or a polluted environment.

use super::*;

/// Everything that the SDK and our code log at TRACE during a full round of calls
/// (over real HTTP on 127.0.0.1), with a long-term key and with an MFA session.
async fn trace_output_of_every_call() -> String {
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (url, _) = serve(|body| Some(canned(body))).await;
    let connector = SdkConnector::new(test_settings()).unwrap();
    let client = connector.connect(&target("us-east-1", Some(&url)));
    client.caller_identity().await.unwrap();
    client.list_access_keys("alice").await.unwrap();
    client.create_access_key("alice").await.unwrap();
    client
        .update_access_key("alice", KEY_ID, KeyStatus::Inactive)
        .await
        .unwrap();
    client.access_key_last_used(KEY_ID).await.unwrap();
    client.list_mfa_devices("alice").await.unwrap();
    client
        .session_token(MFA_SERIAL, &Secret::new(MFA_CODE), 3600)
        .await
        .unwrap();
    let session = connector.connect(&session_target(Some(&url)));
    session.list_access_keys("alice").await.unwrap();
    session.delete_access_key("alice", KEY_ID).await.unwrap();
    drop(_guard);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// Run in a child process: writes the TRACE output of every call to the file named by
/// `IAM_KEYS_TRACE_CHILD` (see `trace_logs_carry_no_secret_token_or_mfa_code`).
#[tokio::test]
async fn trace_child() {
    let Some(path) = std::env::var_os("IAM_KEYS_TRACE_CHILD") else {
        return;
    };
    std::fs::write(path, trace_output_of_every_call().await).unwrap();
}

/// The TRACE records of a child test process run with `env`, one string per record.
fn trace_records(env: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.log");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "aws::sdk::tests::logs::trace_child",
            "--test-threads=1",
        ])
        .env("IAM_KEYS_TRACE_CHILD", &path)
        .env_remove("LOG_SENSITIVE_BODIES")
        .env_remove("LOG_SIGNABLE_BODY");
    for (k, v) in env {
        child.env(k, v);
    }
    let output = child.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let logs = std::fs::read_to_string(&path).unwrap();
    // A record starts with its timestamp; multi-line values continue it.
    let mut records: Vec<String> = Vec::new();
    for line in logs.lines() {
        match records.last_mut() {
            Some(last) if !line.starts_with("20") => {
                last.push('\n');
                last.push_str(line);
            }
            _ => records.push(line.to_string()),
        }
    }
    records
}

/// What must never be logged, and a name for it.
fn forbidden() -> Vec<(&'static str, String)> {
    vec![
        ("the long-term secret", SECRET.to_string()),
        (
            "the form-encoded long-term secret",
            SECRET.replace('/', "%2F").replace('+', "%2B"),
        ),
        ("the new key's secret", CREATED_SECRET.to_string()),
        ("the session secret", SESSION_SECRET.to_string()),
        ("the session token", SESSION_TOKEN.to_string()),
        (
            "a piece of the session token",
            SESSION_TOKEN[20..60].to_string(),
        ),
        (
            "the MFA code in a request body",
            format!("TokenCode={MFA_CODE}"),
        ),
        ("the MFA code in a Debug value", format!("\"{MFA_CODE}\"")),
        (
            "the MFA code in a Debug byte slice",
            format!("TokenCode={MFA_CODE}")
                .bytes()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ]
}

#[test]
fn trace_logs_carry_no_secret_token_or_mfa_code() {
    let records = trace_records(&[]);
    let logs = records.join("\n");
    // The capture worked: the SDK's own trace lines and our one debug line per call are there.
    assert!(
        logs.contains("TRACE") && logs.contains("aws_sigv4"),
        "no SDK trace output captured"
    );
    for action in [
        "GetCallerIdentity",
        "CreateAccessKey",
        "GetSessionToken",
        "DeleteAccessKey",
    ] {
        assert!(
            logs.contains(&format!("action=\"{action}\"")),
            "no debug line for {action}"
        );
    }
    assert!(
        logs.contains("key=AKIA…0001") && logs.contains("key=ASIA…0001"),
        "keys are masked"
    );
    for (what, value) in forbidden() {
        assert!(!logs.contains(&value), "{what} appears in the trace logs");
    }
}

/// With `LOG_SENSITIVE_BODIES=true` the SDK logs the answers of CreateAccessKey and
/// GetSessionToken (secrets, session token) and with `LOG_SIGNABLE_BODY=true` every request
/// body (the MFA code), at TRACE, from exactly these two targets. The program's log filter
/// must keep them below TRACE.
#[test]
fn sdk_debug_variables_leak_only_through_two_targets() {
    let records = trace_records(&[
        ("LOG_SENSITIVE_BODIES", "true"),
        ("LOG_SIGNABLE_BODY", "true"),
    ]);
    let mut leaking_targets = std::collections::BTreeSet::new();
    for record in &records {
        if forbidden().iter().any(|(_, value)| record.contains(value)) {
            let target = LEAKY_TARGETS
                .iter()
                .find(|t| record.contains(&format!(" {t}: ")));
            let Some(target) = target else {
                panic!("a secret leaks through another target: {record}")
            };
            leaking_targets.insert(*target);
        }
    }
    assert_eq!(
        leaking_targets.len(),
        LEAKY_TARGETS.len(),
        "the SDK changed: {leaking_targets:?}"
    );
}

/// Run in a child process with `AWS_*` variables set: see
/// `ambient_aws_settings_change_nothing`.
#[tokio::test]
async fn ambient_child() {
    if std::env::var_os("IAM_KEYS_AMBIENT_CHILD").is_none() {
        return;
    }
    let capture = Capture::new(canned);
    let client = capture
        .connector(test_settings())
        .connect(&target("us-west-2", None));
    client.caller_identity().await.unwrap();
    client.list_access_keys("alice").await.unwrap();
    let seen = capture.seen();
    assert_eq!(
        seen[0].uri, "https://sts.us-west-2.amazonaws.com/",
        "{seen:?}"
    );
    assert_eq!(seen[1].uri, "https://iam.amazonaws.com/", "{seen:?}");
    for s in &seen {
        assert!(
            s.authorization.contains(&format!("Credential={KEY_ID}/")),
            "{s:?}"
        );
        assert!(s.security_token.is_none(), "{s:?}");
    }
    assert!(
        seen[0]
            .authorization
            .contains("/us-west-2/sts/aws4_request"),
        "{:?}",
        seen[0]
    );
    println!("ambient child checked");
}

#[test]
fn ambient_aws_settings_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(
        &config,
        "[default]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9\n\n[profile env]\nregion = ap-south-1\n\
             endpoint_url = http://127.0.0.1:9\n",
    )
    .unwrap();
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIAFROMTHEFILE00001\naws_secret_access_key = filesecret\n\n[env]\n\
             aws_access_key_id = AKIAFROMTHEFILE00002\naws_secret_access_key = filesecret\n",
    )
    .unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "aws::sdk::tests::logs::ambient_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IAM_KEYS_AMBIENT_CHILD", "1")
        .env("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMT")
        .env("AWS_SECRET_ACCESS_KEY", "environmentsecret")
        .env("AWS_SESSION_TOKEN", "environmenttoken")
        .env("AWS_REGION", "eu-central-1")
        .env("AWS_DEFAULT_REGION", "eu-central-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .env("AWS_USE_FIPS_ENDPOINT", "true")
        .env("AWS_MAX_ATTEMPTS", "9")
        .env("AWS_PROFILE", "env")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ambient child checked"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn debug_output_shows_no_credentials() {
    let connector = SdkConnector::new(test_settings()).unwrap();
    let client = connector.connect(&session_target(None));
    let text = format!("{connector:?} {client:?}");
    assert!(
        !text.contains(SESSION_SECRET) && !text.contains(SESSION_TOKEN),
        "{text}"
    );
    assert!(text.contains("ASIA…0001"), "{text}");
}
