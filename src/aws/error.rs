//! AWS errors as typed values: which action failed, what kind of failure, and AWS's own
//! code and message. `Display` says what failed and never prints a bare "service error".
//!
//! [`classify`] is the one table from AWS error codes and HTTP statuses to [`ErrorKind`];
//! `from_sdk` turns every variant of the SDK's `SdkError` into an [`AwsError`] through it.
//!
//! Must not: give advice (that needs the profile and key, which only the callers know), or
//! put anything but AWS's code and message, an HTTP status and an endpoint URL into an error
//! (never a request, a header or a credential).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::error::Error as StdError;
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
    /// An account-wide call of the audit and `policy --apply` (see [`super::account`]).
    Account(super::account::AccountAction),
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
            Action::Account(action) => action.as_str(),
        }
    }

    /// Whether the SDK may send this call again after a failure that could have reached AWS
    /// (a 5xx answer, a timeout, a connection dropped after sending). The table:
    ///
    /// | action | retry | why |
    /// | --- | --- | --- |
    /// | GetCallerIdentity, ListAccessKeys, GetAccessKeyLastUsed, ListMFADevices | safe | read-only |
    /// | GetSessionToken | safe | creates no lasting state (a lost session simply expires) |
    /// | UpdateAccessKey | safe | setting a status twice leaves the same state |
    /// | DeleteAccessKey | safe | a repeat answers `NoSuchEntity`, which every caller treats as done |
    /// | CreateAccessKey | **not safe** | each call makes a new key; a lost answer retried makes a second key (or fails with `LimitExceeded`) while the first one's secret is gone |
    /// | the audit's and `policy --apply`'s calls | see `account::AccountAction::safe_to_retry` | CreatePolicy, CreatePolicyVersion and CreateGroup are not safe |
    ///
    /// A call that is not safe gets exactly one attempt; after a failure that may have taken
    /// effect ([`ErrorKind::may_have_taken_effect`]) the caller reads IAM's state and
    /// reconciles (see `rotation::exec`).
    pub fn retry_safe(self) -> bool {
        match self {
            Action::CreateAccessKey => false,
            // The audit's and `policy --apply`'s calls: see their own table.
            Action::Account(action) => action.safe_to_retry(),
            _ => true,
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
    /// AWS asked us to slow down (not retried by the SDK: `aws::limiter` waits and sends the
    /// call again while `--throttle-timeout` lasts).
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

    /// Whether a call that failed this way may nonetheless have taken effect in IAM: the
    /// request may have been received and applied, and only the answer lost (a 5xx, a timeout,
    /// a dropped connection, an answer we could not read). A refusal (authentication, access,
    /// limits, a missing entity, throttling) means IAM did not apply it.
    pub fn may_have_taken_effect(self) -> bool {
        matches!(
            self,
            ErrorKind::ServiceUnavailable
                | ErrorKind::Network
                | ErrorKind::Timeout
                | ErrorKind::Other
        )
    }

    /// Transient: worth another attempt later.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttling
                | ErrorKind::ServiceUnavailable
                | ErrorKind::Network
                | ErrorKind::Timeout
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
    /// An error of this kind with no code, message, status or endpoint (add them with the
    /// `with_*` methods).
    pub fn new(action: Action, kind: ErrorKind) -> Self {
        AwsError {
            action,
            kind,
            code: None,
            message: None,
            http_status: None,
            endpoint: None,
        }
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
                ErrorKind::AuthFailure => write!(
                    f,
                    "the request was not authenticated (HTTP {}, no error code)",
                    self.http_status.unwrap_or(403)
                )?,
                ErrorKind::Network => write!(f, "no answer from the endpoint")?,
                ErrorKind::Timeout => write!(f, "timed out")?,
                kind => write!(f, "{kind:?}")?,
            },
        }
        if let Some(status) = self.http_status
            && (self.code.is_some()
                || self.message.is_some()
                || self.kind != ErrorKind::AuthFailure)
        {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(endpoint) = &self.endpoint {
            write!(f, " [{endpoint}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

impl AwsError {
    /// AWS says a policy denies this explicitly (an explicit `Deny` beats every `Allow`).
    ///
    /// Heuristic on AWS's message, which since 2021 reads "User: ARN is not authorized to
    /// perform: ACTION on resource: RESOURCE with an explicit deny in an identity-based
    /// policy" (or "... in a service control policy", "... in a permissions boundary"). An
    /// implicit deny says "because no identity-based policy allows the ACTION action" instead.
    /// Older or shorter messages say neither; then this is `false`.
    pub fn is_explicit_deny(&self) -> bool {
        self.kind == ErrorKind::AccessDenied
            && self
                .message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("explicit deny"))
    }

    /// AWS's message names MFA: a failed MFA code ("MultiFactorAuthentication failed with
    /// invalid MFA one time pass code"), a condition key (`aws:MultiFactorAuthPresent`,
    /// `aws:MultiFactorAuthAge`), or a denying policy whose name says MFA (newer AWS messages
    /// end with the policy's ARN, for example `.../policy/ForceMFA`).
    ///
    /// Heuristic: a case-insensitive search for `mfa` or `multifactor`. Real AWS usually
    /// does **not** name the condition of an explicit deny, so a `false` here proves nothing:
    /// an [`is_explicit_deny`](Self::is_explicit_deny) on a mutating IAM call made without
    /// an MFA session is most often the standard "deny unless `aws:MultiFactorAuthPresent`"
    /// policy, and callers that know the call had no MFA session should say so.
    pub fn mentions_mfa(&self) -> bool {
        self.message.as_deref().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("mfa") || m.contains("multifactor")
        })
    }
}

/// What an AWS error code (and, when there is none, the HTTP status) means.
///
/// Codes are matched exactly as AWS sends them; both the Query-protocol spelling
/// (`AccessDenied`) and the JSON-protocol one (`AccessDeniedException`) are accepted. Without
/// a code, 401 and 403 are authentication failures (moto's auth errors have no code the SDK
/// can read), 429 is throttling and 5xx a server error. An unknown code with a 5xx status is
/// a server error too; any other unknown code is [`ErrorKind::Other`].
pub fn classify(code: Option<&str>, http_status: Option<u16>) -> ErrorKind {
    let by_code = code.and_then(|code| match code {
        "InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId" => {
            Some(ErrorKind::InvalidClientTokenId)
        }
        "SignatureDoesNotMatch" | "InvalidSignatureException" => {
            Some(ErrorKind::SignatureDoesNotMatch)
        }
        "ExpiredToken" | "ExpiredTokenException" => Some(ErrorKind::ExpiredToken),
        "IncompleteSignature" | "MissingAuthenticationToken" | "AuthFailure" => {
            Some(ErrorKind::AuthFailure)
        }
        "AccessDenied" | "AccessDeniedException" => Some(ErrorKind::AccessDenied),
        "LimitExceeded" | "LimitExceededException" => Some(ErrorKind::LimitExceeded),
        "NoSuchEntity" | "NoSuchEntityException" => Some(ErrorKind::NoSuchEntity),
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "SlowDown"
        | "PriorRequestNotComplete" => Some(ErrorKind::Throttling),
        "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "ServiceFailure"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError" => Some(ErrorKind::ServiceUnavailable),
        "RequestTimeout" | "RequestTimeoutException" => Some(ErrorKind::Timeout),
        _ => None,
    });
    if let Some(kind) = by_code {
        return kind;
    }
    match (code, http_status) {
        (_, Some(500..=599)) => ErrorKind::ServiceUnavailable,
        (None, Some(401 | 403)) => ErrorKind::AuthFailure,
        (None, Some(429)) => ErrorKind::Throttling,
        _ => ErrorKind::Other,
    }
}

/// An SDK error as an [`AwsError`]: every `SdkError` variant, with AWS's code and message
/// when there was an answer, and `endpoint` (the URL the client was sending to) when there
/// was none.
///
/// When the SDK could not read a code from an error answer (moto's authentication errors
/// nest `<Error>` one level deeper than AWS does), the code and message are read from the
/// raw XML body instead, so they still reach the user.
pub(crate) fn from_sdk<E>(
    action: Action,
    err: SdkError<E, HttpResponse>,
    endpoint: &str,
) -> AwsError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let service_err = ctx.err();
            let (mut code, mut message) = (
                service_err.code().map(str::to_string),
                service_err.message().map(str::to_string),
            );
            if code.is_none() {
                let (body_code, body_message) = error_from_body(ctx.raw());
                code = body_code;
                message = message.or(body_message);
            }
            answered(action, ctx.raw(), code, message)
        }
        SdkError::ResponseError(ctx) => {
            let (code, body_message) = if ctx.raw().status().as_u16() >= 400 {
                error_from_body(ctx.raw())
            } else {
                (None, None)
            };
            let message = body_message.or_else(|| {
                Some(format!(
                    "the answer could not be read: {}",
                    chain(StdError::source(&err))
                ))
            });
            answered(action, ctx.raw(), code, message).with_endpoint(endpoint)
        }
        SdkError::DispatchFailure(ctx) => {
            let kind = match ctx.as_connector_error() {
                Some(c) if c.is_timeout() => ErrorKind::Timeout,
                Some(c) if c.is_user() => ErrorKind::Other,
                _ => ErrorKind::Network,
            };
            // Skip the connector error's own label ("io error", "timeout"): its causes say more.
            let detail = match ctx.as_connector_error() {
                Some(c) => chain(StdError::source(c)),
                None => chain(StdError::source(&err)),
            };
            no_answer(action, kind, detail, endpoint)
        }
        SdkError::TimeoutError(_) => no_answer(
            action,
            ErrorKind::Timeout,
            chain(StdError::source(&err)),
            endpoint,
        ),
        // ConstructionFailure, and any variant a later SDK adds.
        _ => {
            let detail = chain(StdError::source(&err));
            let message = if detail.is_empty() {
                "the request could not be built".to_string()
            } else {
                format!("the request could not be built: {detail}")
            };
            AwsError::new(action, ErrorKind::Other).with_message(message)
        }
    }
}

/// A call that got an error answer: AWS's code and message, and the HTTP status.
fn answered(
    action: Action,
    raw: &HttpResponse,
    code: Option<String>,
    message: Option<String>,
) -> AwsError {
    let status = raw.status().as_u16();
    AwsError {
        action,
        kind: classify(code.as_deref(), Some(status)),
        code,
        message,
        http_status: Some(status),
        endpoint: None,
    }
}

/// The code and message of an answer's XML body (see [`error_from_xml`]).
fn error_from_body(raw: &HttpResponse) -> (Option<String>, Option<String>) {
    raw.body().bytes().map(error_from_xml).unwrap_or_default()
}

/// A call that got no answer: the endpoint, and what went wrong when there is a detail.
fn no_answer(action: Action, kind: ErrorKind, detail: String, endpoint: &str) -> AwsError {
    let e = AwsError::new(action, kind).with_endpoint(endpoint);
    if detail.is_empty() {
        e
    } else {
        e.with_message(detail)
    }
}

/// `error`, then its source, then that one's source, and so on: the one way the crate walks
/// an error's causes.
pub fn causes<'a>(error: &'a (dyn StdError + 'a)) -> impl Iterator<Item = &'a (dyn StdError + 'a)> {
    std::iter::successors(Some(error), |&e| e.source().map(|s| s as &dyn StdError))
}

/// An error and its causes, joined with ": ", each message once.
fn chain(first: Option<&(dyn StdError + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for text in first.into_iter().flat_map(causes).map(ToString::to_string) {
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The first `<Code>` and `<Message>` of an XML error body, wherever they are nested (AWS
/// puts `<Error>` under `<ErrorResponse>`; moto under `<ErrorResponse><Errors>`).
fn error_from_xml(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(text) = std::str::from_utf8(body) else {
        return (None, None);
    };
    let element = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&close)?;
        let value = unescape_xml(text[start..start + len].trim());
        (!value.is_empty()).then_some(value)
    };
    let code = element("Code").filter(|c| {
        c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '.' || ch == '_')
    });
    (code, element("Message"))
}

fn unescape_xml(s: &str) -> String {
    if let Some(inner) = s
        .strip_prefix("<![CDATA[")
        .and_then(|r| r.strip_suffix("]]>"))
    {
        return inner.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests;
