//! Compatibility of edited profile files with the two real readers: files are edited through
//! `iam_keys::profiles`, then botocore (the AWS CLI's library, from the test venv) and the
//! Rust SDK's profile providers (aws-config) must both read exactly the expected key id,
//! secret, session token and region for every profile.
//!
//! Secrets here are fake; failure messages still name only the profile and the field.

use iam_keys::profiles::{FilePaths, KeyEdit, ProfileFiles, SaveOptions};
use iam_keys::secret::Secret;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

const OLD: &str = "AKIAOLDOLDOLDOLDOLD1";
const NEW: &str = "AKIANEWNEWNEWNEWNEW1";
const OLD_SECRET: &str = "oldSecret/oldSecret+oldSecret/oldSecret1";
const NEW_SECRET: &str = "newSecret/newSecret+newSecret/newSecret1";
const OTHER: &str = "AKIAOTHEROTHEROTHER1";
const OTHER_SECRET: &str = "otherSecret/otherSecret+otherSecret/oth1";

/// What a reader sees for one profile.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Seen {
    pub(crate) key: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) region: Option<String>,
}

fn want(key: &str, secret: &str, region: Option<&str>) -> Seen {
    Seen {
        key: Some(key.to_string()),
        secret: Some(secret.to_string()),
        token: None,
        region: region.map(str::to_string),
    }
}

const BOTOCORE_SCRIPT: &str = r#"
import json, sys
import botocore.session
out = {}
for name in sys.argv[1:]:
    s = botocore.session.Session(profile=name)
    c = s.get_credentials()
    scoped = s.get_scoped_config()
    out[name] = {
        "key": c.access_key if c else None,
        "secret": c.secret_key if c else None,
        "token": c.token if c else None,
        "region": scoped.get("region"),
    }
print(json.dumps(out))
"#;

/// Read the profiles with botocore, in a scrubbed environment.
pub(crate) fn botocore_reads(
    dir: &Path,
    paths: &FilePaths,
    profiles: &[&str],
) -> BTreeMap<String, Seen> {
    let python = crate::support::python::venv_python();
    let output = Command::new(&python)
        .arg("-c")
        .arg(BOTOCORE_SCRIPT)
        .args(profiles)
        .env_clear()
        .env("HOME", dir)
        .env("AWS_SHARED_CREDENTIALS_FILE", &paths.credentials)
        .env("AWS_CONFIG_FILE", &paths.config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "botocore failed to read the files ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("botocore JSON");
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
    profiles
        .iter()
        .map(|p| {
            let v = &json[*p];
            let seen = Seen {
                key: field(v, "key"),
                secret: field(v, "secret"),
                token: field(v, "token"),
                region: field(v, "region"),
            };
            (p.to_string(), seen)
        })
        .collect()
}

/// Read the profiles with the Rust SDK's profile credential and region providers.
#[allow(deprecated)] // aws-config re-exports aws-runtime's file list under a deprecated name
pub(crate) fn sdk_reads(paths: &FilePaths, profiles: &[&str]) -> BTreeMap<String, Seen> {
    use aws_config::meta::region::ProvideRegion;
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles as SdkFiles};
    use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
    use aws_credential_types::provider::ProvideCredentials;
    let files = || {
        SdkFiles::builder()
            .with_file(ProfileFileKind::Credentials, &paths.credentials)
            .with_file(ProfileFileKind::Config, &paths.config)
            .build()
    };
    // Static keys need no network, but the providers are built with an STS client, which
    // needs an HTTP client to exist.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let provider_config =
        aws_config::provider_config::ProviderConfig::default().with_http_client(http);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut out = BTreeMap::new();
        for p in profiles {
            let creds = ProfileFileCredentialsProvider::builder()
                .configure(&provider_config)
                .profile_files(files())
                .profile_name(*p)
                .build()
                .provide_credentials()
                .await
                .unwrap_or_else(|e| panic!("the Rust SDK cannot read profile {p}: {e}"));
            let region = ProfileFileRegionProvider::builder()
                .configure(&provider_config)
                .profile_files(files())
                .profile_name(*p)
                .build()
                .region()
                .await;
            let seen = Seen {
                key: Some(creds.access_key_id().to_string()),
                secret: Some(creds.secret_access_key().to_string()),
                token: creds.session_token().map(str::to_string),
                region: region.map(|r| r.to_string()),
            };
            out.insert(p.to_string(), seen);
        }
        out
    })
}

/// Compare without printing secret values.
fn assert_reads(reader: &str, got: &BTreeMap<String, Seen>, expected: &BTreeMap<&str, Seen>) {
    for (profile, want) in expected {
        let got = got
            .get(*profile)
            .unwrap_or_else(|| panic!("{reader}: no profile {profile}"));
        assert_eq!(
            got.key, want.key,
            "{reader}: profile {profile}: access key id"
        );
        assert!(
            got.secret == want.secret,
            "{reader}: profile {profile}: the secret differs"
        );
        assert!(
            got.token == want.token,
            "{reader}: profile {profile}: the session token differs"
        );
        assert_eq!(
            got.region, want.region,
            "{reader}: profile {profile}: region"
        );
    }
}

/// Write the files, apply the edits, and check both readers against `expected`.
fn check(credentials: &str, config: &str, edits: &[KeyEdit], expected: &[(&str, Seen)]) {
    let dir = tempfile::tempdir().unwrap();
    let paths = FilePaths {
        credentials: dir.path().join("credentials"),
        config: dir.path().join("config"),
    };
    std::fs::write(&paths.credentials, credentials).unwrap();
    std::fs::write(&paths.config, config).unwrap();
    let mut files = ProfileFiles::load(&paths).unwrap();
    files.apply_edits(edits, &SaveOptions::default()).unwrap();
    let expected: BTreeMap<&str, Seen> = expected.iter().cloned().collect();
    let names: Vec<&str> = expected.keys().copied().collect();
    assert_reads(
        "botocore",
        &botocore_reads(dir.path(), &paths, &names),
        &expected,
    );
    assert_reads("Rust SDK", &sdk_reads(&paths, &names), &expected);
}

fn replace() -> KeyEdit {
    KeyEdit::Replace {
        old_key_id: OLD.to_string(),
        new_key_id: NEW.to_string(),
        new_secret: Secret::new(NEW_SECRET),
    }
}

#[test]
fn a_rotated_key_reads_the_same_in_botocore_and_the_rust_sdk() {
    let credentials = format!(
        "# team keys\n\
         [default]\n\
         aws_access_key_id = {OLD}   # rotated by iam-keys\n\
         aws_secret_access_key = {OLD_SECRET} ; keep secret\n\
         aws_session_token = FwoGZXIvYXdzEBYaDStaleToken\n\
         \n\
         [dev]\n\
         AWS_ACCESS_KEY_ID\t=\t{OLD}\n\
         AWS_SECRET_ACCESS_KEY\t=\t{OLD_SECRET}\n\
         \n\
         [other]\n\
         aws_access_key_id={OTHER}\n\
         aws_secret_access_key={OTHER_SECRET}\n"
    );
    let config = format!(
        "[default]\n\
         region = us-east-1\n\
         s3 =\n  max_concurrent_requests = 20\n\
         [profile dev]\n\
         region = eu-west-1\n\
         [profile cfg]\n\
         region = ap-south-1\n\
         aws_access_key_id = {OLD}\n\
         aws_secret_access_key = {OLD_SECRET}\n\
         aws_security_token = StaleToken\n\
         [profile other]\n\
         region = us-west-2\n\
         [services local]\n\
         iam =\n  endpoint_url = http://127.0.0.1:5000\n"
    );
    check(
        &credentials,
        &config,
        &[replace()],
        &[
            ("default", want(NEW, NEW_SECRET, Some("us-east-1"))),
            ("dev", want(NEW, NEW_SECRET, Some("eu-west-1"))),
            ("cfg", want(NEW, NEW_SECRET, Some("ap-south-1"))),
            ("other", want(OTHER, OTHER_SECRET, Some("us-west-2"))),
        ],
    );
}

#[test]
fn crlf_files_without_a_final_newline_and_a_new_profile_read_the_same() {
    let credentials =
        format!("[default]\r\naws_access_key_id = {OLD}\r\naws_secret_access_key = {OLD_SECRET}");
    let config = "[default]\r\nregion = eu-central-1\r\n[profile fresh]\r\nregion = eu-north-1";
    let set = KeyEdit::SetProfile {
        profile: "fresh".to_string(),
        key_id: OTHER.to_string(),
        secret: Secret::new(OTHER_SECRET),
    };
    check(
        &credentials,
        config,
        &[replace(), set],
        &[
            ("default", want(NEW, NEW_SECRET, Some("eu-central-1"))),
            ("fresh", want(OTHER, OTHER_SECRET, Some("eu-north-1"))),
        ],
    );
}

#[test]
fn a_key_in_the_config_file_with_a_stale_secret_and_token_in_the_credentials_file() {
    // Before the edit the two readers disagree (the SDKs merge the credentials file's
    // secret and token with the config file's key id); after it they agree.
    let credentials =
        format!("[split]\naws_secret_access_key = {OLD_SECRET}\naws_session_token = Stale\n");
    let config = format!(
        "[profile split]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\nregion = sa-east-1\n"
    );
    check(
        &credentials,
        &config,
        &[replace()],
        &[("split", want(NEW, NEW_SECRET, Some("sa-east-1")))],
    );
}
