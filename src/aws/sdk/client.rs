//! [`SdkClient`]: IAM and STS clients bound to one set of credentials, and [`Iam`] on them.
//!
//! Every SDK call, these eight and the account-wide ones of [`super::account`] alike, goes
//! through one wrapper, [`SdkClient::timed`], which times it and logs one `debug!` line when
//! it ends: the action, the signing key masked (`AKIA…WXYZ`), the IAM user and the key
//! (masked) or other resource it acted on, and the outcome. SDK errors become [`AwsError`]s
//! naming the endpoint through [`SdkClient::fail`]; lists follow their markers through
//! [`all_pages`].
//!
//! Retries follow [`Action::retry_safe`]: every call gets the SDK's standard retries except
//! those that are not safe to retry, which get [`one_attempt`].
//!
//! Must not: log a secret, a session token or an MFA code, or retry beyond the SDK's
//! standard retries (waiting for a new key to propagate is the rotation's job).

use super::endpoints::Endpoints;
use crate::aws::account::AccountAction;
use crate::aws::error::from_sdk;
use crate::aws::{
    AccessKeyMeta, Action, Answer, AwsError, CallerIdentity, Credentials, ErrorKind, Iam,
    KeyStatus, LastUsed, MfaDevice, NewAccessKey,
};
use crate::secret::{Secret, mask_key_id};
use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use jiff::Timestamp;
use std::fmt;
use std::future::Future;
use std::time::Instant;
use tracing::debug;

/// The SDK's log targets that print whole request or response bodies at TRACE when the
/// environment sets `LOG_SIGNABLE_BODY=true` (every request body, the MFA code included) or
/// `LOG_SENSITIVE_BODIES=true` (the answers of CreateAccessKey and GetSessionToken: secrets
/// and session tokens). Without those variables nothing secret is logged at any level
/// (checked by the tests). A log filter that can reach TRACE must cap these at DEBUG.
pub const LEAKY_TARGETS: [&str; 2] = [
    "aws_sigv4::http_request::sign",
    "aws_smithy_runtime::client::orchestrator::http",
];

/// More pages than any user can have (IAM allows two keys and eight MFA devices): a guard
/// against a server that keeps answering `IsTruncated` with a new marker.
const MAX_PAGES: usize = 100;

/// IAM and STS clients bound to one set of credentials.
#[derive(Clone)]
pub struct SdkClient {
    pub(super) iam: aws_sdk_iam::Client,
    pub(super) sts: aws_sdk_sts::Client,
    /// The signing key, masked, for logs.
    signer: String,
    endpoints: Endpoints,
}

impl fmt::Debug for SdkClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkClient")
            .field("signer", &self.signer)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// What one call acted on, for its log line.
#[derive(Clone, Copy)]
pub(super) struct Call<'a> {
    action: Action,
    user: Option<&'a str>,
    /// An access key, logged masked.
    key: Option<&'a str>,
    /// Any other resource (a policy ARN, a group, a role), logged as it is.
    resource: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub(super) fn new(action: Action) -> Call<'a> {
        Call {
            action,
            user: None,
            key: None,
            resource: None,
        }
    }

    pub(super) fn user(self, user: &'a str) -> Call<'a> {
        Call {
            user: Some(user),
            ..self
        }
    }

    pub(super) fn key(self, key_id: &'a str) -> Call<'a> {
        Call {
            key: Some(key_id),
            ..self
        }
    }

    pub(super) fn resource(self, resource: &'a str) -> Call<'a> {
        Call {
            resource: Some(resource),
            ..self
        }
    }
}

impl SdkClient {
    pub(super) fn new(
        iam: aws_sdk_iam::Client,
        sts: aws_sdk_sts::Client,
        signer: String,
        endpoints: Endpoints,
    ) -> SdkClient {
        SdkClient {
            iam,
            sts,
            signer,
            endpoints,
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Runs one call: the only place an SDK call is timed and logged.
    pub(super) async fn timed<T: Answer>(
        &self,
        call: Call<'_>,
        op: impl Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        let started = Instant::now();
        let result = op.await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let key = call
            .key
            .or_else(|| result.as_ref().ok().and_then(Answer::created_key));
        let target = key.map(mask_key_id).or(call.resource.map(str::to_string));
        let target = target.as_deref().unwrap_or("-");
        let user = call.user.unwrap_or("-");
        let action = call.action.as_str();
        match &result {
            Ok(_) => {
                debug!(action, key = %self.signer, user, target, elapsed_ms, "AWS call ok")
            }
            Err(e) => debug!(
                action,
                key = %self.signer,
                user,
                target,
                elapsed_ms,
                kind = ?e.kind,
                code = e.code.as_deref().unwrap_or("-"),
                status = e.http_status.unwrap_or(0),
                "AWS call failed"
            ),
        }
        result
    }

    /// Turns the SDK's errors of `action` into [`AwsError`]s naming the endpoint it went to.
    pub(super) fn fail<E>(
        &self,
        action: Action,
    ) -> impl Fn(SdkError<E, HttpResponse>) -> AwsError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let endpoint = match action {
            Action::GetCallerIdentity
            | Action::GetSessionToken
            | Action::Account(AccountAction::AssumeRole) => &self.endpoints.sts,
            _ => &self.endpoints.iam,
        };
        move |e| from_sdk(action, e, endpoint)
    }
}

/// The SDK's retries off for one call: for the calls that are not safe to retry (see
/// [`Action::retry_safe`]), whose lost answer may hide a success.
pub(super) fn one_attempt() -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::config::Builder::default()
        .retry_config(RetryConfig::standard().with_max_attempts(1))
}

/// Every page of a marker-paginated list, at most `max_pages` of them: `page` asks with a
/// marker (none for the first page) and answers the items, whether the list is truncated,
/// and the next marker.
pub(super) async fn all_pages<T, F, Fut>(
    action: Action,
    max_pages: usize,
    page: F,
) -> Result<Vec<T>, AwsError>
where
    F: Fn(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, bool, Option<String>), AwsError>>,
{
    let mut items = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..max_pages {
        let (mut got, truncated, next) = page(marker.clone()).await?;
        items.append(&mut got);
        match next_marker(truncated, next.as_deref(), marker.as_deref()) {
            Some(next) => marker = Some(next),
            None => return Ok(items),
        }
    }
    Err(malformed(action, &format!("more than {max_pages} pages")))
}

impl Iam for SdkClient {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let action = Action::GetCallerIdentity;
        self.timed(Call::new(action), async {
            let out = self
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(self.fail(action))?;
            let arn = out.arn().ok_or_else(|| malformed(action, "no Arn"))?;
            Ok(CallerIdentity {
                account: out.account().unwrap_or_default().to_string(),
                arn: arn.to_string(),
                user_id: out.user_id().unwrap_or_default().to_string(),
            })
        })
        .await
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        let action = Action::ListAccessKeys;
        let pages = all_pages(action, MAX_PAGES, |marker| async move {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user)
                .set_marker(marker)
                .send()
                .await
                .map_err(self.fail(action))?;
            let keys = out
                .access_key_metadata()
                .iter()
                .filter_map(|m| {
                    Some(AccessKeyMeta {
                        id: m.access_key_id()?.to_string(),
                        status: m.status().map_or_else(
                            || KeyStatus::Other(String::new()),
                            |s| KeyStatus::parse(s.as_str()),
                        ),
                        created: m.create_date().and_then(timestamp),
                    })
                })
                .collect();
            Ok((keys, out.is_truncated(), out.marker().map(str::to_string)))
        });
        self.timed(Call::new(action).user(user), pages).await
    }

    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError> {
        let action = Action::CreateAccessKey;
        self.timed(Call::new(action).user(user), async {
            let out = self
                .iam
                .create_access_key()
                .user_name(user)
                // Not safe to retry (see `Action::retry_safe`): exactly one attempt.
                .customize()
                .config_override(one_attempt())
                .send()
                .await
                .map_err(self.fail(action))?;
            let key = out.access_key().ok_or_else(|| {
                malformed(
                    action,
                    "no AccessKey (a key may have been created nonetheless)",
                )
            })?;
            Ok(NewAccessKey {
                id: key.access_key_id().to_string(),
                secret: Secret::new(key.secret_access_key()),
                created: key.create_date().and_then(timestamp),
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
        self.timed(Call::new(action).user(user).key(key_id), async {
            self.iam
                .update_access_key()
                .user_name(user)
                .access_key_id(key_id)
                .status(aws_sdk_iam::types::StatusType::from(status.as_str()))
                .send()
                .await
                .map(|_| ())
                .map_err(self.fail(action))
        })
        .await
    }

    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        let action = Action::DeleteAccessKey;
        self.timed(Call::new(action).user(user).key(key_id), async {
            self.iam
                .delete_access_key()
                .user_name(user)
                .access_key_id(key_id)
                .send()
                .await
                .map(|_| ())
                .map_err(self.fail(action))
        })
        .await
    }

    async fn access_key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        let action = Action::GetAccessKeyLastUsed;
        self.timed(Call::new(action).key(key_id), async {
            let out = self
                .iam
                .get_access_key_last_used()
                .access_key_id(key_id)
                .send()
                .await
                .map_err(self.fail(action))?;
            Ok(match out.access_key_last_used() {
                None => LastUsed::default(),
                Some(used) => LastUsed {
                    date: used.last_used_date().and_then(timestamp),
                    service: known(used.service_name()),
                    region: known(used.region()),
                },
            })
        })
        .await
    }

    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let action = Action::ListMFADevices;
        let pages = all_pages(action, MAX_PAGES, |marker| async move {
            let out = self
                .iam
                .list_mfa_devices()
                .user_name(user)
                .set_marker(marker)
                .send()
                .await
                .map_err(self.fail(action))?;
            let devices = out
                .mfa_devices()
                .iter()
                .filter(|d| !d.serial_number().is_empty())
                .map(|d| {
                    MfaDevice {
                        serial: d.serial_number().to_string(),
                        // A missing EnableDate is filled in as the epoch by the SDK.
                        enabled: Some(d.enable_date())
                            .filter(|t| t.secs() != 0)
                            .and_then(timestamp),
                    }
                })
                .collect();
            Ok((
                devices,
                out.is_truncated(),
                out.marker().map(str::to_string),
            ))
        });
        self.timed(Call::new(action).user(user), pages).await
    }

    async fn session_token(
        &self,
        mfa_serial: &str,
        code: &Secret,
        duration_seconds: i32,
    ) -> Result<Credentials, AwsError> {
        let action = Action::GetSessionToken;
        self.timed(Call::new(action), async {
            let out = self
                .sts
                .get_session_token()
                .serial_number(mfa_serial)
                .token_code(code.expose())
                .duration_seconds(duration_seconds)
                .send()
                .await
                .map_err(self.fail(action))?;
            session_credentials(action, out.credentials())
        })
        .await
    }
}

/// The temporary credentials of a GetSessionToken or AssumeRole answer.
pub(super) fn session_credentials(
    action: Action,
    credentials: Option<&aws_sdk_sts::types::Credentials>,
) -> Result<Credentials, AwsError> {
    let c = credentials.ok_or_else(|| malformed(action, "no Credentials"))?;
    Ok(Credentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: Some(Secret::new(c.session_token())),
    })
}

/// An answer that parsed but lacks what the operation promises.
pub(super) fn malformed(action: Action, what: &str) -> AwsError {
    AwsError::new(action, ErrorKind::Other).with_message(format!("the answer had {what}"))
}

/// The marker of the next page, if there is one. `IsTruncated` is optional (moto never sends
/// it); a marker that repeats the previous one ends the listing.
fn next_marker(is_truncated: bool, marker: Option<&str>, previous: Option<&str>) -> Option<String> {
    match marker {
        Some(m) if is_truncated && !m.is_empty() && Some(m) != previous => Some(m.to_string()),
        _ => None,
    }
}

/// `N/A` (a key never used) and the empty string are "unknown".
fn known(value: &str) -> Option<String> {
    (!value.is_empty() && value != "N/A").then(|| value.to_string())
}

pub(super) fn timestamp(t: &aws_smithy_types::DateTime) -> Option<Timestamp> {
    Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).ok()?).ok()
}
