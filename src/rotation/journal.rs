// Over 500 lines: the journal's format, its store, its per-user index and their private-directory checks belong to one durable record.
//! The recovery journal: one small JSON file per key being rotated, written before anything
//! changes and again at each step, so that a run killed at any point can be finished or
//! undone by the next run (`iam-keys recover`).
//!
//! It lives in `.iam-keys/` beside the credentials file (0700), each entry
//! `journal-<OLD KEY ID>.json` (0600), written atomically and fsynced. It holds the old and
//! new secrets, as the credentials file does, because finishing or undoing needs them. A
//! rotation with hooks or env files also records each of them (the command or path, never a
//! secret) and whether it has passed (version 3).
//!
//! A per-user index in the state directory (`$XDG_STATE_HOME/iam-keys/journals/`, holding
//! only the journal's path, no secret) lets a later run find an interrupted rotation whatever
//! `AWS_SHARED_CREDENTIALS_FILE` says then, or through whichever path (a symlink, the real
//! file) it names the credentials file. The journal records the run's own file paths
//! (absolute), so recovery re-opens those files, not today's.
//!
//! Neither directory is used if it is a symbolic link, is not owned by the user, or is writable
//! by group or others (one of ours that is too open is tightened to 0700).
//!
//! A journal that cannot be read (damaged, or written by a newer iam-keys) is kept and
//! reported for its own key only; it never stops the others ([`Entry`]).
//!
//! Must not: decide anything. It records; [`super::recover`] reads it.

use crate::aws::{Credentials, Target};
pub use crate::inventory::Destination;
use crate::rotation::hooks::GateState;
use crate::rotation::plan::Retire;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// How far a rotation got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Written before CreateAccessKey: no new key is known. (One may exist in IAM if the
    /// process died while the call was in flight.)
    Intent,
    /// CreateAccessKey answered: the new key and secret are here, the files are untouched.
    Created,
    /// The new key authenticates as the same user.
    Verified,
    /// The files hold the new key; the old key is still Active.
    Persisted,
}

/// Where the calls went: enough to reach AWS again without the profiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub region: String,
    pub iam_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
}

impl Endpoint {
    /// Where a target sends its calls.
    pub fn of(target: &Target) -> Endpoint {
        Endpoint {
            region: target.region.clone(),
            iam_endpoint: target.iam_endpoint.clone(),
            sts_endpoint: target.sts_endpoint.clone(),
        }
    }

    /// The same place, called as `credentials`.
    pub fn target(&self, credentials: Credentials) -> Target {
        Target {
            credentials,
            region: self.region.clone(),
            iam_endpoint: self.iam_endpoint.clone(),
            sts_endpoint: self.sts_endpoint.clone(),
        }
    }
}

/// One rotation's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub version: u32,
    pub stage: Stage,
    /// When the rotation started (RFC 3339): a key created after this, for this user and
    /// in no file, was created by this rotation.
    pub started: String,
    pub user: String,
    pub account: String,
    pub arn: String,
    pub old_key_id: String,
    #[serde(with = "secret_field")]
    pub old_secret: Secret,
    /// The user's keys when the rotation started.
    pub known_keys: Vec<String>,
    /// The profiles and files that hold the old key.
    pub profiles: Vec<String>,
    pub files: Vec<PathBuf>,
    pub retire: Retire,
    /// An Inactive key deleted to make room (cannot be undone).
    pub deleted_inactive: Option<String>,
    pub new_key_id: Option<String>,
    #[serde(with = "optional_secret_field", default)]
    pub new_secret: Option<Secret>,
    pub endpoint: Endpoint,
    pub mfa_serial: Option<String>,
    /// Where the new key goes (absent in journals written before this field existed).
    #[serde(default)]
    pub destination: Destination,
    /// The profile whose credentials made the IAM calls (`--auth-profile`), if not the old key.
    #[serde(default)]
    pub auth_profile: Option<String>,
    /// For [`Destination::Printed`]: the new key has been written to the run's output, so
    /// the user holds it and recovery finishes rather than undoes.
    #[serde(default)]
    pub printed: bool,
    /// The run's credentials and config files, absolute (version 2; absent in version 1).
    /// Recovery re-opens these, whatever the environment says now.
    #[serde(default)]
    pub paths: Option<JournalPaths>,
    /// When CreateAccessKey was sent, and the latest it could have taken effect (version 2).
    /// A key of the user that no one knows and whose CreateDate falls in this window (with
    /// the clock-skew allowance) is this rotation's lost key.
    #[serde(default)]
    pub create_window: Option<Window>,
    /// Keys this rotation created but whose answer (and so secret) was lost: recorded here
    /// before they are deleted, so that a run killed meanwhile deletes exactly these.
    #[serde(default)]
    pub orphans: Vec<String>,
    /// The hooks and env files that must hold the new key before the old key is retired,
    /// each with whether it has passed (version 3; a journal with none is written as
    /// version 2, so an older iam-keys still reads it). Commands and paths only: the secret
    /// is handed to them, never recorded here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateState>,
    /// How long each hook may run, in milliseconds (with `gates`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_timeout_ms: Option<u64>,
}

/// The files a rotation worked on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPaths {
    pub credentials: PathBuf,
    pub config: PathBuf,
}

/// A span of time, RFC 3339 at both ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: String,
    pub to: String,
}

/// The newest version this build writes and reads: 3 (with `gates`). Version 2 (no gates)
/// is written when a rotation has none; version 1 (no `paths`, no `create_window`) is still
/// read.
pub const VERSION: u32 = 3;
/// The version of a journal without gates.
pub const VERSION_WITHOUT_GATES: u32 = 2;
const OLDEST_READABLE: u32 = 1;

/// The one place a secret is serialised: into the 0600 journal.
mod secret_field {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

mod optional_secret_field {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(secret.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(d).map(|o| o.map(Secret::new))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "an interrupted rotation of this key is recorded in {path}; nothing was changed. Run `iam-keys recover` \
         (or `iam-keys recover --undo`) first"
    )]
    Pending { path: PathBuf },
    #[error(
        "cannot write the recovery journal {path}; nothing was changed. Check that the directory is writable"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the recovery journal {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the recovery journal {path} is damaged ({reason}); it is kept. Move it aside once you have checked the \
         key's state with `iam-keys status`"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "the recovery journal {path} was written by a newer iam-keys (journal version {version}; this one reads \
         up to {VERSION}); it is kept: finish it with that newer iam-keys"
    )]
    Newer { path: PathBuf, version: u32 },
    #[error(
        "the journal directory {path} is not safe to use ({reason}); nothing was changed. Remove it or make it a \
         directory of your own with mode 0700"
    )]
    Unsafe { path: PathBuf, reason: String },
    #[error("cannot remove the recovery journal {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One journal found on disk: readable, or kept and reported for its own key.
#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    /// The old key id, from the file name (known even when the content is not readable).
    pub old_key_id: String,
    /// The store of the directory the journal is in (it may be another run's, found through
    /// the index).
    pub store: JournalStore,
    pub journal: Result<Journal, JournalError>,
}

/// The journal directory of one credentials file, and the per-user index.
#[derive(Clone, Debug)]
pub struct JournalStore {
    dir: PathBuf,
    index: Option<PathBuf>,
}

impl JournalStore {
    /// `.iam-keys/` beside the credentials file (as the path is given, not through links,
    /// so a credentials file linked into a dotfiles repository keeps secrets out of it), with
    /// no index.
    pub fn beside(credentials: &Path) -> JournalStore {
        let absolute = std::path::absolute(credentials).unwrap_or_else(|_| credentials.into());
        let parent = absolute
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        JournalStore {
            dir: parent.join(".iam-keys"),
            index: None,
        }
    }

    /// Also record each journal in (and find journals through) the index under `state_dir`.
    pub fn with_index(mut self, state_dir: Option<&Path>) -> JournalStore {
        self.index = state_dir.map(|d| d.join("journals"));
        self
    }

    /// The store of another directory, sharing this store's index.
    fn sibling(&self, dir: PathBuf) -> JournalStore {
        JournalStore {
            dir,
            index: self.index.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The per-user state directory the index lives in, if any (the record of retired keys
    /// is kept there too: [`super::retired`]).
    pub fn state_dir(&self) -> Option<&Path> {
        self.index.as_deref().and_then(Path::parent)
    }

    pub fn path_for(&self, old_key_id: &str) -> PathBuf {
        self.dir.join(file_name(old_key_id))
    }

    /// Write (or replace) the journal of a rotation: atomically, 0600, fsynced.
    pub fn write(&self, journal: &Journal) -> Result<(), JournalError> {
        let path = self.path_for(&journal.old_key_id);
        let bytes = serde_json::to_vec_pretty(journal).expect("a journal serialises");
        write_private(&self.dir, &path, &bytes)
    }

    /// Start a rotation's journal: like [`JournalStore::write`], but refused when one is
    /// already there or indexed elsewhere, so an unfinished rotation's record (perhaps the
    /// only copy of a new key's secret) is never overwritten. Records it in the index.
    pub fn start(&self, journal: &Journal) -> Result<(), JournalError> {
        let path = self.path_for(&journal.old_key_id);
        if path.exists() {
            return Err(JournalError::Pending { path });
        }
        if let Some(other) = self.indexed(&journal.old_key_id)
            && other.exists()
        {
            return Err(JournalError::Pending { path: other });
        }
        self.write(journal)?;
        if let Some(index) = &self.index {
            let pointer = serde_json::to_vec_pretty(&Pointer {
                journal: path.clone(),
            })
            .expect("a pointer serialises");
            let entry = index.join(file_name(&journal.old_key_id));
            if let Err(e) = write_private(index, &entry, &pointer) {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Remove a finished rotation's journal, and its index entry.
    pub fn remove(&self, old_key_id: &str) -> Result<(), JournalError> {
        let path = self.path_for(old_key_id);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir).map_err(|source| JournalError::Remove {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(JournalError::Remove { path, source }),
        }
        if let Some(index) = &self.index {
            let entry = index.join(file_name(old_key_id));
            // Only our own pointer: another directory's journal of the same key stays listed.
            if read_pointer(&entry).is_some_and(|p| same_file_path(&p, &path)) {
                let _ = std::fs::remove_file(&entry);
            }
        }
        Ok(())
    }

    /// The new key of a [`Destination::Printed`] rotation has reached the user's output: a
    /// finished rotation's journal goes; an unfinished one's is marked, so that recovery
    /// retires the old key rather than deleting the key the user now holds.
    pub fn mark_printed(&self, old_key_id: &str, finished: bool) -> Result<(), JournalError> {
        if finished {
            return self.remove(old_key_id);
        }
        let path = self.path_for(old_key_id);
        if !path.exists() {
            return Ok(());
        }
        let mut journal = read(&path)?;
        journal.printed = true;
        self.write(&journal)
    }

    /// Where the index says the journal of `old_key_id` is, if it has an entry.
    fn indexed(&self, old_key_id: &str) -> Option<PathBuf> {
        read_pointer(&self.index.as_ref()?.join(file_name(old_key_id)))
    }

    /// Every journal left behind, beside this credentials file and (through the index) beside
    /// any other, each once, oldest key id first. Only an unsafe directory here is an error;
    /// a journal that cannot be read is an [`Entry`] with its error.
    pub fn list(&self) -> Result<Vec<Entry>, JournalError> {
        let mut paths = journal_files_in(&self.dir)?;
        if let Some(index) = &self.index {
            // An unsafe index is ignored here (and refused when a rotation starts): it only
            // points at journals, which are checked where they are.
            if let Ok(entries) = journal_files_in(index) {
                for entry in entries {
                    match read_pointer(&entry) {
                        Some(p) if p.exists() => {
                            if !paths.iter().any(|q| same_file_path(q, &p)) {
                                paths.push(p);
                            }
                        }
                        // The journal is gone (finished elsewhere): drop the stale pointer.
                        _ => {
                            let _ = std::fs::remove_file(&entry);
                        }
                    }
                }
            }
        }
        let mut entries: Vec<Entry> = paths
            .into_iter()
            .map(|path| {
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let journal = check_private_dir(&dir)
                    .map_err(|reason| JournalError::Unsafe {
                        path: dir.clone(),
                        reason,
                    })
                    .and_then(|()| read(&path));
                Entry {
                    old_key_id: key_of(&path),
                    store: self.sibling(dir),
                    journal,
                    path,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.old_key_id.cmp(&b.old_key_id).then(a.path.cmp(&b.path)));
        Ok(entries)
    }

    /// The journals that can be read (tests).
    #[cfg(test)]
    pub fn readable(&self) -> Vec<Journal> {
        self.list()
            .expect("the journal directory can be listed")
            .into_iter()
            .filter_map(|e| e.journal.ok())
            .collect()
    }

    /// The keys named by every readable journal other than `old_key_id`'s (their new keys
    /// and orphans): keys another rotation owns.
    pub fn keys_of_other_journals(&self, old_key_id: &str) -> Vec<String> {
        let Ok(entries) = self.list() else {
            return Vec::new();
        };
        entries
            .into_iter()
            .filter(|e| e.old_key_id != old_key_id)
            .filter_map(|e| e.journal.ok())
            .flat_map(|j| j.new_key_id.into_iter().chain(j.orphans))
            .collect()
    }
}

/// The index's record of where a journal is. No secret.
#[derive(Serialize, Deserialize)]
struct Pointer {
    journal: PathBuf,
}

fn file_name(old_key_id: &str) -> String {
    format!("journal-{old_key_id}.json")
}

fn key_of(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("journal-"))
        .and_then(|n| n.strip_suffix(".json"))
        .unwrap_or_default()
        .to_string()
}

fn read_pointer(entry: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(entry).ok()?;
    serde_json::from_slice::<Pointer>(&bytes)
        .ok()
        .map(|p| p.journal)
}

/// The same file, whether named through a symlink or not.
fn same_file_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The `journal-*.json` files of a directory (none when it does not exist).
fn journal_files_in(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        _ => check_private_dir(dir).map_err(|reason| JournalError::Unsafe {
            path: dir.to_path_buf(),
            reason,
        })?,
    }
    let entries = std::fs::read_dir(dir).map_err(|source| JournalError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

fn read(path: &Path) -> Result<Journal, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let damaged = |reason: String| JournalError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    // The version first, so a newer journal is named for what it is, not "damaged".
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let version = serde_json::from_slice::<Versioned>(&bytes)
        .map_err(|e| damaged(e.to_string()))?
        .version;
    if version > VERSION {
        return Err(JournalError::Newer {
            path: path.to_path_buf(),
            version,
        });
    }
    if version < OLDEST_READABLE {
        return Err(damaged(format!("unknown version {version}")));
    }
    serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))
}

/// Write `bytes` to `path` in `dir` (created private if missing): a temporary file, fsync,
/// rename, directory fsync.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let err = |source| JournalError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::profiles::create_private_dir(dir).map_err(err)?;
    check_private_dir(dir).map_err(|reason| JournalError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".journal-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    sync_dir(dir).map_err(err)?;
    Ok(())
}

/// [`write_private`] for the other small files of the state directory (no secrets there,
/// but the same care: a private directory, an atomic write).
pub(crate) fn write_private_file(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
) -> Result<(), JournalError> {
    write_private(dir, path, bytes)
}

/// Create `dir` (0700) if missing and check it is a private directory of ours.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), JournalError> {
    crate::profiles::create_private_dir(dir).map_err(|source| JournalError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    check_private_dir(dir).map_err(|reason| JournalError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    })
}

/// A directory we may keep secrets in: not a symbolic link, a directory, owned by the user,
/// not writable by group or others. One of ours that is readable or writable by others is
/// tightened to 0700 first.
fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link".into());
    }
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(format!(
                "it belongs to user id {}, not to you ({me})",
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                format!(
                    "its mode {:04o} lets others in and could not be tightened: {e}",
                    meta.mode() & 0o777
                )
            })?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
