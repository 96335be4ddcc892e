//! Failures: AWS's codes and messages are kept, retries happen where they are safe, no answer
//! is a network error or a timeout naming the endpoint.

use super::*;

/// A client of a server that answers every request with 503 ServiceUnavailable.
fn unavailable() -> (Capture, SdkClient) {
    let capture = Capture::new(|_| {
        (
            503,
            "<ErrorResponse><Error><Code>ServiceUnavailable</Code><Message>Service is unable to handle request.\
                 </Message></Error></ErrorResponse>"
                .to_string(),
        )
    });
    let client = capture
        .connector(test_settings())
        .connect(&target("us-east-1", None));
    (capture, client)
}

#[tokio::test]
async fn motos_auth_errors_are_auth_failures() {
    // What moto 5.2.5 answers with auth checking on (moto.md section 3).
    let capture = Capture::new(|_| {
        (
            403,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse>\n  <Errors>\n    <Error>\n      \
                 <Code>InvalidClientTokenId</Code>\n      <Message><![CDATA[The security token included in the request \
                 is invalid.]]></Message>\n    </Error>\n  </Errors>\n</ErrorResponse>"
                .to_string(),
        )
    });
    let client = capture
        .connector(test_settings())
        .connect(&target("us-east-1", Some("http://127.0.0.1:1")));
    let e = client.caller_identity().await.unwrap_err();
    assert!(e.kind.is_auth_failure(), "{e:?}");
    assert_eq!(e.kind, ErrorKind::InvalidClientTokenId);
    assert_eq!(
        e.message.as_deref(),
        Some("The security token included in the request is invalid.")
    );
    assert_eq!(e.http_status, Some(403));
    assert_eq!(capture.seen().len(), 1, "auth failures are not retried");

    // With an empty body: 403 and nothing else.
    let capture = Capture::new(|_| (403, String::new()));
    let client = capture
        .connector(test_settings())
        .connect(&target("us-east-1", None));
    let e = client.list_access_keys("alice").await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (ErrorKind::AuthFailure, None));
    assert_eq!(
        e.to_string(),
        "ListAccessKeys failed: the request was not authenticated (HTTP 403, no error code)"
    );
}

#[tokio::test]
async fn aws_errors_keep_their_code_and_message() {
    let capture = Capture::new(|_| {
        (
            409,
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
                 <Code>LimitExceeded</Code><Message>Cannot exceed quota for AccessKeysPerUser: 2</Message></Error>\
                 <RequestId>x</RequestId></ErrorResponse>"
                .to_string(),
        )
    });
    let client = capture
        .connector(test_settings())
        .connect(&target("us-east-1", None));
    let e = client.create_access_key("alice").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::LimitExceeded);
    assert_eq!(
        e.to_string(),
        "CreateAccessKey failed: LimitExceeded: Cannot exceed quota for AccessKeysPerUser: 2 (HTTP 409)"
    );
}

#[tokio::test]
async fn server_errors_are_retried_max_attempts_times() {
    let (capture, client) = unavailable();
    let e = client.delete_access_key("alice", KEY_ID).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
    assert_eq!(capture.seen().len(), 3);
}

/// Issue 10, defect 2: the SDK's retry re-sent a CreateAccessKey whose answer was lost,
/// and the first key was orphaned. It gets one attempt; the others keep their retries.
#[tokio::test]
async fn create_access_key_is_sent_once_and_every_other_call_is_retried() {
    let (capture, client) = unavailable();
    let e = client.create_access_key("alice").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
    assert!(e.kind.may_have_taken_effect());
    assert_eq!(capture.seen().len(), 1, "CreateAccessKey is never re-sent");
    assert!(!Action::CreateAccessKey.retry_safe());

    client
        .update_access_key("alice", KEY_ID, KeyStatus::Inactive)
        .await
        .unwrap_err();
    assert_eq!(capture.seen().len(), 1 + 3, "UpdateAccessKey is retried");
    client.caller_identity().await.unwrap_err();
    assert_eq!(
        capture.seen().len(),
        1 + 3 + 3,
        "GetCallerIdentity is retried"
    );
}

#[tokio::test]
async fn a_create_access_key_that_times_out_is_not_sent_again() {
    let (url, bodies) = serve(|_| None).await;
    let settings = ConnectorSettings {
        attempt_timeout: Duration::from_millis(300),
        max_attempts: 3,
        ..test_settings()
    };
    let connector = SdkConnector::new(settings).unwrap();
    let e = connector
        .connect(&target("us-east-1", Some(&url)))
        .create_access_key("alice")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
    assert_eq!(bodies.lock().unwrap().len(), 1, "one attempt only");
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error_naming_the_endpoint() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let connector = SdkConnector::new(ConnectorSettings {
        max_attempts: 2,
        ..test_settings()
    })
    .unwrap();
    let e = connector
        .connect(&target("us-east-1", Some(&url)))
        .list_access_keys("alice")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e:?}");
    assert_eq!(e.endpoint.as_deref(), Some(url.as_str()));
    let text = e.to_string();
    assert!(
        text.starts_with("ListAccessKeys failed: ") && text.ends_with(&format!("[{url}]")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let (url, bodies) = serve(|_| None).await;
    let settings = ConnectorSettings {
        attempt_timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..test_settings()
    };
    let connector = SdkConnector::new(settings).unwrap();
    let started = Instant::now();
    let e = connector
        .connect(&target("us-east-1", Some(&url)))
        .caller_identity()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e:?}");
    assert_eq!(e.endpoint.as_deref(), Some(url.as_str()));
    assert_eq!(bodies.lock().unwrap().len(), 2, "timeouts are retried");
    assert!(started.elapsed() < Duration::from_secs(5));
}
