//! The integration tests: the built `iam-keys` binary against a moto server on 127.0.0.1
//! that the harness starts itself, with a scrubbed environment and a temporary HOME.
//!
//! Linux (and Unix) only: the harness uses Unix modes, signals, `chattr` and `mount`. On
//! Windows this target is empty; scripts/windows-check.sh runs a smoke rotation instead.
#![cfg(unix)]

mod support;

mod auth_profile;
mod completions;
mod crash;
mod errors;
mod faults;
mod files;
mod harness;
mod invariants;
mod mfa;
mod policy;
mod profiles_compat;
mod rotate;
mod secrets;
mod status;
