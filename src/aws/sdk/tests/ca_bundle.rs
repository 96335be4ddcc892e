//! The CA bundle: valid bundles are accepted, every bad one is an error naming the file.

use super::*;
use crate::aws::sdk::ca_bundle::{load_ca_bundle, pem_encode};

const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUdxWdazwPndZRn6whIYs+ANbqSBUwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQaWFtLWtleXMgdGVzdCBDQTAgFw0yNjExMjIwODAzMjJaGA8y
MTI2MTAyOTA4MDMyMlowGzEZMBcGA1UEAwwQaWFtLWtleXMgdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABGGeVJ3o+gIxkYqGeIVOnB3rs9A33OfBb+/1
mRKQIZPo+L4ljNVvWFMUyFNE93saWJwEaaYpprAH/zq/Ca4OSN+jUzBRMB0GA1Ud
DgQWBBRum0qZGyVm1o3TBAF+NzdPWP93djAfBgNVHSMEGDAWgBRum0qZGyVm1o3T
BAF+NzdPWP93djAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDn
zqW1bYnLBmYsrgT5yEzMBU1EZGrx1ofR4UdMgmBXrwIgHbbFMlWaUxoCYW7w+Xb4
NtB9/R70APf9wBhljbVNxZ0=
-----END CERTIFICATE-----
";

fn bundle(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.pem");
    std::fs::write(&path, contents).unwrap();
    (dir, path)
}

fn connector_error(contents: &[u8]) -> String {
    let (_dir, path) = bundle(contents);
    let e = SdkConnector::new(ConnectorSettings {
        ca_bundle: Some(path.clone()),
        ..test_settings()
    })
    .unwrap_err();
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    text
}

#[test]
fn a_valid_ca_bundle_is_accepted() {
    let with_key_and_comments = format!(
        "# our CA\r\n{}\n-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
             -----END PRIVATE KEY-----\n{TEST_CA}",
        TEST_CA.replace('\n', "\r\n")
    );
    let (_dir, path) = bundle(with_key_and_comments.as_bytes());
    let certs = load_ca_bundle(&path).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(String::from_utf8(certs[0].clone()).unwrap(), TEST_CA);
    SdkConnector::new(ConnectorSettings {
        ca_bundle: Some(path),
        ..test_settings()
    })
    .unwrap();
}

#[test]
fn the_systems_ca_bundle_passes_the_checks() {
    // Every real root certificate must pass, or users with a corporate bundle are locked out.
    for path in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ] {
        let path = Path::new(path);
        if path.exists() {
            let certs = load_ca_bundle(path).unwrap();
            assert!(!certs.is_empty());
        }
    }
}

#[test]
fn a_bad_ca_bundle_is_an_error_naming_the_file() {
    let (dir, _) = bundle(b"");
    let missing = dir.path().join("missing.pem");
    let e = SdkConnector::new(ConnectorSettings {
        ca_bundle: Some(missing.clone()),
        ..test_settings()
    })
    .unwrap_err();
    assert!(matches!(e, ConnectorError::CaBundleUnreadable { .. }));
    assert_eq!(
        e.to_string(),
        format!("cannot read the CA bundle {}", missing.display())
    );
    assert!(std::error::Error::source(&e).is_some());

    assert!(connector_error(b"").contains("holds no `-----BEGIN CERTIFICATE-----` block"));
    assert!(connector_error(b"just some text\n").contains("holds no"));
    assert!(connector_error(&[0x30, 0x82, 0xff, 0x00, 0x9f]).contains("not a text (PEM) file"));
    let key_only = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
                        -----END PRIVATE KEY-----\n";
    assert!(connector_error(key_only.as_bytes()).contains("holds no"));
    let unterminated = &TEST_CA[..TEST_CA.find("-----END").unwrap()];
    assert!(connector_error(unterminated.as_bytes()).contains("has no END line"));
    let bad_base64 = TEST_CA.replace("MIIBjTCC", "MIIB*TCC");
    assert!(connector_error(bad_base64.as_bytes()).contains("not valid base64"));
    // Valid base64 of something that is not a certificate.
    let not_der = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        "aGVsbG8gd29ybGQ="
    );
    assert!(
        connector_error(not_der.as_bytes())
            .contains("certificate 1 is not a valid X.509 certificate")
    );
    // A certificate with one byte of its body changed in a length.
    let mut der = aws_smithy_types::base64::decode(
        TEST_CA
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>(),
    )
    .unwrap();
    der[5] ^= 0x40;
    let corrupt = String::from_utf8(pem_encode(&der)).unwrap();
    let text = connector_error(format!("{TEST_CA}{corrupt}").as_bytes());
    assert!(
        text.contains("certificate 2 is not a valid X.509 certificate"),
        "{text}"
    );
}
