//! [`Connector`](crate::aws::Connector) and [`Iam`](crate::aws::Iam) (and
//! [`AccountIam`](crate::aws::account::AccountIam)) on the official AWS SDK for Rust, one job
//! a file:
//!
//! - `connector`: [`SdkConnector`] and [`ConnectorSettings`]. One HTTP client (hyper, rustls
//!   with *ring*, the platform's roots plus an optional CA bundle) shared by every client; each
//!   `connect` assembles an `SdkConfig` field by field from the target's explicit credentials
//!   (provider name `iam-keys`), region and endpoint overrides. `aws_config::load_defaults`
//!   and the `ConfigLoader` are never used, so no `AWS_*` variable, no profile file, no
//!   instance metadata and no ambient credential chain can change which key signs or where
//!   requests go. The one thing read from the environment is the proxy (`HTTPS_PROXY`,
//!   `HTTP_PROXY`, `NO_PROXY`), as the AWS CLI does; see [`ConnectorSettings::proxy_from_env`].
//! - `endpoints`: [`Endpoints`], and [`default_endpoint`], the one function that picks IAM's
//!   and STS's URL for a region's partition.
//! - `ca_bundle`: reads and checks the PEM/DER of a CA bundle before the SDK sees it.
//! - `client`: [`SdkClient`] and the eight key operations, and the one timed wrapper every
//!   call goes through: one `debug!` line per call with the action, the signing key masked
//!   (`AKIA…WXYZ`), the IAM user and key (masked) or resource it acted on, and the outcome.
//!   Retries follow [`Action::retry_safe`](crate::aws::Action::retry_safe): every call gets
//!   the SDK's standard retries except the creates, which get one attempt.
//! - `retry`: [`NoThrottlingRetries`]: the SDK never retries `Throttling`; the limiter
//!   (`aws::limiter`) waits for it without holding a permit and sends the call again.
//! - [`account`]: the account-wide calls of the audit and `policy --apply`, on the same
//!   client and wrapper.
//!
//! Must not: read profile files or credentials from the environment, print, log a secret, a
//! session token or an MFA code, or retry beyond the SDK's standard retries (waiting for a
//! new key to propagate is the rotation's job, with its own clock).

pub mod account;
mod ca_bundle;
mod client;
mod connector;
mod endpoints;
mod retry;
#[cfg(test)]
mod tests;

pub use client::{LEAKY_TARGETS, SdkClient};
pub use connector::{ConnectorError, ConnectorSettings, SdkConnector};
pub use endpoints::{Endpoints, Service, default_endpoint};
pub use retry::NoThrottlingRetries;
