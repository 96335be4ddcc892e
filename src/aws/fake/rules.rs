//! The fake's rules: the faults a test scripts ([`Fault`]), how a call is authenticated and
//! authorized as IAM does it, and the catalogue of AWS's errors (codes, messages, statuses)
//! that the fake answers with.
//!
//! Must not: keep state of its own (everything lives in [`State`]), or put a secret in an
//! error message.

use super::state::State;
use crate::aws::{Action, AwsError, Credentials, ErrorKind, KeyStatus, LastUsed};

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

#[derive(Debug)]
pub(super) struct Rule {
    pub(super) action: Action,
    pub(super) fault: Fault,
    pub(super) seen: u32,
    pub(super) fired: u32,
}

/// Who signed a call, once authenticated.
pub(super) struct Caller {
    pub(super) user: String,
    pub(super) mfa: bool,
}

impl State {
    /// Checks the credentials as AWS does, and records the key's last use.
    pub(super) fn authenticate(
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
    pub(super) fn authorize(
        &self,
        caller: &Caller,
        action: Action,
        user: &str,
    ) -> Result<(), AwsError> {
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

    /// The scripted fault for this call, if one fires: the first rule of `action` that
    /// matches the signer or the key acted on, past its `skip` and within its `times`.
    pub(super) fn scripted_fault(
        &mut self,
        action: Action,
        signer: &str,
        target_key: Option<&str>,
    ) -> Option<Fault> {
        for rule in self.rules.iter_mut().filter(|r| r.action == action) {
            if !rule.fault.matches(signer, target_key) {
                continue;
            }
            rule.seen += 1;
            if rule.seen <= rule.fault.skip || rule.fault.times.is_some_and(|t| rule.fired >= t) {
                continue;
            }
            rule.fired += 1;
            return Some(rule.fault.clone());
        }
        None
    }
}

pub(super) fn no_such_user(action: Action, user: &str) -> AwsError {
    AwsError::new(action, ErrorKind::NoSuchEntity)
        .with_code("NoSuchEntity")
        .with_message(format!("The user with name {user} cannot be found."))
        .with_status(404)
}

pub(super) fn no_such_key(action: Action, key_id: &str) -> AwsError {
    AwsError::new(action, ErrorKind::NoSuchEntity)
        .with_code("NoSuchEntity")
        .with_message(format!("The Access Key with id {key_id} cannot be found."))
        .with_status(404)
}

pub(super) fn access_denied(action: Action, message: &str) -> AwsError {
    AwsError::new(action, ErrorKind::AccessDenied)
        .with_code("AccessDenied")
        .with_message(message)
        .with_status(403)
}

/// The error a [`Fault`] stands for, with AWS's usual code, message and status.
pub(super) fn fault_error(action: Action, fault: &Fault, endpoint: &str) -> AwsError {
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
