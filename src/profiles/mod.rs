// Over 500 lines: `ProfileFiles`, the one entry point to both files (load, query, plan, edit, save), whose methods share its invariants.
//! The shared AWS config and credentials files: a lossless document model (every byte not
//! edited is kept), the profile view over both files, file location from the environment,
//! the run lock, and the atomic save; and, with the same save, dotenv files ([`dotenv`]).
//!
//! Must not: use the network, read the process environment (paths come resolved through
//! [`FilePaths::resolve`]), or let a secret reach `Debug`, `Display`, an error or a log line.
//!
//! # Two readers, one set of rules
//!
//! These files have two real readers: the AWS SDKs (the Rust SDK signs this tool's own
//! calls; its parser is aws-runtime `env_config`) and the AWS CLI (botocore, on Python's
//! `configparser.RawConfigParser` in strict mode). **Reading follows the SDK**; **writing
//! never produces a file that either reader rejects or that the two read differently.**
//! Where they differ:
//!
//! | input | AWS SDKs | AWS CLI (botocore) | this module |
//! | --- | --- | --- | --- |
//! | a section twice in one file (also `[profile a]` + `[profile  a]`, or `[default]` + `[profile default]` in the config file) | merged (`[profile default]` replaces `[default]`) | error for the whole file (`[default]`/`[profile default]`: the last one wins) | read as the SDK; warning; the profile is **refused for editing** ([`ProfileFiles::check_editable`]) |
//! | a key twice in one section | the last one wins | error for the whole file | read as the SDK; warning; refused for editing when it is a key id, secret or token |
//! | `[profile x]` in the credentials file | ignored | a profile named `profile x` | ignored, with a warning; never edited |
//! | `key = value # note` | value `value` | value `value # note` | read as the SDK; warning; when such a line is edited, the comment is **moved to its own line just above**, so both read the new value |
//! | an indented `  # note` after a property | part of that property's value | a comment | read as the SDK; warning |
//! | a key in both files for one profile | the credentials file wins, key by key | the credentials file's key pair wins, or the config file's | read as the SDK; a rotation edits every line holding the old key, in both files |
//! | a key id in one file and its secret in the other | merged | not found | read as the SDK; warning; an edit replaces the secret where it is |
//! | a carriage return not followed by a line feed | part of the line | a line break | read as the SDK; warning |
//! | UTF-8 byte order mark, a malformed line | error | error | error naming the file and line; nothing is written |
//!
//! # Kinds of profile
//!
//! [`Profile::kind`] follows the precedence of aws-config's profile credential provider
//! (smithy-rs `aws-config/src/profile/credentials/repr.rs`, `resolve_chain` and
//! `base_provider`): `role_arn` (without `web_identity_token_file`) makes a role profile;
//! then `credential_source`, `web_identity_token_file`, any `sso_*` setting, `login_session`,
//! `credential_process`; only then the static `aws_access_key_id` / `aws_secret_access_key`
//! (with `aws_session_token`). Only static long-term keys are rotatable.
//!
//! # Edits and saving
//!
//! [`KeyEdit::Replace`] changes every profile, in both files, whose `aws_access_key_id` line
//! holds the old key: the key id and secret values are replaced in place (key spelling,
//! spacing, comments and line endings kept), a missing secret line is added after the
//! section's last property in the style of its neighbours, and `aws_session_token` /
//! `aws_security_token` lines there are removed (a stale token would break the new key).
//! A section of the same profile in the other file that holds no key id of its own but a
//! secret or token (a split key) gets the same treatment, so both readers agree.
//!
//! [`ProfileFiles::apply_edits`] saves the credentials file, then the config file: it reads
//! the file again and, when someone changed it since it was loaded, applies the edits to the
//! new content (or stops when the old key is gone from it); it writes a backup of the
//! previous content to `<file>.iam-keys.bak` (0600, replaced on each save, unless
//! [`SaveOptions::backup`] is off), then replaces the real file (symlinks are followed and
//! kept) atomically: temporary file in the same directory, fsync, rename, fsync of the
//! directory. The mode is kept but never looser than 0600 for a file holding a secret; the
//! owner is kept; a new file is 0600 in a 0700 directory. The saved file is read back and
//! checked. A file with another name (a hard link) or that a rename cannot replace (a
//! single-file bind mount: `EBUSY`/`EXDEV`) is rewritten in place instead (backup first,
//! even without [`SaveOptions::backup`], then removed again; see [`InPlace`]). Temporary
//! files start with [`TEMP_PREFIX`], are 0600 from creation, and stale ones are removed
//! under the lock ([`RunLock::remove_stale_temp_files`]). A [`RunLock`] beside the
//! credentials file keeps two runs from interleaving; it never follows a symlink.
//!
//! # What a path may be
//!
//! Only a regular file (or a symlink to one) is read or written: a FIFO, a directory, a
//! device or a socket is refused at once, naming it ([`ProfileError::NotRegular`],
//! [`ProfileError::IsDirectory`]); files are opened non-blocking and checked with `fstat`
//! on the handle. `/dev/null` reads as empty and is never written
//! ([`ProfileError::NullDevice`]). At most 16 MiB is read ([`ProfileError::TooLarge`]).

pub mod document;
pub mod dotenv;
mod edit;
mod error;
mod location;
mod lock;
mod open;
mod save;
pub mod scan;
mod view;

#[cfg(test)]
mod tests;

pub use error::{Diagnostic, ProfileError};
pub use location::{FilePaths, home_dir};
pub use lock::RunLock;
pub use save::{TEMP_PREFIX, create_private_dir};

use crate::secret::{Secret, mask_key_id};
use document::{Document, LineKind};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use view::{FileView, KEY_ID, Role, SECRET, SECURITY_TOKEN, SESSION_TOKEN};

/// Which of the two files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    Credentials,
    Config,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Credentials => "credentials file",
            FileKind::Config => "config file",
        })
    }
}

/// Where a value comes from: the file and the 1-based line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: FileKind,
    pub line: usize,
}

/// Both files as loaded (their bytes are kept to notice a change on disk before saving).
#[derive(Clone)]
pub struct ProfileFiles {
    paths: FilePaths,
    credentials: FileView,
    config: FileView,
}

impl fmt::Debug for ProfileFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileFiles")
            .field("paths", &self.paths)
            .field("profiles", &self.profile_names())
            .finish()
    }
}

/// A profile: properties merged from both files (the credentials file wins). Owned.
/// `Debug` shows the property names only.
#[derive(Clone)]
pub struct Profile {
    pub name: String,
    props: BTreeMap<String, (String, Origin)>,
    key_files: Vec<FileKind>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("properties", &self.props.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Profile {
    /// The value of a property (case-insensitive name), as the AWS SDKs read it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props
            .get(&key.to_ascii_lowercase())
            .map(|(v, _)| v.as_str())
    }

    /// Where the value [`Profile::get`] returns comes from.
    pub fn origin(&self, key: &str) -> Option<Origin> {
        self.props.get(&key.to_ascii_lowercase()).map(|(_, o)| *o)
    }

    /// The property names, lower case, sorted.
    pub fn keys(&self) -> Vec<&str> {
        self.props.keys().map(String::as_str).collect()
    }

    /// The files holding this profile's `aws_access_key_id` (credentials file first).
    pub fn key_files(&self) -> Vec<FileKind> {
        self.key_files.clone()
    }

    /// What kind of credentials this profile gives, with aws-config's precedence.
    pub fn kind(&self) -> ProfileKind {
        let get = |k: &str| self.get(k).map(str::to_string);
        let role_arn = get("role_arn");
        let token_file = get("web_identity_token_file");
        if let (Some(role_arn), None) = (&role_arn, &token_file) {
            return ProfileKind::Role {
                role_arn: role_arn.clone(),
                source_profile: get("source_profile"),
                credential_source: get("credential_source"),
            };
        }
        if get("credential_source").is_some() {
            return ProfileKind::Incomplete {
                reason: "credential_source without role_arn".to_string(),
            };
        }
        if token_file.is_some() {
            return match role_arn {
                Some(role_arn) => ProfileKind::WebIdentity { role_arn },
                None => ProfileKind::Incomplete {
                    reason: "web_identity_token_file without role_arn".to_string(),
                },
            };
        }
        let sso = [
            "sso_session",
            "sso_account_id",
            "sso_region",
            "sso_role_name",
            "sso_start_url",
        ];
        if sso.iter().any(|k| self.get(k).is_some()) {
            return ProfileKind::Sso {
                session: get("sso_session"),
            };
        }
        if self.get("login_session").is_some() {
            return ProfileKind::LoginSession;
        }
        if self.get("credential_process").is_some() {
            return ProfileKind::CredentialProcess;
        }
        let key = self.get(KEY_ID);
        let secret = self.get(SECRET);
        let token = self.get(SESSION_TOKEN).or(self.get(SECURITY_TOKEN));
        let incomplete = |reason: &str| ProfileKind::Incomplete {
            reason: reason.to_string(),
        };
        match (key, secret, token) {
            (None, None, None) => ProfileKind::NoCredentials,
            (None, Some(_), _) => incomplete("aws_secret_access_key without aws_access_key_id"),
            (None, None, Some(_)) => incomplete("a session token without a key"),
            (Some(_), None, _) => incomplete("aws_access_key_id without aws_secret_access_key"),
            (Some(id), Some(_), Some(_)) if id.starts_with("ASIA") => {
                ProfileKind::SessionCredentials
            }
            (Some(id), Some(_), None) if id.starts_with("ASIA") => {
                incomplete("a temporary key id (ASIA...) without aws_session_token")
            }
            (Some(_), Some(_), token) => ProfileKind::StaticKey {
                session_token: token.is_some(),
            },
        }
    }
}

/// What kind of credentials a profile gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileKind {
    /// A long-term key (id not starting with ASIA); `session_token`: a (stale)
    /// `aws_session_token` / `aws_security_token` sits beside it.
    StaticKey {
        session_token: bool,
    },
    /// An ASIA... key with a session token: temporary, written by another tool.
    SessionCredentials,
    Role {
        role_arn: String,
        source_profile: Option<String>,
        credential_source: Option<String>,
    },
    WebIdentity {
        role_arn: String,
    },
    Sso {
        session: Option<String>,
    },
    /// `login_session` (credentials from `aws login`).
    LoginSession,
    CredentialProcess,
    /// Something is missing, e.g. a key id without a secret.
    Incomplete {
        reason: String,
    },
    /// No credentials at all, e.g. only `region`.
    NoCredentials,
}

impl ProfileKind {
    /// A stable label for JSON output.
    pub fn label(&self) -> &'static str {
        match self {
            ProfileKind::StaticKey {
                session_token: false,
            } => "static-key",
            ProfileKind::StaticKey {
                session_token: true,
            } => "static-key-with-session-token",
            ProfileKind::SessionCredentials => "session-credentials",
            ProfileKind::Role { .. } => "role",
            ProfileKind::WebIdentity { .. } => "web-identity",
            ProfileKind::Sso { .. } => "sso",
            ProfileKind::LoginSession => "login-session",
            ProfileKind::CredentialProcess => "credential-process",
            ProfileKind::Incomplete { .. } => "incomplete",
            ProfileKind::NoCredentials => "none",
        }
    }

    /// Only static long-term keys are rotated.
    pub fn rotatable(&self) -> bool {
        matches!(self, ProfileKind::StaticKey { .. })
    }

    /// Why a profile of this kind is not rotated, for people.
    pub fn not_rotatable_reason(&self) -> Option<String> {
        let text = match self {
            ProfileKind::StaticKey { .. } => return None,
            ProfileKind::SessionCredentials => {
                "temporary session credentials (ASIA... key with a session token) written by another tool; nothing to rotate".to_string()
            }
            ProfileKind::Role { role_arn, .. } => {
                format!("role profile ({role_arn}): it assumes a role; rotate its source profile instead")
            }
            ProfileKind::WebIdentity { .. } => {
                "web identity profile: credentials come from a token file; nothing to rotate".to_string()
            }
            ProfileKind::Sso { .. } => {
                "SSO profile: credentials come from IAM Identity Center; nothing to rotate".to_string()
            }
            ProfileKind::LoginSession => {
                "login session profile: credentials come from `aws login`; nothing to rotate".to_string()
            }
            ProfileKind::CredentialProcess => {
                "credential_process profile: credentials come from an external program; nothing to rotate".to_string()
            }
            ProfileKind::Incomplete { reason } => format!("incomplete profile: {reason}"),
            ProfileKind::NoCredentials => "no credentials in this profile".to_string(),
        };
        Some(text)
    }
}

/// A profile holding a given access key, with the lines that hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHolder {
    pub profile: String,
    pub locations: Vec<Origin>,
}

/// An edit to the files.
#[derive(Clone, Debug)]
pub enum KeyEdit {
    /// Every profile (both files) whose aws_access_key_id == old_key_id gets new id + secret;
    /// aws_session_token / aws_security_token lines in those sections are removed.
    Replace {
        old_key_id: String,
        new_key_id: String,
        new_secret: Secret,
    },
    /// Write a key into a named profile, creating the `[name]` section in the credentials
    /// file if missing (in the file where its key already lives otherwise).
    SetProfile {
        profile: String,
        key_id: String,
        secret: Secret,
    },
}

/// What happens to one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The value is replaced.
    Replace,
    /// The line (and its continuation lines) is removed.
    Remove,
    /// A line is added after line `line` (0: a new section at the end of the file).
    Add,
    /// The inline comment of line `line` is moved to a line of its own just above it.
    MoveComment,
}

/// One line changed by an edit. Carries no values: safe to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineChange {
    pub file: FileKind,
    pub path: PathBuf,
    /// 1-based line in the file as it was before the edit (for `Add`: the line it follows).
    pub line: usize,
    pub profile: String,
    pub property: String,
    pub change: ChangeKind,
}

impl fmt::Display for LineChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let where_ = match (self.change, self.line) {
            (ChangeKind::Add, 0) => "new section at the end".to_string(),
            (ChangeKind::Add, n) => format!("after line {n}"),
            (_, n) => format!("line {n}"),
        };
        let what = match self.change {
            ChangeKind::Replace => format!("replace {}", self.property),
            ChangeKind::Remove => format!("remove {}", self.property),
            ChangeKind::Add => format!("add {}", self.property),
            ChangeKind::MoveComment => format!(
                "move the comment after {} to its own line above",
                self.property
            ),
        };
        write!(
            f,
            "{} {}, {where_}, profile {}: {what}",
            self.file,
            self.path.display(),
            self.profile
        )
    }
}

/// How to save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    /// Keep the previous content in `<file>.iam-keys.bak`.
    pub backup: bool,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { backup: true }
    }
}

/// What [`ProfileFiles::apply_edits`] did.
#[derive(Clone, Debug, Default)]
pub struct SaveReport {
    pub files: Vec<SavedFile>,
}

/// One file written.
#[derive(Clone, Debug)]
pub struct SavedFile {
    pub kind: FileKind,
    /// The real file written (after following symlinks).
    pub path: PathBuf,
    pub changes: Vec<LineChange>,
    pub backup: Option<PathBuf>,
    /// The mode was looser than 0600 on a file with secrets: (from, to).
    pub mode_tightened: Option<(u32, u32)>,
    /// The file had changed on disk since it was loaded; the edits were applied to the new
    /// content.
    pub reapplied_on_newer_content: bool,
    /// The file was rewritten in place instead of replaced by rename, and why.
    pub rewritten_in_place: Option<InPlace>,
}

/// Why a file was rewritten in place (so that every name of it sees the new content)
/// instead of being replaced by a rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InPlace {
    /// The file has this many names (hard links).
    HardLinks(u64),
    /// The rename over it was refused with this error (`EBUSY`: a file bind-mounted on its
    /// own, as in a container; `EXDEV`).
    RenameRefused(&'static str),
}

impl fmt::Display for InPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InPlace::HardLinks(n) => write!(f, "it has {n} names (hard links)"),
            InPlace::RenameRefused(code) => write!(
                f,
                "it cannot be replaced by a rename ({code}: a file mounted on its own, as in a container?)"
            ),
        }
    }
}

impl SavedFile {
    /// What the user should be told about an in-place rewrite, if there was one. No secret.
    pub fn in_place_note(&self) -> Option<String> {
        let why = self.rewritten_in_place?;
        let backup = match &self.backup {
            Some(b) => format!("the previous content is in {}", b.display()),
            None => "its safety backup was removed again (--no-backup)".to_string(),
        };
        Some(format!(
            "{} {}: rewritten in place, as {why}, so that every name of it holds the new key; {backup}",
            self.kind,
            self.path.display()
        ))
    }
}

impl ProfileFiles {
    /// Read both files. A missing file is empty (normal); a directory, an unreadable file,
    /// text that is not UTF-8 or a line the SDKs reject is an error naming the file (and the
    /// line).
    pub fn load(paths: &FilePaths) -> Result<ProfileFiles, ProfileError> {
        Ok(ProfileFiles {
            paths: paths.clone(),
            credentials: read_file(FileKind::Credentials, &paths.credentials)?,
            config: read_file(FileKind::Config, &paths.config)?,
        })
    }

    /// Parse both files from text, with no filesystem access (for tests and previews).
    /// The paths are only used in messages and by [`ProfileFiles::apply_edits`].
    pub fn from_texts(
        paths: &FilePaths,
        credentials: &str,
        config: &str,
    ) -> Result<ProfileFiles, ProfileError> {
        Ok(ProfileFiles {
            paths: paths.clone(),
            credentials: parse_file(
                FileKind::Credentials,
                &paths.credentials,
                true,
                credentials.as_bytes().to_vec(),
            )?,
            config: parse_file(
                FileKind::Config,
                &paths.config,
                true,
                config.as_bytes().to_vec(),
            )?,
        })
    }

    pub fn paths(&self) -> &FilePaths {
        &self.paths
    }

    /// The current text of one file (as loaded, or as saved by the last edit).
    pub fn text(&self, kind: FileKind) -> String {
        self.file(kind).doc.render()
    }

    /// Every profile in either file: `default` first, then in order of first appearance
    /// (the credentials file first).
    pub fn profile_names(&self) -> Vec<String> {
        let mut names = self.credentials.profile_names();
        let mut seen: std::collections::HashSet<String> = names.iter().cloned().collect();
        for n in self.config.profile_names() {
            if seen.insert(n.clone()) {
                names.push(n);
            }
        }
        if let Some(i) = names.iter().position(|n| n == "default") {
            let d = names.remove(i);
            names.insert(0, d);
        }
        names
    }

    /// One profile, merged from both files, or `None` when neither has it.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        view::merge_profile([&self.credentials, &self.config], name)
    }

    /// The names of the profiles that hold this key (see [`ProfileFiles::profiles_with_key`]).
    pub fn holder_names(&self, access_key_id: &str) -> Vec<String> {
        self.profiles_with_key(access_key_id)
            .into_iter()
            .map(|h| h.profile)
            .collect()
    }

    /// Every profile, in both files, with an `aws_access_key_id` line holding this id, and
    /// those lines.
    pub fn profiles_with_key(&self, access_key_id: &str) -> Vec<KeyHolder> {
        let mut found: BTreeMap<&str, Vec<Origin>> = BTreeMap::new();
        for f in [&self.credentials, &self.config] {
            for s in &f.sections {
                let Some(name) = s.profile_name() else {
                    continue;
                };
                if f.value(s, KEY_ID).as_deref() == Some(access_key_id) {
                    found.entry(name).or_default().push(Origin {
                        file: f.kind,
                        line: s.last_of(&f.doc, KEY_ID).map_or(0, |i| i + 1),
                    });
                }
            }
        }
        if found.is_empty() {
            return Vec::new();
        }
        self.profile_names()
            .into_iter()
            .filter_map(|name| {
                let locations = found.remove(name.as_str())?;
                Some(KeyHolder {
                    profile: name,
                    locations,
                })
            })
            .collect()
    }

    /// The `[sso-session NAME]` sections of the config file, in order of first appearance.
    pub fn sso_session_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.config.sections {
            if let Role::SsoSession(name) = &s.role
                && !out.contains(name)
            {
                out.push(name.clone());
            }
        }
        out
    }

    /// `endpoint_url` of `service` (e.g. `iam`) in the config file's `[services NAME]`
    /// section, from its indented sub-properties.
    pub fn services_endpoint(&self, services_section: &str, service: &str) -> Option<String> {
        let f = &self.config;
        let service = service.to_ascii_lowercase();
        let mut found = None;
        for s in &f.sections {
            let Role::Other { prefix, name } = &s.role else {
                continue;
            };
            if prefix != "services" || name != services_section {
                continue;
            }
            if let Some(value) = f.value(s, &service) {
                for (k, v) in view::sub_properties(&value) {
                    if k.eq_ignore_ascii_case("endpoint_url") {
                        found = Some(v);
                    }
                }
            }
        }
        found
    }

    /// Things the two readers treat differently or ignore, each with its file and line.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for f in [&self.credentials, &self.config] {
            edit::file_warnings(f, &mut out);
        }
        edit::cross_file_warnings([&self.credentials, &self.config], &mut out);
        out
    }

    /// Refuse to edit a profile that the two readers would see differently: a section that
    /// appears more than once in a file, or a key id, secret or token line that appears
    /// more than once in a section. A profile that does not exist is fine.
    pub fn check_editable(&self, profile: &str) -> Result<(), ProfileError> {
        for f in [&self.credentials, &self.config] {
            edit::check_editable(f, profile)?;
        }
        Ok(())
    }

    /// Preflight: the files that hold keys (the credentials file when none does) and their
    /// directories can be written. Creates and removes a temporary file in each real target
    /// directory; leaves nothing behind. A target that is `/dev/null` is refused
    /// ([`ProfileError::NullDevice`]); one with other names (hard links) must open for
    /// writing, as it will be rewritten in place.
    pub fn check_writable(&self) -> Result<(), ProfileError> {
        let mut targets: Vec<&FileView> = [&self.credentials, &self.config]
            .into_iter()
            .filter(|f| {
                f.sections
                    .iter()
                    .any(|s| s.last_of(&f.doc, KEY_ID).is_some())
            })
            .collect();
        if targets.is_empty() {
            targets.push(&self.credentials);
        }
        for f in targets {
            if f.null_device {
                return Err(ProfileError::NullDevice {
                    kind: f.kind,
                    path: f.path.clone(),
                });
            }
            save::check_writable(&f.path).map_err(|source| ProfileError::NotWritable {
                kind: f.kind,
                path: f.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The line changes `edits` would make, for a dry run. Changes nothing; the values are
    /// not checked (a placeholder secret is fine).
    pub fn plan_edits(&self, edits: &[KeyEdit]) -> Result<Vec<LineChange>, ProfileError> {
        let planned = self.plan(edits)?;
        Ok(planned.into_iter().flat_map(|p| p.changes).collect())
    }

    /// The files as they would be after `edits`, in memory only: nothing is read or written
    /// (for previews, tests and fuzzing). The result's texts are what
    /// [`ProfileFiles::apply_edits`] would write when the files have not changed on disk.
    pub fn with_edits(&self, edits: &[KeyEdit]) -> Result<ProfileFiles, ProfileError> {
        for e in edits {
            edit::validate(e)?;
        }
        let mut out = self.clone();
        for plan in self.plan(edits)? {
            let loaded = self.file(plan.kind);
            let mut doc = loaded.doc.clone();
            edit::apply(&mut doc, &plan);
            let text = doc.render();
            let edited = parse_file(plan.kind, &loaded.path, true, text.into_bytes())?;
            check_keys(&edited, &plan, None, &[])?;
            *out.file_mut(plan.kind) = edited;
        }
        Ok(out)
    }

    /// Apply `edits` and save each changed file (credentials file first), as described in
    /// the module docs. On success the in-memory state is the new content.
    pub fn apply_edits(
        &mut self,
        edits: &[KeyEdit],
        opts: &SaveOptions,
    ) -> Result<SaveReport, ProfileError> {
        for e in edits {
            edit::validate(e)?;
        }
        let planned = self.plan(edits)?;
        // Edits re-applied to a file changed on disk see the other file as it was loaded,
        // like the first plan did.
        let before = self.clone();
        let mut report = SaveReport::default();
        let mut saved: Vec<PathBuf> = Vec::new();
        for kind in [FileKind::Credentials, FileKind::Config] {
            let Some(plan) = planned.iter().find(|p| p.kind == kind) else {
                continue;
            };
            let file = self.save_one(plan, before.other(kind), edits, opts, &saved)?;
            saved.push(file.path.clone());
            report.files.push(file);
        }
        Ok(report)
    }

    fn file(&self, kind: FileKind) -> &FileView {
        match kind {
            FileKind::Credentials => &self.credentials,
            FileKind::Config => &self.config,
        }
    }

    fn file_mut(&mut self, kind: FileKind) -> &mut FileView {
        match kind {
            FileKind::Credentials => &mut self.credentials,
            FileKind::Config => &mut self.config,
        }
    }

    fn other(&self, kind: FileKind) -> &FileView {
        match kind {
            FileKind::Credentials => &self.config,
            FileKind::Config => &self.credentials,
        }
    }

    /// Plan every file's changes against the loaded content.
    fn plan(&self, edits: &[KeyEdit]) -> Result<Vec<edit::FilePlan>, ProfileError> {
        let both = [&self.credentials, &self.config];
        for e in edits {
            for name in edit::touched_profiles(both, e) {
                self.check_editable(&name)?;
            }
            if let KeyEdit::Replace { old_key_id, .. } = e
                && self.profiles_with_key(old_key_id).is_empty()
            {
                return Err(ProfileError::KeyNotFound {
                    key_id: mask_key_id(old_key_id),
                    files: vec![self.paths.credentials.clone(), self.paths.config.clone()],
                });
            }
        }
        let mut out = Vec::new();
        for kind in [FileKind::Credentials, FileKind::Config] {
            let plan = edit::plan_file(self.file(kind), self.other(kind), edits);
            if !plan.changes.is_empty() {
                out.push(plan);
            }
        }
        Ok(out)
    }

    /// Save one file: re-read, re-apply when changed on disk, back up, write, verify.
    fn save_one(
        &mut self,
        plan: &edit::FilePlan,
        other: &FileView,
        edits: &[KeyEdit],
        opts: &SaveOptions,
        saved: &[PathBuf],
    ) -> Result<SavedFile, ProfileError> {
        let kind = plan.kind;
        let loaded = self.file(kind).clone();
        let write_err = |source: std::io::Error| ProfileError::Write {
            kind,
            path: loaded.path.clone(),
            saved: saved.to_vec(),
            source,
        };
        let target = save::real_target(&loaded.path).map_err(write_err)?;
        if loaded.null_device {
            return Err(ProfileError::NullDevice {
                kind,
                path: loaded.path.clone(),
            });
        }
        let (current, existed, identity) = match read_contents(kind, &target)? {
            open::Contents::File { bytes, identity } => (bytes, true, Some(identity)),
            open::Contents::Missing => (Vec::new(), false, None),
            open::Contents::NullDevice => {
                return Err(ProfileError::NullDevice {
                    kind,
                    path: loaded.path.clone(),
                });
            }
        };
        let reapplied = current != loaded.bytes || existed != loaded.existed;
        let (base, plan) = if reapplied {
            let fresh = parse_file(kind, &loaded.path, existed, current.clone())?;
            for e in edits {
                for name in edit::touched_profiles([&fresh, other], e) {
                    edit::check_editable(&fresh, &name)?;
                }
            }
            let fresh_plan = edit::plan_file(&fresh, other, edits);
            if let Some(key_id) = edit::lost_edit(plan, &fresh_plan, edits) {
                return Err(ProfileError::ChangedOnDisk {
                    kind,
                    path: loaded.path.clone(),
                    key_id: mask_key_id(&key_id),
                });
            }
            (fresh, fresh_plan)
        } else {
            (loaded.clone(), plan.clone())
        };
        let mut doc = base.doc.clone();
        edit::apply(&mut doc, &plan);
        let text = doc.render();
        let edited = parse_file(kind, &loaded.path, true, text.clone().into_bytes())?;
        let mode = save::Mode::Keep {
            holds_secret: edited.holds_secrets(),
        };
        let links = identity.map_or(1, |i| i.links);
        let mut in_place = (links > 1).then_some(InPlace::HardLinks(links));
        // An in-place rewrite has a window where the file is half written: it always gets a
        // backup first, even with --no-backup (then removed once the file checks out).
        let mut backup = match (opts.backup || in_place.is_some(), existed) {
            (true, true) => Some(save::write_backup(&target, &current).map_err(write_err)?),
            _ => None,
        };
        let mode_tightened = match in_place {
            Some(_) => None,
            None => match save::write_atomic(&target, text.as_bytes(), mode, None) {
                Ok(tightened) => tightened,
                Err(e) => match save::rename_refused(&e) {
                    Some(code) if existed => {
                        in_place = Some(InPlace::RenameRefused(code));
                        if backup.is_none() {
                            backup =
                                Some(save::write_backup(&target, &current).map_err(write_err)?);
                        }
                        None
                    }
                    _ => return Err(write_err(e)),
                },
            },
        };
        let mode_tightened = match in_place {
            None => mode_tightened,
            Some(_) => {
                let mut file = save::open_in_place(&target, identity).map_err(write_err)?;
                match file.rewrite(text.as_bytes(), mode) {
                    Ok(tightened) => tightened,
                    Err(source) => {
                        // Put the previous content back the same way; only when that fails
                        // too is the file left damaged (the backup holds it).
                        let keep = save::Mode::Keep { holds_secret: true };
                        let restored = file.rewrite(&current, keep).is_ok();
                        return Err(match (restored, backup.clone()) {
                            (false, Some(backup)) => ProfileError::InPlaceDamaged {
                                kind,
                                path: loaded.path.clone(),
                                backup,
                                saved: saved.to_vec(),
                                source,
                            },
                            _ => write_err(source),
                        });
                    }
                }
            }
        };

        // Read back what is on disk and check every edited profile.
        let written = match read_contents(kind, &target)? {
            open::Contents::File { bytes, .. } => bytes,
            _ => {
                return Err(write_err(std::io::Error::other(format!(
                    "{} is gone after saving",
                    target.display()
                ))));
            }
        };
        let reread = parse_file(kind, &loaded.path, true, written)?;
        check_keys(&reread, &plan, backup.clone(), saved)?;
        if in_place.is_some()
            && !opts.backup
            && let Some(b) = backup.take()
            && let Err(e) = std::fs::remove_file(&b)
        {
            tracing::warn!(path = %b.display(), error = %e, "cannot remove the safety backup");
            backup = Some(b);
        }
        *self.file_mut(kind) = reread;
        Ok(SavedFile {
            kind,
            path: target,
            changes: plan.changes.clone(),
            backup,
            mode_tightened,
            reapplied_on_newer_content: reapplied,
            rewritten_in_place: in_place,
        })
    }
}

/// Check that every profile whose key id a plan set reads that key id in `file`.
fn check_keys(
    file: &FileView,
    plan: &edit::FilePlan,
    backup: Option<PathBuf>,
    saved: &[PathBuf],
) -> Result<(), ProfileError> {
    for (profile, key_id) in edit::expected_keys(plan) {
        let ok = file
            .profile_sections(&profile)
            .any(|s| file.value(s, KEY_ID).as_deref() == Some(key_id.as_str()));
        if !ok {
            return Err(ProfileError::Verify {
                kind: file.kind,
                path: file.path.clone(),
                profile,
                key_id: mask_key_id(&key_id),
                backup,
                saved: saved.to_vec(),
            });
        }
    }
    Ok(())
}

/// Windows says "not found" (ERROR_PATH_NOT_FOUND) for a path through a file, where Unix
/// says "not a directory": such a file is not missing, it cannot exist. The error names the
/// file in the way.
#[cfg(windows)]
fn through_a_file(path: &Path) -> Option<std::io::Error> {
    let existing = path
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| std::fs::symlink_metadata(a).is_ok())?;
    (!existing.is_dir()).then(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is a file, not a directory", existing.display()),
        )
    })
}

/// Read one file; a missing file is empty, `/dev/null` too (marked, so that it is never
/// written); anything but a regular file, or more than [`open::MAX_FILE_SIZE`], is an error
/// naming the file.
fn read_file(kind: FileKind, path: &Path) -> Result<FileView, ProfileError> {
    match read_contents(kind, path)? {
        open::Contents::Missing => {
            #[cfg(windows)]
            if let Some(source) = through_a_file(path) {
                return Err(ProfileError::Read {
                    kind,
                    path: path.to_path_buf(),
                    source,
                });
            }
            parse_file(kind, path, false, Vec::new())
        }
        open::Contents::NullDevice => {
            let mut view = parse_file(kind, path, true, Vec::new())?;
            view.null_device = true;
            Ok(view)
        }
        open::Contents::File { bytes, .. } => parse_file(kind, path, true, bytes),
    }
}

/// [`open::read_profile_file`], its errors named for people.
fn read_contents(kind: FileKind, path: &Path) -> Result<open::Contents, ProfileError> {
    open::read_profile_file(path).map_err(|e| {
        let path = path.to_path_buf();
        match e {
            open::OpenError::Directory => ProfileError::IsDirectory { kind, path },
            open::OpenError::NotRegular(what) => ProfileError::NotRegular { kind, path, what },
            open::OpenError::TooLarge(size) => ProfileError::TooLarge {
                kind,
                path,
                size,
                cap: open::MAX_FILE_SIZE_TEXT,
            },
            open::OpenError::Io(source) => ProfileError::Read { kind, path, source },
        }
    })
}

/// Check UTF-8 and parse; a line the SDKs reject is an error.
fn parse_file(
    kind: FileKind,
    path: &Path,
    existed: bool,
    bytes: Vec<u8>,
) -> Result<FileView, ProfileError> {
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Err(ProfileError::NotUtf8 {
                kind,
                path: path.to_path_buf(),
                line,
            });
        }
    };
    let doc = Document::parse(text);
    let issues = doc.issues();
    if let Some(first) = issues.first() {
        return Err(ProfileError::Parse {
            kind,
            path: path.to_path_buf(),
            line: first.line,
            message: first.message.clone(),
            more: issues.len() - 1,
        });
    }
    debug_assert!(
        doc.lines()
            .iter()
            .all(|l| !matches!(l.kind(), LineKind::Invalid { .. }))
    );
    Ok(FileView::new(kind, path.to_path_buf(), existed, bytes, doc))
}
