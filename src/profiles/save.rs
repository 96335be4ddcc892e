// Over 500 lines: the atomic save with its in-place, symlink and concurrent-change paths, each next to its undo.
//! Writing a file safely: follow symlinks to the real file, write a temporary file in the
//! same directory, fsync it, rename it over the target, fsync the directory. A failure at
//! any step leaves the old file as it was and removes the temporary file (`tempfile` deletes
//! it on drop). Modes: kept, but a file that holds a secret loses its group and other bits
//! (never looser than 0600); a new file is 0600 in a 0700 directory; a backup is always
//! 0600. The owner is kept (chown when running as root and the owner differs).
//!
//! Temporary files are named `.iam-keys-tmp.<file name>.<random>` ([`TEMP_PREFIX`]), are
//! 0600 from their creation (`O_EXCL`, never through a symlink) and are held with an
//! exclusive `flock` while they exist, so that [`remove_stale_temps`] (run under the run
//! lock when files are loaded for a run that may write) removes only those a killed
//! process left: a dead process holds no lock.
//!
//! A file that has other names (a hard link: link count above 1) or that cannot be replaced
//! by rename (a single-file bind mount: `EBUSY`, or `EXDEV`) is rewritten in place instead
//! ([`write_in_place`]): write at offset 0, truncate, fsync, read back and compare; when
//! that fails, the previous content is put back the same way.
//!
//! Must not: decide what to write (the caller passes the bytes) or print anything but a
//! `tracing` warning when the directory fsync fails after the rename.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The suffix of the backup beside a file.
pub(super) const BACKUP_SUFFIX: &str = ".iam-keys.bak";
/// The fixed prefix of every temporary file iam-keys creates.
pub const TEMP_PREFIX: &str = ".iam-keys-tmp.";
/// The name part of a probe file ([`check_writable`]) after [`TEMP_PREFIX`].
const PROBE_NAME: &str = "probe";

/// Create a temporary file for `name` in `dir`: 0600, exclusively created, flocked.
fn create_temp(dir: &Path, name: &str) -> io::Result<tempfile::NamedTempFile> {
    let prefix = format!("{TEMP_PREFIX}{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o600));
    }
    let tmp = builder.tempfile_in(dir)?;
    // Marks it as in use: a concurrent cleanup never removes it. Best effort (a file system
    // without flock still gets its files saved).
    let _ = tmp.as_file().try_lock();
    #[cfg(test)]
    tests_hook::created(tmp.path());
    Ok(tmp)
}

/// Lets unit tests look at every temporary file right after its creation.
#[cfg(test)]
pub(super) mod tests_hook {
    use std::cell::RefCell;
    use std::path::Path;

    type Hook = Box<dyn FnMut(&Path)>;
    thread_local! {
        static HOOK: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Call `f` with each temporary file created on this thread until the next `set`.
    #[cfg_attr(not(unix), allow(dead_code))] // its test checks Unix modes
    pub fn set(f: Option<Hook>) {
        HOOK.with(|h| *h.borrow_mut() = f);
    }

    pub(super) fn created(path: &Path) {
        HOOK.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(path)
            }
        });
    }
}

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
    let mut tmp = create_temp(dir, &name)?;
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
    let probe = create_temp(&dir, PROBE_NAME)?;
    probe.close()?;
    // A file with other names is rewritten in place: it must open for writing.
    if let Ok(meta) = fs::metadata(&target)
        && super::open::identity(&meta).links > 1
    {
        fs::OpenOptions::new().write(true).open(&target)?;
    }
    Ok(())
}

/// Whether a failed rename means "this name cannot be replaced" (a bind-mounted file:
/// `EBUSY`; another file system: `EXDEV`), so the file must be rewritten in place.
pub(super) fn rename_refused(e: &io::Error) -> Option<&'static str> {
    #[cfg(unix)]
    {
        match e.raw_os_error() {
            Some(libc::EBUSY) => Some("EBUSY"),
            Some(libc::EXDEV) => Some("EXDEV"),
            _ => None,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        None
    }
}

/// A file opened to be rewritten in place ([`open_in_place`]).
pub(super) struct InPlaceFile {
    file: fs::File,
    meta: fs::Metadata,
}

/// Open `target` to rewrite it in place: a regular file, and still the file `expected`
/// names (not replaced by another program since it was read). Nothing is written yet.
pub(super) fn open_in_place(
    target: &Path,
    expected: Option<super::open::Identity>,
) -> io::Result<InPlaceFile> {
    let file =
        super::open::open_nonblocking(fs::OpenOptions::new().read(true).write(true), target)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "{} is {}, not a regular file",
            target.display(),
            super::open::describe_type(&meta)
        )));
    }
    let id = super::open::identity(&meta);
    if let Some(want) = expected
        && (want.dev, want.ino) != (id.dev, id.ino)
    {
        return Err(io::Error::other(format!(
            "{} was replaced by another file while it was being saved",
            target.display()
        )));
    }
    Ok(InPlaceFile { file, meta })
}

impl InPlaceFile {
    /// Tighten the mode as [`Mode::Keep`] says, write `bytes` from offset 0, truncate,
    /// fsync, read back and compare. Returns (from, to) when the mode was tightened. On an
    /// error the file may hold part of `bytes`: the caller rewrites the previous content.
    pub(super) fn rewrite(&mut self, bytes: &[u8], mode: Mode) -> io::Result<Option<(u32, u32)>> {
        use std::io::{Read, Seek, SeekFrom};
        let tightened = set_mode(&self.file, Some(&self.meta), mode)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(bytes)?;
        self.file.set_len(bytes.len() as u64)?;
        self.file.sync_all()?;
        self.file.seek(SeekFrom::Start(0))?;
        let mut back = Vec::with_capacity(bytes.len());
        self.file.read_to_end(&mut back)?;
        if back != bytes {
            return Err(io::Error::other(
                "the file does not read back what was written",
            ));
        }
        Ok(tightened)
    }
}

/// Remove the temporary files a killed save left beside the real file of `path` (its own,
/// its backup's, and probes): regular files with our prefix, owned by the current user,
/// that no process holds (`flock`). Returns what was removed.
#[cfg(unix)]
pub(super) fn remove_stale_temps(path: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let Ok(target) = real_target(path) else {
        return Vec::new();
    };
    // Only beside a regular file (or one still to be created): never in /dev for /dev/null.
    if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_file()) {
        return Vec::new();
    }
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = parent_dir(&target);
    let ours = [
        format!("{TEMP_PREFIX}{name}."),
        format!("{TEMP_PREFIX}{PROBE_NAME}."),
    ];
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !ours.iter().any(|p| file_name.starts_with(p.as_str())) {
            continue;
        }
        let stale = entry.path();
        let Ok(meta) = fs::symlink_metadata(&stale) else {
            continue;
        };
        if !meta.is_file() || meta.uid() != me {
            continue;
        }
        let held = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&stale)
            .map(|f| f.try_lock().is_err());
        match held {
            Ok(false) => match fs::remove_file(&stale) {
                Ok(()) => removed.push(stale),
                Err(e) => {
                    tracing::warn!(path = %stale.display(), error = %e, "cannot remove a stale temporary file")
                }
            },
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(path = %stale.display(), error = %e, "cannot open a stale temporary file")
            }
        }
    }
    removed
}

#[cfg(not(unix))]
pub(super) fn remove_stale_temps(_path: &Path) -> Vec<PathBuf> {
    Vec::new()
}

/// Create `dir` and its missing parents, 0700 on Unix (the one place the crate makes a
/// directory meant for secrets or locks).
#[cfg(unix)]
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
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
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
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
