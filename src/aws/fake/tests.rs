// Over 500 lines: one self-test per behaviour the fake promises, each a story read whole.
//! Self-tests of the fake: that it behaves as IAM does, one test per promise of its docs.

use super::*;
use crate::aws::{Action, Connector, ErrorKind, Iam, KeyStatus, LastUsed};
use crate::secret::{REDACTED, Secret};
use crate::time::block_on;
use jiff::Timestamp;
use std::time::Duration;

fn setup() -> (FakeIam, String, Secret) {
    let iam = FakeIam::new();
    iam.add_user("alice");
    let created = iam.now() - jiff::SignedDuration::from_hours(24 * 100);
    let (id, secret) = iam.add_key("alice", created, KeyStatus::Active);
    (iam, id, secret)
}

fn client(iam: &FakeIam, key_id: &str) -> FakeClient {
    iam.connector().connect(&iam.target(key_id))
}

#[test]
fn ids_secrets_and_arns_look_like_aws_and_are_reproducible() {
    let (iam, id, secret) = setup();
    assert_eq!(id.len(), 20);
    assert!(
        id.starts_with("AKIA")
            && id[4..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    assert_eq!(secret.expose().len(), 40);
    let (iam2, id2, secret2) = setup();
    assert_eq!(
        (id.as_str(), secret.expose()),
        (id2.as_str(), secret2.expose())
    );
    assert_eq!(
        iam.user_arn("alice"),
        "arn:aws:iam::123456789012:user/alice"
    );
    iam2.set_account("210987654321");
    iam2.set_partition("aws-us-gov");
    let who = block_on(client(&iam2, &id2).caller_identity()).unwrap();
    assert_eq!(who.arn, "arn:aws-us-gov:iam::210987654321:user/alice");
    assert_eq!(who.account, "210987654321");
    assert_eq!(who.user_name().as_deref(), Some("alice"));
    assert!(who.user_id.starts_with("AIDA"));
}

#[test]
fn debug_output_never_shows_a_secret() {
    let (iam, id, secret) = setup();
    let text = format!("{iam:?} {:?} {:?}", iam.credentials(&id), client(&iam, &id));
    assert!(!text.contains(secret.expose()), "{text}");
    assert!(text.contains(REDACTED));
}

#[test]
fn authentication_is_checked_like_aws() {
    let (iam, id, _) = setup();
    let mut wrong_secret = iam.target(&id);
    wrong_secret.credentials.secret_access_key = Secret::new("x".repeat(40));
    let e = block_on(iam.connector().connect(&wrong_secret).caller_identity()).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (
            ErrorKind::SignatureDoesNotMatch,
            Some("SignatureDoesNotMatch")
        )
    );

    let mut unknown = iam.target(&id);
    unknown.credentials.access_key_id = "AKIAUNKNOWN000000000".into();
    let e = block_on(iam.connector().connect(&unknown).list_access_keys("alice")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidClientTokenId);
    assert_eq!(e.http_status, Some(403));

    // An inactive key is rejected by real IAM (moto would accept it).
    let (other, _) = iam.add_key("alice", iam.now(), KeyStatus::Inactive);
    let e = block_on(client(&iam, &other).caller_identity()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidClientTokenId);
    assert_eq!(iam.calls().iter().filter(|c| !c.ok).count(), 3);
}

#[test]
fn the_key_lifecycle() {
    let (iam, old, _) = setup();
    let c = client(&iam, &old);
    iam.advance(Duration::from_secs(60));
    let new = block_on(c.create_access_key("alice")).unwrap();
    assert_eq!(new.created, Some(iam.now()));
    assert_eq!(iam.user_keys("alice"), vec![old.clone(), new.id.clone()]);
    // The new key works at once (no propagation delay scripted).
    let with_new = client(&iam, &new.id);
    assert_eq!(
        block_on(with_new.caller_identity())
            .unwrap()
            .user_name()
            .as_deref(),
        Some("alice")
    );
    // A third key is refused.
    let e = block_on(c.create_access_key("alice")).unwrap_err();
    assert_eq!(
        (e.kind, e.http_status),
        (ErrorKind::LimitExceeded, Some(409))
    );
    // Retire the old key with the new one.
    block_on(with_new.update_access_key("alice", &old, KeyStatus::Inactive)).unwrap();
    assert_eq!(iam.status(&old), Some(KeyStatus::Inactive));
    assert_eq!(
        block_on(c.caller_identity()).unwrap_err().kind,
        ErrorKind::InvalidClientTokenId
    );
    block_on(with_new.delete_access_key("alice", &old)).unwrap();
    assert_eq!(iam.status(&old), None);
    let e = block_on(with_new.delete_access_key("alice", &old)).unwrap_err();
    assert_eq!(
        (e.kind, e.http_status),
        (ErrorKind::NoSuchEntity, Some(404))
    );
    let e =
        block_on(with_new.update_access_key("alice", &new.id, KeyStatus::Other("Bogus".into())))
            .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("ValidationError"));
    let keys = block_on(with_new.list_access_keys("alice")).unwrap();
    assert_eq!(keys, iam.keys("alice"));
    assert_eq!(keys.len(), 1);
    let created = iam
        .calls()
        .into_iter()
        .find(|c| c.action == Action::CreateAccessKey && c.ok)
        .unwrap();
    assert_eq!(created.target_key.as_deref(), Some(new.id.as_str()));
    assert_eq!(created.key_id, old);
    assert_eq!(iam.count(Action::CreateAccessKey), 2);
}

#[test]
fn keys_are_per_user_and_other_users_need_admin() {
    let (iam, alice_key, _) = setup();
    iam.add_user("bob");
    let (bob_key, _) = iam.add_key("bob", iam.now(), KeyStatus::Active);
    let alice = client(&iam, &alice_key);
    let e = block_on(alice.list_access_keys("bob")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(!e.is_explicit_deny());
    assert!(
        e.message
            .unwrap()
            .contains("because no identity-based policy allows the iam:ListAccessKeys action")
    );
    // A key of another user is not found under one's own name.
    let e = block_on(alice.delete_access_key("alice", &bob_key)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchEntity);
    assert_eq!(iam.status(&bob_key), Some(KeyStatus::Active));
    let e = block_on(alice.list_access_keys("nobody")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    iam.grant_admin("alice");
    assert_eq!(block_on(alice.list_access_keys("bob")).unwrap().len(), 1);
    let e = block_on(alice.list_access_keys("nobody")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchEntity);
    assert_eq!(
        e.message.as_deref(),
        Some("The user with name nobody cannot be found.")
    );
    assert_eq!(
        block_on(alice.access_key_last_used(&bob_key)).unwrap(),
        LastUsed::default()
    );
    let e = block_on(alice.access_key_last_used("AKIAFAKE999999999999")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchEntity);
}

#[test]
fn last_used_follows_calls_and_can_be_set() {
    let (iam, id, _) = setup();
    assert_eq!(
        block_on(client(&iam, &id).access_key_last_used(&id))
            .unwrap()
            .service
            .as_deref(),
        Some("iam")
    );
    let c = client(&iam, &id);
    iam.advance(Duration::from_secs(3600));
    block_on(c.caller_identity()).unwrap();
    let used = block_on(c.access_key_last_used(&id)).unwrap();
    // The last call (GetAccessKeyLastUsed itself) is what AWS would report.
    assert_eq!(used.service.as_deref(), Some("iam"));
    assert_eq!(used.date, Some(iam.now()));
    let set = LastUsed {
        date: None,
        service: None,
        region: None,
    };
    iam.set_last_used(&id, set.clone());
    iam.add_user("admin");
    iam.grant_admin("admin");
    let (admin_key, _) = iam.add_key("admin", iam.now(), KeyStatus::Active);
    assert_eq!(
        block_on(client(&iam, &admin_key).access_key_last_used(&id)).unwrap(),
        set
    );
}

#[test]
fn mfa_is_required_for_mutations_and_given_by_a_session() {
    let (iam, id, _) = setup();
    let serial = "arn:aws:iam::123456789012:mfa/alice";
    iam.add_mfa_device("alice", serial);
    iam.require_mfa("alice");
    iam.set_mfa_code("123456");
    let c = client(&iam, &id);
    // Reading needs no MFA.
    assert_eq!(block_on(c.list_access_keys("alice")).unwrap().len(), 1);
    let e = block_on(c.create_access_key("alice")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(e.is_explicit_deny() && e.mentions_mfa(), "{e}");
    assert!(
        e.message
            .as_deref()
            .unwrap()
            .contains("iam:CreateAccessKey")
    );
    assert!(
        e.message
            .as_deref()
            .unwrap()
            .contains("MultiFactorAuthPresent")
    );

    let e = block_on(c.session_token(serial, &Secret::new("654321"), 3600)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert_eq!(
        e.message.as_deref(),
        Some("MultiFactorAuthentication failed with invalid MFA one time pass code. ")
    );
    let e = block_on(c.session_token(
        "arn:aws:iam::123456789012:mfa/bob",
        &Secret::new("123456"),
        3600,
    ))
    .unwrap_err();
    assert!(e.mentions_mfa());
    let e = block_on(c.session_token(serial, &Secret::new("123456"), 60)).unwrap_err();
    assert_eq!(e.code.as_deref(), Some("ValidationError"));

    let session = block_on(c.session_token(serial, &Secret::new("123456"), 3600)).unwrap();
    assert!(session.access_key_id.starts_with("ASIA"));
    assert!(session.session_token.is_some());
    let mut session_target = iam.target(&id);
    session_target.credentials = session.clone();
    let s = iam.connector().connect(&session_target);
    assert_eq!(
        block_on(s.caller_identity())
            .unwrap()
            .user_name()
            .as_deref(),
        Some("alice")
    );
    let new = block_on(s.create_access_key("alice")).unwrap();
    block_on(s.update_access_key("alice", &new.id, KeyStatus::Inactive)).unwrap();
    block_on(s.delete_access_key("alice", &new.id)).unwrap();
    let e = block_on(s.session_token(serial, &Secret::new("123456"), 3600)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);

    let calls = iam.calls();
    let gst: Vec<_> = calls
        .iter()
        .filter(|c| c.action == Action::GetSessionToken)
        .collect();
    assert_eq!(gst.len(), 5);
    assert_eq!(gst[3].mfa_serial.as_deref(), Some(serial));
    let create = calls
        .iter()
        .rfind(|c| c.action == Action::CreateAccessKey)
        .unwrap();
    assert!(create.mfa_session && create.ok);
    assert_eq!(create.key_id, session.access_key_id);

    // The session without its token, and after it expires.
    let mut no_token = session_target.clone();
    no_token.credentials.session_token = None;
    let e = block_on(iam.connector().connect(&no_token).caller_identity()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidClientTokenId);
    iam.advance(Duration::from_secs(3600));
    let e = block_on(s.caller_identity()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ExpiredToken);
}

#[test]
fn a_bare_explicit_deny_can_be_scripted() {
    let (iam, id, _) = setup();
    iam.require_mfa_with_message(
        "alice",
        "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:ACTION on resource: user \
             alice with an explicit deny in an identity-based policy",
    );
    let e = block_on(client(&iam, &id).delete_access_key("alice", &id)).unwrap_err();
    assert!(e.is_explicit_deny() && !e.mentions_mfa());
    assert!(e.message.unwrap().contains("iam:DeleteAccessKey"));
    assert_eq!(iam.status(&id), Some(KeyStatus::Active));
}

#[test]
fn any_code_is_accepted_until_one_is_set() {
    let (iam, id, _) = setup();
    iam.add_mfa_device("alice", "arn:aws:iam::123456789012:mfa/alice");
    let c = client(&iam, &id);
    assert!(
        block_on(c.session_token(
            "arn:aws:iam::123456789012:mfa/alice",
            &Secret::new("000000"),
            900
        ))
        .is_ok()
    );
    let e = block_on(c.session_token(
        "arn:aws:iam::123456789012:mfa/alice",
        &Secret::new("12345"),
        900,
    ));
    assert_eq!(e.unwrap_err().kind, ErrorKind::AccessDenied);
    assert_eq!(
        block_on(c.list_mfa_devices("alice")).unwrap()[0].enabled,
        Some(iam.now())
    );
}

#[test]
fn faults_fire_as_scripted() {
    let (iam, id, _) = setup();
    let c = client(&iam, &id);
    iam.fail(Action::ListAccessKeys, Fault::once(ErrorKind::Throttling));
    let e = block_on(c.list_access_keys("alice")).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref(), e.http_status),
        (ErrorKind::Throttling, Some("Throttling"), Some(400))
    );
    assert!(block_on(c.list_access_keys("alice")).is_ok());

    iam.fail(
        Action::GetCallerIdentity,
        Fault::always(ErrorKind::ServiceUnavailable)
            .skip(1)
            .times(2),
    );
    let results: Vec<bool> = (0..5)
        .map(|_| block_on(c.caller_identity()).is_ok())
        .collect();
    assert_eq!(results, [true, false, false, true, true]);

    iam.fail(Action::GetCallerIdentity, Fault::always(ErrorKind::Network));
    let e = block_on(c.caller_identity()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    assert_eq!(
        e.endpoint.as_deref(),
        Some("https://sts.us-east-1.amazonaws.com")
    );
    iam.clear_faults();

    iam.fail(
        Action::ListMFADevices,
        Fault::once(ErrorKind::AccessDenied)
            .code("AccessDeniedException")
            .message("custom words"),
    );
    let e = block_on(c.list_mfa_devices("alice")).unwrap_err();
    assert_eq!(
        (e.code.as_deref(), e.message.as_deref()),
        (Some("AccessDeniedException"), Some("custom words"))
    );
    iam.fail(Action::ListMFADevices, Fault::once(ErrorKind::AuthFailure));
    let e = block_on(c.list_mfa_devices("alice")).unwrap_err();
    assert_eq!(
        (e.kind, e.code, e.http_status),
        (ErrorKind::AuthFailure, None, Some(403))
    );
    assert!(e.kind.is_auth_failure());
}

#[test]
fn faults_can_target_keys() {
    let (iam, old, _) = setup();
    let (other, _) = iam.add_key("alice", iam.now(), KeyStatus::Active);
    iam.fail(
        Action::GetCallerIdentity,
        Fault::always(ErrorKind::InvalidClientTokenId).except_key(old.clone()),
    );
    assert!(block_on(client(&iam, &old).caller_identity()).is_ok());
    assert!(block_on(client(&iam, &other).caller_identity()).is_err());
    // The key acted on counts too.
    iam.fail(
        Action::DeleteAccessKey,
        Fault::always(ErrorKind::Throttling).only_for_key(old.clone()),
    );
    let c = client(&iam, &other);
    assert_eq!(
        block_on(c.delete_access_key("alice", &old))
            .unwrap_err()
            .kind,
        ErrorKind::Throttling
    );
    assert_eq!(iam.status(&old), Some(KeyStatus::Active));
    block_on(client(&iam, &old).delete_access_key("alice", &other)).unwrap_err();
    assert_eq!(
        iam.status(&other),
        Some(KeyStatus::Active),
        "signed by the faulted key"
    );
}

#[test]
fn after_effect_faults_lose_the_answer_but_not_the_effect() {
    let (iam, id, _) = setup();
    iam.fail(
        Action::CreateAccessKey,
        Fault::once(ErrorKind::Network).after_effect(),
    );
    let e = block_on(client(&iam, &id).create_access_key("alice")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    let keys = iam.user_keys("alice");
    assert_eq!(keys.len(), 2, "the key was created");
    let call = iam.calls().pop().unwrap();
    assert!(!call.ok);
    assert_eq!(call.target_key.as_deref(), Some(keys[1].as_str()));
    // When the action itself fails, its own error is returned.
    iam.fail(
        Action::DeleteAccessKey,
        Fault::once(ErrorKind::Timeout).after_effect(),
    );
    let e =
        block_on(client(&iam, &id).delete_access_key("alice", "AKIAFAKE999999999999")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoSuchEntity);
}

#[test]
fn new_keys_propagate_after_the_scripted_number_of_calls() {
    let (iam, old, _) = setup();
    iam.propagation_delay(3);
    let new = block_on(client(&iam, &old).create_access_key("alice")).unwrap();
    let c = client(&iam, &new.id);
    for _ in 0..2 {
        assert_eq!(
            block_on(c.caller_identity()).unwrap_err().kind,
            ErrorKind::InvalidClientTokenId
        );
    }
    // Any kind of call counts.
    assert_eq!(
        block_on(c.list_access_keys("alice")).unwrap_err().kind,
        ErrorKind::InvalidClientTokenId
    );
    assert!(block_on(c.caller_identity()).is_ok());
    assert!(block_on(c.update_access_key("alice", &old, KeyStatus::Inactive)).is_ok());
    // Keys given by add_key are never delayed.
    iam.add_user("bob");
    let (bob, _) = iam.add_key("bob", iam.now(), KeyStatus::Active);
    assert!(block_on(client(&iam, &bob).caller_identity()).is_ok());
}

#[test]
fn time_is_the_fakes_own() {
    let iam = FakeIam::new();
    assert_eq!(iam.now(), START.parse::<Timestamp>().unwrap());
    let t: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    iam.set_now(t);
    iam.advance(Duration::from_secs(90));
    assert_eq!(
        iam.now(),
        "2030-01-01T00:01:30Z".parse::<Timestamp>().unwrap()
    );
    iam.add_user("alice");
    let (id, _) = iam.add_key("alice", t, KeyStatus::Active);
    assert_eq!(iam.keys("alice")[0].created, Some(t));
    assert_eq!(iam.keys("alice")[0].id, id);
}

#[test]
#[should_panic(expected = "already has two keys")]
fn setup_refuses_a_third_key() {
    let (iam, _, _) = setup();
    iam.add_key("alice", iam.now(), KeyStatus::Active);
    iam.add_key("alice", iam.now(), KeyStatus::Active);
}

#[test]
fn calls_from_concurrent_tasks_interleave() {
    let iam = FakeIam::new();
    iam.add_user("alice");
    iam.add_user("bob");
    let (a, _) = iam.add_key("alice", iam.now(), KeyStatus::Active);
    let (b, _) = iam.add_key("bob", iam.now(), KeyStatus::Active);
    let (ca, cb) = (client(&iam, &a), client(&iam, &b));
    block_on(async {
        let (x, y) = futures_util::future::join(
            async {
                ca.caller_identity().await.unwrap();
                ca.list_access_keys("alice").await.unwrap();
            },
            async {
                cb.caller_identity().await.unwrap();
                cb.list_access_keys("bob").await.unwrap();
            },
        )
        .await;
        (x, y)
    });
    let order: Vec<String> = iam.calls().into_iter().map(|c| c.key_id).collect();
    assert_eq!(order, [a.clone(), b.clone(), a, b]);
}
