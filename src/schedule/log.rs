//! The scheduled job's log in the state directory: `schedule.log` (text lines, kept under
//! [`MAX_BYTES`] by dropping the oldest half) and `schedule-last.json` (the last run, for
//! `schedule status`). No secrets: the job's output is rotate's JSON report and stderr,
//! neither of which ever holds one.
//!
//! Must not: decide anything about the run.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MAX_BYTES: u64 = 256 * 1024;

/// The last run of the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    pub started: String,
    pub finished: String,
    pub exit_code: i32,
    /// `nothing due`, `rotated`, `attention` (something failed with nothing changed, or
    /// was skipped for a reason to act on), `partial`, `failed to start`.
    pub outcome: String,
    pub rotated: usize,
    pub failed: usize,
    pub partial: usize,
    /// Profiles skipped because they need an MFA code and no --mfa-command is set.
    pub mfa_skipped: Vec<String>,
}

pub fn log_path(state_dir: &Path) -> PathBuf {
    state_dir.join("schedule.log")
}

pub fn last_path(state_dir: &Path) -> PathBuf {
    state_dir.join("schedule-last.json")
}

/// Append lines (each prefixed with the time) to the log, trimming it when too big.
pub fn append(state_dir: &Path, at: Timestamp, lines: &[String]) -> std::io::Result<()> {
    crate::rotation::journal::ensure_private_dir(state_dir).map_err(std::io::Error::other)?;
    let path = log_path(state_dir);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_BYTES) {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let half = text.len() / 2;
        let cut = text[half..].find('\n').map(|i| half + i + 1).unwrap_or(0);
        crate::rotation::journal::write_private_file(state_dir, &path, &text.as_bytes()[cut..])
            .map_err(std::io::Error::other)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let stamp = crate::time::rfc3339(at);
    let mut text = String::new();
    for line in lines {
        text.push_str(&format!("{stamp} {line}\n"));
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

pub fn write_last(state_dir: &Path, last: &LastRun) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(last).expect("serialisable");
    crate::rotation::journal::write_private_file(state_dir, &last_path(state_dir), &bytes)
        .map_err(std::io::Error::other)
}

pub fn read_last(state_dir: &Path) -> Option<LastRun> {
    let bytes = std::fs::read(last_path(state_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_appended_and_kept_small() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        append(&state, t, &["run: nothing due".into()]).unwrap();
        let text = std::fs::read_to_string(log_path(&state)).unwrap();
        assert_eq!(text, "2027-01-15T08:00:00Z run: nothing due\n");
        let long = "x".repeat(1000);
        for _ in 0..400 {
            append(&state, t, std::slice::from_ref(&long)).unwrap();
        }
        let size = std::fs::metadata(log_path(&state)).unwrap().len();
        assert!(size <= MAX_BYTES + 2 * 1024, "{size}");
        let text = std::fs::read_to_string(log_path(&state)).unwrap();
        assert!(text.starts_with("2027-"), "whole lines kept");
    }
}
