//! Dotenv files (`.env`): the new key written into `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`, losslessly. Every byte that is not one of those values is kept:
//! comments, blank lines, order, `export ` prefixes, spacing around `=`, the quote style of
//! each value (none, `'…'`, `"…"`), a trailing `# comment`, line endings. A variable that is
//! missing is added (after the other one when it exists, else at the end), in the file's
//! style (`export ` when most assignments use it). A stale `AWS_SESSION_TOKEN` /
//! `AWS_SECURITY_TOKEN` assignment is removed, as in the profile files: it would break the
//! new key.
//!
//! A file whose `AWS_ACCESS_KEY_ID` holds a key that is neither the rotated one nor the new
//! one is refused: iam-keys replaces only the key it rotates.
//!
//! Saving follows the profile files' rules (it uses the same [`super::save`] and
//! [`super::open`]): only a regular file or a symlink to one (whose target is written, the
//! link kept); FIFOs, devices, directories and `/dev/null` are refused; at most 16 MiB; the
//! new content is written to a 0600 temporary file beside the real file, fsynced and renamed
//! over it; a file with other names (hard links) or one a rename cannot replace (a bind
//! mount) is rewritten in place and read back, the previous content put back on failure. The
//! file ends up 0600 and is read back and checked after the save.
//!
//! Must not: print, or let the secret reach an error or `Debug`.

use super::open::{self, Contents, OpenError};
use super::save;
use crate::secret::{Secret, mask_key_id};
use std::fmt;
use std::path::{Path, PathBuf};

pub const KEY_ID_VAR: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_VAR: &str = "AWS_SECRET_ACCESS_KEY";
const TOKEN_VARS: [&str; 2] = ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"];

/// Why a dotenv file could not be checked or updated. Never holds a secret.
#[derive(Debug)]
pub enum DotenvError {
    /// Not something a key can be written to (a FIFO, a device, a directory, `/dev/null`,
    /// larger than 16 MiB).
    Unusable {
        path: PathBuf,
        what: String,
    },
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    NotUtf8 {
        path: PathBuf,
    },
    /// A quoted value that never closes.
    Unclosed {
        path: PathBuf,
        line: usize,
    },
    /// `AWS_ACCESS_KEY_ID` there holds another key.
    OtherKey {
        path: PathBuf,
        line: usize,
        key_id: String,
    },
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The saved file does not read back with the new key.
    ReadBack {
        path: PathBuf,
    },
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DotenvError::Unusable { path, what } => write!(
                f,
                "env file {} is {what}; give the path of a regular file (--env-file, iam_keys_env_file)",
                path.display()
            ),
            DotenvError::Read { path, source } => {
                write!(f, "cannot read env file {}: {source}", path.display())
            }
            DotenvError::NotUtf8 { path } => write!(
                f,
                "env file {} is not UTF-8 text; it is left alone",
                path.display()
            ),
            DotenvError::Unclosed { path, line } => write!(
                f,
                "env file {} line {line}: a quoted value never closes; fix the quotes, then run again",
                path.display()
            ),
            DotenvError::OtherKey { path, line, key_id } => write!(
                f,
                "env file {} line {line}: {KEY_ID_VAR} holds another key ({}), not the one being rotated; \
                 iam-keys replaces only the key it rotates. Point --env-file (or iam_keys_env_file) at the \
                 right file, or empty that value",
                path.display(),
                mask_key_id(key_id)
            ),
            DotenvError::Write { path, source } => {
                write!(f, "cannot save env file {}: {source}", path.display())
            }
            DotenvError::ReadBack { path } => write!(
                f,
                "env file {} does not read back with the new key after saving; check it by hand",
                path.display()
            ),
        }
    }
}

impl std::error::Error for DotenvError {}

/// One assignment `NAME=value` (perhaps over several physical lines, for a quoted value).
#[derive(Debug)]
struct Assignment {
    name: String,
    /// 1-based line of the assignment.
    line: usize,
    /// Byte range of the whole assignment, line ending(s) included.
    span: (usize, usize),
    /// Byte range of the value, quotes included.
    value_span: (usize, usize),
    /// The quote around the value, if any.
    quote: Option<char>,
    /// The value without quotes (escapes not interpreted: key ids have none).
    value: String,
    export: bool,
}

/// Split `text` into assignments; other lines are kept as they are.
fn parse(text: &str) -> Result<Vec<Assignment>, usize> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut line_no = 0;
    while pos < bytes.len() {
        line_no += 1;
        let line_end = text[pos..].find('\n').map_or(bytes.len(), |i| pos + i + 1);
        let line = &text[pos..line_end];
        let Some((export, name, value_at)) = assignment_head(line) else {
            pos = line_end;
            continue;
        };
        let value_start = pos + value_at;
        let first = text[value_start..].chars().next();
        let (quote, value_end, span_end, lines) = match first {
            Some(q @ ('"' | '\'' | '`')) => {
                // Find the closing quote, perhaps on a later line.
                let mut i = value_start + 1;
                let mut close = None;
                while i < bytes.len() {
                    let c = bytes[i];
                    if q == '"' && c == b'\\' {
                        i += 2;
                        continue;
                    }
                    if c == q as u8 {
                        close = Some(i);
                        break;
                    }
                    i += 1;
                }
                let Some(close) = close else {
                    return Err(line_no);
                };
                let end_line = text[close..]
                    .find('\n')
                    .map_or(bytes.len(), |j| close + j + 1);
                let lines = text[value_start..close].matches('\n').count();
                (Some(q), close + 1, end_line, lines)
            }
            _ => {
                let rest = &line[value_at..];
                let content = rest.trim_end_matches(['\n', '\r']);
                // An unquoted value ends at ` #` (a comment) or the end, trailing blanks cut.
                let cut = content
                    .char_indices()
                    .find(|&(i, c)| c == '#' && (i == 0 || content[..i].ends_with([' ', '\t'])))
                    .map_or(content.len(), |(i, _)| i);
                let value = content[..cut].trim_end_matches([' ', '\t']);
                (None, value_start + value.len(), line_end, 0)
            }
        };
        let value = match quote {
            Some(_) => text[value_start + 1..value_end - 1].to_string(),
            None => text[value_start..value_end].to_string(),
        };
        out.push(Assignment {
            name,
            line: line_no,
            span: (pos, span_end),
            value_span: (value_start, value_end),
            quote,
            value,
            export,
        });
        line_no += lines;
        pos = span_end;
    }
    Ok(out)
}

/// `[blanks][export blanks]NAME[blanks]=[blanks]`: (export?, NAME, offset of the value).
fn assignment_head(line: &str) -> Option<(bool, String, usize)> {
    let trimmed = line.trim_start_matches([' ', '\t']);
    let mut at = line.len() - trimmed.len();
    let mut export = false;
    let mut rest = trimmed;
    if let Some(after) = rest.strip_prefix("export")
        && after.starts_with([' ', '\t'])
    {
        let after_blanks = after.trim_start_matches([' ', '\t']);
        at += rest.len() - after_blanks.len();
        rest = after_blanks;
        export = true;
    }
    let name_len = rest
        .char_indices()
        .take_while(|&(i, c)| {
            c == '_' || c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_digit() || c == '.'))
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let name = rest[..name_len].to_string();
    let after_name = &rest[name_len..];
    let spaced = after_name.trim_start_matches([' ', '\t']);
    let after_eq = spaced.strip_prefix('=')?;
    let value = after_eq.trim_start_matches([' ', '\t']);
    at += rest.len() - value.len();
    Some((export, name, at))
}

/// The key id `text` holds in `AWS_ACCESS_KEY_ID` (the last assignment), if any.
pub fn key_id_in(text: &str) -> Option<String> {
    parse(text)
        .ok()?
        .into_iter()
        .rfind(|a| a.name == KEY_ID_VAR)
        .map(|a| a.value)
}

/// The value of `name` (the last assignment), if any. For tests and read-back.
pub fn value_of(text: &str, name: &str) -> Option<String> {
    parse(text)
        .ok()?
        .into_iter()
        .rfind(|a| a.name == name)
        .map(|a| a.value)
}

/// Why an edit is refused (the path is added by the caller).
#[derive(Debug, PartialEq, Eq)]
pub enum EditError {
    Unclosed { line: usize },
    OtherKey { line: usize, key_id: String },
}

/// `text` with the new key in it (see the module doc). `old_key_id`: the key being
/// rotated; an `AWS_ACCESS_KEY_ID` holding anything but it, the new key or nothing is
/// refused.
pub fn edit(
    text: &str,
    old_key_id: &str,
    new_key_id: &str,
    new_secret: &Secret,
) -> Result<String, EditError> {
    let assignments = parse(text).map_err(|line| EditError::Unclosed { line })?;
    for a in &assignments {
        if a.name == KEY_ID_VAR
            && !a.value.is_empty()
            && a.value != old_key_id
            && a.value != new_key_id
        {
            return Err(EditError::OtherKey {
                line: a.line,
                key_id: a.value.clone(),
            });
        }
    }
    let crlf = text.find('\n').is_some_and(|i| text[..i].ends_with('\r'));
    let eol = if crlf { "\r\n" } else { "\n" };
    let exports = assignments.iter().filter(|a| a.export).count();
    let export = !assignments.is_empty() && exports * 2 > assignments.len();
    let has = |name: &str| assignments.iter().any(|a| a.name == name);
    let new_line = |name: &str, value: &str| {
        format!("{}{name}={value}{eol}", if export { "export " } else { "" })
    };

    let mut out = String::with_capacity(text.len() + 128);
    let mut pos = 0;
    for a in &assignments {
        out.push_str(&text[pos..a.span.0]);
        pos = a.span.1;
        if TOKEN_VARS.contains(&a.name.as_str()) {
            continue;
        }
        let value = match a.name.as_str() {
            KEY_ID_VAR => new_key_id,
            SECRET_VAR => new_secret.expose(),
            _ => {
                out.push_str(&text[a.span.0..a.span.1]);
                continue;
            }
        };
        out.push_str(&text[a.span.0..a.value_span.0]);
        match a.quote {
            Some(q) => {
                out.push(q);
                out.push_str(value);
                out.push(q);
            }
            None => out.push_str(value),
        }
        out.push_str(&text[a.value_span.1..a.span.1]);
        // The other variable, missing, goes right after this one.
        let (other, other_value) = match a.name.as_str() {
            KEY_ID_VAR => (SECRET_VAR, new_secret.expose()),
            _ => (KEY_ID_VAR, new_key_id),
        };
        let last_of_name = assignments
            .iter()
            .rfind(|b| b.name == a.name)
            .map(|b| b.line);
        if !has(other) && last_of_name == Some(a.line) {
            if !out.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str(&new_line(other, other_value));
        }
    }
    out.push_str(&text[pos..]);
    if !has(KEY_ID_VAR) && !has(SECRET_VAR) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(&new_line(KEY_ID_VAR, new_key_id));
        out.push_str(&new_line(SECRET_VAR, new_secret.expose()));
    }
    Ok(out)
}

/// The checks a rotation makes before it changes anything: the file can be read (or does
/// not exist yet), parses, does not hold another key, and its directory can be written.
pub fn check(path: &Path, old_key_id: &str) -> Result<(), DotenvError> {
    let (text, _) = read(path)?;
    if let Err(e) = edit(&text, old_key_id, old_key_id, &Secret::new("x")) {
        return Err(edit_error(path, e));
    }
    save::check_writable(path).map_err(|source| DotenvError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn edit_error(path: &Path, e: EditError) -> DotenvError {
    let path = path.to_path_buf();
    match e {
        EditError::Unclosed { line } => DotenvError::Unclosed { path, line },
        EditError::OtherKey { line, key_id } => DotenvError::OtherKey { path, line, key_id },
    }
}

/// The file's text and identity (`None`: it does not exist yet).
fn read(path: &Path) -> Result<(String, Option<open::Identity>), DotenvError> {
    let unusable = |what: String| DotenvError::Unusable {
        path: path.to_path_buf(),
        what,
    };
    let (bytes, identity) = match open::read_profile_file(path) {
        Ok(Contents::Missing) => (Vec::new(), None),
        Ok(Contents::NullDevice) => return Err(unusable("/dev/null".into())),
        Ok(Contents::File { bytes, identity }) => (bytes, Some(identity)),
        Err(OpenError::NotRegular(what)) => return Err(unusable(what.into())),
        Err(OpenError::Directory) => return Err(unusable("a directory".into())),
        Err(OpenError::TooLarge(size)) => {
            return Err(unusable(format!(
                "{size} bytes, larger than {}",
                open::MAX_FILE_SIZE_TEXT
            )));
        }
        Err(OpenError::Io(source)) => {
            return Err(DotenvError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| DotenvError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    Ok((text, identity))
}

/// Write the new key into the dotenv file at `path` (created 0600 when missing), atomically,
/// then read it back. Returns whether the file changed (a second run with the same key
/// changes nothing).
pub fn save_key(
    path: &Path,
    old_key_id: &str,
    new_key_id: &str,
    new_secret: &Secret,
) -> Result<bool, DotenvError> {
    let write_err = |source| DotenvError::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = save::real_target(path).map_err(write_err)?;
    let (text, identity) = read(&target)?;
    let new = edit(&text, old_key_id, new_key_id, new_secret).map_err(|e| edit_error(path, e))?;
    if new == text && identity.is_some() {
        return Ok(false);
    }
    let links = identity.map_or(1, |i| i.links);
    let result = if links > 1 {
        rewrite_in_place(&target, identity, text.as_bytes(), new.as_bytes())
    } else {
        match save::write_atomic(&target, new.as_bytes(), save::Mode::Private, None) {
            Err(e) if identity.is_some() && save::rename_refused(&e).is_some() => {
                rewrite_in_place(&target, identity, text.as_bytes(), new.as_bytes())
            }
            other => other.map(drop),
        }
    };
    result.map_err(write_err)?;
    let (back, _) = read(&target)?;
    if value_of(&back, KEY_ID_VAR).as_deref() != Some(new_key_id)
        || value_of(&back, SECRET_VAR).as_deref() != Some(new_secret.expose())
    {
        return Err(DotenvError::ReadBack {
            path: path.to_path_buf(),
        });
    }
    Ok(true)
}

/// Rewrite a file that has other names (or cannot be replaced) in place; on failure, put
/// the previous content back the same way.
fn rewrite_in_place(
    target: &Path,
    identity: Option<open::Identity>,
    previous: &[u8],
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut file = save::open_in_place(target, identity)?;
    match file.rewrite(bytes, save::Mode::Private) {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = file.rewrite(previous, save::Mode::Private);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;
