//! Opening a profile file without surprises: non-blocking (a FIFO never hangs the run), the
//! type checked with `fstat` on the opened handle (no check-then-open race), and the size
//! capped at [`MAX_FILE_SIZE`]. Only a regular file is read or written (a symlink to one is
//! fine: its target is used); `/dev/null`, the usual way to disable a file, reads as empty
//! and is never written. A regular file under another process's lease (a Samba oplock) is
//! waited for, up to [`LEASE_WAIT`], by retrying the non-blocking open.
//!
//! Must not: write, or decide what an error says to the user (the caller turns an
//! [`OpenError`] into a [`super::ProfileError`] naming the file).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// The largest profile file read: 16 MiB (real ones are a few KiB; the cap keeps a wrong
/// path, say a disk image, from being read into memory).
pub(super) const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// [`MAX_FILE_SIZE`] for people.
pub(super) const MAX_FILE_SIZE_TEXT: &str = "16 MiB";

/// Which file a handle is: device and inode, and how many names it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub links: u64,
}

/// A profile file as read.
pub(super) enum Contents {
    /// No file at that path.
    Missing,
    /// `/dev/null` (or a link to it): empty, never written.
    NullDevice,
    /// A regular file's bytes.
    File { bytes: Vec<u8>, identity: Identity },
}

/// Why a path cannot be used as a profile file.
#[derive(Debug)]
pub(super) enum OpenError {
    /// Not a regular file: what it is ("a FIFO (named pipe)", ...).
    NotRegular(&'static str),
    Directory,
    /// Bigger than [`MAX_FILE_SIZE`]: its size.
    TooLarge(u64),
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// How long an open waits for another process to give up its lease on a file (a Samba
/// oplock, an NFS server's delegation): the kernel breaks a lease after
/// `/proc/sys/fs/lease-break-time` (45 s by default) anyway.
pub(super) const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Open with `options` plus `O_NONBLOCK` (so a FIFO never blocks). A regular file under
/// another process's lease answers `EWOULDBLOCK` while the kernel breaks the lease: that is
/// retried every 50 ms for up to [`LEASE_WAIT`], never with a blocking open.
pub(super) fn open_nonblocking(
    options: &mut std::fs::OpenOptions,
    path: &Path,
) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let started = std::time::Instant::now();
    loop {
        match options.open(path) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && started.elapsed() < LEASE_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// What a non-regular file is, for messages.
#[cfg(unix)]
pub(super) fn describe_type(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
pub(super) fn describe_type(meta: &Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else if meta.file_type().is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Whether `meta` is the null device.
#[cfg(unix)]
fn is_null_device(meta: &Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device()
        && std::fs::metadata("/dev/null")
            .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
}

#[cfg(not(unix))]
fn is_null_device(_meta: &Metadata) -> bool {
    false
}

#[cfg(unix)]
pub(super) fn identity(meta: &Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    Identity {
        dev: meta.dev(),
        ino: meta.ino(),
        links: meta.nlink(),
    }
}

#[cfg(not(unix))]
pub(super) fn identity(_meta: &Metadata) -> Identity {
    Identity {
        dev: 0,
        ino: 0,
        links: 1,
    }
}

/// Read a profile file: a missing file is [`Contents::Missing`]; anything but a regular file
/// or `/dev/null` is refused; at most [`MAX_FILE_SIZE`] bytes.
pub(super) fn read_profile_file(path: &Path) -> Result<Contents, OpenError> {
    // Windows refuses to open a directory as a file ("access denied"): ask first there.
    #[cfg(not(unix))]
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(OpenError::Directory);
    }
    let file = match open_nonblocking(std::fs::OpenOptions::new().read(true), path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Contents::Missing),
        Err(e) => return Err(OpenError::Io(e)),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(OpenError::Directory);
    }
    if !meta.is_file() {
        if is_null_device(&meta) {
            return Ok(Contents::NullDevice);
        }
        return Err(OpenError::NotRegular(describe_type(&meta)));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(OpenError::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than the cap tells a file that grew past it since the fstat.
    (&file).take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(OpenError::TooLarge(bytes.len() as u64));
    }
    Ok(Contents::File {
        bytes,
        identity: identity(&meta),
    })
}
