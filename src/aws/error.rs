//! AWS errors as typed values: which action failed, what kind of failure, and AWS's own
//! code and message. `Display` says what failed and never prints a bare "service error".
//!
//! Must not: give advice (that needs the profile and key, which only the callers know).

use std::fmt;

/// The AWS operations we call, for error messages, logs and fault scripting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Action {
    GetCallerIdentity,
    ListAccessKeys,
    CreateAccessKey,
    UpdateAccessKey,
    DeleteAccessKey,
    GetAccessKeyLastUsed,
    ListMFADevices,
    GetSessionToken,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::GetCallerIdentity => "GetCallerIdentity",
            Action::ListAccessKeys => "ListAccessKeys",
            Action::CreateAccessKey => "CreateAccessKey",
            Action::UpdateAccessKey => "UpdateAccessKey",
            Action::DeleteAccessKey => "DeleteAccessKey",
            Action::GetAccessKeyLastUsed => "GetAccessKeyLastUsed",
            Action::ListMFADevices => "ListMFADevices",
            Action::GetSessionToken => "GetSessionToken",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, as far as the program needs to tell cases apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The access key id is unknown to AWS (deleted, a typo, or not yet propagated).
    InvalidClientTokenId,
    /// The secret does not belong to the key id.
    SignatureDoesNotMatch,
    /// A session token has expired.
    ExpiredToken,
    /// HTTP 403 with no error code (moto's authentication failures look like this).
    AuthFailure,
    /// Authenticated, but a policy does not allow the action (or denies it explicitly).
    AccessDenied,
    /// The user already has the maximum number of access keys (two).
    LimitExceeded,
    /// The user or key does not exist.
    NoSuchEntity,
    /// AWS asked us to slow down (already retried by the SDK).
    Throttling,
    /// A 5xx answer (already retried by the SDK).
    ServiceUnavailable,
    /// No answer: connection refused or reset, DNS, TLS (already retried by the SDK).
    Network,
    /// No answer in time.
    Timeout,
    /// Any other error code.
    Other,
}

impl ErrorKind {
    /// The credentials were not accepted: the caller is not authenticated.
    pub fn is_auth_failure(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidClientTokenId
                | ErrorKind::SignatureDoesNotMatch
                | ErrorKind::ExpiredToken
                | ErrorKind::AuthFailure
        )
    }

    /// Transient: worth another attempt later.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttling | ErrorKind::ServiceUnavailable | ErrorKind::Network | ErrorKind::Timeout
        )
    }
}

/// A failed AWS call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub action: Action,
    pub kind: ErrorKind,
    /// AWS's error code (`InvalidClientTokenId`, `LimitExceeded`, ...), when it sent one.
    pub code: Option<String>,
    /// AWS's message, when it sent one. AWS never puts secrets in messages.
    pub message: Option<String>,
    /// The HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    /// The endpoint called, for network errors.
    pub endpoint: Option<String>,
}

impl AwsError {
    pub fn new(action: Action, kind: ErrorKind) -> Self {
        AwsError { action, kind, code: None, message: None, http_status: None, endpoint: None }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: ", self.action)?;
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, "{code}: {message}")?,
            (Some(code), None) => write!(f, "{code}")?,
            (None, Some(message)) => write!(f, "{message}")?,
            (None, None) => match self.kind {
                ErrorKind::AuthFailure => write!(f, "the request was not authenticated (HTTP 403, no error code)")?,
                ErrorKind::Network => write!(f, "no answer from the endpoint")?,
                ErrorKind::Timeout => write!(f, "timed out")?,
                kind => write!(f, "{kind:?}")?,
            },
        }
        if let Some(status) = self.http_status {
            if self.code.is_some() || self.message.is_some() {
                write!(f, " (HTTP {status})")?;
            }
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, " [{endpoint}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}
