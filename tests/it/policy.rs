//! `iam-keys policy`: every variant is valid JSON and passes parliament with no findings.

use crate::support::cmd::Sandbox;
use crate::support::python::venv_bin;
use std::process::Command;

fn parliament(policy: &str) -> (i32, String, String) {
    let out = Command::new(venv_bin("parliament"))
        .arg("--string")
        .arg(policy)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("LANG", "C.UTF-8")
        .output()
        .expect("parliament runs from the test venv");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_policy_variant_passes_parliament_with_no_findings() {
    let sandbox = Sandbox::new();
    let variants: &[&[&str]] = &[
        &[],
        &["--mfa"],
        &["--with-password"],
        &["--mfa", "--with-password"],
        &["--account", "123456789012"],
        &["--user", "alice"],
        &["--partition", "aws-cn"],
        &[
            "--partition",
            "aws-us-gov",
            "--mfa",
            "--with-password",
            "--account",
            "123456789012",
            "--user",
            "ci-bot",
        ],
    ];
    for variant in variants {
        let mut args = vec!["policy"];
        args.extend_from_slice(variant);
        let run = sandbox.iam_keys(&args);
        run.assert_code(0);
        let doc: serde_json::Value =
            serde_json::from_str(&run.stdout).expect("policy output is JSON");
        assert_eq!(doc["Version"], "2012-10-17", "{variant:?}");
        let (code, stdout, stderr) = parliament(&run.stdout);
        assert_eq!(
            (code, stdout.trim()),
            (0, ""),
            "parliament findings for {variant:?}: {stdout}{stderr}"
        );
    }
}

#[test]
fn parliament_does_flag_a_broken_policy() {
    // The check above can fail: a mismatched resource is a finding.
    let broken = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:CreateAccessKey"],"Resource":"arn:aws:s3:::bucket"}]}"#;
    let (code, stdout, _) = parliament(broken);
    assert_ne!(code, 0);
    assert!(!stdout.trim().is_empty());
}

#[test]
fn the_partition_follows_the_region_and_bad_input_is_a_usage_error() {
    let sandbox = Sandbox::new();
    let run = sandbox.iam_keys(&["policy", "--region", "cn-north-1"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("arn:aws-cn:iam::*:user/${aws:username}"),
        "{}",
        run.stdout
    );
    let run = sandbox.iam_keys(&[
        "policy",
        "--region",
        "us-gov-west-1",
        "--account",
        "123456789012",
    ]);
    assert!(
        run.stdout
            .contains("arn:aws-us-gov:iam::123456789012:user/${aws:username}"),
        "{}",
        run.stdout
    );
    let run = sandbox.iam_keys(&["policy", "--account", "12"]);
    run.assert_code(2);
    assert!(run.stderr.contains("12 digits"), "{}", run.stderr);
}
