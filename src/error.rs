//! The program's top-level error and the exit codes, decided in one place.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | everything done, or nothing due |
//! | 1 | a rotation failed and nothing changed for it; `status`: a key is due or could not be checked |
//! | 2 | usage or input error (bad option, unreadable or malformed file, refused plan) |
//! | 3 | partial: a new key is in place but an old key is still active (run `iam-keys recover`) |
//! | 4 | `audit`: part of the audit could not be read (an account, a user, a call refused) |

use crate::profiles::ProfileError;
use std::process::ExitCode;

/// How a command ended when it did not fail outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    /// Something needs attention or failed with nothing changed (exit 1).
    Attention,
    /// A rotation is half done: new key in place, old key still active (exit 3).
    Partial,
    /// `audit`: part of the audit could not be read (exit 4).
    Incomplete,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Attention => 1,
            Outcome::Partial => 3,
            Outcome::Incomplete => 4,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(o.exit_code())
    }
}

/// An error that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or a refused request; the message says what to do.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Profiles(Box<ProfileError>),
    #[error("cannot set up the AWS client")]
    Connector(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Journal(#[from] crate::rotation::journal::JournalError),
    #[error("cannot write to {what}")]
    Output {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl From<ProfileError> for Error {
    fn from(e: ProfileError) -> Error {
        Error::Profiles(Box::new(e))
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Profiles(_) | Error::Connector(_) => 2,
            Error::Journal(_) | Error::Output { .. } => 1,
        }
    }

    /// The message with its chain of causes, one per line, as printed on stderr.
    pub fn report(&self) -> String {
        let mut out = format!("error: {self}");
        for cause in crate::aws::error::causes(self).skip(1) {
            out.push_str(&format!("\n  caused by: {cause}"));
        }
        out
    }
}
