//! Unit tests of the profile files module: the document model, the profile view, edits,
//! saving, locking, the fixture corpus and the cross-SDK parser conformance cases.

use super::document::{Document, LineEnding};
use super::*;
use crate::secret::Secret;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const OLD: &str = "AKIAOLDOLDOLDOLDOLD1";
const NEW: &str = "AKIANEWNEWNEWNEWNEW1";
const OLD_SECRET: &str = "oldSecret/oldSecret+oldSecret/oldSecret1";
const NEW_SECRET: &str = "newSecret/newSecret+newSecret/newSecret1";

fn replace() -> KeyEdit {
    KeyEdit::Replace {
        old_key_id: OLD.to_string(),
        new_key_id: NEW.to_string(),
        new_secret: Secret::new(NEW_SECRET),
    }
}

fn paths() -> FilePaths {
    FilePaths {
        credentials: PathBuf::from("/nonexistent/credentials"),
        config: PathBuf::from("/nonexistent/config"),
    }
}

fn files(credentials: &str, config: &str) -> ProfileFiles {
    ProfileFiles::from_texts(&paths(), credentials, config).expect("parses")
}

/// A temporary directory with the two files written in it.
struct Dir {
    dir: tempfile::TempDir,
    paths: FilePaths,
}

impl Dir {
    fn new(credentials: Option<&str>, config: Option<&str>) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let paths = FilePaths {
            credentials: dir.path().join("credentials"),
            config: dir.path().join("config"),
        };
        if let Some(c) = credentials {
            fs::write(&paths.credentials, c).unwrap();
        }
        if let Some(c) = config {
            fs::write(&paths.config, c).unwrap();
        }
        Dir { dir, paths }
    }
    fn load(&self) -> ProfileFiles {
        ProfileFiles::load(&self.paths).unwrap()
    }
    fn read(&self, p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Apply `edits` on texts in memory (through a real save in a temp dir) and return both
/// new texts.
fn edited(credentials: &str, config: &str, edits: &[KeyEdit]) -> (String, String) {
    let d = Dir::new(Some(credentials), Some(config));
    let mut f = d.load();
    f.apply_edits(edits, &SaveOptions { backup: false })
        .unwrap();
    (d.read(&d.paths.credentials), d.read(&d.paths.config))
}

fn key_file() -> String {
    format!("[default]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

mod document;
mod edits;
mod file_system_edges;
mod fixtures;
mod load_errors;
mod properties;
mod saving;
mod sdk_conformance;
mod view;
