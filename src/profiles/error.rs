//! The errors of the profile files module. Every variant names the file (and the line where
//! there is one) and says what to do next; an underlying I/O error is kept as `#[source]`
//! and not repeated in the message.
//!
//! Must not: carry or print a secret value (or any property value): key ids are masked.

use super::FileKind;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a profile file could not be read, edited or saved.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "cannot tell where {} is: no home directory is set (HOME); set HOME, or set {var} to the file's full path",
        path.display()
    )]
    NoHome { path: PathBuf, var: &'static str },

    #[error("cannot read the {kind} {}: check that it exists and that you may read it", path.display())]
    Read {
        kind: FileKind,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the {kind} {} is a directory, not a file: move it away or point to the right file", path.display())]
    IsDirectory { kind: FileKind, path: PathBuf },

    #[error(
        "the {kind} {} is {what}, not a regular file: iam-keys reads and writes only regular files (a symbolic link to one is fine; /dev/null reads as empty): point to the right file",
        path.display()
    )]
    NotRegular {
        kind: FileKind,
        path: PathBuf,
        what: &'static str,
    },

    #[error(
        "the {kind} {} is {size} bytes, more than iam-keys reads ({cap}): a profile file is a few KiB; check that this is the right file",
        path.display()
    )]
    TooLarge {
        kind: FileKind,
        path: PathBuf,
        size: u64,
        cap: &'static str,
    },

    #[error(
        "the {kind} {} is /dev/null (disabled); iam-keys reads it as empty and never writes it: to save a key there, point to a real file (an option or the environment variable) and run again",
        path.display()
    )]
    NullDevice { kind: FileKind, path: PathBuf },

    #[error(
        "the {kind} {} could not be rewritten in place and may be damaged{}; its previous content is in {}: copy that file over it before you use the profiles again",
        path.display(),
        already_saved(saved),
        backup.display()
    )]
    InPlaceDamaged {
        kind: FileKind,
        path: PathBuf,
        backup: PathBuf,
        saved: Vec<PathBuf>,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the {kind} {} is not UTF-8 text (first bad byte on line {line}): save it as UTF-8; the AWS SDKs ignore a file that is not UTF-8",
        path.display()
    )]
    NotUtf8 {
        kind: FileKind,
        path: PathBuf,
        line: usize,
    },

    #[error(
        "the {kind} {} cannot be parsed: line {line}: {message}{}; the AWS SDKs reject this file as well: fix that line and run again",
        path.display(),
        more_issues(*more)
    )]
    Parse {
        kind: FileKind,
        path: PathBuf,
        line: usize,
        message: String,
        /// How many more malformed lines follow.
        more: usize,
    },

    #[error(
        "profile `{profile}` cannot be edited safely: {what} in the {kind} {} (lines {}); the AWS SDKs and the AWS CLI read this differently (the AWS CLI refuses the file): merge them by hand into one, then run again",
        path.display(),
        join_lines(lines)
    )]
    Ambiguous {
        kind: FileKind,
        path: PathBuf,
        profile: String,
        /// What is duplicated, e.g. "the section appears 2 times".
        what: String,
        lines: Vec<usize>,
    },

    #[error(
        "no profile in {} holds the access key {key_id}: nothing to edit; check the profile files",
        join_paths(files)
    )]
    KeyNotFound { key_id: String, files: Vec<PathBuf> },

    #[error(
        "the {kind} {} changed on disk since it was read and no profile there holds the access key {key_id} any more; nothing was written to it: look at the file, then run again",
        path.display()
    )]
    ChangedOnDisk {
        kind: FileKind,
        path: PathBuf,
        key_id: String,
    },

    #[error("the new {property} cannot be written to a profile file: {reason}")]
    InvalidValue {
        property: &'static str,
        reason: &'static str,
    },

    #[error(
        "cannot write in the directory of the {kind} {}: check its permissions and free space, then run again",
        path.display()
    )]
    NotWritable {
        kind: FileKind,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot save the {kind} {}; it is unchanged{}",
        path.display(),
        already_saved(saved)
    )]
    Write {
        kind: FileKind,
        path: PathBuf,
        /// Files already saved by this call (the credentials file when the config file fails).
        saved: Vec<PathBuf>,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "after saving the {kind} {}, profile `{profile}` does not read the new access key {key_id}{}; restore the file from {} if needed",
        path.display(),
        already_saved(saved),
        backup_name(path, backup)
    )]
    Verify {
        kind: FileKind,
        path: PathBuf,
        profile: String,
        key_id: String,
        backup: Option<PathBuf>,
        saved: Vec<PathBuf>,
    },

    #[error("cannot create or lock the lock file {}: check the directory's permissions", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the lock file {} is {what}, not a regular file owned by you: iam-keys did not use it and changed nothing; remove it (and find out who put it there), then run again",
        path.display()
    )]
    LockUnsafe { path: PathBuf, what: String },

    #[error(
        "another iam-keys run{} holds the lock {} (waited {:.0} s): let it finish and run again; if no such run exists, delete the lock file",
        holder.map(|p| format!(" (process {p})")).unwrap_or_default(),
        path.display(),
        waited.as_secs_f64()
    )]
    LockTimeout {
        path: PathBuf,
        holder: Option<u32>,
        waited: Duration,
    },
}

fn more_issues(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more malformed line)".to_string(),
        n => format!(" (and {n} more malformed lines)"),
    }
}

fn join_lines(lines: &[usize]) -> String {
    lines
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn already_saved(saved: &[PathBuf]) -> String {
    if saved.is_empty() {
        String::new()
    } else {
        format!(" (already saved: {})", join_paths(saved))
    }
}

fn backup_name(path: &Path, backup: &Option<PathBuf>) -> String {
    match backup {
        Some(b) => b.display().to_string(),
        None => format!("your own copy of {}", path.display()),
    }
}

/// Something in the files that the two readers treat differently or ignore, with the file
/// and line. Shown as a warning; nothing is refused because of it (editing refusals are
/// [`ProfileError::Ambiguous`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: FileKind,
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} line {}: {}",
            self.file,
            self.path.display(),
            self.line,
            self.message
        )
    }
}
