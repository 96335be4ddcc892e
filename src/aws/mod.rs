//! Everything that talks to AWS. This is the only module that imports `aws-sdk-*` crates.
//!
//! The rest of the program sees AWS through two small traits in our own verbs:
//! [`Connector`] binds explicit credentials (never the ambient credential chain) and an
//! endpoint to a client, and [`Iam`] is what such a client can do; [`account::AccountIam`]
//! is the same for the account-wide calls of the audit and `policy --apply`. [`sdk`]
//! implements them with the official SDK (connector, client, CA bundle, endpoints); `fake`
//! (test builds only) is an in-memory IAM with scripted faults for unit tests (state, rules,
//! client, account). SDK errors become [`AwsError`] with a typed [`ErrorKind`], the AWS error
//! code and message ([`error`]).
//!
//! Must not: read profile files or the environment (callers pass a resolved [`Target`]),
//! print anything, or decide what an error means for the user (only the CLI turns an
//! [`AwsError`] into advice).

pub mod account;
pub mod error;
#[cfg(test)]
pub mod fake;
pub mod limiter;
pub mod sdk;
mod signer;

pub use error::{Action, AwsError, ErrorKind};
pub use signer::Signer;

use crate::secret::Secret;
use jiff::Timestamp;
use std::fmt;

/// Credentials to sign with: a long-term key, or a session (key, secret and token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl Credentials {
    pub fn long_term(access_key_id: impl Into<String>, secret: Secret) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret,
            session_token: None,
        }
    }
}

/// Where to send requests and as whom: everything a client needs, resolved by the caller.
#[derive(Clone, Debug)]
pub struct Target {
    pub credentials: Credentials,
    /// Signing region; also picks the partition's endpoints (cn-*, us-gov-*).
    pub region: String,
    /// Endpoint overrides (from `AWS_ENDPOINT_URL_IAM`, `AWS_ENDPOINT_URL`, the profile...).
    pub iam_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
}

impl Target {
    /// The same place, called as someone else (an MFA session, the new key).
    pub fn with_credentials(&self, credentials: Credentials) -> Target {
        Target {
            credentials,
            ..self.clone()
        }
    }
}

/// Binds credentials to a client. Cheap: the SDK connector shares one HTTP client.
pub trait Connector {
    type Client: Iam;
    fn connect(&self, target: &Target) -> Self::Client;
}

/// The IAM and STS operations `iam-keys` uses, in our own verbs. Every method takes the IAM
/// user name explicitly where AWS accepts one (emulators and admins need it).
#[allow(async_fn_in_trait)]
pub trait Iam {
    /// STS GetCallerIdentity: who these credentials are. Needs no permission.
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError>;
    /// IAM ListAccessKeys for `user` (all pages).
    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError>;
    /// IAM CreateAccessKey for `user`. The only place a secret comes from AWS.
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError>;
    /// [`Iam::create_access_key`], with `record` run once the call may go (for a limited
    /// client: once it has its slot and its turn at the pace), right before it is sent: what
    /// `record` writes is on disk before the call can take effect, however long the call
    /// waited for its turn. If `record` fails, nothing is sent.
    async fn create_access_key_recorded<E>(
        &self,
        user: &str,
        record: impl AsyncFnOnce() -> Result<(), E>,
    ) -> Result<Result<NewAccessKey, AwsError>, E> {
        record().await?;
        Ok(self.create_access_key(user).await)
    }
    /// IAM UpdateAccessKey: set the key Active or Inactive.
    async fn update_access_key(
        &self,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> Result<(), AwsError>;
    /// IAM DeleteAccessKey.
    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError>;
    /// IAM GetAccessKeyLastUsed.
    async fn access_key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError>;
    /// IAM ListMFADevices for `user`.
    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError>;
    /// STS GetSessionToken with an MFA serial and code: a session whose calls carry MFA.
    async fn session_token(
        &self,
        mfa_serial: &str,
        code: &Secret,
        duration_seconds: i32,
    ) -> Result<Credentials, AwsError>;
    /// When this client's last call (other than CreateAccessKey) was sent, if the client
    /// knows better than its caller: a limited client may hold a call back for its turn
    /// ([`limiter::Limited`]). `None`: the call was sent when it was made.
    fn last_sent_at(&self) -> Option<jiff::Timestamp> {
        None
    }
}

/// The answer of GetCallerIdentity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// What kind of principal an ARN names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user, with its name (the last path segment).
    User(String),
    Root,
    AssumedRole(String),
    FederatedUser(String),
    Other(String),
}

impl CallerIdentity {
    /// The partition of the caller's ARN (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &str {
        self.arn.split(':').nth(1).unwrap_or("aws")
    }

    pub fn principal(&self) -> Principal {
        // arn:PARTITION:SERVICE::ACCOUNT:RESOURCE
        let resource = self.arn.splitn(6, ':').nth(5).unwrap_or("");
        let service = self.arn.split(':').nth(2).unwrap_or("");
        if resource == "root" {
            return Principal::Root;
        }
        if let Some(rest) = resource.strip_prefix("user/") {
            // IAM user paths: user/path/to/name. moto answers with an sts ARN for unknown
            // keys when auth is off; that is still a user resource.
            let name = rest.rsplit('/').next().unwrap_or(rest).to_string();
            return if service == "iam" || service == "sts" {
                Principal::User(name)
            } else {
                Principal::Other(resource.to_string())
            };
        }
        if let Some(rest) = resource.strip_prefix("assumed-role/") {
            return Principal::AssumedRole(rest.to_string());
        }
        if let Some(rest) = resource.strip_prefix("federated-user/") {
            return Principal::FederatedUser(rest.to_string());
        }
        Principal::Other(resource.to_string())
    }

    /// The IAM user name, when the caller is an IAM user.
    pub fn user_name(&self) -> Option<String> {
        match self.principal() {
            Principal::User(name) => Some(name),
            _ => None,
        }
    }
}

/// An access key's status as IAM reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
    /// Anything else IAM may add (for example `Expired`).
    Other(String),
}

impl KeyStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "Active" => KeyStatus::Active,
            "Inactive" => KeyStatus::Inactive,
            other => KeyStatus::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
            KeyStatus::Other(s) => s,
        }
    }
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of ListAccessKeys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyMeta {
    pub id: String,
    pub status: KeyStatus,
    pub created: Option<Timestamp>,
}

/// The answer of CreateAccessKey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccessKey {
    pub id: String,
    pub secret: Secret,
    pub created: Option<Timestamp>,
}

/// The answer of GetAccessKeyLastUsed. AWS says `N/A` for a key never used; that is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastUsed {
    pub date: Option<Timestamp>,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// What a call's log line (and the fake's record of calls) takes from its answer: the key it
/// created, which only CreateAccessKey's answer names.
pub(crate) trait Answer {
    fn created_key(&self) -> Option<&str> {
        None
    }
}

impl Answer for NewAccessKey {
    fn created_key(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl<T> Answer for Vec<T> {}
impl<T> Answer for Option<T> {}
impl Answer for () {}
impl Answer for String {}
impl Answer for CallerIdentity {}
impl Answer for LastUsed {}
impl Answer for Credentials {}

/// One entry of ListMFADevices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaDevice {
    pub serial: String,
    pub enabled: Option<Timestamp>,
}

impl MfaDevice {
    /// U2F security keys and passkeys cannot produce a six-digit code; virtual and hardware
    /// TOTP devices can. IAM names the former `arn:...:u2f/...`.
    pub fn gives_codes(&self) -> bool {
        !self.serial.contains(":u2f/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(arn: &str) -> CallerIdentity {
        CallerIdentity {
            account: "123456789012".into(),
            arn: arn.into(),
            user_id: "AIDAEXAMPLE".into(),
        }
    }

    #[test]
    fn principal_is_read_from_the_arn() {
        assert_eq!(
            id("arn:aws:iam::123456789012:user/alice")
                .user_name()
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            id("arn:aws:iam::123456789012:user/team/ops/bob")
                .user_name()
                .as_deref(),
            Some("bob")
        );
        assert_eq!(
            id("arn:aws:iam::123456789012:root").principal(),
            Principal::Root
        );
        assert_eq!(
            id("arn:aws:sts::123456789012:assumed-role/Admin/session").principal(),
            Principal::AssumedRole("Admin/session".into())
        );
        assert_eq!(
            id("arn:aws-cn:iam::123456789012:user/a").partition(),
            "aws-cn"
        );
        assert_eq!(
            id("arn:aws-us-gov:iam::123456789012:user/a").partition(),
            "aws-us-gov"
        );
    }

    #[test]
    fn u2f_devices_give_no_codes() {
        let u2f = MfaDevice {
            serial: "arn:aws:iam::123456789012:u2f/user/alice/key-ABC".into(),
            enabled: None,
        };
        let totp = MfaDevice {
            serial: "arn:aws:iam::123456789012:mfa/alice".into(),
            enabled: None,
        };
        assert!(!u2f.gives_codes());
        assert!(totp.gives_codes());
    }
}
