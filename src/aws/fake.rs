//! An in-memory IAM and STS with scripted faults, for unit tests of everything above
//! [`Iam`].
//!
//! It behaves like real IAM, not like moto: an unknown, inactive or not yet propagated key
//! gets `InvalidClientTokenId`, a wrong secret `SignatureDoesNotMatch`, a third key
//! `LimitExceeded`, an unknown user or key `NoSuchEntity`; keys belong to users; a user may
//! manage only their own keys unless made an admin (as with the policy `iam-keys policy`
//! prints); a user can be made to require MFA for the mutating calls, and GetSessionToken
//! checks the device and the code. Key ids, secrets and tokens are deterministic (counter
//! based), so test output is reproducible.
//!
//! ```ignore
//! let iam = FakeIam::new();
//! iam.add_user("alice");
//! let (old, _secret) = iam.add_key("alice", iam.now() - SignedDuration::from_hours(2400), KeyStatus::Active);
//! iam.propagation_delay(2); // new keys fail authentication for their first two calls
//! iam.fail(Action::DeleteAccessKey, Fault::once(ErrorKind::Throttling));
//! let client = iam.connector().connect(&iam.target(&old));
//! // ... run the code under test with `client` ...
//! assert_eq!(iam.count(Action::CreateAccessKey), 1);
//! ```
//!
//! Time is the fake's own: [`FakeIam::set_now`] and [`FakeIam::advance`] (a test's fake
//! clock can call them) decide `CreateDate`, `LastUsedDate` and session expiry.
//!
//! Must not: touch the network, the file system or the real clock; or put a secret in a
//! panic message or in `Debug` output.

use super::sdk::Endpoints;
use super::{
    AccessKeyMeta, Action, AwsError, CallerIdentity, Connector, Credentials, ErrorKind, Iam,
    KeyStatus, LastUsed, MfaDevice, NewAccessKey, Target,
};
use crate::secret::Secret;
use jiff::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// The fake's clock before any [`FakeIam::set_now`].
pub const START: &str = "2026-01-15T09:00:00Z";

/// The default account id (moto's and the AWS documentation's).
pub const ACCOUNT: &str = "123456789012";

/// A scripted failure of one action. Built with [`Fault::once`] or [`Fault::always`] and
/// refined with the builder methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: ErrorKind,
    /// The AWS error code; `None` gives the usual code of `kind` (none for `AuthFailure`,
    /// `Network`, `Timeout` and `Other`).
    pub code: Option<String>,
    /// AWS's message; `None` gives a realistic one for `kind`.
    pub message: Option<String>,
    /// How many times it fires; `None` is forever.
    pub times: Option<u32>,
    /// Matching calls to let through before it fires.
    pub skip: u32,
    /// Fire only for calls involving this key (as the signing key, or as the key acted on by
    /// UpdateAccessKey, DeleteAccessKey and GetAccessKeyLastUsed).
    pub only_key: Option<String>,
    /// Never fire for calls involving this key (same sense as `only_key`).
    pub except_key: Option<String>,
    /// The action takes effect, then the error is returned: an answer lost on the way back
    /// (a CreateAccessKey whose new key the caller never saw).
    pub after_effect: bool,
}

impl Fault {
    /// Fails the next matching call.
    pub fn once(kind: ErrorKind) -> Fault {
        Fault::always(kind).times(1)
    }

    /// Fails every matching call.
    pub fn always(kind: ErrorKind) -> Fault {
        Fault {
            kind,
            code: None,
            message: None,
            times: None,
            skip: 0,
            only_key: None,
            except_key: None,
            after_effect: false,
        }
    }

    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    /// Lets the first `n` matching calls through.
    pub fn skip(mut self, n: u32) -> Fault {
        self.skip = n;
        self
    }

    pub fn after_effect(mut self) -> Fault {
        self.after_effect = true;
        self
    }

    pub fn only_for_key(mut self, id: impl Into<String>) -> Fault {
        self.only_key = Some(id.into());
        self
    }

    pub fn except_key(mut self, id: impl Into<String>) -> Fault {
        self.except_key = Some(id.into());
        self
    }

    pub fn code(mut self, code: impl Into<String>) -> Fault {
        self.code = Some(code.into());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Fault {
        self.message = Some(message.into());
        self
    }

    fn matches(&self, signer: &str, target_key: Option<&str>) -> bool {
        let involves = |id: &str| signer == id || target_key == Some(id);
        self.only_key.as_deref().is_none_or(involves)
            && !self.except_key.as_deref().is_some_and(involves)
    }
}

/// One call the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub action: Action,
    /// The access key id that signed (an `ASIA…` id for an MFA session).
    pub key_id: String,
    /// Signed with a session from GetSessionToken with MFA.
    pub mfa_session: bool,
    /// The `UserName` parameter, for the actions that take one.
    pub user: Option<String>,
    /// The key acted on (UpdateAccessKey, DeleteAccessKey, GetAccessKeyLastUsed) or created
    /// (CreateAccessKey, when it took effect).
    pub target_key: Option<String>,
    /// The MFA serial of a GetSessionToken.
    pub mfa_serial: Option<String>,
    pub ok: bool,
    /// What the caller got back, when it was an error.
    pub error: Option<ErrorKind>,
}

/// The fake IAM: cheap to clone, every clone sees the same state.
#[derive(Clone, Debug, Default)]
pub struct FakeIam {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    account: String,
    partition: String,
    now: Timestamp,
    counter: u64,
    users: Vec<User>,
    keys: Vec<Key>,
    sessions: Vec<Session>,
    mfa_code: Option<String>,
    rules: Vec<Rule>,
    propagation_delay: u32,
    /// For keys created from now on: how their first calls authenticate (`false`: refused
    /// with InvalidClientTokenId, as IAM does while a key propagates); then always.
    propagation_pattern: Vec<bool>,
    /// ListAccessKeys does not show a key for this long after it was created (IAM's lists
    /// are eventually consistent).
    list_lag: Duration,
    /// Attempts per call, as the SDK's standard retry mode makes them: a transient error on a
    /// call that is safe to retry (`Action::retry_safe`) is sent again, up to this many.
    sdk_attempts: u32,
    /// Calls so far, and the call at which the process "dies" (see [`FakeIam::kill_at`]).
    call_count: u64,
    kill_at: Option<(u64, bool)>,
    calls: Vec<Call>,
}

impl Default for State {
    fn default() -> Self {
        State {
            account: ACCOUNT.to_string(),
            partition: "aws".to_string(),
            now: START.parse().expect("START is a valid timestamp"),
            counter: 0,
            users: Vec::new(),
            keys: Vec::new(),
            sessions: Vec::new(),
            mfa_code: None,
            rules: Vec::new(),
            propagation_delay: 0,
            propagation_pattern: Vec::new(),
            list_lag: Duration::ZERO,
            sdk_attempts: 1,
            call_count: 0,
            kill_at: None,
            calls: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct User {
    name: String,
    user_id: String,
    mfa_devices: Vec<MfaDevice>,
    /// The message of the explicit deny for mutating calls without MFA, when MFA is required.
    require_mfa: Option<String>,
    admin: bool,
}

#[derive(Debug)]
struct Key {
    id: String,
    secret: Secret,
    user: String,
    status: KeyStatus,
    created: Timestamp,
    last_used: LastUsed,
    /// How the key's next calls authenticate (`false`: InvalidClientTokenId, propagation);
    /// once empty, always.
    propagation: std::collections::VecDeque<bool>,
}

#[derive(Debug)]
struct Session {
    id: String,
    secret: Secret,
    token: Secret,
    user: String,
    expires: Timestamp,
}

#[derive(Debug)]
struct Rule {
    action: Action,
    fault: Fault,
    seen: u32,
    fired: u32,
}

/// Who signed a call, once authenticated.
struct Caller {
    user: String,
    mfa: bool,
}

impl FakeIam {
    pub fn new() -> FakeIam {
        FakeIam::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connector whose clients call this fake.
    pub fn connector(&self) -> FakeConnector {
        FakeConnector { iam: self.clone() }
    }

    pub fn set_account(&self, account: impl Into<String>) {
        self.state().account = account.into();
    }

    /// `aws`, `aws-cn` or `aws-us-gov`: the partition of the ARNs it hands out.
    pub fn set_partition(&self, partition: impl Into<String>) {
        self.state().partition = partition.into();
    }

    pub fn account(&self) -> String {
        self.state().account.clone()
    }

    /// `arn:PARTITION:iam::ACCOUNT:user/NAME`.
    pub fn user_arn(&self, user: &str) -> String {
        let s = self.state();
        format!("arn:{}:iam::{}:user/{user}", s.partition, s.account)
    }

    pub fn now(&self) -> Timestamp {
        self.state().now
    }

    pub fn set_now(&self, now: Timestamp) {
        self.state().now = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut s = self.state();
        s.now += jiff::SignedDuration::try_from(by).expect("a test duration fits");
    }

    /// Adds an IAM user (again: no change).
    pub fn add_user(&self, name: &str) {
        let mut s = self.state();
        if s.users.iter().any(|u| u.name == name) {
            return;
        }
        let n = s.next();
        s.users.push(User {
            name: name.to_string(),
            user_id: format!("AIDAFAKE{n:013}"),
            mfa_devices: Vec::new(),
            require_mfa: None,
            admin: false,
        });
    }

    /// Lets `user` manage every user's keys (as an administrator), not only their own.
    pub fn grant_admin(&self, user: &str) {
        self.with_user(user, |u| u.admin = true);
    }

    /// Gives `user` a key created at `created`, as if it had existed before the test. Panics
    /// when the user is unknown or already has two keys (IAM's limit).
    pub fn add_key(&self, user: &str, created: Timestamp, status: KeyStatus) -> (String, Secret) {
        let mut s = self.state();
        assert!(
            s.users.iter().any(|u| u.name == user),
            "FakeIam::add_key: no user {user}; call add_user first"
        );
        assert!(
            s.keys.iter().filter(|k| k.user == user).count() < 2,
            "FakeIam::add_key: {user} already has two keys"
        );
        let (id, secret) = s.new_key(user, created, status, Vec::new());
        (id, secret)
    }

    /// Every key IAM holds: (id, user, secret, status).
    pub fn all_keys(&self) -> Vec<(String, String, Secret, KeyStatus)> {
        self.state()
            .keys
            .iter()
            .map(|k| {
                (
                    k.id.clone(),
                    k.user.clone(),
                    k.secret.clone(),
                    k.status.clone(),
                )
            })
            .collect()
    }

    /// The user a key belongs to, if it exists.
    pub fn user_of(&self, key_id: &str) -> Option<String> {
        self.state()
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .map(|k| k.user.clone())
    }

    /// Deletes a key as someone else would (not recorded as a call).
    pub fn remove_key(&self, user: &str, key_id: &str) {
        self.state()
            .keys
            .retain(|k| !(k.id == key_id && k.user == user));
    }

    /// The user's keys as ListAccessKeys shows them, oldest first.
    pub fn keys(&self, user: &str) -> Vec<AccessKeyMeta> {
        self.state()
            .keys
            .iter()
            .filter(|k| k.user == user)
            .map(|k| AccessKeyMeta {
                id: k.id.clone(),
                status: k.status.clone(),
                created: Some(k.created),
            })
            .collect()
    }

    /// The ids of the user's keys, oldest first.
    pub fn user_keys(&self, user: &str) -> Vec<String> {
        self.state()
            .keys
            .iter()
            .filter(|k| k.user == user)
            .map(|k| k.id.clone())
            .collect()
    }

    /// A key's status, or `None` when it does not exist (any more).
    pub fn status(&self, key_id: &str) -> Option<KeyStatus> {
        self.state()
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .map(|k| k.status.clone())
    }

    /// The long-term credentials of a key. Panics when there is no such key.
    pub fn credentials(&self, key_id: &str) -> Credentials {
        let s = self.state();
        let key = s
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .unwrap_or_else(|| panic!("FakeIam: no key {key_id}"));
        Credentials::long_term(key.id.clone(), key.secret.clone())
    }

    /// A target for a key: its credentials, us-east-1, no endpoint overrides.
    pub fn target(&self, key_id: &str) -> Target {
        Target {
            credentials: self.credentials(key_id),
            region: "us-east-1".into(),
            iam_endpoint: None,
            sts_endpoint: None,
        }
    }

    /// What GetAccessKeyLastUsed answers for the key (calls signed with a key also set it).
    pub fn set_last_used(&self, key_id: &str, last_used: LastUsed) {
        let mut s = self.state();
        let key = s
            .keys
            .iter_mut()
            .find(|k| k.id == key_id)
            .unwrap_or_else(|| panic!("FakeIam: no key {key_id}"));
        key.last_used = last_used;
    }

    pub fn add_mfa_device(&self, user: &str, serial: &str) {
        let now = self.now();
        self.with_user(user, |u| {
            u.mfa_devices.push(MfaDevice {
                serial: serial.to_string(),
                enabled: Some(now),
            })
        });
    }

    /// CreateAccessKey, UpdateAccessKey and DeleteAccessKey by `user` without an MFA session
    /// get AccessDenied, with an explicit-deny message naming the `MultiFactorAuthPresent`
    /// policy (as newer AWS messages name the denying policy).
    pub fn require_mfa(&self, user: &str) {
        let (arn, account) = (self.user_arn(user), self.account());
        let partition = self.state().partition.clone();
        let message = format!(
            "User: {arn} is not authorized to perform: iam:ACTION on resource: user {user} with an explicit deny in \
             an identity-based policy: arn:{partition}:iam::{account}:policy/DenyUnlessMultiFactorAuthPresent"
        );
        self.require_mfa_with_message(user, message);
    }

    /// As [`require_mfa`](Self::require_mfa), with AWS's message given (`ACTION` in it is
    /// replaced by the action's name). Real AWS often says only "with an explicit deny in an
    /// identity-based policy", without naming MFA.
    pub fn require_mfa_with_message(&self, user: &str, message: impl Into<String>) {
        let message = message.into();
        self.with_user(user, |u| u.require_mfa = Some(message));
    }

    /// The one MFA code GetSessionToken accepts from now on. Until set, any code is accepted.
    pub fn set_mfa_code(&self, code: &str) {
        self.state().mfa_code = Some(code.to_string());
    }

    /// Scripts a failure of `action`. Rules are checked in the order they were added; the
    /// first that fires decides. A faulted call does not count towards a propagation delay.
    pub fn fail(&self, action: Action, fault: Fault) {
        self.state().rules.push(Rule {
            action,
            fault,
            seen: 0,
            fired: 0,
        });
    }

    pub fn clear_faults(&self) {
        self.state().rules.clear();
    }

    /// Keys created by CreateAccessKey from now on fail authentication
    /// (`InvalidClientTokenId`) for their first `calls` calls of any kind, then work: IAM's
    /// eventual consistency.
    pub fn propagation_delay(&self, calls: u32) {
        self.state().propagation_delay = calls;
    }

    /// Keys created from now on authenticate as `pattern` says for their first calls
    /// (`false`: refused, as while propagating; a `true` then a `false` is a key that worked
    /// once and then failed again), then always.
    pub fn propagation_pattern(&self, pattern: Vec<bool>) {
        self.state().propagation_pattern = pattern;
    }

    /// ListAccessKeys hides a key for `lag` after its creation.
    pub fn list_lag(&self, lag: Duration) {
        self.state().list_lag = lag;
    }

    /// Make each call as the SDK would, with up to `attempts` attempts for the calls that
    /// are safe to retry (see [`Action::retry_safe`]); 1 (the default) is one attempt.
    pub fn sdk_attempts(&self, attempts: u32) {
        self.state().sdk_attempts = attempts.max(1);
    }

    /// The process dies at the `n`th call from now (1 = the next one): before IAM sees it,
    /// or, with `after_effect`, once it has taken effect and before the answer. The caller's
    /// code unwinds with a [`Killed`] panic; IAM's state is kept.
    pub fn kill_at(&self, n: u64, after_effect: bool) {
        let mut s = self.state();
        let at = s.call_count + n;
        s.kill_at = Some((at, after_effect));
    }

    /// No kill scheduled.
    pub fn no_kill(&self) {
        self.state().kill_at = None;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// How many calls of `action` were made (successful or not).
    pub fn count(&self, action: Action) -> usize {
        self.state()
            .calls
            .iter()
            .filter(|c| c.action == action)
            .count()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    fn with_user(&self, user: &str, f: impl FnOnce(&mut User)) {
        let mut s = self.state();
        let u = s
            .users
            .iter_mut()
            .find(|u| u.name == user)
            .unwrap_or_else(|| panic!("FakeIam: no user {user}; call add_user first"));
        f(u);
    }
}

impl State {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn new_key(
        &mut self,
        user: &str,
        created: Timestamp,
        status: KeyStatus,
        propagation: Vec<bool>,
    ) -> (String, Secret) {
        let n = self.next();
        let id = format!("AKIAFAKE{n:012}");
        let secret = Secret::new(pseudo_random(n, 40));
        self.keys.push(Key {
            id: id.clone(),
            secret: secret.clone(),
            user: user.to_string(),
            status,
            created,
            last_used: LastUsed::default(),
            propagation: propagation.into(),
        });
        (id, secret)
    }

    fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    fn arn(&self, user: &str) -> String {
        format!("arn:{}:iam::{}:user/{user}", self.partition, self.account)
    }

    /// Checks the credentials as AWS does, and records the key's last use.
    fn authenticate(
        &mut self,
        creds: &Credentials,
        action: Action,
        region: &str,
    ) -> Result<Caller, AwsError> {
        let invalid = || {
            AwsError::new(action, ErrorKind::InvalidClientTokenId)
                .with_code("InvalidClientTokenId")
                .with_message("The security token included in the request is invalid.")
                .with_status(403)
        };
        let bad_signature = || {
            AwsError::new(action, ErrorKind::SignatureDoesNotMatch)
                .with_code("SignatureDoesNotMatch")
                .with_message(
                    "The request signature we calculated does not match the signature you provided. Check your AWS \
                     Secret Access Key and signing method. Consult the service documentation for details.",
                )
                .with_status(403)
        };
        let now = self.now;
        if let Some(session) = self.sessions.iter().find(|s| s.id == creds.access_key_id) {
            if creds.secret_access_key != session.secret {
                return Err(bad_signature());
            }
            if creds.session_token.as_ref() != Some(&session.token) {
                return Err(invalid());
            }
            if now >= session.expires {
                return Err(AwsError::new(action, ErrorKind::ExpiredToken)
                    .with_code("ExpiredToken")
                    .with_message("The security token included in the request is expired")
                    .with_status(403));
            }
            return Ok(Caller {
                user: session.user.clone(),
                mfa: true,
            });
        }
        let Some(key) = self.keys.iter_mut().find(|k| k.id == creds.access_key_id) else {
            return Err(invalid());
        };
        if key.propagation.pop_front() == Some(false) {
            return Err(invalid());
        }
        if key.status != KeyStatus::Active {
            return Err(invalid());
        }
        if creds.secret_access_key != key.secret {
            return Err(bad_signature());
        }
        let sts = matches!(action, Action::GetCallerIdentity | Action::GetSessionToken);
        key.last_used = LastUsed {
            date: Some(now),
            service: Some(if sts { "sts" } else { "iam" }.to_string()),
            region: Some(if sts { region } else { "us-east-1" }.to_string()),
        };
        Ok(Caller {
            user: key.user.clone(),
            mfa: false,
        })
    }

    /// May `caller` call `action` on `user`'s keys? Unknown users are NoSuchEntity.
    fn authorize(&self, caller: &Caller, action: Action, user: &str) -> Result<(), AwsError> {
        let Some(me) = self.user(&caller.user) else {
            return Err(AwsError::new(action, ErrorKind::InvalidClientTokenId)
                .with_code("InvalidClientTokenId")
                .with_message("The security token included in the request is invalid.")
                .with_status(403));
        };
        let mutating = matches!(
            action,
            Action::CreateAccessKey | Action::UpdateAccessKey | Action::DeleteAccessKey
        );
        if mutating
            && !caller.mfa
            && let Some(message) = &me.require_mfa
        {
            return Err(access_denied(
                action,
                &message.replace("ACTION", action.as_str()),
            ));
        }
        if user != caller.user && !me.admin {
            return Err(AwsError::new(action, ErrorKind::AccessDenied)
                .with_code("AccessDenied")
                .with_message(format!(
                    "User: {} is not authorized to perform: iam:{action} on resource: user {user} because no \
                     identity-based policy allows the iam:{action} action",
                    self.arn(&caller.user)
                ))
                .with_status(403));
        }
        if self.user(user).is_none() {
            return Err(no_such_user(action, user));
        }
        Ok(())
    }
}

fn no_such_user(action: Action, user: &str) -> AwsError {
    AwsError::new(action, ErrorKind::NoSuchEntity)
        .with_code("NoSuchEntity")
        .with_message(format!("The user with name {user} cannot be found."))
        .with_status(404)
}

fn no_such_key(action: Action, key_id: &str) -> AwsError {
    AwsError::new(action, ErrorKind::NoSuchEntity)
        .with_code("NoSuchEntity")
        .with_message(format!("The Access Key with id {key_id} cannot be found."))
        .with_status(404)
}

fn access_denied(action: Action, message: &str) -> AwsError {
    AwsError::new(action, ErrorKind::AccessDenied)
        .with_code("AccessDenied")
        .with_message(message)
        .with_status(403)
}

/// Deterministic characters of the base64 alphabet (splitmix64 of the counter).
fn pseudo_random(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ALPHABET[(z % 64) as usize] as char
        })
        .collect()
}

/// The error a [`Fault`] stands for, with AWS's usual code, message and status.
fn fault_error(action: Action, fault: &Fault, endpoint: &str) -> AwsError {
    let (code, message, status): (Option<&str>, Option<&str>, Option<u16>) = match fault.kind {
        ErrorKind::InvalidClientTokenId => (
            Some("InvalidClientTokenId"),
            Some("The security token included in the request is invalid."),
            Some(403),
        ),
        ErrorKind::SignatureDoesNotMatch => (
            Some("SignatureDoesNotMatch"),
            Some("The request signature we calculated does not match the signature you provided."),
            Some(403),
        ),
        ErrorKind::ExpiredToken => (
            Some("ExpiredToken"),
            Some("The security token included in the request is expired"),
            Some(403),
        ),
        ErrorKind::AuthFailure => (None, None, Some(403)),
        ErrorKind::AccessDenied => (
            Some("AccessDenied"),
            Some(
                "User is not authorized to perform this action with an explicit deny in an identity-based policy",
            ),
            Some(403),
        ),
        ErrorKind::LimitExceeded => (
            Some("LimitExceeded"),
            Some("Cannot exceed quota for AccessKeysPerUser: 2"),
            Some(409),
        ),
        ErrorKind::NoSuchEntity => (
            Some("NoSuchEntity"),
            Some("The entity cannot be found."),
            Some(404),
        ),
        ErrorKind::Throttling => (Some("Throttling"), Some("Rate exceeded"), Some(400)),
        ErrorKind::ServiceUnavailable => (
            Some("ServiceUnavailable"),
            Some("Service is unable to handle request."),
            Some(503),
        ),
        ErrorKind::Network => (
            None,
            Some("client error (Connect): Connection refused (os error 111)"),
            None,
        ),
        ErrorKind::Timeout => (
            None,
            Some("operation timeout (all attempts including retries) occurred after 30s"),
            None,
        ),
        ErrorKind::Other => (None, Some("scripted failure"), Some(400)),
    };
    let mut e = AwsError::new(action, fault.kind);
    e.code = fault.code.clone().or(code.map(str::to_string));
    e.message = fault.message.clone().or(message.map(str::to_string));
    e.http_status = status;
    if matches!(fault.kind, ErrorKind::Network | ErrorKind::Timeout) {
        e.endpoint = Some(endpoint.to_string());
    }
    e
}

/// Binds credentials to a [`FakeClient`] of one [`FakeIam`].
#[derive(Clone, Debug)]
pub struct FakeConnector {
    iam: FakeIam,
}

impl FakeConnector {
    pub fn new(iam: &FakeIam) -> FakeConnector {
        iam.connector()
    }

    pub fn iam(&self) -> &FakeIam {
        &self.iam
    }
}

impl Connector for FakeConnector {
    type Client = FakeClient;

    fn connect(&self, target: &Target) -> FakeClient {
        FakeClient {
            iam: self.iam.clone(),
            target: target.clone(),
            endpoints: Endpoints::for_target(target),
        }
    }
}

/// A client of the fake, bound to one target's credentials.
#[derive(Clone, Debug)]
pub struct FakeClient {
    iam: FakeIam,
    target: Target,
    endpoints: Endpoints,
}

/// What a call needs besides the action: for the record and for fault matching.
#[derive(Default)]
struct Request<'a> {
    user: Option<&'a str>,
    target_key: Option<&'a str>,
    mfa_serial: Option<&'a str>,
}

impl FakeClient {
    /// Runs one call as the SDK would: each attempt is recorded, meets the scripted faults,
    /// authenticates, then runs `op`; a transient error on a call that is safe to retry is
    /// attempted again (see [`FakeIam::sdk_attempts`]).
    async fn call<T>(
        &self,
        action: Action,
        request: Request<'_>,
        op: impl Fn(&mut State, Caller) -> Result<T, AwsError>,
        created_key: impl Fn(&T) -> Option<String>,
    ) -> Result<T, AwsError> {
        let mut attempt = 1;
        loop {
            let result = self.attempt(action, &request, &op, &created_key).await;
            let attempts = self.iam.state().sdk_attempts;
            match result {
                Err(e) if e.kind.is_transient() && action.retry_safe() && attempt < attempts => {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// One attempt of a call.
    async fn attempt<T>(
        &self,
        action: Action,
        request: &Request<'_>,
        op: &impl Fn(&mut State, Caller) -> Result<T, AwsError>,
        created_key: &impl Fn(&T) -> Option<String>,
    ) -> Result<T, AwsError> {
        // Let other tasks run, as a real call would.
        YieldOnce(false).await;
        let creds = &self.target.credentials;
        let mut s = self.iam.state();
        s.call_count += 1;
        let kill = s
            .kill_at
            .filter(|(at, _)| *at == s.call_count)
            .map(|(_, after)| after);
        if kill == Some(false) {
            s.kill_at = None;
            drop(s);
            std::panic::panic_any(Killed);
        }
        let endpoint = match action {
            Action::GetCallerIdentity | Action::GetSessionToken => &self.endpoints.sts,
            _ => &self.endpoints.iam,
        };
        let mut fault = None;
        for rule in s.rules.iter_mut().filter(|r| r.action == action) {
            if !rule.fault.matches(&creds.access_key_id, request.target_key) {
                continue;
            }
            rule.seen += 1;
            if rule.seen <= rule.fault.skip || rule.fault.times.is_some_and(|t| rule.fired >= t) {
                continue;
            }
            rule.fired += 1;
            fault = Some(rule.fault.clone());
            break;
        }
        let mfa_session = s.sessions.iter().any(|x| x.id == creds.access_key_id);
        let result = match &fault {
            Some(f) if !f.after_effect => Err(fault_error(action, f, endpoint)),
            _ => s
                .authenticate(creds, action, &self.target.region)
                .and_then(|caller| op(&mut s, caller)),
        };
        let created = result.as_ref().ok().and_then(created_key);
        let result = match (result, &fault) {
            (Ok(_), Some(f)) => Err(fault_error(action, f, endpoint)),
            (result, _) => result,
        };
        s.calls.push(Call {
            action,
            key_id: creds.access_key_id.clone(),
            mfa_session,
            user: request.user.map(str::to_string),
            target_key: request.target_key.map(str::to_string).or(created),
            mfa_serial: request.mfa_serial.map(str::to_string),
            ok: result.is_ok() && kill.is_none(),
            error: result.as_ref().err().map(|e| e.kind),
        });
        if kill == Some(true) {
            s.kill_at = None;
            drop(s);
            std::panic::panic_any(Killed);
        }
        result
    }
}

/// The panic payload of a process "killed" by [`FakeIam::kill_at`]: catch it with
/// `catch_unwind` to drop every in-memory state while IAM's and the disk's remain.
#[derive(Debug)]
pub struct Killed;

impl Iam for FakeClient {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let action = Action::GetCallerIdentity;
        self.call(
            action,
            Request::default(),
            |s, caller| {
                let user = s
                    .user(&caller.user)
                    .ok_or_else(|| no_such_user(action, &caller.user))?;
                Ok(CallerIdentity {
                    account: s.account.clone(),
                    arn: s.arn(&user.name),
                    user_id: user.user_id.clone(),
                })
            },
            |_| None,
        )
        .await
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        let action = Action::ListAccessKeys;
        self.call(
            action,
            Request {
                user: Some(user),
                ..Request::default()
            },
            |s, caller| {
                s.authorize(&caller, action, user)?;
                let lag = jiff::SignedDuration::try_from(s.list_lag).unwrap_or_default();
                let visible_before = s.now - lag;
                Ok(s.keys
                    .iter()
                    .filter(|k| k.user == user && (lag.is_zero() || k.created <= visible_before))
                    .map(|k| AccessKeyMeta {
                        id: k.id.clone(),
                        status: k.status.clone(),
                        created: Some(k.created),
                    })
                    .collect())
            },
            |_| None,
        )
        .await
    }

    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError> {
        let action = Action::CreateAccessKey;
        self.call(
            action,
            Request {
                user: Some(user),
                ..Request::default()
            },
            |s, caller| {
                s.authorize(&caller, action, user)?;
                if s.keys.iter().filter(|k| k.user == user).count() >= 2 {
                    return Err(AwsError::new(action, ErrorKind::LimitExceeded)
                        .with_code("LimitExceeded")
                        .with_message("Cannot exceed quota for AccessKeysPerUser: 2")
                        .with_status(409));
                }
                let now = s.now;
                let mut propagation = vec![false; s.propagation_delay as usize];
                propagation.extend(s.propagation_pattern.iter().copied());
                let (id, secret) = s.new_key(user, now, KeyStatus::Active, propagation);
                Ok(NewAccessKey {
                    id,
                    secret,
                    created: Some(now),
                })
            },
            |k| Some(k.id.clone()),
        )
        .await
    }

    async fn update_access_key(
        &self,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> Result<(), AwsError> {
        let action = Action::UpdateAccessKey;
        self.call(
            action,
            Request { user: Some(user), target_key: Some(key_id), ..Request::default() },
            |s, caller| {
                s.authorize(&caller, action, user)?;
                if !matches!(status, KeyStatus::Active | KeyStatus::Inactive) {
                    return Err(AwsError::new(action, ErrorKind::Other)
                        .with_code("ValidationError")
                        .with_message(format!(
                            "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: \
                             Member must satisfy enum value set: [Active, Inactive]"
                        ))
                        .with_status(400));
                }
                let key = s
                    .keys
                    .iter_mut()
                    .find(|k| k.id == key_id && k.user == user)
                    .ok_or_else(|| no_such_key(action, key_id))?;
                key.status = status.clone();
                Ok(())
            },
            |_| None,
        )
        .await
    }

    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        let action = Action::DeleteAccessKey;
        self.call(
            action,
            Request {
                user: Some(user),
                target_key: Some(key_id),
                ..Request::default()
            },
            |s, caller| {
                s.authorize(&caller, action, user)?;
                let before = s.keys.len();
                s.keys.retain(|k| !(k.id == key_id && k.user == user));
                if s.keys.len() == before {
                    return Err(no_such_key(action, key_id));
                }
                Ok(())
            },
            |_| None,
        )
        .await
    }

    async fn access_key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        let action = Action::GetAccessKeyLastUsed;
        self.call(
            action,
            Request {
                target_key: Some(key_id),
                ..Request::default()
            },
            |s, caller| {
                let (owner, last_used) = match s.keys.iter().find(|k| k.id == key_id) {
                    Some(k) => (k.user.clone(), k.last_used.clone()),
                    None => return Err(no_such_key(action, key_id)),
                };
                s.authorize(&caller, action, &owner)?;
                Ok(last_used)
            },
            |_| None,
        )
        .await
    }

    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let action = Action::ListMFADevices;
        self.call(
            action,
            Request {
                user: Some(user),
                ..Request::default()
            },
            |s, caller| {
                s.authorize(&caller, action, user)?;
                Ok(s.user(user)
                    .map(|u| u.mfa_devices.clone())
                    .unwrap_or_default())
            },
            |_| None,
        )
        .await
    }

    async fn session_token(
        &self,
        mfa_serial: &str,
        code: &Secret,
        duration_seconds: i32,
    ) -> Result<Credentials, AwsError> {
        let action = Action::GetSessionToken;
        self.call(
            action,
            Request { mfa_serial: Some(mfa_serial), ..Request::default() },
            |s, caller| {
                if caller.mfa {
                    return Err(access_denied(action, "Cannot call GetSessionToken with session credentials"));
                }
                if !(900..=129_600).contains(&duration_seconds) {
                    return Err(AwsError::new(action, ErrorKind::Other)
                        .with_code("ValidationError")
                        .with_message(format!(
                            "1 validation error detected: Value '{duration_seconds}' at 'durationSeconds' failed to \
                             satisfy constraint: Member must have value between 900 and 129600"
                        ))
                        .with_status(400));
                }
                let user = s.user(&caller.user).ok_or_else(|| no_such_user(action, &caller.user))?;
                if !user.mfa_devices.iter().any(|d| d.serial == mfa_serial) {
                    return Err(access_denied(
                        action,
                        "MultiFactorAuthentication failed, unable to validate MFA code. Please verify your MFA \
                         serial number is valid and associated with this user.",
                    ));
                }
                let code_ok = code.expose().len() == 6 && code.expose().bytes().all(|b| b.is_ascii_digit());
                if !code_ok || s.mfa_code.as_deref().is_some_and(|expected| expected != code.expose()) {
                    return Err(access_denied(
                        action,
                        "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
                    ));
                }
                let n = s.next();
                let session = Session {
                    id: format!("ASIAFAKE{n:012}"),
                    secret: Secret::new(pseudo_random(n, 40)),
                    token: Secret::new(format!("FwoGZXIvYXdzE{}", pseudo_random(n.wrapping_add(1 << 32), 120))),
                    user: caller.user,
                    expires: s.now + jiff::SignedDuration::from_secs(i64::from(duration_seconds)),
                };
                let credentials = Credentials {
                    access_key_id: session.id.clone(),
                    secret_access_key: session.secret.clone(),
                    session_token: Some(session.token.clone()),
                };
                s.sessions.push(session);
                Ok(credentials)
            },
            |_| None,
        )
        .await
    }
}

/// Returns `Pending` once (waking itself at once), then `Ready`: a yield point that works
/// on any executor.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::REDACTED;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

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
        let e = block_on(with_new.update_access_key(
            "alice",
            &new.id,
            KeyStatus::Other("Bogus".into()),
        ))
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
        let e = block_on(client(&iam, &id).delete_access_key("alice", "AKIAFAKE999999999999"))
            .unwrap_err();
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
}
