//! The recovery journal: one small JSON file per key being rotated, written before anything
//! changes and again at each step, so that a run killed at any point can be finished or
//! undone by the next run (`iam-keys recover`).
//!
//! It lives in `.iam-keys/` beside the credentials file (0700), each entry
//! `journal-<OLD KEY ID>.json` (0600), written atomically and fsynced. It holds the old and
//! new secrets, as the credentials file does, because finishing or undoing needs them.
//!
//! Must not: decide anything. It records; [`super::recover`] reads it.

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
}

/// Where a rotation writes the new key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// Every profile holding the old key (the usual case).
    #[default]
    Holders,
    /// One named profile, created if missing (`--auth-profile` and `--user-name`, when no
    /// local profile holds the user's key).
    Profile(String),
    /// Nowhere: printed at the end of the run (`--output env`). The journal outlives the
    /// rotation until the output is written; one left behind unprinted is undone while the
    /// old key is Active, and printed by `recover --output env` once it is not.
    Printed,
}

pub const VERSION: u32 = 1;

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
        "the recovery journal {path} is damaged ({reason}); move it aside and check the key's state with `iam-keys status`"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot remove the recovery journal {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The journal directory of one credentials file.
#[derive(Clone, Debug)]
pub struct JournalStore {
    dir: PathBuf,
}

impl JournalStore {
    /// `.iam-keys/` beside the credentials file (as the path is given, not through links,
    /// so a credentials file linked into a dotfiles repository keeps secrets out of it).
    pub fn beside(credentials: &Path) -> JournalStore {
        let parent = credentials
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        JournalStore {
            dir: parent.join(".iam-keys"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_for(&self, old_key_id: &str) -> PathBuf {
        self.dir.join(format!("journal-{old_key_id}.json"))
    }

    /// Write (or replace) the journal of a rotation: atomically, 0600, fsynced.
    pub fn write(&self, journal: &Journal) -> Result<(), JournalError> {
        let path = self.path_for(&journal.old_key_id);
        let err = |source| JournalError::Write {
            path: path.clone(),
            source,
        };
        create_private_dir(&self.dir).map_err(err)?;
        let bytes = serde_json::to_vec_pretty(journal).expect("a journal serialises");
        let mut tmp = tempfile::Builder::new()
            .prefix(".journal-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(err)?;
        tmp.write_all(&bytes).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        sync_dir(&self.dir).map_err(err)?;
        Ok(())
    }

    /// Start a rotation's journal: like [`JournalStore::write`], but refused when one is
    /// already there, so an unfinished rotation's record (perhaps the only copy of a new
    /// key's secret) is never overwritten.
    pub fn start(&self, journal: &Journal) -> Result<(), JournalError> {
        let path = self.path_for(&journal.old_key_id);
        if path.exists() {
            return Err(JournalError::Pending { path });
        }
        self.write(journal)
    }

    /// Remove a finished rotation's journal.
    pub fn remove(&self, old_key_id: &str) -> Result<(), JournalError> {
        let path = self.path_for(old_key_id);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir).map_err(|source| JournalError::Remove { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(JournalError::Remove { path, source }),
        }
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

    /// Every journal left behind, oldest key id first.
    pub fn list(&self) -> Result<Vec<Journal>, JournalError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(JournalError::Read {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".json"))
            })
            .collect();
        paths.sort();
        paths.iter().map(|p| read(p)).collect()
    }
}

fn read(path: &Path) -> Result<Journal, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| JournalError::Damaged {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if journal.version != VERSION {
        return Err(JournalError::Damaged {
            path: path.to_path_buf(),
            reason: format!("version {} is not the supported {VERSION}", journal.version),
        });
    }
    Ok(journal)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(e),
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
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
mod tests {
    use super::*;

    pub(crate) fn sample() -> Journal {
        Journal {
            version: VERSION,
            stage: Stage::Created,
            started: "2026-11-22T00:00:00Z".into(),
            user: "alice".into(),
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            old_key_id: "AKIAOLD0000000000000".into(),
            old_secret: Secret::new("old-secret-value-0000000000000000000000000"),
            known_keys: vec!["AKIAOLD0000000000000".into()],
            profiles: vec!["dev".into()],
            files: vec![PathBuf::from("/tmp/credentials")],
            retire: Retire::Deactivate,
            deleted_inactive: None,
            new_key_id: Some("AKIANEW0000000000000".into()),
            new_secret: Some(Secret::new("new-secret-value-0000000000000000000000000")),
            endpoint: Endpoint {
                region: "us-east-1".into(),
                iam_endpoint: None,
                sts_endpoint: None,
            },
            mfa_serial: None,
            destination: Destination::Holders,
            auth_profile: None,
            printed: false,
        }
    }

    #[test]
    fn a_journal_round_trips_with_its_secrets_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::beside(&dir.path().join("credentials"));
        let journal = sample();
        store.write(&journal).unwrap();
        assert_eq!(store.list().unwrap(), vec![journal.clone()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file_mode = std::fs::metadata(store.path_for(&journal.old_key_id))
                .unwrap()
                .permissions()
                .mode();
            let dir_mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
            assert_eq!(file_mode & 0o777, 0o600);
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        let leftovers: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file is left: {leftovers:?}"
        );
        store.remove(&journal.old_key_id).unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn a_new_rotation_never_overwrites_a_pending_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::beside(&dir.path().join("credentials"));
        let pending = sample();
        store.write(&pending).unwrap();
        let mut fresh = sample();
        fresh.stage = Stage::Intent;
        fresh.new_key_id = None;
        fresh.new_secret = None;
        let err = store.start(&fresh).unwrap_err();
        assert!(matches!(err, JournalError::Pending { .. }), "{err}");
        assert_eq!(
            store.list().unwrap(),
            vec![pending],
            "the pending journal is untouched"
        );
    }

    #[test]
    fn the_journal_debug_form_shows_no_secret() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("old-secret-value"), "{text}");
        assert!(!text.contains("new-secret-value"), "{text}");
    }

    #[test]
    fn a_damaged_journal_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = JournalStore::beside(&dir.path().join("credentials"));
        std::fs::create_dir_all(store.dir()).unwrap();
        std::fs::write(store.path_for("AKIAX"), b"{ not json").unwrap();
        let err = store.list().unwrap_err();
        assert!(err.to_string().contains("journal-AKIAX.json"), "{err}");
    }
}
