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

#[test]
fn causes_walk_an_error_and_its_sources_in_order() {
    #[derive(Debug)]
    struct Wrapped(&'static str, Option<std::io::Error>);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }
    let inner = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    let outer = Wrapped("dispatch failure", Some(inner));
    let borrowed: &dyn StdError = &outer;
    let texts: Vec<String> = causes(borrowed).map(ToString::to_string).collect();
    assert_eq!(texts, ["dispatch failure", "reset by peer"]);
    assert_eq!(causes(&Wrapped("alone", None)).count(), 1);
    // `chain` skips repeats and empty messages.
    let repeated = Wrapped(
        "reset by peer",
        Some(std::io::Error::other("reset by peer")),
    );
    assert_eq!(chain(Some(&repeated)), "reset by peer");
    assert_eq!(chain(None), "");
}
