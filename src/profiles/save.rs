//! Writing a file safely: follow symlinks to the real file, write a temporary file in the
//! same directory, fsync it, rename it over the target, fsync the directory. A failure at
//! any step leaves the old file as it was and removes the temporary file (`tempfile` deletes
//! it on drop). Modes: kept, but a file that holds a secret loses its group and other bits
//! (never looser than 0600); a new file is 0600 in a 0700 directory; a backup is always
//! 0600. The owner is kept (chown when running as root and the owner differs).
//!
//! Must not: decide what to write (the caller passes the bytes) or print anything but a
//! `tracing` warning when the directory fsync fails after the rename.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The suffix of the backup beside a file.
pub(super) const BACKUP_SUFFIX: &str = ".iam-keys.bak";

/// The file a path really names: symlinks followed (a missing file is its own target).
pub(super) fn real_target(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "too many levels of symbolic links at {}",
        path.display()
    )))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The mode rule for one write.
#[derive(Clone, Copy)]
pub(super) enum Mode {
    /// Keep the existing mode; drop group/other bits when the content holds a secret.
    /// (Windows has no mode bits: a file keeps the ACL it inherits from its directory, as
    /// the AWS CLI's own writes do; see README "Platforms".)
    Keep {
        #[cfg_attr(not(unix), allow(dead_code))]
        holds_secret: bool,
    },
    /// Always 0600 (backups).
    Private,
}

/// Write `bytes` to `target` (already the real file) atomically. Returns (from, to) when a
/// mode was tightened. `owner_like`: a file whose owner the new file gets (default: the
/// target's own).
pub(super) fn write_atomic(
    target: &Path,
    bytes: &[u8],
    mode: Mode,
    owner_like: Option<&Path>,
) -> io::Result<Option<(u32, u32)>> {
    let dir = parent_dir(target);
    create_private_dir(dir)?;
    let existing = match fs::metadata(target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".iam-keys-tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    let tightened = set_mode(tmp.as_file(), existing.as_ref(), mode)?;
    let owner = match owner_like {
        Some(p) => fs::metadata(p).ok(),
        None => existing,
    };
    keep_owner(tmp.as_file(), owner.as_ref())?;
    tmp.as_file().sync_all()?;
    persist(tmp, target)?;
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot fsync the directory after saving");
    }
    Ok(tightened)
}

/// Rename the temporary file over `target`.
#[cfg(not(windows))]
fn persist(tmp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    tmp.persist(target).map(drop).map_err(|e| e.error)
}

/// Rename the temporary file over `target`. Windows refuses to replace a file that another
/// program holds open without delete sharing (the AWS CLI while it reads the file, an
/// editor, a virus scanner): ERROR_ACCESS_DENIED or ERROR_SHARING_VIOLATION. Such holds are
/// brief, so retry for up to 2 s, then say what is in the way. The old file is untouched.
#[cfg(windows)]
fn persist(mut tmp: tempfile::NamedTempFile, target: &Path) -> io::Result<()> {
    use std::time::{Duration, Instant};
    const ERROR_ACCESS_DENIED: i32 = 5;
    const ERROR_SHARING_VIOLATION: i32 = 32;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let e = match tmp.persist(target) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let busy = matches!(
            e.error.raw_os_error(),
            Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION)
        );
        if !busy {
            return Err(e.error);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                e.error.kind(),
                format!(
                    "cannot replace {}: another program has it open, or it is read-only; \
                     close the program (or clear the read-only attribute) and run again ({})",
                    target.display(),
                    e.error
                ),
            ));
        }
        tmp = e.file;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Save the previous content of `target` to `<target>.iam-keys.bak`, 0600, atomically.
pub(super) fn write_backup(target: &Path, previous: &[u8]) -> io::Result<PathBuf> {
    let mut name = target.as_os_str().to_owned();
    name.push(BACKUP_SUFFIX);
    let backup = PathBuf::from(name);
    write_atomic(&backup, previous, Mode::Private, Some(target))?;
    Ok(backup)
}

/// Create and remove a temporary file where `path`'s real file lives (or in the nearest
/// existing ancestor when its directory does not exist yet).
pub(super) fn check_writable(path: &Path) -> io::Result<()> {
    let target = real_target(path)?;
    if fs::metadata(&target).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::other(format!(
            "{} is a directory",
            target.display()
        )));
    }
    let mut dir = parent_dir(&target).to_path_buf();
    while !dir.exists() {
        match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir = p.to_path_buf(),
            _ => {
                dir = PathBuf::from(".");
                break;
            }
        }
    }
    let probe = tempfile::Builder::new()
        .prefix(".iam-keys-probe.")
        .tempfile_in(&dir)?;
    probe.close()
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn set_mode(
    file: &fs::File,
    existing: Option<&fs::Metadata>,
    mode: Mode,
) -> io::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let (new, tightened) = match (mode, existing) {
        (Mode::Private, _) | (Mode::Keep { .. }, None) => (0o600, None),
        (Mode::Keep { holds_secret }, Some(m)) => {
            let old = m.permissions().mode() & 0o7777;
            let new = if holds_secret { old & !0o077 } else { old };
            (new, (new != old).then_some((old, new)))
        }
    };
    file.set_permissions(fs::Permissions::from_mode(new))?;
    Ok(tightened)
}

#[cfg(not(unix))]
fn set_mode(
    _file: &fs::File,
    _existing: Option<&fs::Metadata>,
    _mode: Mode,
) -> io::Result<Option<(u32, u32)>> {
    Ok(None)
}

/// Give the new file the owner of the old one when we run as root (the temporary file is
/// ours, so its owner tells who we are).
#[cfg(unix)]
fn keep_owner(file: &fs::File, like: Option<&fs::Metadata>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(like) = like else {
        return Ok(());
    };
    let ours = file.metadata()?;
    if ours.uid() == 0 && (ours.uid() != like.uid() || ours.gid() != like.gid()) {
        std::os::unix::fs::fchown(file, Some(like.uid()), Some(like.gid()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_owner(_file: &fs::File, _like: Option<&fs::Metadata>) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;
    use std::os::windows::fs::OpenOptionsExt;
    use std::time::Duration;

    const FILE_SHARE_READ: u32 = 1;

    /// Open `path` as the AWS CLI (Python) does: others may read, not delete or rename.
    fn hold(path: &Path) -> fs::File {
        fs::OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_file_another_program_holds_briefly_is_replaced_once_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials");
        fs::write(&target, "old").unwrap();
        let held = hold(&target);
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            drop(held);
        });
        write_atomic(&target, b"new", Mode::Keep { holds_secret: true }, None).unwrap();
        reader.join().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_file_held_open_throughout_is_left_as_it_was_with_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("credentials");
        fs::write(&target, "old").unwrap();
        let held = hold(&target);
        let err = write_atomic(&target, b"new", Mode::Keep { holds_secret: true }, None)
            .unwrap_err()
            .to_string();
        drop(held);
        assert!(
            err.contains("another program has it open") && err.contains("credentials"),
            "{err}"
        );
        assert_eq!(fs::read(&target).unwrap(), b"old");
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary file was removed");
    }
}
