//! The account-wide IAM, Organizations and STS calls of `iam-keys audit` and
//! `iam-keys policy --apply`, in our own verbs: the [`AccountIam`] trait and its types.
//!
//! [`super::sdk::account`] implements it on the SDK; `fake::account` (test builds only) is an
//! in-memory account for unit tests, with pages of any size so pagination is tested (moto never
//! truncates a list).
//!
//! Every list follows `Marker`/`NextToken` to the last page. Errors are [`AwsError`]s whose
//! [`Action`](super::Action) is [`Action::Account`](super::Action::Account).
//!
//! **Retries.** The SDK's standard retries (throttling, 5xx, timeouts, connection errors) apply
//! to every call. Each method's doc says whether a call is *safe to retry*: reads are; the
//! idempotent writes (`AttachGroupPolicy`, `AddUserToGroup`, `PutUserPolicy`,
//! `DeletePolicyVersion`) are, because doing them twice leaves the same state. `CreatePolicy`,
//! `CreatePolicyVersion` and `CreateGroup` are **not**: a lost answer may hide a success, and
//! sending again would fail with `EntityAlreadyExists` or make a duplicate version. The SDK
//! implementation sends them once (its standard retries are off for these three), and callers
//! reconcile a failure by reading the state again (`GetPolicy`, `ListPolicyVersions`,
//! `GetGroup`), never by sending again blindly.
//!
//! Must not: read profile files or the environment, print, or decide what a finding is.

use super::{AccessKeyMeta, AwsError, CallerIdentity, Credentials, LastUsed};
use jiff::Timestamp;

/// The account-wide operations, for errors, logs and fault scripting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AccountAction {
    ListUsers,
    ListUserTags,
    ListGroupsForUser,
    ListUserPolicies,
    GetUserPolicy,
    PutUserPolicy,
    GenerateCredentialReport,
    GetCredentialReport,
    GetPolicy,
    CreatePolicy,
    ListPolicyVersions,
    GetPolicyVersion,
    CreatePolicyVersion,
    DeletePolicyVersion,
    GetGroup,
    CreateGroup,
    ListAttachedGroupPolicies,
    AttachGroupPolicy,
    AddUserToGroup,
    ListAccounts,
    AssumeRole,
}

impl AccountAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountAction::ListUsers => "ListUsers",
            AccountAction::ListUserTags => "ListUserTags",
            AccountAction::ListGroupsForUser => "ListGroupsForUser",
            AccountAction::ListUserPolicies => "ListUserPolicies",
            AccountAction::GetUserPolicy => "GetUserPolicy",
            AccountAction::PutUserPolicy => "PutUserPolicy",
            AccountAction::GenerateCredentialReport => "GenerateCredentialReport",
            AccountAction::GetCredentialReport => "GetCredentialReport",
            AccountAction::GetPolicy => "GetPolicy",
            AccountAction::CreatePolicy => "CreatePolicy",
            AccountAction::ListPolicyVersions => "ListPolicyVersions",
            AccountAction::GetPolicyVersion => "GetPolicyVersion",
            AccountAction::CreatePolicyVersion => "CreatePolicyVersion",
            AccountAction::DeletePolicyVersion => "DeletePolicyVersion",
            AccountAction::GetGroup => "GetGroup",
            AccountAction::CreateGroup => "CreateGroup",
            AccountAction::ListAttachedGroupPolicies => "ListAttachedGroupPolicies",
            AccountAction::AttachGroupPolicy => "AttachGroupPolicy",
            AccountAction::AddUserToGroup => "AddUserToGroup",
            AccountAction::ListAccounts => "ListAccounts",
            AccountAction::AssumeRole => "AssumeRole",
        }
    }

    /// The IAM policy action a caller needs for this call (`iam:ListUsers`, ...).
    pub fn permission(self) -> String {
        let service = match self {
            AccountAction::ListAccounts => "organizations",
            AccountAction::AssumeRole => "sts",
            _ => "iam",
        };
        format!("{service}:{}", self.as_str())
    }

    /// Whether sending the call again after a lost answer is harmless.
    pub fn safe_to_retry(self) -> bool {
        !matches!(
            self,
            AccountAction::CreatePolicy
                | AccountAction::CreatePolicyVersion
                | AccountAction::CreateGroup
        )
    }
}

/// One entry of ListUsers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamUser {
    pub name: String,
    pub arn: String,
    pub created: Option<Timestamp>,
}

/// The answer of GenerateCredentialReport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportState {
    Started,
    InProgress,
    Complete,
}

/// The answer of GetCredentialReport: the CSV as sent and when IAM generated it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialReport {
    pub csv: String,
    pub generated: Option<Timestamp>,
}

/// A customer managed policy (GetPolicy, CreatePolicy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub arn: String,
    pub default_version: Option<String>,
}

/// One entry of ListPolicyVersions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    pub created: Option<Timestamp>,
}

/// One entry of Organizations ListAccounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgAccount {
    pub id: String,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE` ...
    pub status: String,
}

/// Account-wide IAM, Organizations and STS calls. A `None` answer means IAM said
/// `NoSuchEntity` (or, for the credential report, that no report exists yet).
#[allow(async_fn_in_trait)]
pub trait AccountIam {
    /// STS GetCallerIdentity (the audited account's id). Safe to retry.
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError>;
    /// IAM ListUsers, all pages. Safe to retry.
    async fn list_users(&self) -> Result<Vec<IamUser>, AwsError>;
    /// IAM ListUserTags, all pages: `(key, value)`. Safe to retry.
    async fn list_user_tags(&self, user: &str) -> Result<Vec<(String, String)>, AwsError>;
    /// IAM ListAccessKeys for `user`, all pages (the existing `Iam` call). Safe to retry.
    async fn list_user_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError>;
    /// IAM GetAccessKeyLastUsed (the existing `Iam` call). Safe to retry.
    async fn key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError>;
    /// IAM ListGroupsForUser, all pages: group names. Safe to retry.
    async fn list_groups_for_user(&self, user: &str) -> Result<Vec<String>, AwsError>;
    /// IAM ListUserPolicies, all pages: inline policy names. Safe to retry.
    async fn list_user_policies(&self, user: &str) -> Result<Vec<String>, AwsError>;
    /// IAM GetUserPolicy: the inline policy's document (decoded JSON text). Safe to retry.
    async fn get_user_policy(&self, user: &str, name: &str) -> Result<Option<String>, AwsError>;
    /// IAM PutUserPolicy (create or replace). Idempotent: safe to retry.
    async fn put_user_policy(&self, user: &str, name: &str, document: &str)
    -> Result<(), AwsError>;
    /// IAM GenerateCredentialReport. Safe to retry (it starts at most one report).
    async fn generate_credential_report(&self) -> Result<ReportState, AwsError>;
    /// IAM GetCredentialReport; `None` while no report is ready (`ReportNotPresent`,
    /// `ReportInProgress`). Safe to retry.
    async fn get_credential_report(&self) -> Result<Option<CredentialReport>, AwsError>;
    /// IAM GetPolicy. Safe to retry.
    async fn get_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, AwsError>;
    /// IAM CreatePolicy. **Not safe to retry**: reconcile a failure with [`Self::get_policy`].
    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        description: &str,
    ) -> Result<ManagedPolicy, AwsError>;
    /// IAM ListPolicyVersions, all pages. Safe to retry.
    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, AwsError>;
    /// IAM GetPolicyVersion: the version's document (decoded JSON text). Safe to retry.
    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError>;
    /// IAM CreatePolicyVersion, made the default. **Not safe to retry**: reconcile a failure
    /// with [`Self::list_policy_versions`] and [`Self::get_policy_version`].
    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String, AwsError>;
    /// IAM DeletePolicyVersion. Safe to retry (a second call says `NoSuchEntity`).
    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError>;
    /// IAM GetGroup (the group's ARN; members are not read). Safe to retry.
    async fn get_group(&self, name: &str) -> Result<Option<String>, AwsError>;
    /// IAM CreateGroup. **Not safe to retry**: reconcile a failure with [`Self::get_group`].
    async fn create_group(&self, name: &str) -> Result<String, AwsError>;
    /// IAM ListAttachedGroupPolicies, all pages: policy ARNs. Safe to retry.
    async fn list_attached_group_policies(&self, group: &str) -> Result<Vec<String>, AwsError>;
    /// IAM AttachGroupPolicy. Idempotent: safe to retry.
    async fn attach_group_policy(&self, group: &str, policy_arn: &str) -> Result<(), AwsError>;
    /// IAM AddUserToGroup. Idempotent: safe to retry.
    async fn add_user_to_group(&self, group: &str, user: &str) -> Result<(), AwsError>;
    /// Organizations ListAccounts, all pages (`NextToken`). Safe to retry.
    async fn list_accounts(&self) -> Result<Vec<OrgAccount>, AwsError>;
    /// STS AssumeRole: a session for `role_arn`. Safe to retry (each call is a new session).
    async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
    ) -> Result<Credentials, AwsError>;
}

/// A URL-encoded policy document as IAM returns it (RFC 3986 percent-encoding), decoded. Text
/// that is not valid percent-encoding is returned as it is (some emulators send plain JSON).
pub fn decode_policy_document(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        if bytes[i] == b'%' {
            return text.to_string();
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_percent_decoded_and_plain_json_is_kept() {
        assert_eq!(
            decode_policy_document("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(decode_policy_document(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(decode_policy_document("100%"), "100%");
    }

    #[test]
    fn create_calls_are_the_ones_not_safe_to_retry() {
        assert!(!AccountAction::CreatePolicy.safe_to_retry());
        assert!(!AccountAction::CreatePolicyVersion.safe_to_retry());
        assert!(!AccountAction::CreateGroup.safe_to_retry());
        assert!(AccountAction::PutUserPolicy.safe_to_retry());
        assert_eq!(AccountAction::ListUsers.permission(), "iam:ListUsers");
        assert_eq!(
            AccountAction::ListAccounts.permission(),
            "organizations:ListAccounts"
        );
    }
}
