//! IAM policy documents: the self-service policy that lets each IAM user manage only their
//! own access keys, which is what `iam-keys rotate` needs.
//!
//! Must not: do I/O. It builds documents; the CLI prints them.

use serde_json::{Value, json};
use std::fmt;

/// The actions `iam-keys` calls on the user's own ARN. (`sts:GetCallerIdentity` and
/// `sts:GetSessionToken` need no permission in AWS.)
pub const KEY_ACTIONS: [&str; 6] = [
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:UpdateAccessKey",
];

/// The actions that change keys; the MFA variant denies them without MFA.
pub const MUTATING_ACTIONS: [&str; 3] = [
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:UpdateAccessKey",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
}

impl Partition {
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
        }
    }

    pub fn parse(s: &str) -> Option<Partition> {
        match s {
            "aws" => Some(Partition::Aws),
            "aws-cn" => Some(Partition::AwsCn),
            "aws-us-gov" => Some(Partition::AwsUsGov),
            _ => None,
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the policy should cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyOptions {
    /// A 12-digit account id; `None` means any account (`*`).
    pub account: Option<String>,
    /// A literal user name instead of `${aws:username}`.
    pub user: Option<String>,
    pub partition: Partition,
    /// Deny key changes unless the caller signed in with MFA (and allow ListMFADevices).
    pub mfa: bool,
    /// Also allow ChangePassword and GetAccountPasswordPolicy.
    pub with_password: bool,
}

impl Default for PolicyOptions {
    /// Any account, `${aws:username}`, the `aws` partition, no MFA condition, no password.
    fn default() -> Self {
        PolicyOptions {
            account: None,
            user: None,
            partition: Partition::Aws,
            mfa: false,
            with_password: false,
        }
    }
}

/// Why options were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("--account `{0}` is not an AWS account id: use the 12 digits, as in 123456789012")]
    Account(String),
    #[error(
        "--user `{0}` is not a valid IAM user name: use 1 to 64 letters, digits and + = , . @ _ -"
    )]
    User(String),
}

impl PolicyOptions {
    fn validate(&self) -> Result<(), PolicyError> {
        if let Some(account) = &self.account
            && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(PolicyError::Account(account.clone()));
        }
        if let Some(user) = &self.user {
            let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
            if user.is_empty() || user.len() > 64 || !user.chars().all(ok_char) {
                return Err(PolicyError::User(user.clone()));
            }
        }
        Ok(())
    }

    /// The ARN of the user (or users) the policy covers.
    pub fn user_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:user/{}",
            self.partition,
            self.account.as_deref().unwrap_or("*"),
            self.user.as_deref().unwrap_or("${aws:username}")
        )
    }
}

/// The self-service policy document, version 2012-10-17.
pub fn self_service_policy(options: &PolicyOptions) -> Result<Value, PolicyError> {
    options.validate()?;
    let user_arn = options.user_arn();
    let mut own_user_actions: Vec<&str> = KEY_ACTIONS.to_vec();
    if options.mfa {
        own_user_actions.push("iam:ListMFADevices");
    }
    if options.with_password {
        own_user_actions.push("iam:ChangePassword");
    }
    own_user_actions.sort_unstable();

    let mut statements = vec![json!({
        "Sid": "ManageOwnAccessKeys",
        "Effect": "Allow",
        "Action": own_user_actions,
        "Resource": user_arn,
    })];
    if options.with_password {
        statements.push(json!({
            "Sid": "ReadAccountPasswordPolicy",
            "Effect": "Allow",
            "Action": ["iam:GetAccountPasswordPolicy"],
            "Resource": "*",
        }));
    }
    if options.mfa {
        statements.push(json!({
            "Sid": "DenyKeyChangesWithoutMFA",
            "Effect": "Deny",
            "Action": MUTATING_ACTIONS,
            "Resource": user_arn,
            "Condition": { "BoolIfExists": { "aws:MultiFactorAuthPresent": "false" } },
        }));
    }
    Ok(json!({ "Version": "2012-10-17", "Statement": statements }))
}

/// The name of the managed policy and of the group `policy --apply --group` creates (the
/// default of `--group`).
pub const SELF_SERVICE_NAME: &str = "iam-keys-self-service";

/// The inline policy `policy --apply --user NAME` puts on a user: named after the user.
pub fn inline_policy_name(user: &str) -> String {
    format!("{SELF_SERVICE_NAME}-{user}")
}

/// The read-only actions `iam-keys audit` calls in each account.
pub const AUDIT_ACTIONS: [&str; 8] = [
    "iam:GenerateCredentialReport",
    "iam:GetAccessKeyLastUsed",
    "iam:GetCredentialReport",
    "iam:ListAccessKeys",
    "iam:ListGroupsForUser",
    "iam:ListUserPolicies",
    "iam:ListUserTags",
    "iam:ListUsers",
];

/// The actions of [`AUDIT_ACTIONS`] that act on the account, not on a user.
const ACCOUNT_WIDE_AUDIT_ACTIONS: [&str; 3] = [
    "iam:GenerateCredentialReport",
    "iam:GetCredentialReport",
    "iam:ListUsers",
];

/// The policy the auditor needs: the read-only [`AUDIT_ACTIONS`], the per-user ones on every
/// user's ARN, ListUsers and the credential report on `*` (they have no narrower resource). With `org_role`, also what the organization
/// run needs in the management account: `organizations:ListAccounts`, and `sts:AssumeRole` on
/// that role in every account (the role itself needs the audit statement).
pub fn audit_policy(partition: Partition, org_role: Option<&str>) -> Value {
    let (account_wide, per_user): (Vec<&str>, Vec<&str>) = AUDIT_ACTIONS
        .iter()
        .partition(|a| ACCOUNT_WIDE_AUDIT_ACTIONS.contains(a));
    let mut statements = vec![
        json!({
            "Sid": "AuditAccount",
            "Effect": "Allow",
            "Action": account_wide,
            "Resource": "*",
        }),
        json!({
            "Sid": "AuditUsersKeys",
            "Effect": "Allow",
            "Action": per_user,
            "Resource": format!("arn:{partition}:iam::*:user/*"),
        }),
    ];
    if let Some(role) = org_role {
        statements.push(json!({
            "Sid": "ListOrganizationAccounts",
            "Effect": "Allow",
            "Action": ["organizations:ListAccounts"],
            "Resource": "*",
        }));
        statements.push(json!({
            "Sid": "AssumeAuditRole",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": format!("arn:{partition}:iam::*:role/{role}"),
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(statement: &Value) -> Vec<String> {
        statement["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn default_policy_allows_exactly_the_rotation_actions_on_the_callers_own_user() {
        let doc = self_service_policy(&PolicyOptions::default()).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Effect"], "Allow");
        assert_eq!(
            statements[0]["Resource"],
            "arn:aws:iam::*:user/${aws:username}"
        );
        let mut expected: Vec<String> = KEY_ACTIONS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(actions(&statements[0]), expected);
    }

    #[test]
    fn account_user_and_partition_shape_the_arn() {
        let doc = self_service_policy(&PolicyOptions {
            account: Some("123456789012".into()),
            user: Some("ci-bot".into()),
            partition: Partition::AwsUsGov,
            ..PolicyOptions::default()
        })
        .unwrap();
        assert_eq!(
            doc["Statement"][0]["Resource"],
            "arn:aws-us-gov:iam::123456789012:user/ci-bot"
        );
    }

    #[test]
    fn mfa_variant_denies_mutations_without_mfa_and_allows_listing_devices() {
        let doc = self_service_policy(&PolicyOptions {
            mfa: true,
            ..PolicyOptions::default()
        })
        .unwrap();
        let statements = doc["Statement"].as_array().unwrap();
        assert!(actions(&statements[0]).contains(&"iam:ListMFADevices".to_string()));
        let deny = statements
            .iter()
            .find(|s| s["Effect"] == "Deny")
            .expect("a Deny statement");
        assert_eq!(actions(deny), MUTATING_ACTIONS.to_vec());
        assert_eq!(
            deny["Condition"]["BoolIfExists"]["aws:MultiFactorAuthPresent"],
            "false"
        );
    }

    #[test]
    fn password_variant_adds_change_password_and_reads_the_account_policy() {
        let doc = self_service_policy(&PolicyOptions {
            with_password: true,
            ..PolicyOptions::default()
        })
        .unwrap();
        let statements = doc["Statement"].as_array().unwrap();
        assert!(actions(&statements[0]).contains(&"iam:ChangePassword".to_string()));
        let read = statements
            .iter()
            .find(|s| s["Resource"] == "*")
            .expect("a statement on *");
        assert_eq!(
            actions(read),
            vec!["iam:GetAccountPasswordPolicy".to_string()]
        );
    }

    #[test]
    fn the_audit_policy_is_read_only_and_the_org_variant_assumes_only_the_named_role() {
        let doc = audit_policy(Partition::Aws, None);
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1]["Resource"], "arn:aws:iam::*:user/*");
        let mut acts = actions(&statements[0]);
        acts.extend(actions(&statements[1]));
        assert_eq!(acts.len(), AUDIT_ACTIONS.len());
        assert!(
            acts.iter().all(|a| a.starts_with("iam:List")
                || a.starts_with("iam:Get")
                || a == "iam:GenerateCredentialReport"),
            "{acts:?}"
        );
        let doc = audit_policy(Partition::AwsUsGov, Some("AuditRole"));
        let statements = doc["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 4);
        assert_eq!(
            statements[3]["Resource"],
            "arn:aws-us-gov:iam::*:role/AuditRole"
        );
        assert_eq!(inline_policy_name("alice"), "iam-keys-self-service-alice");
    }

    #[test]
    fn bad_account_and_user_names_are_refused() {
        let bad_account = PolicyOptions {
            account: Some("12345".into()),
            ..PolicyOptions::default()
        };
        assert_eq!(
            self_service_policy(&bad_account),
            Err(PolicyError::Account("12345".into()))
        );
        let bad_user = PolicyOptions {
            user: Some("alice/../bob".into()),
            ..PolicyOptions::default()
        };
        assert!(matches!(
            self_service_policy(&bad_user),
            Err(PolicyError::User(_))
        ));
    }
}
