//! [`SdkConnector`]: the one HTTP client (hyper, rustls with *ring*, the platform's root
//! certificates plus an optional CA bundle) that every client shares, and the `SdkConfig`
//! each [`SdkConnector::connect`] assembles field by field: the target's explicit
//! credentials, its region, its endpoint overrides, and the retries and timeouts of
//! [`ConnectorSettings`].
//!
//! Must not: call `aws_config::load_defaults` or the `ConfigLoader` (no `AWS_*` variable, no
//! profile file, no instance metadata may change which key signs or where requests go), or
//! read anything from the environment but the proxy.

use super::ca_bundle::load_ca_bundle;
use super::client::SdkClient;
use super::endpoints::Endpoints;
use crate::aws::{Connector, Target};
use crate::secret::mask_key_id;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder as HttpClientBuilder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Name of the credentials provider in SDK logs and errors.
const PROVIDER_NAME: &str = "iam-keys";

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
    /// endpoint is not hammered. Throttling is not ([`super::NoThrottlingRetries`]): the
    /// limiter in `aws::limiter` waits for it without holding a slot. *Adaptive* mode is not
    /// used: the limiter adapts the calls in flight for the whole run instead.
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

    pub(super) fn sdk_config(&self, target: &Target) -> SdkConfig {
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
        let mut iam = aws_sdk_iam::config::Builder::from(&config)
            .retry_classifier(super::NoThrottlingRetries);
        if let Some(url) = &target.iam_endpoint {
            iam = iam.endpoint_url(url);
        }
        let mut sts = aws_sdk_sts::config::Builder::from(&config)
            .retry_classifier(super::NoThrottlingRetries);
        if let Some(url) = &target.sts_endpoint {
            sts = sts.endpoint_url(url);
        }
        SdkClient::new(
            aws_sdk_iam::Client::from_conf(iam.build()),
            aws_sdk_sts::Client::from_conf(sts.build()),
            mask_key_id(&target.credentials.access_key_id),
            Endpoints::for_target(target),
        )
    }
}
