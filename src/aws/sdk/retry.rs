//! The retry classifier every SDK client gets last: `Throttling` is never retried by the SDK
//! itself, so no call sleeps through the SDK's backoff while it holds one of the limiter's
//! permits; `aws::limiter` sends it again after waiting without one. 5xx answers, timeouts
//! and connection errors keep the SDK's standard retries.
//!
//! Must not: retry anything the SDK would not.

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};

/// See the module doc.
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
