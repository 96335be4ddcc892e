//! [`Connector`] and [`Iam`] on the official AWS SDK for Rust.
//!
//! [`SdkConnector::new`] builds one HTTP client (hyper, rustls with *ring*, the platform's
//! root certificates plus an optional CA bundle) that every client shares. Each
//! [`SdkConnector::connect`] assembles an `SdkConfig` field by field: the target's explicit
//! credentials (provider name `iam-keys`), its region, its endpoint overrides, and the retry
//! and timeout settings of [`ConnectorSettings`]. `aws_config::load_defaults` and the
//! `ConfigLoader` are never used, so no `AWS_*` variable, no profile file, no instance
//! metadata and no ambient credential chain can change which key signs or where requests
//! go. The one thing read from the environment is the proxy (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `NO_PROXY`), as the AWS CLI and the SDK's own default client do; see
//! [`ConnectorSettings::proxy_from_env`].
//!
//! Each call logs one `debug!` line when it ends: the action, the signing key masked
//! (`AKIA…WXYZ`), the IAM user or key it acted on, and the outcome.
//!
//! Retries follow [`Action::retry_safe`]: every call gets the SDK's standard retries except
//! CreateAccessKey, which gets one attempt. `Throttling` is never retried by the SDK
//! ([`NoThrottlingRetries`]): the shared limiter (`aws::limiter`) waits without holding a
//! permit and sends the call again.
//!
//! Must not: read profile files or credentials from the environment, print, log a secret, a
//! session token or an MFA code, or retry beyond the SDK's standard retries (waiting for a
//! new key to propagate is the rotation's job, with its own clock).

pub mod account;

use super::error::from_sdk;
use super::{
    AccessKeyMeta, Action, AwsError, CallerIdentity, Connector, Credentials, ErrorKind, Iam,
    KeyStatus, LastUsed, MfaDevice, NewAccessKey, Target,
};
use crate::secret::{Secret, mask_key_id};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use futures_util::FutureExt;
use jiff::Timestamp;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
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

/// Name of the credentials provider in SDK logs and errors.
const PROVIDER_NAME: &str = "iam-keys";

/// More pages than any user can have (IAM allows two keys and eight MFA devices): a guard
/// against a server that keeps answering `IsTruncated` with a new marker.
const MAX_PAGES: usize = 100;

/// Timeouts and retries, set on purpose rather than inherited from whatever the SDK's
/// behaviour version defaults to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorSettings {
    /// TCP and TLS connection set-up. Default 3.1 s: the SDK's own default since behaviour
    /// version 2024-03-28, just over the kernel's first SYN retransmission (3 s on Linux), so
    /// one lost SYN is retried by the kernel before we give up on the attempt.
    pub connect_timeout: Duration,
    /// One attempt, from sending to the last byte of the answer. Default 10 s: IAM and STS
    /// answer in well under a second; a stuck attempt is abandoned so a retry can use a
    /// fresh connection.
    pub attempt_timeout: Duration,
    /// One operation, all attempts and the backoff between them. Default 30 s: three 10 s
    /// attempts at worst, and a bound on how long a run can hang on an unreachable endpoint.
    pub operation_timeout: Duration,
    /// Attempts per operation, the first included, in the SDK's *standard* retry mode.
    /// Default 3 (the SDK's default): 5xx answers, timeouts and connection errors are retried
    /// with exponential backoff and full jitter, from a client-side token bucket so a failing
    /// endpoint is not hammered. Throttling is not ([`NoThrottlingRetries`]): the limiter in
    /// `aws::limiter` waits for it without holding a slot. *Adaptive* mode is not used: the
    /// limiter adapts the calls in flight for the whole run instead.
    /// Authentication errors (`InvalidClientTokenId`, `SignatureDoesNotMatch`) are never
    /// retried by the SDK.
    pub max_attempts: u32,
    /// The first retry's backoff bound (later ones double, up to the SDK's 20 s cap).
    /// Default 1 s, the SDK's default.
    pub initial_backoff: Duration,
    /// A PEM file of extra trusted CA certificates (`AWS_CA_BUNDLE` or a profile's
    /// `ca_bundle`, resolved by the caller). The SDK itself ignores both. The certificates
    /// are added to the platform's roots (the AWS CLI instead trusts only the bundle).
    pub ca_bundle: Option<PathBuf>,
    /// Honour `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` (default `true`, as the AWS
    /// CLI and the SDK's default HTTP client do). Tests against 127.0.0.1 turn it off.
    pub proxy_from_env: bool,
}

impl Default for ConnectorSettings {
    fn default() -> Self {
        ConnectorSettings {
            connect_timeout: Duration::from_millis(3100),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
            ca_bundle: None,
            proxy_from_env: true,
        }
    }
}

/// Why the HTTP client could not be set up. `Display` names the file; the cause is the
/// `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot read the CA bundle {}", path.display())]
    CaBundleUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA bundle {} is not usable: {reason}", path.display())]
    CaBundleInvalid { path: PathBuf, reason: String },
}

/// Builds SDK clients bound to explicit credentials; all of them share one HTTP client.
#[derive(Clone)]
pub struct SdkConnector {
    settings: ConnectorSettings,
    http: SharedHttpClient,
}

impl fmt::Debug for SdkConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkConnector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SdkConnector {
    /// The HTTP client, with the CA bundle (if any) checked and added to the trust store.
    pub fn new(settings: ConnectorSettings) -> Result<SdkConnector, ConnectorError> {
        let mut trust = TrustStore::default();
        if let Some(path) = &settings.ca_bundle {
            for pem in load_ca_bundle(path)? {
                trust.add_pem_certificate(pem);
            }
        }
        let tls_context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .expect("a TLS context with only a trust store always builds");
        let proxy_from_env = settings.proxy_from_env;
        // The same construction as the SDK's own default client (aws-smithy-runtime
        // `default_https_client`), with ring instead of aws-lc and our trust store. The
        // connector is built per distinct timeout setting and cached by the SDK.
        let http = HttpClientBuilder::new().build_with_connector_fn(
            move |connector_settings, components| {
                let mut builder = ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
                builder.set_connector_settings(connector_settings.cloned());
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder.set_proxy_config(Some(if proxy_from_env {
                    ProxyConfig::from_env()
                } else {
                    ProxyConfig::disabled()
                }));
                builder.tls_context(tls_context.clone()).build()
            },
        );
        Ok(SdkConnector { settings, http })
    }

    /// A connector that sends every request through `http` (for tests of request shapes).
    #[cfg(test)]
    pub(crate) fn with_http_client(
        settings: ConnectorSettings,
        http: SharedHttpClient,
    ) -> SdkConnector {
        SdkConnector { settings, http }
    }

    pub fn settings(&self) -> &ConnectorSettings {
        &self.settings
    }

    fn sdk_config(&self, target: &Target) -> SdkConfig {
        let c = &target.credentials;
        let credentials = aws_credential_types::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose(),
            c.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            PROVIDER_NAME,
        );
        let s = &self.settings;
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .http_client(self.http.clone())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(s.max_attempts.max(1))
                    .with_initial_backoff(s.initial_backoff),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(s.connect_timeout)
                    .operation_attempt_timeout(s.attempt_timeout)
                    .operation_timeout(s.operation_timeout)
                    .build(),
            )
            .build()
    }
}

impl Connector for SdkConnector {
    type Client = SdkClient;

    fn connect(&self, target: &Target) -> SdkClient {
        let config = self.sdk_config(target);
        let mut iam =
            aws_sdk_iam::config::Builder::from(&config).retry_classifier(NoThrottlingRetries);
        if let Some(url) = &target.iam_endpoint {
            iam = iam.endpoint_url(url);
        }
        let mut sts =
            aws_sdk_sts::config::Builder::from(&config).retry_classifier(NoThrottlingRetries);
        if let Some(url) = &target.sts_endpoint {
            sts = sts.endpoint_url(url);
        }
        SdkClient {
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            signer: mask_key_id(&target.credentials.access_key_id),
            endpoints: Endpoints::for_target(target),
        }
    }
}

/// The last retry classifier: an answer the SDK's own classifiers found to be throttling is
/// not retried by the SDK, so no call sleeps through the SDK's backoff while it holds one of
/// the limiter's permits; `aws::limiter` sends it again after waiting without one. 5xx
/// answers, timeouts and connection errors keep the SDK's standard retries.
#[derive(Debug, Clone, Copy)]
pub struct NoThrottlingRetries;

impl ClassifyRetry for NoThrottlingRetries {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: aws_smithy_types::retry::ErrorKind::ThrottlingError,
                ..
            }) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "iam-keys: throttling is the limiter's"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // After every classifier of the SDK (the transient-error one runs last).
        RetryClassifierPriority::run_after(RetryClassifierPriority::run_after(
            RetryClassifierPriority::transient_error_classifier(),
        ))
    }
}

/// The URLs a client sends to: the overrides, else what the SDK's endpoint rules pick for
/// the region's partition (`iam.amazonaws.com`, `iam.cn-north-1.amazonaws.com.cn`,
/// `iam.us-gov.amazonaws.com`, `sts.REGION.amazonaws.com`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub iam: String,
    pub sts: String,
}

impl Endpoints {
    pub fn for_target(target: &Target) -> Endpoints {
        Endpoints {
            iam: target
                .iam_endpoint
                .clone()
                .unwrap_or_else(|| default_iam_endpoint(&target.region)),
            sts: target
                .sts_endpoint
                .clone()
                .unwrap_or_else(|| default_sts_endpoint(&target.region)),
        }
    }
}

/// The IAM endpoint the SDK picks for `region` with no override.
pub fn default_iam_endpoint(region: &str) -> String {
    use aws_sdk_iam::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let resolved = Params::builder()
        .region(region)
        .use_fips(false)
        .use_dual_stack(false)
        .build()
        .ok()
        .and_then(|params| {
            DefaultResolver::new()
                .resolve_endpoint(&params)
                .now_or_never()
                .and_then(Result::ok)
        });
    resolved
        .map(|e| e.url().to_string())
        .unwrap_or_else(|| format!("the IAM endpoint of region {region}"))
}

/// The STS endpoint the SDK picks for `region` with no override (regional, not global).
pub fn default_sts_endpoint(region: &str) -> String {
    use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let resolved = Params::builder()
        .region(region)
        .use_fips(false)
        .use_dual_stack(false)
        .build()
        .ok()
        .and_then(|params| {
            DefaultResolver::new()
                .resolve_endpoint(&params)
                .now_or_never()
                .and_then(Result::ok)
        });
    resolved
        .map(|e| e.url().to_string())
        .unwrap_or_else(|| format!("the STS endpoint of region {region}"))
}

/// IAM and STS clients bound to one set of credentials.
#[derive(Clone)]
pub struct SdkClient {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
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

impl SdkClient {
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The one log line of a call.
    fn log<T>(
        &self,
        action: Action,
        user: Option<&str>,
        target_key: Option<&str>,
        started: Instant,
        result: &Result<T, AwsError>,
    ) {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let target = target_key.map(mask_key_id);
        let target = target.as_deref().unwrap_or("-");
        let user = user.unwrap_or("-");
        match result {
            Ok(_) => {
                debug!(action = action.as_str(), key = %self.signer, user, target, elapsed_ms, "AWS call ok")
            }
            Err(e) => debug!(
                action = action.as_str(),
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
    }
}

impl Iam for SdkClient {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let started = Instant::now();
        let result = async {
            let out = self
                .sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| from_sdk(Action::GetCallerIdentity, e, &self.endpoints.sts))?;
            let arn = out
                .arn()
                .ok_or_else(|| malformed(Action::GetCallerIdentity, "no Arn"))?;
            Ok(CallerIdentity {
                account: out.account().unwrap_or_default().to_string(),
                arn: arn.to_string(),
                user_id: out.user_id().unwrap_or_default().to_string(),
            })
        }
        .await;
        self.log(Action::GetCallerIdentity, None, None, started, &result);
        result
    }

    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        let started = Instant::now();
        let result = async {
            let mut keys = Vec::new();
            let mut marker: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let out = self
                    .iam
                    .list_access_keys()
                    .user_name(user)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| from_sdk(Action::ListAccessKeys, e, &self.endpoints.iam))?;
                keys.extend(out.access_key_metadata().iter().filter_map(|m| {
                    Some(AccessKeyMeta {
                        id: m.access_key_id()?.to_string(),
                        status: m.status().map_or_else(
                            || KeyStatus::Other(String::new()),
                            |s| KeyStatus::parse(s.as_str()),
                        ),
                        created: m.create_date().and_then(timestamp),
                    })
                }));
                match next_marker(out.is_truncated(), out.marker(), marker.as_deref()) {
                    Some(next) => marker = Some(next),
                    None => return Ok(keys),
                }
            }
            Err(malformed(Action::ListAccessKeys, "more than 100 pages"))
        }
        .await;
        self.log(Action::ListAccessKeys, Some(user), None, started, &result);
        result
    }

    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError> {
        let started = Instant::now();
        let result = async {
            let out = self
                .iam
                .create_access_key()
                .user_name(user)
                // Not safe to retry (see `Action::retry_safe`): exactly one attempt.
                .customize()
                .config_override(
                    aws_sdk_iam::config::Builder::default()
                        .retry_config(RetryConfig::standard().with_max_attempts(1)),
                )
                .send()
                .await
                .map_err(|e| from_sdk(Action::CreateAccessKey, e, &self.endpoints.iam))?;
            let key = out.access_key().ok_or_else(|| {
                malformed(
                    Action::CreateAccessKey,
                    "no AccessKey (a key may have been created nonetheless)",
                )
            })?;
            Ok(NewAccessKey {
                id: key.access_key_id().to_string(),
                secret: Secret::new(key.secret_access_key()),
                created: key.create_date().and_then(timestamp),
            })
        }
        .await;
        let new_key = result.as_ref().ok().map(|k| k.id.as_str());
        self.log(
            Action::CreateAccessKey,
            Some(user),
            new_key,
            started,
            &result,
        );
        result
    }

    async fn update_access_key(
        &self,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> Result<(), AwsError> {
        let started = Instant::now();
        let result = self
            .iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(aws_sdk_iam::types::StatusType::from(status.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk(Action::UpdateAccessKey, e, &self.endpoints.iam));
        self.log(
            Action::UpdateAccessKey,
            Some(user),
            Some(key_id),
            started,
            &result,
        );
        result
    }

    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        let started = Instant::now();
        let result = self
            .iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk(Action::DeleteAccessKey, e, &self.endpoints.iam));
        self.log(
            Action::DeleteAccessKey,
            Some(user),
            Some(key_id),
            started,
            &result,
        );
        result
    }

    async fn access_key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        let started = Instant::now();
        let result = async {
            let out = self
                .iam
                .get_access_key_last_used()
                .access_key_id(key_id)
                .send()
                .await
                .map_err(|e| from_sdk(Action::GetAccessKeyLastUsed, e, &self.endpoints.iam))?;
            Ok(match out.access_key_last_used() {
                None => LastUsed::default(),
                Some(used) => LastUsed {
                    date: used.last_used_date().and_then(timestamp),
                    service: known(used.service_name()),
                    region: known(used.region()),
                },
            })
        }
        .await;
        self.log(
            Action::GetAccessKeyLastUsed,
            None,
            Some(key_id),
            started,
            &result,
        );
        result
    }

    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let started = Instant::now();
        let result = async {
            let mut devices = Vec::new();
            let mut marker: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let out = self
                    .iam
                    .list_mfa_devices()
                    .user_name(user)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| from_sdk(Action::ListMFADevices, e, &self.endpoints.iam))?;
                devices.extend(
                    out.mfa_devices()
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
                        }),
                );
                match next_marker(out.is_truncated(), out.marker(), marker.as_deref()) {
                    Some(next) => marker = Some(next),
                    None => return Ok(devices),
                }
            }
            Err(malformed(Action::ListMFADevices, "more than 100 pages"))
        }
        .await;
        self.log(Action::ListMFADevices, Some(user), None, started, &result);
        result
    }

    async fn session_token(
        &self,
        mfa_serial: &str,
        code: &Secret,
        duration_seconds: i32,
    ) -> Result<Credentials, AwsError> {
        let started = Instant::now();
        let result = async {
            let out = self
                .sts
                .get_session_token()
                .serial_number(mfa_serial)
                .token_code(code.expose())
                .duration_seconds(duration_seconds)
                .send()
                .await
                .map_err(|e| from_sdk(Action::GetSessionToken, e, &self.endpoints.sts))?;
            let c = out
                .credentials()
                .ok_or_else(|| malformed(Action::GetSessionToken, "no Credentials"))?;
            Ok(Credentials {
                access_key_id: c.access_key_id().to_string(),
                secret_access_key: Secret::new(c.secret_access_key()),
                session_token: Some(Secret::new(c.session_token())),
            })
        }
        .await;
        self.log(Action::GetSessionToken, None, None, started, &result);
        result
    }
}

/// An answer that parsed but lacks what the operation promises.
fn malformed(action: Action, what: &str) -> AwsError {
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

fn timestamp(t: &aws_smithy_types::DateTime) -> Option<Timestamp> {
    Timestamp::new(t.secs(), i32::try_from(t.subsec_nanos()).ok()?).ok()
}

/// The certificates of a PEM bundle, each checked and re-encoded as clean PEM.
///
/// The SDK parses the bundle only when the first request opens a connection, and panics on
/// a malformed one, so everything is checked here first: the file is readable, has at least
/// one `CERTIFICATE` block, each block is valid base64 and a DER X.509 certificate in the
/// shape rustls (webpki) accepts as a trust anchor. Other blocks (keys, CRLs) are skipped,
/// as the SDK skips them.
fn load_ca_bundle(path: &Path) -> Result<Vec<Vec<u8>>, ConnectorError> {
    let bytes = std::fs::read(path).map_err(|source| ConnectorError::CaBundleUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| ConnectorError::CaBundleInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| invalid("it is not a text (PEM) file".to_string()))?;
    let certificates = pem_certificates(text).map_err(invalid)?;
    if certificates.is_empty() {
        return Err(invalid(
            "it holds no `-----BEGIN CERTIFICATE-----` block".to_string(),
        ));
    }
    certificates
        .into_iter()
        .enumerate()
        .map(|(i, der)| {
            check_certificate_der(&der).map_err(|what| {
                invalid(format!(
                    "certificate {} is not a valid X.509 certificate ({what})",
                    i + 1
                ))
            })?;
            Ok(pem_encode(&der))
        })
        .collect()
}

/// The DER bytes of every `CERTIFICATE` block of a PEM text.
fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut open: Option<(String, String, usize)> = None; // (label, base64, first line)
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        match &mut open {
            None => {
                if let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    open = Some((label.to_string(), String::new(), n + 1));
                }
            }
            Some((label, body, first)) => {
                if let Some(end) = line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    if end != label {
                        return Err(format!(
                            "the block begun on line {first} as {label} ends as {end}"
                        ));
                    }
                    if label == "CERTIFICATE" {
                        let der =
                            aws_smithy_types::base64::decode(body.as_str()).map_err(|_| {
                                format!("the certificate on line {first} is not valid base64")
                            })?;
                        out.push(der);
                    }
                    open = None;
                } else if !line.contains(':') {
                    // RFC 1421 headers ("Proc-Type: ...") are not base64; skip them.
                    body.push_str(line);
                }
            }
        }
    }
    match open {
        Some((label, _, first)) => Err(format!(
            "the {label} block begun on line {first} has no END line"
        )),
        None => Ok(out),
    }
}

fn pem_encode(der: &[u8]) -> Vec<u8> {
    let b64 = aws_smithy_types::base64::encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem.into_bytes()
}

/// One DER tag-length-value from the front of `input`.
fn der_read<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags never occur in certificates
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None; // indefinite lengths are BER, not DER; > 16 MiB is not a certificate
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let (value, after) = rest.split_at(len);
    *input = after;
    Some((tag, value))
}

/// The structure webpki checks before it accepts a certificate as a trust anchor
/// (`anchor_from_trusted_cert`): Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
/// signatureValue }, a tbsCertificate of v1 or v3 fields in order with no unique ids, the
/// same signature algorithm inside and out, and well-formed extensions.
fn check_certificate_der(der: &[u8]) -> Result<(), &'static str> {
    const SEQUENCE: u8 = 0x30;
    let mut input = der;
    let (tag, cert) = der_read(&mut input).ok_or("not DER")?;
    if tag != SEQUENCE || !input.is_empty() {
        return Err("not a DER SEQUENCE");
    }
    let mut cert = cert;
    let (tbs_tag, tbs) = der_read(&mut cert).ok_or("truncated")?;
    let (alg_tag, alg) = der_read(&mut cert).ok_or("no signature algorithm")?;
    let (sig_tag, _) = der_read(&mut cert).ok_or("no signature")?;
    if tbs_tag != SEQUENCE || alg_tag != SEQUENCE || sig_tag != 0x03 || !cert.is_empty() {
        return Err("not a certificate");
    }
    if tbs.len() > 0xffff {
        return Err("too large");
    }
    let mut tbs = tbs;
    let mut version = 0;
    if tbs.first() == Some(&0xa0) {
        let (_, explicit) = der_read(&mut tbs).ok_or("bad version")?;
        let mut explicit = explicit;
        match der_read(&mut explicit) {
            Some((0x02, [v])) if explicit.is_empty() => version = *v,
            _ => return Err("bad version"),
        }
    }
    if version != 0 && version != 2 {
        return Err("only X.509 v1 and v3 are supported");
    }
    let (serial_tag, _) = der_read(&mut tbs).ok_or("no serial number")?;
    let (inner_alg_tag, inner_alg) = der_read(&mut tbs).ok_or("no signature algorithm")?;
    if serial_tag != 0x02 || inner_alg_tag != SEQUENCE {
        return Err("bad serial number or algorithm");
    }
    if inner_alg != alg {
        return Err("the signature algorithms differ");
    }
    for what in ["no issuer", "no validity", "no subject", "no public key"] {
        match der_read(&mut tbs) {
            Some((SEQUENCE, _)) => {}
            _ => return Err(what),
        }
    }
    if tbs.is_empty() {
        return Ok(());
    }
    let (ext_tag, extensions) = der_read(&mut tbs).ok_or("bad extensions")?;
    if ext_tag != 0xa3 || version != 2 || !tbs.is_empty() {
        return Err("unexpected fields after the public key");
    }
    let mut extensions = extensions;
    let (list_tag, list) = der_read(&mut extensions).ok_or("bad extensions")?;
    if list_tag != SEQUENCE || !extensions.is_empty() {
        return Err("bad extensions");
    }
    let mut list = list;
    while !list.is_empty() {
        let (tag, ext) = der_read(&mut list).ok_or("bad extension")?;
        let mut ext = ext;
        let ok = tag == SEQUENCE
            && matches!(der_read(&mut ext), Some((0x06, oid)) if !oid.is_empty())
            && {
                if ext.first() == Some(&0x01) {
                    matches!(der_read(&mut ext), Some((0x01, [0x00 | 0xff])))
                } else {
                    true
                }
            }
            && matches!(der_read(&mut ext), Some((0x04, _)))
            && ext.is_empty();
        if !ok {
            return Err("bad extension");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const KEY_ID: &str = "AKIATARGETKEY0000001";
    const SECRET: &str = "LongTermSecretOfTheTargetKey/0123456789+";
    const CREATED_SECRET: &str = "SecretOfTheNewKeyFromCreateAccessKey/abc";
    const SESSION_KEY_ID: &str = "ASIASESSIONKEY000001";
    const SESSION_SECRET: &str = "SecretOfTheMfaSessionFromGetSessionTok+n";
    const SESSION_TOKEN: &str =
        "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENvalue0123456789abcdefghijklmnopqrstuvwxyzSECRETPART";
    const MFA_CODE: &str = "735291";
    const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

    fn target(region: &str, endpoint: Option<&str>) -> Target {
        Target {
            credentials: Credentials::long_term(KEY_ID, Secret::new(SECRET)),
            region: region.to_string(),
            iam_endpoint: endpoint.map(str::to_string),
            sts_endpoint: endpoint.map(str::to_string),
        }
    }

    fn session_target(endpoint: Option<&str>) -> Target {
        Target {
            credentials: Credentials {
                access_key_id: SESSION_KEY_ID.to_string(),
                secret_access_key: Secret::new(SESSION_SECRET),
                session_token: Some(Secret::new(SESSION_TOKEN)),
            },
            ..target("us-east-1", endpoint)
        }
    }

    fn test_settings() -> ConnectorSettings {
        ConnectorSettings {
            initial_backoff: Duration::from_millis(10),
            proxy_from_env: false,
            ..ConnectorSettings::default()
        }
    }

    /// A form field of an awsQuery request body.
    fn field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
        body.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    fn iam_answer(action: &str, result: &str) -> String {
        format!(
            "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result>\
             <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>\
             </{action}Response>"
        )
    }

    /// Canned AWS answers, chosen by the request's `Action`.
    fn canned(body: &str) -> (u16, String) {
        let action = field(body, "Action").unwrap_or_default();
        let answer = match action {
            "GetCallerIdentity" => iam_answer(
                action,
                "<Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAEXAMPLEUSERID0001</UserId>\
                 <Account>123456789012</Account>",
            ),
            "ListAccessKeys" if field(body, "Marker").is_none() => iam_answer(
                action,
                "<AccessKeyMetadata><member><UserName>alice</UserName><AccessKeyId>AKIATARGETKEY0000001</AccessKeyId>\
                 <Status>Active</Status><CreateDate>2026-11-22T04:17:28.049038Z</CreateDate></member></AccessKeyMetadata>\
                 <IsTruncated>true</IsTruncated><Marker>page-2</Marker>",
            ),
            "ListAccessKeys" => iam_answer(
                action,
                "<AccessKeyMetadata><member><UserName>alice</UserName><AccessKeyId>AKIAOTHERKEY00000002</AccessKeyId>\
                 <Status>Inactive</Status><CreateDate>2025-01-02T03:04:05Z</CreateDate></member></AccessKeyMetadata>",
            ),
            "CreateAccessKey" => iam_answer(
                action,
                &format!(
                    "<AccessKey><UserName>alice</UserName><AccessKeyId>AKIANEWKEY0000000003</AccessKeyId>\
                     <Status>Active</Status><SecretAccessKey>{CREATED_SECRET}</SecretAccessKey>\
                     <CreateDate>2026-11-22T05:00:00Z</CreateDate></AccessKey>"
                ),
            ),
            "UpdateAccessKey" | "DeleteAccessKey" => format!(
                "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata>\
                 <RequestId>x</RequestId></ResponseMetadata></{action}Response>"
            ),
            "GetAccessKeyLastUsed"
                if field(body, "AccessKeyId") == Some("AKIAOTHERKEY00000002") =>
            {
                iam_answer(
                    action,
                    "<UserName>alice</UserName><AccessKeyLastUsed><LastUsedDate>2026-11-20T10:00:00Z</LastUsedDate>\
                 <ServiceName>s3</ServiceName><Region>eu-west-1</Region></AccessKeyLastUsed>",
                )
            }
            "GetAccessKeyLastUsed" => iam_answer(
                action,
                "<UserName>alice</UserName><AccessKeyLastUsed><ServiceName>N/A</ServiceName><Region>N/A</Region>\
                 </AccessKeyLastUsed>",
            ),
            "ListMFADevices" => iam_answer(
                action,
                &format!(
                    "<MFADevices><member><UserName>alice</UserName><SerialNumber>{MFA_SERIAL}</SerialNumber>\
                     <EnableDate>2026-01-02T03:04:05Z</EnableDate></member></MFADevices><IsTruncated>false</IsTruncated>"
                ),
            ),
            "GetSessionToken" => iam_answer(
                action,
                &format!(
                    "<Credentials><AccessKeyId>{SESSION_KEY_ID}</AccessKeyId><SecretAccessKey>{SESSION_SECRET}\
                     </SecretAccessKey><SessionToken>{SESSION_TOKEN}</SessionToken>\
                     <Expiration>2026-11-22T17:00:00Z</Expiration></Credentials>"
                ),
            ),
            _ => {
                return (
                    400,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>unknown</Message>\
                     </Error><RequestId>x</RequestId></ErrorResponse>"
                        .to_string(),
                );
            }
        };
        (200, answer)
    }

    /// One request as the HTTP client saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        uri: String,
        authorization: String,
        security_token: Option<String>,
        body: String,
    }

    type Responder = Arc<dyn Fn(&str) -> (u16, String) + Send + Sync>;

    /// An HTTP client that answers in memory and records each request: no network at all.
    #[derive(Clone)]
    struct Capture {
        seen: Arc<Mutex<Vec<Seen>>>,
        respond: Responder,
    }

    impl std::fmt::Debug for Capture {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Capture")
        }
    }

    impl Capture {
        fn new(respond: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> Capture {
            Capture {
                seen: Arc::default(),
                respond: Arc::new(respond),
            }
        }
        fn connector(&self, settings: ConnectorSettings) -> SdkConnector {
            SdkConnector::with_http_client(settings, SharedHttpClient::new(self.clone()))
        }
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl HttpConnector for Capture {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let body =
                String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
            let header = |name: &str| request.headers().get(name).map(str::to_string);
            self.seen.lock().unwrap().push(Seen {
                uri: request.uri().to_string(),
                authorization: header("authorization").unwrap_or_default(),
                security_token: header("x-amz-security-token"),
                body: body.clone(),
            });
            let (status, answer) = (self.respond)(&body);
            let response =
                HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(answer));
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    impl HttpClient for Capture {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    /// A tiny HTTP/1.1 server on 127.0.0.1 that answers each request through `respond`
    /// (or never, when it returns `None`). Returns its URL and the bodies it received.
    async fn serve(
        respond: impl Fn(&str) -> Option<(u16, String)> + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let respond = Arc::new(respond);
        let log = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (respond, log) = (respond.clone(), log.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let (head_end, length) = loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body =
                        String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
                    log.lock().unwrap().push(body.clone());
                    let Some((status, answer)) = respond(&body) else {
                        // Hold the connection open without answering.
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (url, bodies)
    }

    #[test]
    fn default_settings_are_the_documented_ones() {
        let s = ConnectorSettings::default();
        assert_eq!(s.connect_timeout, Duration::from_millis(3100));
        assert_eq!(s.attempt_timeout, Duration::from_secs(10));
        assert_eq!(s.operation_timeout, Duration::from_secs(30));
        assert_eq!(s.max_attempts, 3);
        assert!(s.ca_bundle.is_none() && s.proxy_from_env);
    }

    #[test]
    fn endpoints_follow_the_partition_of_the_region() {
        let cases = [
            (
                "eu-west-1",
                "https://iam.amazonaws.com",
                "https://sts.eu-west-1.amazonaws.com",
            ),
            (
                "us-east-1",
                "https://iam.amazonaws.com",
                "https://sts.us-east-1.amazonaws.com",
            ),
            (
                "cn-north-1",
                "https://iam.cn-north-1.amazonaws.com.cn",
                "https://sts.cn-north-1.amazonaws.com.cn",
            ),
            (
                "us-gov-west-1",
                "https://iam.us-gov.amazonaws.com",
                "https://sts.us-gov-west-1.amazonaws.com",
            ),
        ];
        for (region, iam, sts) in cases {
            assert_eq!(default_iam_endpoint(region), iam, "{region}");
            assert_eq!(default_sts_endpoint(region), sts, "{region}");
            assert_eq!(
                Endpoints::for_target(&target(region, None)),
                Endpoints {
                    iam: iam.into(),
                    sts: sts.into()
                }
            );
        }
        let local = Endpoints::for_target(&target("cn-north-1", Some("http://127.0.0.1:5000")));
        assert_eq!(
            local,
            Endpoints {
                iam: "http://127.0.0.1:5000".into(),
                sts: "http://127.0.0.1:5000".into()
            }
        );
    }

    #[tokio::test]
    async fn requests_go_to_the_partitions_endpoints_signed_for_its_region() {
        // (region, IAM URL, IAM signing region, STS URL)
        let cases = [
            (
                "eu-west-1",
                "https://iam.amazonaws.com/",
                "us-east-1",
                "https://sts.eu-west-1.amazonaws.com/",
            ),
            (
                "cn-north-1",
                "https://iam.cn-north-1.amazonaws.com.cn/",
                "cn-north-1",
                "https://sts.cn-north-1.amazonaws.com.cn/",
            ),
            (
                "us-gov-west-1",
                "https://iam.us-gov.amazonaws.com/",
                "us-gov-west-1",
                "https://sts.us-gov-west-1.amazonaws.com/",
            ),
        ];
        for (region, iam_url, iam_signing, sts_url) in cases {
            let capture = Capture::new(canned);
            let client = capture
                .connector(test_settings())
                .connect(&target(region, None));
            client.list_access_keys("alice").await.unwrap();
            client.caller_identity().await.unwrap();
            let seen = capture.seen();
            assert_eq!(seen[0].uri, iam_url, "{region}");
            assert!(
                seen[0]
                    .authorization
                    .contains(&format!("/{iam_signing}/iam/aws4_request")),
                "{:?}",
                seen[0]
            );
            assert_eq!(seen[2].uri, sts_url, "{region}");
            assert!(
                seen[2]
                    .authorization
                    .contains(&format!("/{region}/sts/aws4_request")),
                "{:?}",
                seen[2]
            );
        }
    }

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
        let e = client.delete_access_key("alice", KEY_ID).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
        assert_eq!(capture.seen().len(), 3);
    }

    /// Issue 10, defect 2: the SDK's retry re-sent a CreateAccessKey whose answer was lost,
    /// and the first key was orphaned. It gets one attempt; the others keep their retries.
    #[tokio::test]
    async fn create_access_key_is_sent_once_and_every_other_call_is_retried() {
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

    /// Everything that the SDK and our code log at TRACE during a full round of calls
    /// (over real HTTP on 127.0.0.1), with a long-term key and with an MFA session.
    async fn trace_output_of_every_call() -> String {
        use tracing_subscriber::fmt::MakeWriter;

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Buffer {
            type Writer = Buffer;
            fn make_writer(&'a self) -> Buffer {
                self.clone()
            }
        }

        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(buffer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let (url, _) = serve(|body| Some(canned(body))).await;
        let connector = SdkConnector::new(test_settings()).unwrap();
        let client = connector.connect(&target("us-east-1", Some(&url)));
        client.caller_identity().await.unwrap();
        client.list_access_keys("alice").await.unwrap();
        client.create_access_key("alice").await.unwrap();
        client
            .update_access_key("alice", KEY_ID, KeyStatus::Inactive)
            .await
            .unwrap();
        client.access_key_last_used(KEY_ID).await.unwrap();
        client.list_mfa_devices("alice").await.unwrap();
        client
            .session_token(MFA_SERIAL, &Secret::new(MFA_CODE), 3600)
            .await
            .unwrap();
        let session = connector.connect(&session_target(Some(&url)));
        session.list_access_keys("alice").await.unwrap();
        session.delete_access_key("alice", KEY_ID).await.unwrap();
        drop(_guard);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Run in a child process: writes the TRACE output of every call to the file named by
    /// `IAM_KEYS_TRACE_CHILD` (see `trace_logs_carry_no_secret_token_or_mfa_code`).
    #[tokio::test]
    async fn trace_child() {
        let Some(path) = std::env::var_os("IAM_KEYS_TRACE_CHILD") else {
            return;
        };
        std::fs::write(path, trace_output_of_every_call().await).unwrap();
    }

    /// The TRACE records of a child test process run with `env`, one string per record.
    fn trace_records(env: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.log");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "--exact",
                "aws::sdk::tests::trace_child",
                "--test-threads=1",
            ])
            .env("IAM_KEYS_TRACE_CHILD", &path)
            .env_remove("LOG_SENSITIVE_BODIES")
            .env_remove("LOG_SIGNABLE_BODY");
        for (k, v) in env {
            child.env(k, v);
        }
        let output = child.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let logs = std::fs::read_to_string(&path).unwrap();
        // A record starts with its timestamp; multi-line values continue it.
        let mut records: Vec<String> = Vec::new();
        for line in logs.lines() {
            match records.last_mut() {
                Some(last) if !line.starts_with("20") => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => records.push(line.to_string()),
            }
        }
        records
    }

    /// What must never be logged, and a name for it.
    fn forbidden() -> Vec<(&'static str, String)> {
        vec![
            ("the long-term secret", SECRET.to_string()),
            (
                "the form-encoded long-term secret",
                SECRET.replace('/', "%2F").replace('+', "%2B"),
            ),
            ("the new key's secret", CREATED_SECRET.to_string()),
            ("the session secret", SESSION_SECRET.to_string()),
            ("the session token", SESSION_TOKEN.to_string()),
            (
                "a piece of the session token",
                SESSION_TOKEN[20..60].to_string(),
            ),
            (
                "the MFA code in a request body",
                format!("TokenCode={MFA_CODE}"),
            ),
            ("the MFA code in a Debug value", format!("\"{MFA_CODE}\"")),
            (
                "the MFA code in a Debug byte slice",
                format!("TokenCode={MFA_CODE}")
                    .bytes()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ]
    }

    #[test]
    fn trace_logs_carry_no_secret_token_or_mfa_code() {
        let records = trace_records(&[]);
        let logs = records.join("\n");
        // The capture worked: the SDK's own trace lines and our one debug line per call are there.
        assert!(
            logs.contains("TRACE") && logs.contains("aws_sigv4"),
            "no SDK trace output captured"
        );
        for action in [
            "GetCallerIdentity",
            "CreateAccessKey",
            "GetSessionToken",
            "DeleteAccessKey",
        ] {
            assert!(
                logs.contains(&format!("action=\"{action}\"")),
                "no debug line for {action}"
            );
        }
        assert!(
            logs.contains("key=AKIA…0001") && logs.contains("key=ASIA…0001"),
            "keys are masked"
        );
        for (what, value) in forbidden() {
            assert!(!logs.contains(&value), "{what} appears in the trace logs");
        }
    }

    /// With `LOG_SENSITIVE_BODIES=true` the SDK logs the answers of CreateAccessKey and
    /// GetSessionToken (secrets, session token) and with `LOG_SIGNABLE_BODY=true` every request
    /// body (the MFA code), at TRACE, from exactly these two targets. The program's log filter
    /// must keep them below TRACE.
    #[test]
    fn sdk_debug_variables_leak_only_through_two_targets() {
        let records = trace_records(&[
            ("LOG_SENSITIVE_BODIES", "true"),
            ("LOG_SIGNABLE_BODY", "true"),
        ]);
        let mut leaking_targets = std::collections::BTreeSet::new();
        for record in &records {
            if forbidden().iter().any(|(_, value)| record.contains(value)) {
                let target = LEAKY_TARGETS
                    .iter()
                    .find(|t| record.contains(&format!(" {t}: ")));
                let Some(target) = target else {
                    panic!("a secret leaks through another target: {record}")
                };
                leaking_targets.insert(*target);
            }
        }
        assert_eq!(
            leaking_targets.len(),
            LEAKY_TARGETS.len(),
            "the SDK changed: {leaking_targets:?}"
        );
    }

    /// Run in a child process with `AWS_*` variables set: see
    /// `ambient_aws_settings_change_nothing`.
    #[tokio::test]
    async fn ambient_child() {
        if std::env::var_os("IAM_KEYS_AMBIENT_CHILD").is_none() {
            return;
        }
        let capture = Capture::new(canned);
        let client = capture
            .connector(test_settings())
            .connect(&target("us-west-2", None));
        client.caller_identity().await.unwrap();
        client.list_access_keys("alice").await.unwrap();
        let seen = capture.seen();
        assert_eq!(
            seen[0].uri, "https://sts.us-west-2.amazonaws.com/",
            "{seen:?}"
        );
        assert_eq!(seen[1].uri, "https://iam.amazonaws.com/", "{seen:?}");
        for s in &seen {
            assert!(
                s.authorization.contains(&format!("Credential={KEY_ID}/")),
                "{s:?}"
            );
            assert!(s.security_token.is_none(), "{s:?}");
        }
        assert!(
            seen[0]
                .authorization
                .contains("/us-west-2/sts/aws4_request"),
            "{:?}",
            seen[0]
        );
        println!("ambient child checked");
    }

    #[test]
    fn ambient_aws_settings_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::write(
            &config,
            "[default]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9\n\n[profile env]\nregion = ap-south-1\n\
             endpoint_url = http://127.0.0.1:9\n",
        )
        .unwrap();
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIAFROMTHEFILE00001\naws_secret_access_key = filesecret\n\n[env]\n\
             aws_access_key_id = AKIAFROMTHEFILE00002\naws_secret_access_key = filesecret\n",
        )
        .unwrap();
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "aws::sdk::tests::ambient_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("IAM_KEYS_AMBIENT_CHILD", "1")
            .env("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMT")
            .env("AWS_SECRET_ACCESS_KEY", "environmentsecret")
            .env("AWS_SESSION_TOKEN", "environmenttoken")
            .env("AWS_REGION", "eu-central-1")
            .env("AWS_DEFAULT_REGION", "eu-central-1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:9")
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
            .env("AWS_USE_FIPS_ENDPOINT", "true")
            .env("AWS_MAX_ATTEMPTS", "9")
            .env("AWS_PROFILE", "env")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("ambient child checked"),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjTCCATOgAwIBAgIUdxWdazwPndZRn6whIYs+ANbqSBUwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQaWFtLWtleXMgdGVzdCBDQTAgFw0yNjExMjIwODAzMjJaGA8y
MTI2MTAyOTA4MDMyMlowGzEZMBcGA1UEAwwQaWFtLWtleXMgdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABGGeVJ3o+gIxkYqGeIVOnB3rs9A33OfBb+/1
mRKQIZPo+L4ljNVvWFMUyFNE93saWJwEaaYpprAH/zq/Ca4OSN+jUzBRMB0GA1Ud
DgQWBBRum0qZGyVm1o3TBAF+NzdPWP93djAfBgNVHSMEGDAWgBRum0qZGyVm1o3T
BAF+NzdPWP93djAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDn
zqW1bYnLBmYsrgT5yEzMBU1EZGrx1ofR4UdMgmBXrwIgHbbFMlWaUxoCYW7w+Xb4
NtB9/R70APf9wBhljbVNxZ0=
-----END CERTIFICATE-----
";

    fn bundle(contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.pem");
        std::fs::write(&path, contents).unwrap();
        (dir, path)
    }

    fn connector_error(contents: &[u8]) -> String {
        let (_dir, path) = bundle(contents);
        let e = SdkConnector::new(ConnectorSettings {
            ca_bundle: Some(path.clone()),
            ..test_settings()
        })
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        text
    }

    #[test]
    fn a_valid_ca_bundle_is_accepted() {
        let with_key_and_comments = format!(
            "# our CA\r\n{}\n-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
             -----END PRIVATE KEY-----\n{TEST_CA}",
            TEST_CA.replace('\n', "\r\n")
        );
        let (_dir, path) = bundle(with_key_and_comments.as_bytes());
        let certs = load_ca_bundle(&path).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(String::from_utf8(certs[0].clone()).unwrap(), TEST_CA);
        SdkConnector::new(ConnectorSettings {
            ca_bundle: Some(path),
            ..test_settings()
        })
        .unwrap();
    }

    #[test]
    fn the_systems_ca_bundle_passes_the_checks() {
        // Every real root certificate must pass, or users with a corporate bundle are locked out.
        for path in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ] {
            let path = Path::new(path);
            if path.exists() {
                let certs = load_ca_bundle(path).unwrap();
                assert!(!certs.is_empty());
            }
        }
    }

    #[test]
    fn a_bad_ca_bundle_is_an_error_naming_the_file() {
        let (dir, _) = bundle(b"");
        let missing = dir.path().join("missing.pem");
        let e = SdkConnector::new(ConnectorSettings {
            ca_bundle: Some(missing.clone()),
            ..test_settings()
        })
        .unwrap_err();
        assert!(matches!(e, ConnectorError::CaBundleUnreadable { .. }));
        assert_eq!(
            e.to_string(),
            format!("cannot read the CA bundle {}", missing.display())
        );
        assert!(std::error::Error::source(&e).is_some());

        assert!(connector_error(b"").contains("holds no `-----BEGIN CERTIFICATE-----` block"));
        assert!(connector_error(b"just some text\n").contains("holds no"));
        assert!(connector_error(&[0x30, 0x82, 0xff, 0x00, 0x9f]).contains("not a text (PEM) file"));
        let key_only = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n\
                        -----END PRIVATE KEY-----\n";
        assert!(connector_error(key_only.as_bytes()).contains("holds no"));
        let unterminated = &TEST_CA[..TEST_CA.find("-----END").unwrap()];
        assert!(connector_error(unterminated.as_bytes()).contains("has no END line"));
        let bad_base64 = TEST_CA.replace("MIIBjTCC", "MIIB*TCC");
        assert!(connector_error(bad_base64.as_bytes()).contains("not valid base64"));
        // Valid base64 of something that is not a certificate.
        let not_der = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            "aGVsbG8gd29ybGQ="
        );
        assert!(
            connector_error(not_der.as_bytes())
                .contains("certificate 1 is not a valid X.509 certificate")
        );
        // A certificate with one byte of its body changed in a length.
        let mut der = aws_smithy_types::base64::decode(
            TEST_CA
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
        der[5] ^= 0x40;
        let corrupt = String::from_utf8(pem_encode(&der)).unwrap();
        let text = connector_error(format!("{TEST_CA}{corrupt}").as_bytes());
        assert!(
            text.contains("certificate 2 is not a valid X.509 certificate"),
            "{text}"
        );
    }

    #[test]
    fn debug_output_shows_no_credentials() {
        let connector = SdkConnector::new(test_settings()).unwrap();
        let client = connector.connect(&session_target(None));
        let text = format!("{connector:?} {client:?}");
        assert!(
            !text.contains(SESSION_SECRET) && !text.contains(SESSION_TOKEN),
            "{text}"
        );
        assert!(text.contains("ASIA…0001"), "{text}");
    }
}
