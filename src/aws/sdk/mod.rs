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
//! CreateAccessKey, which gets one attempt.
//!
//! Must not: read profile files or credentials from the environment, print, log a secret, a
//! session token or an MFA code, or retry beyond the SDK's standard retries (waiting for a
//! new key to propagate is the rotation's job, with its own clock).

pub mod account;
mod ca_bundle;
mod client;
mod connector;
mod endpoints;
#[cfg(test)]
mod tests;

pub use client::{LEAKY_TARGETS, SdkClient};
pub use connector::{ConnectorError, ConnectorSettings, SdkConnector};
pub use endpoints::{Endpoints, Service, default_endpoint};
