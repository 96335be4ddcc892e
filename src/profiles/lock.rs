//! The run lock: `<credentials file>.iam-keys.lock` beside the (real) credentials file,
//! held with an exclusive advisory lock (`File::try_lock`: `flock` on Unix, `LockFileEx` on
//! Windows) for a whole run that may write, so two runs of iam-keys never interleave. The
//! holder writes its process id into the file; a second run polls every 100 ms up to its
//! limit and can say which process it waits for. The lock file itself is never deleted
//! (deleting a lock file others may have open breaks the lock); it is emptied on release.
//!
//! Must not: lock the credentials file itself (the atomic save replaces its inode), or wait
//! without a bound. The AWS CLI does not take this lock.

use super::ProfileError;
use super::save::real_target;
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
            create_dir_private(dir).map_err(lock_err(&path))?;
        }
        let mut file = open_lock_file(&path).map_err(lock_err(&path))?;
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
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Empty it so nobody reads a stale pid; closing the file releases the lock.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(unix)]
fn create_dir_private(dir: &Path) -> std::io::Result<()> {
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
fn create_dir_private(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}
