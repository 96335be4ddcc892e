//! Key rotation: pure planning ([`plan`]: facts in, a plan or a refusal out), the state
//! machine that executes a plan ([`exec`]), the hooks and env files that must take the new
//! key before the old one is retired ([`hooks`]), the recovery journal ([`journal`]),
//! recovery of interrupted rotations ([`recover`]), and time through an injected [`clock`].
//!
//! The rule everything here serves: the old key is never retired before the new key is
//! proven to work and is durably on disk.
//!
//! Must not: print (progress goes through a callback), read the environment, or call the SDK
//! directly (only through [`crate::aws::Iam`]).

pub mod exec;
pub mod hooks;
pub mod journal;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod prune;
pub mod recover;
pub mod retired;

pub use exec::{Engine, ExecOptions, KeyOutcome, Step};
pub use plan::{Decision, KeyPlan, PlanOptions, Refusal, Retire};
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
