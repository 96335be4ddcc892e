//! The fake's client: [`FakeConnector`] binds credentials to a [`FakeClient`], and the
//! client answers each [`Iam`] call as the SDK and IAM would, one attempt at a time (the
//! scripted faults, authentication, the operation on the state, the SDK's retries).
//!
//! Must not: touch the network, the file system or the real clock.

use super::rules::{Caller, access_denied, fault_error, no_such_key, no_such_user};
use super::state::{Call, FakeIam, Session, State, pseudo_random};
use crate::aws::sdk::Endpoints;
use crate::aws::{
    AccessKeyMeta, Action, Answer, AwsError, CallerIdentity, Connector, Credentials, ErrorKind,
    Iam, KeyStatus, LastUsed, MfaDevice, NewAccessKey, Target,
};
use crate::secret::Secret;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Binds credentials to a [`FakeClient`] of one [`FakeIam`].
#[derive(Clone, Debug)]
pub struct FakeConnector {
    pub(super) iam: FakeIam,
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

impl<'a> Request<'a> {
    /// A call with a `UserName` parameter.
    fn user(user: &'a str) -> Request<'a> {
        Request {
            user: Some(user),
            ..Request::default()
        }
    }

    /// The call acts on this key.
    fn key(self, key_id: &'a str) -> Request<'a> {
        Request {
            target_key: Some(key_id),
            ..self
        }
    }
}

impl FakeClient {
    /// Runs one call as the SDK would: each attempt is recorded, meets the scripted faults,
    /// authenticates, then runs `op`; a transient error on a call that is safe to retry is
    /// attempted again (see [`FakeIam::sdk_attempts`]).
    async fn call<T: Answer>(
        &self,
        action: Action,
        request: Request<'_>,
        op: impl Fn(&mut State, Caller) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let mut attempt = 1;
        loop {
            let result = self.attempt(action, &request, &op).await;
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
    async fn attempt<T: Answer>(
        &self,
        action: Action,
        request: &Request<'_>,
        op: &impl Fn(&mut State, Caller) -> Result<T, AwsError>,
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
        let fault = s.scripted_fault(action, &creds.access_key_id, request.target_key);
        let mfa_session = s.sessions.iter().any(|x| x.id == creds.access_key_id);
        let result = match &fault {
            Some(f) if !f.after_effect => Err(fault_error(action, f, endpoint)),
            _ => s
                .authenticate(creds, action, &self.target.region)
                .and_then(|caller| op(&mut s, caller)),
        };
        let created = result
            .as_ref()
            .ok()
            .and_then(|answer| answer.created_key().map(str::to_string));
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
        self.call(action, Request::default(), |s, caller| {
            let user = s
                .user(&caller.user)
                .ok_or_else(|| no_such_user(action, &caller.user))?;
            Ok(CallerIdentity {
                account: s.account.clone(),
                arn: s.arn(&user.name),
                user_id: user.user_id.clone(),
            })
        })
        .await
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        let action = Action::ListAccessKeys;
        self.call(action, Request::user(user), |s, caller| {
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
        })
        .await
    }

    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError> {
        let action = Action::CreateAccessKey;
        self.call(action, Request::user(user), |s, caller| {
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
        })
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
            Request::user(user).key(key_id),
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
        )
        .await
    }

    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        let action = Action::DeleteAccessKey;
        self.call(action, Request::user(user).key(key_id), |s, caller| {
            s.authorize(&caller, action, user)?;
            let before = s.keys.len();
            s.keys.retain(|k| !(k.id == key_id && k.user == user));
            if s.keys.len() == before {
                return Err(no_such_key(action, key_id));
            }
            Ok(())
        })
        .await
    }

    async fn access_key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        let action = Action::GetAccessKeyLastUsed;
        self.call(action, Request::default().key(key_id), |s, caller| {
            let (owner, last_used) = match s.keys.iter().find(|k| k.id == key_id) {
                Some(k) => (k.user.clone(), k.last_used.clone()),
                None => return Err(no_such_key(action, key_id)),
            };
            s.authorize(&caller, action, &owner)?;
            Ok(last_used)
        })
        .await
    }

    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let action = Action::ListMFADevices;
        self.call(action, Request::user(user), |s, caller| {
            s.authorize(&caller, action, user)?;
            Ok(s.user(user)
                .map(|u| u.mfa_devices.clone())
                .unwrap_or_default())
        })
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
