//! The SDK calls against canned answers in memory: markers are followed to the last page,
//! a repeated marker ends the listing, documents are decoded, "not there" is `None`.

use super::*;
use crate::aws::account::{AccountAction, AccountIam};
use crate::aws::sdk::account::SdkAccountClient;

fn answer(action: &str, result: &str) -> String {
    format!(
        "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></{action}Response>"
    )
}

fn user(name: &str) -> String {
    format!(
        "<member><Path>/</Path><UserName>{name}</UserName><UserId>AIDA{name}</UserId>\
             <Arn>arn:aws:iam::123456789012:user/{name}</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>"
    )
}

fn canned(body: &str) -> (u16, String) {
    let action = field(body, "Action").unwrap_or_default();
    let marker = field(body, "Marker");
    let a = match (action, marker) {
        ("ListUsers", None) => answer(
            action,
            &format!(
                "<Users>{}{}</Users><IsTruncated>true</IsTruncated><Marker>m1</Marker>",
                user("a"),
                user("b")
            ),
        ),
        ("ListUsers", Some("m1")) => answer(
            action,
            &format!(
                "<Users>{}</Users><IsTruncated>true</IsTruncated><Marker>m2</Marker>",
                user("c")
            ),
        ),
        ("ListUsers", Some(_)) => answer(
            action,
            &format!(
                "<Users>{}</Users><IsTruncated>false</IsTruncated>",
                user("d")
            ),
        ),
        ("ListUserTags", _) => answer(
            action,
            // Truncated with the same marker again: the listing ends there.
            "<Tags><member><Key>iam-keys:exempt</Key><Value>x</Value></member></Tags>\
                 <IsTruncated>true</IsTruncated><Marker>same</Marker>",
        ),
        ("GetUserPolicy", _) if field(body, "PolicyName") == Some("missing") => {
            return (
                404,
                "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>\
                     <Message>The user policy with name missing cannot be found.</Message></Error>\
                     <RequestId>x</RequestId></ErrorResponse>"
                    .into(),
            );
        }
        ("GetUserPolicy", _) => answer(
            action,
            "<UserName>a</UserName><PolicyName>p</PolicyName>\
                 <PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%7D</PolicyDocument>",
        ),
        ("CreateGroup" | "CreatePolicyVersion" | "ListGroupsForUser", _) => {
            return (
                503,
                "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>\
                     <Message>try later</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                    .into(),
            );
        }
        ("GetCredentialReport", _) => {
            return (
                410,
                "<ErrorResponse><Error><Type>Sender</Type><Code>ReportNotPresent</Code>\
                     <Message>not yet</Message></Error><RequestId>x</RequestId></ErrorResponse>"
                    .into(),
            );
        }
        _ => {
            return (
                400,
                "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>".into(),
            );
        }
    };
    (200, a)
}

fn client() -> (SdkAccountClient, Capture) {
    client_with(1)
}

fn client_with(max_attempts: u32) -> (SdkAccountClient, Capture) {
    let capture = Capture::new(canned);
    let connector = capture.connector(ConnectorSettings {
        proxy_from_env: false,
        max_attempts,
        initial_backoff: std::time::Duration::from_millis(1),
        ..ConnectorSettings::default()
    });
    let target = Target {
        credentials: Credentials::long_term(
            "AKIAAUDITOR000000001",
            Secret::new("AuditorSecretAuditorSecretAuditorSecre01"),
        ),
        region: "us-east-1".into(),
        iam_endpoint: Some("http://127.0.0.1:9".into()),
        sts_endpoint: Some("http://127.0.0.1:9".into()),
    };
    (connector.connect_account(&target, None), capture)
}

#[test]
fn list_users_follows_markers_to_the_last_page() {
    let (client, capture) = client();
    let users = crate::time::block_on(client.list_users()).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert!(users[0].created.is_some());
    let bodies = capture.bodies();
    assert_eq!(bodies.len(), 3);
    assert_eq!(field(&bodies[0], "Marker"), None);
    assert_eq!(field(&bodies[1], "Marker"), Some("m1"));
    assert_eq!(field(&bodies[2], "Marker"), Some("m2"));
    assert_eq!(field(&bodies[0], "MaxItems"), Some("1000"));
}

#[test]
fn a_repeated_marker_ends_the_listing() {
    let (client, capture) = client();
    let tags = crate::time::block_on(client.list_user_tags("a")).unwrap();
    assert_eq!(tags.len(), 2, "one tag per page read");
    // First page, then the page for marker `same`, which repeats it: stop.
    assert_eq!(capture.seen().len(), 2);
}

#[test]
fn documents_are_decoded_and_absent_things_are_none() {
    let (client, _) = client();
    assert_eq!(
        crate::time::block_on(client.get_user_policy("a", "p"))
            .unwrap()
            .as_deref(),
        Some(r#"{"Version":"2012-10-17"}"#)
    );
    assert_eq!(
        crate::time::block_on(client.get_user_policy("a", "missing")).unwrap(),
        None
    );
    assert_eq!(
        crate::time::block_on(client.get_credential_report()).unwrap(),
        None
    );
    let e = crate::time::block_on(client.list_accounts()).unwrap_err();
    assert_eq!(e.action, Action::Account(AccountAction::ListAccounts));
}

#[test]
fn creates_are_sent_once_while_reads_are_retried() {
    let (client, capture) = client_with(3);
    let e = crate::time::block_on(client.create_group("g")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
    assert_eq!(capture.seen().len(), 1, "CreateGroup: one attempt");
    capture.clear();
    assert!(
        crate::time::block_on(client.create_policy_version("arn:aws:iam::1:policy/p", "{}"))
            .is_err()
    );
    assert_eq!(capture.seen().len(), 1, "CreatePolicyVersion: one attempt");
    capture.clear();
    assert!(crate::time::block_on(client.list_groups_for_user("a")).is_err());
    assert_eq!(capture.seen().len(), 3, "a read: the standard retries");
}
