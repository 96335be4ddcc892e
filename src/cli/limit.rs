//! `--concurrency` and `--throttle-timeout`: the options of the one limiter every command's
//! AWS calls go through (`rotate`, `status`, `recover`, `audit`; see `aws::limiter`).

use super::duration::DurationArg;
use crate::aws::limiter::{DEFAULT_CAP, Limiter, LimiterOptions};
use clap::Args;
use std::rc::Rc;

/// How many keys (or users) are worked on at once: a sanity bound only. What IAM sees is
/// bounded by the limiter (`--concurrency` calls in flight at most); a key that waits holds
/// no call.
pub const MAX_TASKS: usize = 1024;

#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// The most AWS calls in flight at once; fewer while IAM answers `Throttling`
    #[arg(long, default_value_t = DEFAULT_CAP, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// How long one call is sent again while IAM answers `Throttling` (its attempts and
    /// backoffs; a wait for its turn does not count), before it fails
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub throttle_timeout: DurationArg,
}

impl LimitArgs {
    /// The run's limiter: every AWS call of the command goes through it.
    pub fn limiter(&self) -> Rc<Limiter> {
        Limiter::new(LimiterOptions {
            throttle_budget: self.throttle_timeout.duration,
            ..LimiterOptions::with_cap(self.concurrency as usize)
        })
    }
}
