//! The integration tests: the built `iam-keys` binary against a moto server on 127.0.0.1
//! that the harness starts itself, with a scrubbed environment and a temporary HOME.
//!
//! Linux (and Unix) only: the harness uses Unix modes, signals, `chattr` and `mount`. On
//! Windows this target is empty; scripts/windows-check.sh runs a smoke rotation instead.
#![cfg(unix)]

mod support;

mod audit;
mod audit_org;
mod auth_profile;
mod completions;
mod crash;
mod edges;
mod envfile;
mod errors;
mod faults;
mod file_edges;
mod files;
mod fuzz_corpus;
mod harness;
mod hooks;
mod invariants;
mod mfa;
mod policy;
mod policy_apply;
mod profiles_compat;
mod progress;
mod prune;
mod rotate;
mod scale;
mod schedule;
mod secrets;
mod status;
