//! Output: one renderer per command ([`rotate`], [`status`]; the audit's is `cli::audit::render`)
//! beside the shared pieces: the one JSON helper ([`json`]), JSON shapes for AWS errors and
//! last use, a plain text table, and the `--output env` lines (the only place a secret is
//! printed).
//!
//! Must not: decide anything; a renderer only describes what its command decided and did.

pub mod rotate;
pub mod status;

use crate::aws::{AwsError, LastUsed};
use crate::secret::Secret;
use crate::time::rfc3339;
use serde::Serialize;

/// An AWS refusal in JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorJson {
    /// Our classification (`InvalidClientTokenId`, `AccessDenied`, `Network`, ...).
    pub kind: String,
    /// AWS's code, when it sent one.
    pub code: Option<String>,
    /// The whole explanation, as printed in text output.
    pub message: String,
}

impl ErrorJson {
    pub fn from_aws(e: &AwsError, message: String) -> ErrorJson {
        ErrorJson {
            kind: format!("{:?}", e.kind),
            code: e.code.clone(),
            message,
        }
    }

    pub fn other(kind: &str, message: String) -> ErrorJson {
        ErrorJson {
            kind: kind.to_string(),
            code: None,
            message,
        }
    }
}

/// Last use of a key in JSON; all `null` for a key never used.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LastUsedJson {
    pub date: Option<String>,
    pub service: Option<String>,
    pub region: Option<String>,
}

impl From<&LastUsed> for LastUsedJson {
    fn from(u: &LastUsed) -> Self {
        LastUsedJson {
            date: u.date.map(rfc3339),
            service: u.service.clone(),
            region: u.region.clone(),
        }
    }
}

/// A plain text table: a header row and rows, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// `--output env`: shell lines for a new key. The one place a secret reaches stdout, and
/// only because the user asked for it.
/// A comment line says whose key it is: the profiles that hold it, or (a key only printed)
/// the IAM user.
pub fn env_lines(profiles: &[String], user: &str, key_id: &str, secret: &Secret) -> String {
    let whose = if profiles.is_empty() {
        format!("user: {user}")
    } else {
        format!("profiles: {}", profiles.join(", "))
    };
    format!(
        "# {whose}\nAWS_ACCESS_KEY_ID={key_id}\nAWS_SECRET_ACCESS_KEY={}\n",
        secret.expose()
    )
}

/// A document as pretty JSON with a final newline: every `--output json` of every command.
pub fn json<T: Serialize>(doc: &T) -> String {
    serde_json::to_string_pretty(doc).expect("our JSON documents always serialise") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let text = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(text, "A     BB\nlong  x\ns     yy\n");
    }
}
