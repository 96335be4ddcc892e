//! The run lock: `<credentials file>.iam-keys.lock` beside the (real) credentials file,
//! held with an exclusive advisory lock (`File::try_lock`: `flock` on Unix, `LockFileEx` on
//! Windows) for a whole run that may write, so two runs of iam-keys never interleave. The
//! holder writes its process id into the file; a second run polls every 100 ms up to its
//! limit and can say which process it waits for. The lock file itself is never deleted
//! (deleting a lock file others may have open breaks the lock); it is emptied on release.
//!
//! The lock file is opened without following a symlink (`O_NOFOLLOW`) and without
//! blocking (`O_NONBLOCK`, for a FIFO), then checked on the opened handle: it must be a
//! regular file, owned by the effective user, with one name. Anything else (a symlink
//! planted in a shared directory to make the run truncate its target, a FIFO, another
//! user's file, a hard link) is refused with [`ProfileError::LockUnsafe`] before anything is
//! written. A lock file left by a dead run is a regular file of ours: it is fine.
//!
//! Holding the lock is what makes it safe to remove stale temporary files of an interrupted
//! save ([`RunLock::remove_stale_temp_files`]).
//!
//! Must not: lock the credentials file itself (the atomic save replaces its inode), write
//! through a path it has not checked, or wait without a bound. The AWS CLI does not take
//! this lock.

use super::save::real_target;
use super::{FilePaths, ProfileError};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The suffix of the lock file beside the credentials file.
pub const LOCK_SUFFIX: &str = ".iam-keys.lock";
const POLL: Duration = Duration::from_millis(100);

/// A held run lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Take the lock beside `credentials_path`, waiting up to `wait`. `on_wait` is called
    /// once, with the lock path and the holder's pid when known, when we start waiting.
    pub fn acquire(
        credentials_path: &Path,
        wait: Duration,
        on_wait: &mut dyn FnMut(&Path, Option<u32>),
    ) -> Result<RunLock, ProfileError> {
        let lock_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ProfileError::Lock {
                path: path.clone(),
                source,
            }
        };
        let real = real_target(credentials_path).map_err(lock_err(credentials_path))?;
        let mut name = real.as_os_str().to_owned();
        name.push(LOCK_SUFFIX);
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            super::save::create_private_dir(dir).map_err(lock_err(&path))?;
        }
        let mut file = match open_lock_file(&path) {
            Ok(file) => file,
            Err(LockOpen::Unsafe(what)) => return Err(ProfileError::LockUnsafe { path, what }),
            Err(LockOpen::Io(source)) => return Err(ProfileError::Lock { path, source }),
        };
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = read_pid(&mut file);
                    if !told {
                        told = true;
                        on_wait(&path, holder);
                    }
                    if started.elapsed() >= wait {
                        return Err(ProfileError::LockTimeout {
                            path,
                            holder,
                            waited: started.elapsed(),
                        });
                    }
                    std::thread::sleep(
                        POLL.min(wait.saturating_sub(started.elapsed()))
                            .max(Duration::from_millis(1)),
                    );
                }
                Err(TryLockError::Error(source)) => {
                    return Err(ProfileError::Lock { path, source });
                }
            }
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            write!(file, "{}", std::process::id())?;
            file.flush()
        };
        write_pid(&mut file).map_err(lock_err(&path))?;
        Ok(RunLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the temporary files an interrupted save of these files left beside them (they
    /// may hold secrets), and return their paths. Only regular files of the current user
    /// with our fixed prefix that no live process holds are removed; any failure is
    /// logged and skipped. Needs the lock, hence a method of it.
    pub fn remove_stale_temp_files(&self, paths: &FilePaths) -> Vec<std::path::PathBuf> {
        let mut removed = Vec::new();
        for path in [&paths.credentials, &paths.config] {
            for stale in super::save::remove_stale_temps(path) {
                if !removed.contains(&stale) {
                    removed.push(stale);
                }
            }
        }
        removed
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Empty it so nobody reads a stale pid; closing the file releases the lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Why the lock file could not be opened.
enum LockOpen {
    /// Something that is not our regular file sits at the path: what it is.
    Unsafe(String),
    Io(std::io::Error),
}

impl From<std::io::Error> for LockOpen {
    fn from(e: std::io::Error) -> Self {
        LockOpen::Io(e)
    }
}

#[cfg(unix)]
fn open_lock_file(path: &Path) -> Result<File, LockOpen> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) => {
            // ELOOP (EMLINK on some BSDs) for a symlink, EISDIR for a directory, ENXIO for a
            // FIFO without a reader on some systems: say what is there when we can.
            return Err(match fs::symlink_metadata(path) {
                Ok(meta) if !meta.is_file() => {
                    LockOpen::Unsafe(super::open::describe_type(&meta).to_string())
                }
                _ => LockOpen::Io(e),
            });
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(LockOpen::Unsafe(
            super::open::describe_type(&meta).to_string(),
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(LockOpen::Unsafe(format!(
            "owned by another user (uid {})",
            meta.uid()
        )));
    }
    if meta.nlink() != 1 {
        return Err(LockOpen::Unsafe(format!(
            "a file with {} names (hard links)",
            meta.nlink()
        )));
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> Result<File, LockOpen> {
    if let Ok(meta) = fs::symlink_metadata(path)
        && !meta.is_file()
    {
        return Err(LockOpen::Unsafe(
            super::open::describe_type(&meta).to_string(),
        ));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    Ok(options.open(path)?)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
