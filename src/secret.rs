//! The secret newtype. Secret access keys, session tokens and MFA codes live in [`Secret`]
//! from the moment they are read or received until they are written to a file, a journal or
//! (only with `--output env`) stdout. Its `Debug` and `Display` never show the value, so a
//! secret cannot reach a log line, an error message or a panic by accident.
//!
//! Must not: offer `Serialize`; callers that must persist a secret call [`Secret::expose`]
//! at the one place that writes it, so every such place is easy to find with grep.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// A secret string: redacted in `Debug` and `Display`, zeroed on drop.
#[derive(Clone)]
pub struct Secret(SecretString);

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "** redacted **";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The value itself. Call it only where the secret is sent to AWS or written where the
    /// user asked it to be (a profile file, the 0600 journal, `--output env`).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}
impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// An access key id shown to people: `AKIA…WXYZ`. Key ids are not secret, but showing them
/// whole invites copy-paste into chat; AWS consoles mask them the same way.
pub fn mask_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return id.to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_the_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    }

    #[test]
    fn key_ids_are_masked_to_prefix_and_suffix() {
        assert_eq!(mask_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_key_id("short"), "short");
    }
}
