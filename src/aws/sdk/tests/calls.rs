//! Answers become our types, requests carry what they must, sessions sign with their token.

use super::*;

#[tokio::test]
async fn answers_become_our_types() {
    let capture = Capture::new(canned);
    let client = capture
        .connector(test_settings())
        .connect(&target("us-east-1", Some("http://aws.invalid")));

    let who = client.caller_identity().await.unwrap();
    assert_eq!(who.user_name().as_deref(), Some("alice"));
    assert_eq!(
        (who.account.as_str(), who.user_id.as_str()),
        ("123456789012", "AIDAEXAMPLEUSERID0001")
    );

    let keys = client.list_access_keys("alice").await.unwrap();
    assert_eq!(
        keys,
        [
            AccessKeyMeta {
                id: KEY_ID.into(),
                status: KeyStatus::Active,
                created: Some("2026-11-22T04:17:28.049038Z".parse().unwrap()),
            },
            AccessKeyMeta {
                id: "AKIAOTHERKEY00000002".into(),
                status: KeyStatus::Inactive,
                created: Some("2025-01-02T03:04:05Z".parse().unwrap()),
            },
        ]
    );

    let new = client.create_access_key("alice").await.unwrap();
    assert_eq!(new.id, "AKIANEWKEY0000000003");
    assert_eq!(new.secret.expose(), CREATED_SECRET);
    assert_eq!(new.created, Some("2026-11-22T05:00:00Z".parse().unwrap()));

    client
        .update_access_key("alice", KEY_ID, KeyStatus::Inactive)
        .await
        .unwrap();
    client.delete_access_key("alice", KEY_ID).await.unwrap();

    assert_eq!(
        client.access_key_last_used(KEY_ID).await.unwrap(),
        LastUsed::default()
    );
    let used = client
        .access_key_last_used("AKIAOTHERKEY00000002")
        .await
        .unwrap();
    assert_eq!(used.date, Some("2026-11-20T10:00:00Z".parse().unwrap()));
    assert_eq!(
        (used.service.as_deref(), used.region.as_deref()),
        (Some("s3"), Some("eu-west-1"))
    );

    let devices = client.list_mfa_devices("alice").await.unwrap();
    assert_eq!(
        devices,
        [MfaDevice {
            serial: MFA_SERIAL.into(),
            enabled: Some("2026-01-02T03:04:05Z".parse().unwrap())
        }]
    );

    let session = client
        .session_token(MFA_SERIAL, &Secret::new(MFA_CODE), 3600)
        .await
        .unwrap();
    assert_eq!(session.access_key_id, SESSION_KEY_ID);
    assert_eq!(session.secret_access_key.expose(), SESSION_SECRET);
    assert_eq!(
        session.session_token.as_ref().map(Secret::expose),
        Some(SESSION_TOKEN)
    );

    let seen = capture.seen();
    let bodies: Vec<&str> = seen.iter().map(|s| s.body.as_str()).collect();
    // Both pages were asked for, the second with the marker; the user is always named.
    assert_eq!(field(bodies[1], "UserName"), Some("alice"));
    assert_eq!(field(bodies[2], "Marker"), Some("page-2"));
    assert_eq!(field(bodies[4], "Status"), Some("Inactive"));
    assert_eq!(field(bodies[4], "AccessKeyId"), Some(KEY_ID));
    let gst = bodies
        .iter()
        .find(|b| field(b, "Action") == Some("GetSessionToken"))
        .unwrap();
    assert_eq!(
        field(gst, "SerialNumber"),
        Some("arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Falice")
    );
    assert_eq!(field(gst, "TokenCode"), Some(MFA_CODE));
    assert_eq!(field(gst, "DurationSeconds"), Some("3600"));
    assert!(
        seen.iter()
            .all(|s| s.uri == "http://aws.invalid/" && s.security_token.is_none())
    );
    assert!(
        seen.iter()
            .all(|s| s.authorization.contains(&format!("Credential={KEY_ID}/")))
    );
}

#[tokio::test]
async fn a_session_signs_with_its_key_and_token() {
    let capture = Capture::new(canned);
    let client = capture
        .connector(test_settings())
        .connect(&session_target(None));
    client.list_access_keys("alice").await.unwrap();
    let seen = capture.seen();
    assert!(
        seen[0]
            .authorization
            .contains(&format!("Credential={SESSION_KEY_ID}/"))
    );
    assert_eq!(seen[0].security_token.as_deref(), Some(SESSION_TOKEN));
}

#[tokio::test]
async fn a_repeated_marker_ends_the_listing() {
    let capture = Capture::new(|body| {
        let (status, _) = canned(body);
        (
            status,
            iam_answer(
                "ListAccessKeys",
                "<AccessKeyMetadata><member><AccessKeyId>AKIATARGETKEY0000001</AccessKeyId><Status>Active</Status>\
                     </member></AccessKeyMetadata><IsTruncated>true</IsTruncated><Marker>same</Marker>",
            ),
        )
    });
    let client = capture
        .connector(test_settings())
        .connect(&target("us-east-1", None));
    let keys = client.list_access_keys("alice").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(capture.seen().len(), 2);
    assert_eq!(keys[0].created, None);
}
