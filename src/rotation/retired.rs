//! The record of the keys iam-keys retired (deactivated) and when: `retired.json` in the
//! per-user state directory (the one that holds the journal index), so that `prune` knows
//! when a key went Inactive (IAM does not say) and `status` can say "retired by iam-keys on
//! DATE, prune after DATE".
//!
//! Small and without secrets: key id, user, account and time only. At most [`CAP`] entries
//! (the oldest go first). Written atomically (temporary file, fsync, rename) in a private
//! directory, with the checks of [`super::journal`], under a lock file so two runs on other
//! credentials files do not lose each other's entries.
//!
//! Must not: decide anything (that is [`super::prune`]), or call AWS.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The most entries kept; a rotation adds one, a prune removes it.
pub const CAP: usize = 512;
const VERSION: u32 = 1;
const FILE: &str = "retired.json";

/// One retired key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    pub access_key_id: String,
    pub user: String,
    pub account: String,
    /// When iam-keys deactivated it (RFC 3339).
    #[serde(with = "rfc3339")]
    pub retired: Timestamp,
}

/// Timestamps as RFC 3339 text, with fractions of a second (jiff's serde feature is not enabled in this crate).
mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        // Full precision: a last use in the same second as the retirement is not "after" it.
        s.serialize_str(&t.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    version: u32,
    keys: Vec<RetiredKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum RetiredError {
    #[error("cannot read the record of retired keys {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the record of retired keys {path} is damaged ({reason}); move it aside (iam-keys starts a new one)"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error("cannot write the record of retired keys {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Journal(#[from] super::journal::JournalError),
}

/// The record in one state directory.
#[derive(Clone, Debug)]
pub struct RetiredStore {
    dir: PathBuf,
}

impl RetiredStore {
    pub fn new(state_dir: &Path) -> RetiredStore {
        RetiredStore {
            dir: state_dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Every recorded key (none when there is no record yet).
    pub fn list(&self) -> Result<Vec<RetiredKey>, RetiredError> {
        Ok(self.read()?.keys)
    }

    /// The entry of one key, if iam-keys retired it here.
    pub fn get(&self, key_id: &str) -> Result<Option<RetiredKey>, RetiredError> {
        Ok(self.list()?.into_iter().find(|k| k.access_key_id == key_id))
    }

    /// Record that `key` was retired (replacing an earlier entry of the same key).
    pub fn add(&self, key: RetiredKey) -> Result<(), RetiredError> {
        self.update(|keys| {
            keys.retain(|k| k.access_key_id != key.access_key_id);
            keys.push(key);
        })
    }

    /// Forget keys (deleted, or found Active again).
    pub fn remove(&self, key_ids: &[String]) -> Result<(), RetiredError> {
        if key_ids.is_empty() || !self.path().exists() {
            return Ok(());
        }
        self.update(|keys| keys.retain(|k| !key_ids.contains(&k.access_key_id)))
    }

    fn read(&self) -> Result<Record, RetiredError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(source) => return Err(RetiredError::Read { path, source }),
        };
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| RetiredError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if record.version > VERSION {
            return Err(RetiredError::Damaged {
                path,
                reason: format!("written by a newer iam-keys (version {})", record.version),
            });
        }
        Ok(record)
    }

    /// Read, change and write back under the lock. A damaged record is moved aside to
    /// `retired.json.damaged` and a new one started (it only holds dates; nothing is lost
    /// but the wait before `prune` without `--unrecorded` deletes those keys).
    fn update(&self, change: impl FnOnce(&mut Vec<RetiredKey>)) -> Result<(), RetiredError> {
        let path = self.path();
        let write_err = |source| RetiredError::Write {
            path: path.clone(),
            source,
        };
        super::journal::ensure_private_dir(&self.dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("retired.lock"))
            .map_err(write_err)?;
        lock.lock().map_err(write_err)?;
        let mut record = match self.read() {
            Ok(r) => r,
            Err(RetiredError::Damaged { .. }) => {
                let _ = std::fs::rename(&path, self.dir.join("retired.json.damaged"));
                Record::default()
            }
            Err(e) => return Err(e),
        };
        change(&mut record.keys);
        record.version = VERSION;
        record.keys.sort_by_key(|k| k.retired);
        let excess = record.keys.len().saturating_sub(CAP);
        record.keys.drain(..excess);
        let bytes = serde_json::to_vec_pretty(&record).expect("the record serialises");
        super::journal::write_private_file(&self.dir, &path, &bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, day: i64) -> RetiredKey {
        RetiredKey {
            access_key_id: id.into(),
            user: "alice".into(),
            account: "123456789012".into(),
            retired: Timestamp::from_second(1_800_000_000 + day * 86_400).unwrap(),
        }
    }

    #[test]
    fn a_retired_key_is_recorded_replaced_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = RetiredStore::new(&dir.path().join("state"));
        assert_eq!(store.list().unwrap(), vec![]);
        store.add(key("AKIAOLD1", 1)).unwrap();
        store.add(key("AKIAOLD2", 2)).unwrap();
        store.add(key("AKIAOLD1", 3)).unwrap();
        assert_eq!(
            store.list().unwrap(),
            vec![key("AKIAOLD2", 2), key("AKIAOLD1", 3)]
        );
        assert_eq!(store.get("AKIAOLD1").unwrap(), Some(key("AKIAOLD1", 3)));
        store.remove(&["AKIAOLD2".into()]).unwrap();
        assert_eq!(store.list().unwrap(), vec![key("AKIAOLD1", 3)]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
            let text = std::fs::read_to_string(store.path()).unwrap();
            assert!(text.contains("\"retired\": \"2027-01-"), "{text}");
        }
    }

    #[test]
    fn the_record_keeps_only_the_newest_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = RetiredStore::new(dir.path());
        for i in 0..(CAP as i64 + 5) {
            store.add(key(&format!("AKIA{i:012}"), i)).unwrap();
        }
        let keys = store.list().unwrap();
        assert_eq!(keys.len(), CAP);
        assert_eq!(keys[0].access_key_id, "AKIA000000000005");
    }

    #[test]
    fn a_damaged_record_is_named_on_read_and_moved_aside_on_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = RetiredStore::new(dir.path());
        std::fs::write(store.path(), "{not json").unwrap();
        let err = store.list().unwrap_err().to_string();
        assert!(
            err.contains("retired.json") && err.contains("damaged"),
            "{err}"
        );
        store.add(key("AKIAOLD1", 1)).unwrap();
        assert_eq!(store.list().unwrap(), vec![key("AKIAOLD1", 1)]);
        assert!(dir.path().join("retired.json.damaged").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_state_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let store = RetiredStore::new(&dir.path().join("link"));
        let err = store.add(key("AKIAOLD1", 1)).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }
}
