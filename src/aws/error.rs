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
            let status = ctx.raw().status().as_u16();
            let service_err = ctx.err();
            let (mut code, mut message) = (
                service_err.code().map(str::to_string),
                service_err.message().map(str::to_string),
            );
            if code.is_none() {
                let (body_code, body_message) = ctx
                    .raw()
                    .body()
                    .bytes()
                    .map(error_from_xml)
                    .unwrap_or_default();
                code = body_code;
                message = message.or(body_message);
            }
            AwsError {
                action,
                kind: classify(code.as_deref(), Some(status)),
                code,
                message,
                http_status: Some(status),
                endpoint: None,
            }
        }
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let (code, body_message) = if status >= 400 {
                ctx.raw()
                    .body()
                    .bytes()
                    .map(error_from_xml)
                    .unwrap_or_default()
            } else {
                (None, None)
            };
            let message = body_message.or_else(|| {
                Some(format!(
                    "the answer could not be read: {}",
                    chain(StdError::source(&err))
                ))
            });
            AwsError {
                action,
                kind: classify(code.as_deref(), Some(status)),
                code,
                message,
                http_status: Some(status),
                endpoint: Some(endpoint.to_string()),
            }
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
            let mut e = AwsError::new(action, kind).with_endpoint(endpoint);
            if !detail.is_empty() {
                e = e.with_message(detail);
            }
            e
        }
        SdkError::TimeoutError(_) => {
            let detail = chain(StdError::source(&err));
            let mut e = AwsError::new(action, ErrorKind::Timeout).with_endpoint(endpoint);
            if !detail.is_empty() {
                e = e.with_message(detail);
            }
            e
        }
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

/// An error and its causes, joined with ": ", each message once.
fn chain(first: Option<&(dyn StdError + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = first;
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
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
mod tests {
    use super::*;
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    const ENDPOINT: &str = "https://sts.eu-west-1.amazonaws.com";

    #[test]
    fn codes_map_to_kinds() {
        let table: &[(&str, u16, ErrorKind)] = &[
            ("InvalidClientTokenId", 403, ErrorKind::InvalidClientTokenId),
            (
                "SignatureDoesNotMatch",
                403,
                ErrorKind::SignatureDoesNotMatch,
            ),
            ("ExpiredToken", 400, ErrorKind::ExpiredToken),
            ("ExpiredTokenException", 400, ErrorKind::ExpiredToken),
            ("AccessDenied", 403, ErrorKind::AccessDenied),
            ("AccessDeniedException", 400, ErrorKind::AccessDenied),
            ("LimitExceeded", 409, ErrorKind::LimitExceeded),
            ("NoSuchEntity", 404, ErrorKind::NoSuchEntity),
            ("Throttling", 400, ErrorKind::Throttling),
            ("ThrottlingException", 400, ErrorKind::Throttling),
            ("RequestLimitExceeded", 503, ErrorKind::Throttling),
            ("TooManyRequestsException", 429, ErrorKind::Throttling),
            ("ServiceUnavailable", 503, ErrorKind::ServiceUnavailable),
            ("InternalFailure", 500, ErrorKind::ServiceUnavailable),
            ("ServiceFailure", 500, ErrorKind::ServiceUnavailable),
            ("SomethingNew", 502, ErrorKind::ServiceUnavailable),
            ("SomethingNew", 400, ErrorKind::Other),
            ("EntityTemporarilyUnmodifiable", 409, ErrorKind::Other),
            ("OptInRequired", 403, ErrorKind::Other),
        ];
        for &(code, status, kind) in table {
            assert_eq!(
                classify(Some(code), Some(status)),
                kind,
                "{code} / {status}"
            );
            // The code alone decides, whatever the status (5xx aside).
            if status < 500 && kind != ErrorKind::Other {
                assert_eq!(classify(Some(code), None), kind, "{code} without a status");
            }
        }
    }

    #[test]
    fn statuses_without_a_code_map_to_kinds() {
        assert_eq!(classify(None, Some(403)), ErrorKind::AuthFailure);
        assert_eq!(classify(None, Some(401)), ErrorKind::AuthFailure);
        assert_eq!(classify(None, Some(429)), ErrorKind::Throttling);
        for status in [500, 502, 503, 504] {
            assert_eq!(classify(None, Some(status)), ErrorKind::ServiceUnavailable);
        }
        assert_eq!(classify(None, Some(404)), ErrorKind::Other);
        assert_eq!(classify(None, Some(400)), ErrorKind::Other);
        assert_eq!(classify(None, None), ErrorKind::Other);
    }

    #[test]
    fn auth_and_transient_groups() {
        for kind in [
            ErrorKind::InvalidClientTokenId,
            ErrorKind::SignatureDoesNotMatch,
            ErrorKind::ExpiredToken,
            ErrorKind::AuthFailure,
        ] {
            assert!(kind.is_auth_failure() && !kind.is_transient(), "{kind:?}");
        }
        for kind in [
            ErrorKind::Throttling,
            ErrorKind::ServiceUnavailable,
            ErrorKind::Network,
            ErrorKind::Timeout,
        ] {
            assert!(kind.is_transient() && !kind.is_auth_failure(), "{kind:?}");
        }
        for kind in [
            ErrorKind::AccessDenied,
            ErrorKind::LimitExceeded,
            ErrorKind::NoSuchEntity,
            ErrorKind::Other,
        ] {
            assert!(!kind.is_transient() && !kind.is_auth_failure(), "{kind:?}");
        }
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body.to_string()),
        )
    }

    fn service_error(
        code: Option<&str>,
        message: Option<&str>,
        status: u16,
        body: &str,
    ) -> SdkError<GetCallerIdentityError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(message) = message {
            meta = meta.message(message);
        }
        SdkError::service_error(
            GetCallerIdentityError::generic(meta.build()),
            response(status, body),
        )
    }

    #[test]
    fn service_errors_keep_code_message_and_status() {
        let e = from_sdk(
            Action::GetCallerIdentity,
            service_error(
                Some("InvalidClientTokenId"),
                Some("The security token included in the request is invalid."),
                403,
                "",
            ),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::InvalidClientTokenId);
        assert_eq!(e.code.as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(e.http_status, Some(403));
        assert_eq!(e.endpoint, None);
        assert_eq!(
            e.to_string(),
            "GetCallerIdentity failed: InvalidClientTokenId: The security token included in the request is invalid. \
             (HTTP 403)"
        );
    }

    #[test]
    fn a_403_without_a_code_is_an_auth_failure() {
        let e = from_sdk(
            Action::ListAccessKeys,
            service_error(None, None, 403, ""),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::AuthFailure);
        assert!(e.kind.is_auth_failure());
        assert_eq!(
            e.to_string(),
            "ListAccessKeys failed: the request was not authenticated (HTTP 403, no error code)"
        );
    }

    #[test]
    fn motos_nested_error_envelope_is_read_from_the_body() {
        // moto 5.2.5 with auth checking on: <Errors> between <ErrorResponse> and <Error>.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse>
  <Errors>
    <Error>
      <Code>SignatureDoesNotMatch</Code>
      <Message>The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key &amp; signing method.</Message>
    </Error>
  </Errors>
</ErrorResponse>"#;
        let e = from_sdk(
            Action::GetCallerIdentity,
            service_error(None, None, 403, body),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::SignatureDoesNotMatch);
        assert_eq!(e.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(
            e.message
                .as_deref()
                .unwrap()
                .contains("Secret Access Key & signing method.")
        );
        let e = from_sdk(
            Action::GetCallerIdentity,
            service_error(
                None,
                None,
                403,
                "<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>",
            ),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::InvalidClientTokenId);
        // A body that is not XML changes nothing.
        let e = from_sdk(
            Action::GetCallerIdentity,
            service_error(None, None, 403, "<html>nope"),
            ENDPOINT,
        );
        assert_eq!((e.kind, e.code), (ErrorKind::AuthFailure, None));
    }

    #[test]
    fn server_errors_and_throttling_from_the_service() {
        let e = from_sdk(
            Action::DeleteAccessKey,
            service_error(Some("ServiceFailure"), None, 500, ""),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
        assert!(e.kind.is_transient());
        let e = from_sdk(
            Action::DeleteAccessKey,
            service_error(None, None, 503, ""),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
        assert_eq!(
            e.to_string(),
            "DeleteAccessKey failed: ServiceUnavailable (HTTP 503)"
        );
        let e = from_sdk(
            Action::DeleteAccessKey,
            service_error(Some("Throttling"), Some("Rate exceeded"), 400, ""),
            ENDPOINT,
        );
        assert_eq!(e.kind, ErrorKind::Throttling);
        assert_eq!(
            e.to_string(),
            "DeleteAccessKey failed: Throttling: Rate exceeded (HTTP 400)"
        );
    }

    #[test]
    fn connection_failures_are_network_errors_naming_the_endpoint() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let err: SdkError<GetCallerIdentityError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        let e = from_sdk(Action::GetCallerIdentity, err, ENDPOINT);
        assert_eq!(e.kind, ErrorKind::Network);
        assert_eq!(e.endpoint.as_deref(), Some(ENDPOINT));
        assert_eq!(
            e.to_string(),
            "GetCallerIdentity failed: Connection refused (os error 111) [https://sts.eu-west-1.amazonaws.com]"
        );
        let other: SdkError<GetCallerIdentityError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other("tls handshake eof".into(), None));
        assert_eq!(
            from_sdk(Action::GetCallerIdentity, other, ENDPOINT).kind,
            ErrorKind::Network
        );
        let user: SdkError<GetCallerIdentityError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::user("invalid header".into()));
        assert_eq!(
            from_sdk(Action::GetCallerIdentity, user, ENDPOINT).kind,
            ErrorKind::Other
        );
    }

    #[test]
    fn timeouts_name_the_endpoint() {
        let err: SdkError<GetCallerIdentityError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::timeout("HTTP connect timeout occurred after 3.1s".into()),
        );
        let e = from_sdk(Action::GetCallerIdentity, err, ENDPOINT);
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert_eq!(
            e.to_string(),
            "GetCallerIdentity failed: HTTP connect timeout occurred after 3.1s [https://sts.eu-west-1.amazonaws.com]"
        );
        let err: SdkError<GetCallerIdentityError, HttpResponse> = SdkError::timeout_error(
            "operation timeout (all attempts including retries) occurred after 30s",
        );
        let e = from_sdk(Action::GetCallerIdentity, err, ENDPOINT);
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(e.to_string().contains("occurred after 30s"), "{e}");
        assert_eq!(e.endpoint.as_deref(), Some(ENDPOINT));
    }

    #[test]
    fn unreadable_answers_and_unbuildable_requests() {
        let err: SdkError<GetCallerIdentityError, HttpResponse> = SdkError::response_error(
            "invalid XML: unexpected end",
            response(200, "<GetCallerIdentityRe"),
        );
        let e = from_sdk(Action::GetCallerIdentity, err, ENDPOINT);
        assert_eq!((e.kind, e.http_status), (ErrorKind::Other, Some(200)));
        assert_eq!(
            e.to_string(),
            "GetCallerIdentity failed: the answer could not be read: invalid XML: unexpected end (HTTP 200) \
             [https://sts.eu-west-1.amazonaws.com]"
        );
        let err: SdkError<GetCallerIdentityError, HttpResponse> =
            SdkError::response_error("bad body", response(502, "<html>Bad Gateway</html>"));
        assert_eq!(
            from_sdk(Action::GetCallerIdentity, err, ENDPOINT).kind,
            ErrorKind::ServiceUnavailable
        );
        let err: SdkError<GetCallerIdentityError, HttpResponse> =
            SdkError::construction_failure("Invalid Configuration: Missing Region");
        let e = from_sdk(Action::GetCallerIdentity, err, ENDPOINT);
        assert_eq!(e.kind, ErrorKind::Other);
        assert_eq!(
            e.to_string(),
            "GetCallerIdentity failed: the request could not be built: Invalid Configuration: Missing Region"
        );
    }

    #[test]
    fn display_is_never_a_bare_service_error() {
        let kinds = [
            ErrorKind::InvalidClientTokenId,
            ErrorKind::SignatureDoesNotMatch,
            ErrorKind::ExpiredToken,
            ErrorKind::AuthFailure,
            ErrorKind::AccessDenied,
            ErrorKind::LimitExceeded,
            ErrorKind::NoSuchEntity,
            ErrorKind::Throttling,
            ErrorKind::ServiceUnavailable,
            ErrorKind::Network,
            ErrorKind::Timeout,
            ErrorKind::Other,
        ];
        for kind in kinds {
            let bare = AwsError::new(Action::CreateAccessKey, kind);
            let with_status = bare.clone().with_status(500);
            for e in [bare, with_status] {
                let text = e.to_string();
                assert!(text.starts_with("CreateAccessKey failed: "), "{text}");
                assert!(text.len() > "CreateAccessKey failed: ".len(), "{text}");
                assert!(!text.to_lowercase().contains("service error"), "{text}");
            }
        }
        let sdk = from_sdk(
            Action::ListAccessKeys,
            service_error(None, None, 400, ""),
            ENDPOINT,
        );
        assert!(!sdk.to_string().contains("service error"), "{sdk}");
    }

    #[test]
    fn explicit_denies_and_mfa_are_read_from_the_message() {
        let explicit = AwsError::new(Action::CreateAccessKey, ErrorKind::AccessDenied).with_code("AccessDenied").with_message(
            "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:CreateAccessKey on \
             resource: user alice with an explicit deny in an identity-based policy",
        );
        assert!(explicit.is_explicit_deny());
        assert!(!explicit.mentions_mfa());
        let implicit = AwsError::new(Action::CreateAccessKey, ErrorKind::AccessDenied).with_message(
            "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:CreateAccessKey on \
             resource: user alice because no identity-based policy allows the iam:CreateAccessKey action",
        );
        assert!(!implicit.is_explicit_deny());
        let named_policy = AwsError::new(Action::DeleteAccessKey, ErrorKind::AccessDenied).with_message(
            "... with an explicit deny in an identity-based policy: arn:aws:iam::123456789012:policy/ForceMFA",
        );
        assert!(named_policy.is_explicit_deny() && named_policy.mentions_mfa());
        let condition = AwsError::new(Action::DeleteAccessKey, ErrorKind::AccessDenied)
            .with_message("denied: condition aws:MultiFactorAuthPresent is false");
        assert!(condition.mentions_mfa());
        let bad_code = AwsError::new(Action::GetSessionToken, ErrorKind::AccessDenied)
            .with_message("MultiFactorAuthentication failed with invalid MFA one time pass code.");
        assert!(bad_code.mentions_mfa() && !bad_code.is_explicit_deny());
        let no_message = AwsError::new(Action::CreateAccessKey, ErrorKind::AccessDenied);
        assert!(!no_message.mentions_mfa() && !no_message.is_explicit_deny());
        // Only an AccessDenied is a deny.
        let other =
            AwsError::new(Action::CreateAccessKey, ErrorKind::Other).with_message("explicit deny");
        assert!(!other.is_explicit_deny());
    }
}
