//! The integration-test harness: everything the tests in `tests/it/` share.
//!
//! - [`python`]: the pinned Python venv under the target dir (moto, the AWS CLI, parliament).
//! - [`moto`]: one moto server per test process on 127.0.0.1, auth checking on, with an admin
//!   identity and IAM helpers (users, keys, MFA devices).
//! - [`cmd`]: a temporary HOME ([`Sandbox`]) and the built binary or the AWS CLI run in it with
//!   a scrubbed environment ([`Run`] holds the result and the assertions).
//! - [`proxy`]: a fault-injecting, recording proxy between the binary and moto.
//!
//! Rules for everything here: traffic goes to 127.0.0.1 only; no secret is ever printed (use
//! [`mask`] for key ids in messages; [`redact_secrets`] guards failure output).
//!
//! Not every test module uses every helper, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod cmd;
pub mod moto;
pub mod proxy;
pub mod python;

// Re-exported for the test modules; not every one is used by every module.
#[allow(unused_imports)]
pub use cmd::{Cmd, Run, Sandbox, finish};
#[allow(unused_imports)]
pub use moto::{Moto, moto, unique};
#[allow(unused_imports)]
pub use proxy::{Fault, FaultProxy, KeyMatch, Recorded, Rule};

/// An access key id masked for messages: `AKIA…WXYZ` (first four, last four).
pub fn mask(key_id: &str) -> String {
    let chars: Vec<char> = key_id.chars().collect();
    if chars.len() <= 8 {
        return "…".repeat(chars.len().min(1));
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// `text` with every run of exactly 40 characters from the secret-key alphabet
/// (`A-Z a-z 0-9 / +`) replaced by `<40-char secret redacted>`: what a secret access key looks
/// like. Used on command output before it goes into a failure message.
pub fn redact_secrets(text: &str) -> String {
    fn in_alphabet(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '/' || c == '+'
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 40 {
            out.push_str("<40-char secret redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if in_alphabet(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}
