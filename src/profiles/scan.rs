//! A raw scan of the two files for an access key id: every setting line that holds it,
//! whatever its section, including sections the SDKs ignore but the AWS CLI reads
//! (`[profile dev]` or `[my dev]` in the credentials file). The rotation uses it to make sure
//! no line still names a key before that key is retired.
//!
//! Must not: interpret the files as profiles (that is [`super::view`]); it only reads lines.

use super::FileKind;
use std::fmt;
use std::path::{Path, PathBuf};

/// One setting line that holds the key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    pub file: FileKind,
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// The section header's name as written (`profile dev`, `my dev`), if any.
    pub section: Option<String>,
}

impl fmt::Display for Mention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", self.path.display(), self.line)?;
        if let Some(section) = &self.section {
            write!(f, " (section [{section}])")?;
        }
        Ok(())
    }
}

/// The setting lines of `text` whose value holds `key_id`: `(1-based line, section)`.
/// Comment lines do not count; a line continuing a setting (indented) does.
pub fn mentions_in_text(text: &str, key_id: &str) -> Vec<(usize, Option<String>)> {
    if key_id.is_empty() {
        return Vec::new();
    }
    let mut section = None;
    let mut found = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c: char| c.is_whitespace());
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            section = Some(rest.split(']').next().unwrap_or(rest).trim().to_string());
            continue;
        }
        let value = match line.split_once('=') {
            Some((_, value)) => value,
            // A continuation line of a nested setting.
            None if raw.starts_with([' ', '\t']) => line,
            None => continue,
        };
        if value.contains(key_id) {
            found.push((index + 1, section.clone()));
        }
    }
    found
}

/// The setting lines of the file at `path` that hold `key_id` (none if it does not exist).
pub fn mentions(file: FileKind, path: &Path, key_id: &str) -> std::io::Result<Vec<Mention>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(mentions_in_text(&text, key_id)
        .into_iter()
        .map(|(line, section)| Mention {
            file,
            path: path.to_path_buf(),
            line,
            section,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_line_naming_the_key_is_found_whatever_its_section() {
        let text = "[default]\naws_access_key_id = AKIAOLD\n# AKIAOLD in a comment\n\
                    [profile dev]\r\naws_access_key_id=AKIAOLD\r\n[my dev]\n  aws_access_key_id = AKIAOLD  \n\
                    [other]\naws_access_key_id = AKIANEW\ns3 =\n  note = AKIAOLD\n";
        assert_eq!(
            mentions_in_text(text, "AKIAOLD"),
            vec![
                (2, Some("default".into())),
                (5, Some("profile dev".into())),
                (7, Some("my dev".into())),
                (11, Some("other".into())),
            ]
        );
        assert!(mentions_in_text(text, "AKIAGONE").is_empty());
    }
}
