//! `iam-keys policy --apply` against moto: the group way (managed policy, versions, group,
//! attachment, membership) and the inline way, idempotence and the dry run, checked with the
//! SDK as ListAttachedGroupPolicies, GetPolicyVersion, ListGroupsForUser and GetUserPolicy
//! report them. moto refuses every resource-scoped IAM statement, so "a user in the group
//! rotates their own key" cannot be shown here: the document read back from IAM is linted
//! with parliament instead.
//!
//! The group way runs against the second moto, with auth checking **off**: under auth, moto
//! recomputes the signature of a form body its own way, and a managed policy document holding
//! `${aws:username}` (as the group's must) then fails with SignatureDoesNotMatch, although
//! real IAM accepts it (checked: the inline way, with a literal ARN, passes with auth on).

use crate::support::cmd::Sandbox;
use crate::support::moto::{Moto, moto, moto_without_auth, policy_allowing};
use crate::support::python::venv_bin;

fn admin_sandbox() -> Sandbox {
    admin_sandbox_of(moto())
}

fn admin_sandbox_of(m: &Moto) -> Sandbox {
    let (id, secret) = m.admin_credentials();
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[admin]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    sandbox
}

fn decode(doc: &str) -> serde_json::Value {
    let text = iam_keys::aws::account::decode_policy_document(doc);
    serde_json::from_str(&text).expect("a JSON policy document")
}

fn parliament_clean(doc: &serde_json::Value) {
    let out = std::process::Command::new(venv_bin("parliament"))
        .arg("--string")
        .arg(doc.to_string())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("LANG", "C.UTF-8")
        .output()
        .expect("parliament runs from the test venv");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(0), ""),
        "parliament on {doc}"
    );
}

#[test]
fn apply_group_creates_policy_group_attachment_and_membership_once() {
    let m = moto_without_auth();
    let admin = m.admin_iam();
    let group = m.unique("ikss");
    let user = m.unique("apply-member");
    m.create_user_with_policy(&user, &policy_allowing(&["iam:GetUser"]));
    m.create_key(&user);
    let sandbox = admin_sandbox_of(m);
    let iam_keys = |args: &[&str]| sandbox.cmd(args).endpoint(&m.endpoint).run();
    let arn = format!("arn:aws:iam::123456789012:policy/{group}");

    // Dry run: every change named, none made.
    let run = iam_keys(&[
        "policy",
        "--apply",
        "--group",
        &group,
        "--add-users-with-keys",
        "--dry-run",
        "--profile",
        "admin",
    ]);
    run.assert_code(0);
    run.assert_stdout_contains(&format!("would create managed policy {group}"));
    run.assert_stdout_contains(&format!("would create group {group}"));
    run.assert_stdout_contains(&format!("would attach {arn} to group {group}"));
    run.assert_stdout_contains(&format!("would add user {user} to group {group}"));
    assert!(
        m.block_on(admin.get_group().group_name(&group).send())
            .is_err()
    );
    assert!(
        m.block_on(admin.get_policy().policy_arn(&arn).send())
            .is_err()
    );

    let run = iam_keys(&[
        "policy",
        "--apply",
        "--group",
        &group,
        "--add-users-with-keys",
        "--profile",
        "admin",
    ]);
    run.assert_code(0);
    run.assert_stdout_contains(&format!("created managed policy {group}"));
    let attached = m
        .block_on(
            admin
                .list_attached_group_policies()
                .group_name(&group)
                .send(),
        )
        .expect("ListAttachedGroupPolicies");
    let arns: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [arn.as_str()]);
    let groups = m
        .block_on(admin.list_groups_for_user().user_name(&user).send())
        .expect("ListGroupsForUser");
    assert!(groups.groups().iter().any(|g| g.group_name() == group));
    let version = m
        .block_on(
            admin
                .get_policy_version()
                .policy_arn(&arn)
                .version_id("v1")
                .send(),
        )
        .expect("GetPolicyVersion");
    let doc = decode(version.policy_version().unwrap().document().unwrap());
    assert_eq!(
        doc["Statement"][0]["Resource"],
        "arn:aws:iam::123456789012:user/${aws:username}"
    );
    parliament_clean(&doc);

    // Idempotent.
    let run = iam_keys(&[
        "policy",
        "--apply",
        "--group",
        &group,
        "--add-users-with-keys",
        "--profile",
        "admin",
    ]);
    run.assert_code(0);
    run.assert_stdout_contains("nothing to change");

    // A changed document (--mfa) is a new default version.
    let run = iam_keys(&[
        "policy",
        "--apply",
        "--group",
        &group,
        "--mfa",
        "--profile",
        "admin",
    ]);
    run.assert_code(0);
    run.assert_stdout_contains("made a new default version");
    let versions = m
        .block_on(admin.list_policy_versions().policy_arn(&arn).send())
        .expect("ListPolicyVersions");
    let default: Vec<&str> = versions
        .versions()
        .iter()
        .filter(|v| v.is_default_version())
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(versions.versions().len(), 2);
    assert_eq!(default, ["v2"]);
    let v2 = m
        .block_on(
            admin
                .get_policy_version()
                .policy_arn(&arn)
                .version_id("v2")
                .send(),
        )
        .expect("GetPolicyVersion v2");
    let doc = decode(v2.policy_version().unwrap().document().unwrap());
    assert!(
        doc.to_string().contains("aws:MultiFactorAuthPresent"),
        "{doc}"
    );
    parliament_clean(&doc);
}

#[test]
fn apply_inline_puts_one_literal_policy_per_user_and_the_audit_sees_it() {
    let m = moto();
    let admin = m.admin_iam();
    let user = m.unique("apply-inline");
    m.create_user_with_policy(&user, &policy_allowing(&["iam:GetUser"]));
    m.create_key(&user);
    let sandbox = admin_sandbox();
    let name = format!("iam-keys-self-service-{user}");

    let run = sandbox.iam_keys(&[
        "policy",
        "--apply",
        "--user",
        &user,
        "--dry-run",
        "--profile",
        "admin",
    ]);
    run.assert_code(0);
    run.assert_stdout_contains(&format!("would put inline policy {name} on user {user}"));
    assert!(
        m.block_on(
            admin
                .get_user_policy()
                .user_name(&user)
                .policy_name(&name)
                .send()
        )
        .is_err()
    );

    let run = sandbox.iam_keys(&["policy", "--apply", "--user", &user, "--profile", "admin"]);
    run.assert_code(0);
    let got = m
        .block_on(
            admin
                .get_user_policy()
                .user_name(&user)
                .policy_name(&name)
                .send(),
        )
        .expect("GetUserPolicy");
    let doc = decode(got.policy_document());
    assert_eq!(
        doc["Statement"][0]["Resource"],
        format!("arn:aws:iam::123456789012:user/{user}")
    );
    parliament_clean(&doc);

    let run = sandbox.iam_keys(&["policy", "--apply", "--user", &user, "--profile", "admin"]);
    run.assert_code(0);
    run.assert_stdout_contains("nothing to change");

    let run = sandbox.iam_keys(&[
        "policy",
        "--apply",
        "--user",
        &user,
        "--with-password",
        "--dry-run",
        "--profile",
        "admin",
    ]);
    run.assert_code(0);
    run.assert_stdout_contains("(replacing a different one)");

    // The audit finds the inline policy: no NO_SELF_SERVICE for this user.
    let run = sandbox.iam_keys(&[
        "audit",
        "--profile",
        "admin",
        "--source",
        "api",
        "--output",
        "json",
    ]);
    let doc = run.json();
    let row = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["user"] == user.as_str())
        .unwrap_or_else(|| panic!("{user} in {doc}"));
    assert_eq!(row["findings"], serde_json::json!(["OK"]), "{row}");
}

#[test]
fn apply_needs_a_way_and_names_it() {
    let sandbox = admin_sandbox();
    let run = sandbox.iam_keys(&["policy", "--apply", "--profile", "admin"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--group"), "{}", run.stderr);
    let run = sandbox.iam_keys(&["policy", "--group", "g"]);
    run.assert_code(2);
}

/// A CreateGroup whose answer is lost (moto made the group; the connection closed before the
/// answer came back) is sent once and reconciled by GetGroup, not sent again. On the second
/// moto (auth off) for the `${aws:username}` document, as above.
#[test]
fn a_lost_create_group_answer_is_reconciled_by_reading_the_group() {
    use crate::support::{FaultProxy, Rule};
    use std::time::Duration;
    let m = moto_without_auth();
    let group = m.unique("ikss-lost");
    let sandbox = admin_sandbox_of(m);
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::hold_after("CreateGroup").times(1));
    let child = sandbox
        .cmd(&["policy", "--apply", "--group", &group, "--profile", "admin"])
        .endpoint(&proxy.endpoint)
        .spawn();
    assert!(
        proxy.wait_held(1, Duration::from_secs(60)),
        "CreateGroup reached the proxy"
    );
    proxy.discard_held();
    let run = crate::support::finish(child);
    run.assert_code(0);
    run.assert_stdout_contains(&format!("created group {group}"));
    assert_eq!(
        proxy.count("CreateGroup"),
        1,
        "sent once: {:?}",
        proxy.actions()
    );
    assert!(
        proxy.count("GetGroup") >= 2,
        "read again after the lost answer"
    );
    let attached = m
        .block_on(
            m.admin_iam()
                .list_attached_group_policies()
                .group_name(&group)
                .send(),
        )
        .expect("ListAttachedGroupPolicies");
    assert_eq!(attached.attached_policies().len(), 1);
}
