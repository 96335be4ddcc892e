//! `iam-keys audit --org --role-name NAME` against moto: an organization with three member
//! accounts (and the management account), AssumeRole into each, one account failing.
//!
//! Runs against the second moto, with auth checking **off**: with it on, moto cannot check
//! the assumed-role sessions of member accounts in this harness (its admin identity exists only
//! in the management account, and it would have to be made in every account first). With auth
//! off moto still keeps each account's IAM apart: a session for a role in account N reads
//! account N's users.

use crate::support::cmd::Sandbox;
use crate::support::moto::{iam_client, moto_without_auth, sts_client};
use crate::support::{FaultProxy, Rule};

#[test]
fn audit_org_reads_every_account_and_an_account_that_fails_is_an_error_row() {
    let m = moto_without_auth();
    let (admin_id, admin_secret) = m.admin_credentials();
    let (admin_id, admin_secret) = (admin_id.to_string(), admin_secret.to_string());
    let endpoint = m.endpoint.clone();
    let members: Vec<String> = m.block_on(async {
        let conf = aws_sdk_organizations::Config::builder()
            .behavior_version(aws_sdk_organizations::config::BehaviorVersion::latest())
            .region(aws_sdk_organizations::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                &admin_id,
                &admin_secret,
                None,
                None,
                "tests",
            ))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        let orgs = aws_sdk_organizations::Client::from_conf(conf);
        orgs.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .expect("CreateOrganization");
        let mut ids = Vec::new();
        for n in 1..=3 {
            let out = orgs
                .create_account()
                .account_name(format!("member-{n}"))
                .email(format!("member-{n}@example.com"))
                .send()
                .await
                .expect("CreateAccount");
            ids.push(
                out.create_account_status()
                    .and_then(|s| s.account_id())
                    .expect("an account id")
                    .to_string(),
            );
        }
        // One user with two Active keys in each member account, made through a session in it.
        let sts = sts_client(&endpoint, &admin_id, &admin_secret, None);
        for id in &ids {
            let role = format!("arn:aws:iam::{id}:role/OrgAudit");
            let c = sts
                .assume_role()
                .role_arn(&role)
                .role_session_name("setup")
                .send()
                .await
                .expect("AssumeRole")
                .credentials()
                .cloned()
                .expect("credentials");
            let iam = iam_client(
                &endpoint,
                c.access_key_id(),
                c.secret_access_key(),
                Some(c.session_token()),
            );
            let user = format!("dev-{id}");
            iam.create_user()
                .user_name(&user)
                .send()
                .await
                .expect("CreateUser");
            for _ in 0..2 {
                iam.create_access_key()
                    .user_name(&user)
                    .send()
                    .await
                    .expect("CreateAccessKey");
            }
        }
        ids
    });

    // The first AssumeRole is refused: that account becomes an error row, the others are read.
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(
        Rule::error(
            "AssumeRole",
            403,
            "AccessDenied",
            "not authorized to assume OrgAudit",
        )
        .times(1),
    );
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[mgmt]\naws_access_key_id = {admin_id}\naws_secret_access_key = {admin_secret}\n"
    ));
    let run = sandbox
        .cmd(&[
            "audit",
            "--org",
            "--role-name",
            "OrgAudit",
            "--profile",
            "mgmt",
            "--source",
            "api",
            "--output",
            "json",
        ])
        .endpoint(&proxy.endpoint)
        .run();
    run.assert_code(4);
    let doc = run.json();
    let accounts = doc["accounts"].as_array().unwrap();
    assert_eq!(
        accounts.len(),
        4,
        "the management account and three members: {doc}"
    );
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["action"], "AssumeRole");
    assert!(run.stderr.contains("sts:AssumeRole"), "{}", run.stderr);
    let failed = errors[0]["account"].as_str().unwrap().to_string();
    let mut read = 0;
    for id in &members {
        let rows: Vec<&serde_json::Value> = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["account"] == id.as_str())
            .collect();
        if *id == failed {
            assert!(rows.is_empty());
            continue;
        }
        read += 1;
        assert_eq!(rows.len(), 2, "account {id}: {doc}");
        assert!(rows.iter().all(|r| r["user"] == format!("dev-{id}")));
        assert!(rows.iter().all(|r| r["finding"] == "TWO_ACTIVE"));
    }
    assert!(read >= 2, "at least two member accounts read");
    // Text output names the account of each row.
    let run = sandbox
        .cmd(&[
            "audit",
            "--org",
            "--role-name",
            "OrgAudit",
            "--profile",
            "mgmt",
            "--source",
            "api",
        ])
        .endpoint(&m.endpoint)
        .run();
    run.assert_code(1);
    assert!(run.stdout.contains("ACCOUNT"), "{}", run.stdout);
    assert!(run.stdout.contains("in 4 accounts"), "{}", run.stdout);
}
