//! Profile-file tests: view.

use super::*;

#[test]
fn profile_default_replaces_default_in_the_config_file() {
    let f = files(
        "",
        "[default]\nregion = us-east-1\noutput = json\n[profile default]\nregion = eu-west-1\n",
    );
    let p = f.profile("default").unwrap();
    assert_eq!(p.get("region"), Some("eu-west-1"));
    assert_eq!(p.get("output"), None);
    assert_eq!(
        p.origin("region"),
        Some(Origin {
            file: FileKind::Config,
            line: 5
        })
    );
    let w = f.warnings();
    assert!(
        w.iter()
            .any(|d| d.line == 1 && d.message.contains("[profile default] replaces [default]")),
        "{w:?}"
    );
    let err = f.check_editable("default").unwrap_err().to_string();
    assert!(err.contains("lines 1, 4"), "{err}");
}

#[test]
fn credentials_win_over_config_key_by_key_and_keys_are_case_insensitive() {
    let f = files(
        "[dev]\nAWS_ACCESS_KEY_ID = AKIACREDS\n",
        "[profile dev]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = s\nRegion = us-west-2\n",
    );
    let p = f.profile("dev").unwrap();
    assert_eq!(p.get("aws_access_key_id"), Some("AKIACREDS"));
    assert_eq!(p.get("AWS_Secret_Access_Key"), Some("s"));
    assert_eq!(p.get("region"), Some("us-west-2"));
    assert_eq!(
        p.origin("aws_access_key_id"),
        Some(Origin {
            file: FileKind::Credentials,
            line: 2
        })
    );
    assert_eq!(p.key_files(), [FileKind::Credentials, FileKind::Config]);
    let w = f.warnings();
    assert!(
        w.iter().any(|d| d.file == FileKind::Config
            && d.line == 2
            && d.message.contains("also set in the credentials file")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|d| d.message.contains("different files")),
        "{w:?}"
    );
}

#[test]
fn profile_names_put_default_first_then_file_order() {
    let f = files(
        "[b]\n[a]\n[default]\n",
        "[profile c]\n[profile a]\n[sso-session s]\n[services x]\n[ignored]\n",
    );
    assert_eq!(f.profile_names(), ["default", "b", "a", "c"]);
    assert!(f.profile("ignored").is_none());
    assert!(f.profile("s").is_none());
}

#[test]
fn prefixed_sections_in_the_credentials_file_are_ignored_with_a_warning() {
    let f = files(&format!("[profile dev]\naws_access_key_id = {OLD}\n"), "");
    assert!(f.profile("dev").is_none());
    assert!(f.profiles_with_key(OLD).is_empty());
    let w = f.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message.contains("in the credentials file write [dev]"),
        "{}",
        w[0]
    );
    assert_eq!(w[0].line, 1);
}

#[test]
fn key_holders_are_found_in_both_files() {
    let f = files(
        &format!("[a]\naws_access_key_id = {OLD}\n[b]\naws_access_key_id = AKIAOTHER\n"),
        &format!("[profile c]\naws_access_key_id={OLD}\n[profile a]\naws_access_key_id = {OLD}\n"),
    );
    let holders = f.profiles_with_key(OLD);
    assert_eq!(
        holders,
        [
            KeyHolder {
                profile: "a".into(),
                locations: vec![
                    Origin {
                        file: FileKind::Credentials,
                        line: 2
                    },
                    Origin {
                        file: FileKind::Config,
                        line: 4
                    }
                ]
            },
            KeyHolder {
                profile: "c".into(),
                locations: vec![Origin {
                    file: FileKind::Config,
                    line: 2
                }]
            },
        ]
    );
}

#[test]
fn services_endpoint_reads_the_sub_property() {
    let f = files(
        "",
        "[services local]\niam =\n  endpoint_url = http://127.0.0.1:5000\nsts =\n  Endpoint_URL = http://sts\n",
    );
    assert_eq!(
        f.services_endpoint("local", "iam").as_deref(),
        Some("http://127.0.0.1:5000")
    );
    assert_eq!(
        f.services_endpoint("local", "STS").as_deref(),
        Some("http://sts")
    );
    assert_eq!(f.services_endpoint("local", "s3"), None);
    assert_eq!(f.services_endpoint("other", "iam"), None);
}

#[test]
fn kinds_follow_the_sdk_precedence() {
    let cases: &[(&str, &str, bool)] = &[
        (
            "aws_access_key_id = AKIA1\naws_secret_access_key = s",
            "static-key",
            true,
        ),
        (
            "aws_access_key_id = AKIA1\naws_secret_access_key = s\naws_security_token = t",
            "static-key-with-session-token",
            true,
        ),
        (
            "aws_access_key_id = ASIA1\naws_secret_access_key = s\naws_session_token = t",
            "session-credentials",
            false,
        ),
        (
            "aws_access_key_id = ASIA1\naws_secret_access_key = s",
            "incomplete",
            false,
        ),
        ("aws_access_key_id = AKIA1", "incomplete", false),
        ("aws_secret_access_key = s", "incomplete", false),
        (
            "role_arn = arn:aws:iam::1:role/r\nsource_profile = base\naws_access_key_id = AKIA1\naws_secret_access_key = s",
            "role",
            false,
        ),
        (
            "role_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t",
            "web-identity",
            false,
        ),
        ("web_identity_token_file = /t", "incomplete", false),
        (
            "sso_session = corp\nsso_account_id = 1\nsso_role_name = r",
            "sso",
            false,
        ),
        (
            "sso_start_url = https://x\naws_access_key_id = AKIA1\naws_secret_access_key = s",
            "sso",
            false,
        ),
        (
            "login_session = arn:aws:iam::1:user/u",
            "login-session",
            false,
        ),
        (
            "credential_process = /bin/creds\naws_access_key_id = AKIA1\naws_secret_access_key = s",
            "credential-process",
            false,
        ),
        (
            "credential_source = Ec2InstanceMetadata",
            "incomplete",
            false,
        ),
        ("region = us-east-1", "none", false),
    ];
    for (body, label, rotatable) in cases {
        let f = files(&format!("[p]\n{body}\n"), "");
        let kind = f.profile("p").unwrap().kind();
        assert_eq!(kind.label(), *label, "{body}");
        assert_eq!(kind.rotatable(), *rotatable, "{body}");
        assert_eq!(kind.not_rotatable_reason().is_none(), *rotatable, "{body}");
    }
    let f = files(
        "",
        "[profile p]\nrole_arn = arn:r\ncredential_source = Environment\n",
    );
    assert_eq!(
        f.profile("p").unwrap().kind(),
        ProfileKind::Role {
            role_arn: "arn:r".into(),
            source_profile: None,
            credential_source: Some("Environment".into())
        }
    );
    let sso = ProfileKind::Sso { session: None }
        .not_rotatable_reason()
        .unwrap();
    assert_eq!(
        sso,
        "SSO profile: credentials come from IAM Identity Center; nothing to rotate"
    );
}
