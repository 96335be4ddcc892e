//! The fake's state: users, keys, sessions, MFA devices, the clock, the scripted rules and
//! the record of calls, behind one lock that every clone of [`FakeIam`] shares; and the
//! methods a test uses to set it up and to look at it afterwards.
//!
//! Must not: answer calls (that is [`super::client`]) or decide what a call may do (that is
//! [`super::rules`]).

use super::client::FakeConnector;
use super::rules::{Fault, Rule};
use crate::aws::{
    AccessKeyMeta, Action, Credentials, ErrorKind, KeyStatus, LastUsed, MfaDevice, Target,
};
use crate::secret::Secret;
use jiff::Timestamp;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The fake's clock before any [`FakeIam::set_now`].
pub const START: &str = "2026-01-15T09:00:00Z";

/// The default account id (moto's and the AWS documentation's).
pub const ACCOUNT: &str = "123456789012";

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
    pub(super) state: Arc<Mutex<State>>,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) account: String,
    pub(super) partition: String,
    pub(super) now: Timestamp,
    pub(super) counter: u64,
    pub(super) users: Vec<User>,
    pub(super) keys: Vec<Key>,
    pub(super) sessions: Vec<Session>,
    pub(super) mfa_code: Option<String>,
    pub(super) rules: Vec<Rule>,
    pub(super) propagation_delay: u32,
    /// For keys created from now on: how their first calls authenticate (`false`: refused
    /// with InvalidClientTokenId, as IAM does while a key propagates); then always.
    pub(super) propagation_pattern: Vec<bool>,
    /// ListAccessKeys does not show a key for this long after it was created (IAM's lists
    /// are eventually consistent).
    pub(super) list_lag: Duration,
    /// Attempts per call, as the SDK's standard retry mode makes them: a transient error on a
    /// call that is safe to retry (`Action::retry_safe`) is sent again, up to this many.
    pub(super) sdk_attempts: u32,
    /// Calls so far, and the call at which the process "dies" (see [`FakeIam::kill_at`]).
    pub(super) call_count: u64,
    pub(super) kill_at: Option<(u64, bool)>,
    pub(super) calls: Vec<Call>,
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
pub(super) struct User {
    pub(super) name: String,
    pub(super) user_id: String,
    pub(super) mfa_devices: Vec<MfaDevice>,
    /// The message of the explicit deny for mutating calls without MFA, when MFA is required.
    pub(super) require_mfa: Option<String>,
    pub(super) admin: bool,
}

#[derive(Debug)]
pub(super) struct Key {
    pub(super) id: String,
    pub(super) secret: Secret,
    pub(super) user: String,
    pub(super) status: KeyStatus,
    pub(super) created: Timestamp,
    pub(super) last_used: LastUsed,
    /// How the key's next calls authenticate (`false`: InvalidClientTokenId, propagation);
    /// once empty, always.
    pub(super) propagation: std::collections::VecDeque<bool>,
}

#[derive(Debug)]
pub(super) struct Session {
    pub(super) id: String,
    pub(super) secret: Secret,
    pub(super) token: Secret,
    pub(super) user: String,
    pub(super) expires: Timestamp,
}

impl FakeIam {
    pub fn new() -> FakeIam {
        FakeIam::default()
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
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
    pub(super) fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub(super) fn new_key(
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

    pub(super) fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub(super) fn arn(&self, user: &str) -> String {
        format!("arn:{}:iam::{}:user/{user}", self.partition, self.account)
    }
}

/// Deterministic characters of the base64 alphabet (splitmix64 of the counter).
pub(super) fn pseudo_random(seed: u64, len: usize) -> String {
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
