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
    Keep { holds_secret: bool },
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
    tmp.persist(target).map_err(|e| e.error)?;
    if let Err(e) = sync_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot fsync the directory after saving");
    }
    Ok(tightened)
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
