//! Profile-file tests: file-system edges (issue 10).

use super::*;

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[cfg(unix)]
fn no_wait(_: &Path, _: Option<u32>) {
    panic!("must not wait")
}

/// A lock path that is not our regular file is refused, naming it, and nothing is written
/// through it.
// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_lock_path_that_is_not_our_regular_file_is_refused() {
    let d = Dir::new(None, None);
    let lock = d.dir.path().join("credentials.iam-keys.lock");
    let victim = d.dir.path().join("victim");
    fs::write(&victim, "keep me").unwrap();
    let refused = |what: &str| {
        let err = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut no_wait)
            .expect_err("refused");
        assert!(matches!(err, ProfileError::LockUnsafe { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&lock.display().to_string()), "{text}");
        assert!(text.contains(what), "{text}");
        assert!(text.contains("remove it"), "{text}");
    };
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    refused("a symbolic link");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
    // A dangling link is not followed either (O_CREAT would create its target).
    fs::remove_file(&lock).unwrap();
    let target = d.dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    refused("a symbolic link");
    assert!(!target.exists(), "nothing was created through the link");
    fs::remove_file(&lock).unwrap();

    mkfifo(&lock);
    let started = std::time::Instant::now();
    refused("a FIFO");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a FIFO never blocks"
    );
    fs::remove_file(&lock).unwrap();

    fs::create_dir(&lock).unwrap();
    refused("a directory");
    fs::remove_dir(&lock).unwrap();

    fs::write(&lock, "").unwrap();
    std::os::unix::fs::chown(&lock, Some(4242), None).unwrap();
    refused("owned by another user (uid 4242)");
    fs::remove_file(&lock).unwrap();

    fs::hard_link(&victim, &lock).unwrap();
    refused("2 names");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
    fs::remove_file(&lock).unwrap();

    // A lock file left by a dead run (a regular file of ours, with its pid) is fine.
    fs::write(&lock, "999999").unwrap();
    let held = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut no_wait).unwrap();
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        std::process::id().to_string()
    );
    drop(held);
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_profile_file_that_is_not_a_regular_file_is_refused_at_once_naming_it() {
    let d = Dir::new(Some(&key_file()), None);
    mkfifo(&d.paths.config);
    let started = std::time::Instant::now();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a FIFO never blocks"
    );
    assert!(
        matches!(
            err,
            ProfileError::NotRegular {
                kind: FileKind::Config,
                what: "a FIFO (named pipe)",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&d.paths.config.display().to_string()),
        "{err}"
    );
    fs::remove_file(&d.paths.config).unwrap();

    // A character device other than /dev/null.
    let zero = FilePaths {
        credentials: d.paths.credentials.clone(),
        config: PathBuf::from("/dev/zero"),
    };
    let err = ProfileFiles::load(&zero).unwrap_err();
    assert!(
        err.to_string().contains("/dev/zero is a character device"),
        "{err}"
    );

    // A symlink to a regular file is still fine.
    let real = d.dir.path().join("real-config");
    fs::write(&real, "[default]\nregion = eu-west-1\n").unwrap();
    std::os::unix::fs::symlink(&real, &d.paths.config).unwrap();
    let f = d.load();
    assert_eq!(
        f.profile("default").unwrap().get("region"),
        Some("eu-west-1")
    );
}

/// A regular file another process holds a lease on (a Samba oplock, say) is waited for
/// (the open is retried without blocking), not refused.
// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_file_under_a_lease_is_waited_for_and_then_read() {
    use std::os::fd::AsRawFd;
    let d = Dir::new(Some(&key_file()), None);
    // SAFETY: ignoring SIGIO (the lease break notice, fatal by default) has no preconditions.
    unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
    let holder = fs::File::open(&d.paths.credentials).unwrap();
    // SAFETY: a valid open file descriptor.
    let rc = unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
    assert_eq!(rc, 0, "F_SETLEASE: {}", std::io::Error::last_os_error());
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: a valid open file descriptor.
        unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    });
    let started = std::time::Instant::now();
    let f = d.load();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the lease"
    );
    assert_eq!(f.profiles_with_key(OLD).len(), 1);
    release.join().unwrap();
}

#[test]
fn a_file_over_the_size_cap_is_refused_naming_it_and_the_cap() {
    let d = Dir::new(Some(&key_file()), None);
    let cap = super::open::MAX_FILE_SIZE;
    // Exactly at the cap is read (a sparse file of NUL bytes: a parse error, not a size one).
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&d.paths.credentials)
        .unwrap();
    file.set_len(cap).unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(matches!(err, ProfileError::Parse { .. }), "{err}");
    file.set_len(cap + 1).unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(
        matches!(err, ProfileError::TooLarge { size, .. } if size == cap + 1),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("16 MiB"), "{text}");
    assert!(
        text.contains(&d.paths.credentials.display().to_string()),
        "{text}"
    );
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn dev_null_reads_as_empty_and_is_never_written() {
    let d = Dir::new(Some(&key_file()), None);
    let null_before = fs::metadata("/dev/null").unwrap();
    let paths = FilePaths {
        credentials: PathBuf::from("/dev/null"),
        config: d.paths.config.clone(),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    assert!(f.profile_names().is_empty());
    // The preflight refuses a rotation that would have to write it, naming it.
    let err = f.check_writable().unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::NullDevice {
                kind: FileKind::Credentials,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("/dev/null"), "{err}");
    // And so does the save itself.
    let err = f
        .apply_edits(
            &[KeyEdit::SetProfile {
                profile: "new".into(),
                key_id: NEW.into(),
                secret: Secret::new(NEW_SECRET),
            }],
            &SaveOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ProfileError::NullDevice { .. }), "{err}");
    let null_after = fs::metadata("/dev/null").unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(null_after.file_type().is_char_device());
    assert_eq!(null_after.ino(), null_before.ino());
    assert!(!Path::new("/dev/null.iam-keys.bak").exists());

    // /dev/null as the config file while the credentials file is edited: fine.
    let paths = FilePaths {
        credentials: d.paths.credentials.clone(),
        config: PathBuf::from("/dev/null"),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    f.check_writable().unwrap();
    f.apply_edits(&[replace()], &SaveOptions { backup: false })
        .unwrap();
    assert!(d.read(&d.paths.credentials).contains(NEW));
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_hard_linked_file_is_rewritten_in_place_and_both_names_see_the_new_key() {
    use std::os::unix::fs::MetadataExt;
    for backup in [true, false] {
        let d = Dir::new(Some(&key_file()), None);
        set_mode(&d.paths.credentials, 0o644);
        let other = d.dir.path().join("other-name");
        fs::hard_link(&d.paths.credentials, &other).unwrap();
        let ino = fs::metadata(&other).unwrap().ino();
        let mut f = d.load();
        f.check_writable().unwrap();
        let report = f
            .apply_edits(&[replace()], &SaveOptions { backup })
            .unwrap();
        let saved = &report.files[0];
        assert_eq!(saved.rewritten_in_place, Some(InPlace::HardLinks(2)));
        assert_eq!(saved.mode_tightened, Some((0o644, 0o600)));
        let note = saved.in_place_note().unwrap();
        assert!(
            note.contains("rewritten in place") && note.contains("2 names"),
            "{note}"
        );
        for name in [&d.paths.credentials, &other] {
            let text = d.read(name);
            assert!(
                text.contains(NEW) && !text.contains(OLD),
                "{}",
                name.display()
            );
            assert_eq!(fs::metadata(name).unwrap().ino(), ino);
        }
        assert_eq!(mode(&other), 0o600);
        let bak = d.dir.path().join("credentials.iam-keys.bak");
        // The safety backup is always written first; --no-backup removes it afterwards.
        assert_eq!(bak.exists(), backup, "backup {backup}");
        assert_eq!(saved.backup.is_some(), backup);
        if backup {
            assert_eq!(d.read(&bak), key_file());
        }
        assert!(
            !d.names().iter().any(|n| n.starts_with(TEMP_PREFIX)),
            "{:?}",
            d.names()
        );
    }
}

/// A tmpfs mounted on a directory for the life of the guard (unit tests run as root in CI).
#[cfg(unix)]
struct Tmpfs(PathBuf);

#[cfg(unix)]
impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs is not permitted here ({}); this test needs root and mount(2)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

#[cfg(unix)]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// An in-place rewrite that fails half way (the disk fills up after the backup) puts the
/// previous content back, so both names hold the old key and the error says "unchanged".
#[cfg(unix)]
#[test]
fn a_failed_in_place_rewrite_puts_the_previous_content_back() {
    let d = Dir::new(None, None);
    let disk = d.dir.path().join("disk");
    let _tmpfs = Tmpfs::mount(&disk, "64k");
    // One page (4000 bytes) now; the edit adds a profile and needs a second page.
    let mut old = key_file();
    old.push_str("# padding\n");
    while old.len() < 4000 {
        old.push_str("# padding padding padding padding padding padding padding\n");
    }
    old.truncate(3999);
    old.push('\n');
    let credentials = disk.join("credentials");
    fs::write(&credentials, &old).unwrap();
    let other_in_disk = disk.join("other-name");
    fs::hard_link(&credentials, &other_in_disk).unwrap();
    let paths = FilePaths {
        credentials: credentials.clone(),
        config: d.paths.config.clone(),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    // Fill the disk, then free exactly one page: room for the backup, not for the growth.
    let filler_path = disk.join("filler");
    let mut filler = fs::File::create(&filler_path).unwrap();
    let page = vec![0u8; 4096];
    loop {
        use std::io::Write;
        if filler
            .write_all(&page)
            .and_then(|()| filler.sync_all())
            .is_err()
        {
            break;
        }
    }
    let len = fs::metadata(&filler_path).unwrap().len();
    filler.set_len(len / 4096 * 4096 - 4096).unwrap();
    let err = f
        .apply_edits(
            &[KeyEdit::SetProfile {
                profile: "new".into(),
                key_id: NEW.into(),
                secret: Secret::new(NEW_SECRET),
            }],
            &SaveOptions { backup: false },
        )
        .unwrap_err();
    assert!(matches!(err, ProfileError::Write { .. }), "{err}");
    assert!(err.to_string().contains("it is unchanged"), "{err}");
    for name in [&credentials, &other_in_disk] {
        assert_eq!(
            d.read(name),
            old,
            "{} holds its old content",
            name.display()
        );
    }
    // The safety backup of the in-place rewrite is kept after a failure.
    assert_eq!(d.read(&disk.join("credentials.iam-keys.bak")), old);
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_file_without_other_names_is_still_replaced_by_rename() {
    use std::os::unix::fs::MetadataExt;
    let d = Dir::new(Some(&key_file()), None);
    let ino = fs::metadata(&d.paths.credentials).unwrap().ino();
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions { backup: false })
        .unwrap();
    assert_eq!(report.files[0].rewritten_in_place, None);
    assert_eq!(report.files[0].in_place_note(), None);
    assert_ne!(fs::metadata(&d.paths.credentials).unwrap().ino(), ino);
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn every_temporary_file_is_private_from_creation_and_carries_the_prefix() {
    use std::cell::RefCell;
    use std::os::unix::fs::PermissionsExt;
    use std::rc::Rc;
    let config =
        format!("[profile c]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n");
    let d = Dir::new(Some(&key_file()), Some(&config));
    set_mode(&d.paths.credentials, 0o644);
    set_mode(&d.paths.config, 0o664);
    let seen: Rc<RefCell<Vec<(String, u32, u64)>>> = Rc::default();
    let record = Rc::clone(&seen);
    save::tests_hook::set(Some(Box::new(move |p: &Path| {
        let meta = fs::metadata(p).unwrap();
        record.borrow_mut().push((
            p.file_name().unwrap().to_string_lossy().into_owned(),
            meta.permissions().mode() & 0o7777,
            meta.len(),
        ));
    })));
    let mut f = d.load();
    f.check_writable().unwrap();
    f.apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    save::tests_hook::set(None);
    let seen = seen.borrow();
    // Two probes, then per file a backup and the file itself.
    assert_eq!(seen.len(), 6, "{seen:?}");
    for (name, mode, len) in seen.iter() {
        assert!(name.starts_with(TEMP_PREFIX), "{name}");
        assert_eq!(*mode, 0o600, "{name} was created {mode:o}");
        assert_eq!(*len, 0, "{name} is empty when created");
    }
    assert!(
        !d.names().iter().any(|n| n.starts_with(TEMP_PREFIX)),
        "{:?}",
        d.names()
    );
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn stale_temporary_files_of_ours_are_removed_under_the_lock_and_nothing_else() {
    let d = Dir::new(Some(&key_file()), None);
    let dir = d.dir.path();
    let stale = dir.join(format!("{TEMP_PREFIX}credentials.AbC123"));
    let stale_backup = dir.join(format!("{TEMP_PREFIX}credentials.iam-keys.bak.dEf456"));
    let stale_probe = dir.join(format!("{TEMP_PREFIX}probe.GhI789"));
    for p in [&stale, &stale_backup, &stale_probe] {
        fs::write(p, "secret").unwrap();
    }
    // Kept: a file in use (a save in progress holds its flock), a symlink with the prefix,
    // another user's file, and files without our prefix.
    let in_use = dir.join(format!("{TEMP_PREFIX}credentials.InUse1"));
    fs::write(&in_use, "").unwrap();
    let holder = fs::File::open(&in_use).unwrap();
    holder.try_lock().unwrap();
    let victim = dir.join("victim");
    fs::write(&victim, "").unwrap();
    let link = dir.join(format!("{TEMP_PREFIX}credentials.Link01"));
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let foreign = dir.join(format!("{TEMP_PREFIX}credentials.Other1"));
    fs::write(&foreign, "").unwrap();
    std::os::unix::fs::chown(&foreign, Some(4242), None).unwrap();
    let unrelated = dir.join(".credentials.AbC123.iam-keys-tmp");
    fs::write(&unrelated, "").unwrap();

    let lock = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut no_wait).unwrap();
    let mut removed = lock.remove_stale_temp_files(&d.paths);
    removed.sort();
    let mut want = vec![stale.clone(), stale_backup.clone(), stale_probe.clone()];
    want.sort();
    assert_eq!(removed, want);
    for p in [&in_use, &link, &foreign, &unrelated, &victim] {
        assert!(fs::symlink_metadata(p).is_ok(), "{} is kept", p.display());
    }
    drop(holder);
    assert_eq!(lock.remove_stale_temp_files(&d.paths), vec![in_use]);
}
