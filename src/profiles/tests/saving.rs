//! Profile-file tests: saving.

use super::*;

#[cfg(unix)]
#[test]
fn a_symlinked_credentials_file_stays_a_symlink_and_its_target_is_edited() {
    let d = Dir::new(None, None);
    let real_dir = d.dir.path().join("dotfiles");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("aws-credentials");
    fs::write(&real, key_file()).unwrap();
    std::os::unix::fs::symlink("dotfiles/aws-credentials", &d.paths.credentials).unwrap();
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    assert!(
        fs::symlink_metadata(&d.paths.credentials)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(report.files[0].path, real_dir.join("aws-credentials"));
    assert_eq!(
        d.read(&real),
        key_file().replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
    assert_eq!(
        report.files[0].backup.as_deref(),
        Some(real_dir.join("aws-credentials.iam-keys.bak").as_path())
    );
}

#[cfg(unix)]
#[test]
fn a_loose_mode_is_tightened_to_0600_and_reported_and_the_backup_is_0600() {
    let d = Dir::new(Some(&key_file()), Some("[profile x]\nregion = y\n"));
    set_mode(&d.paths.credentials, 0o644);
    set_mode(&d.paths.config, 0o644);
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    let saved = &report.files[0];
    assert_eq!(saved.mode_tightened, Some((0o644, 0o600)));
    assert_eq!(mode(&d.paths.credentials), 0o600);
    let backup = saved.backup.clone().unwrap();
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(d.read(&backup), key_file());
    assert_eq!(
        mode(&d.paths.config),
        0o644,
        "the config file was not touched"
    );

    // A second save replaces the backup; a stricter mode is kept.
    set_mode(&d.paths.credentials, 0o400);
    let back = KeyEdit::Replace {
        old_key_id: NEW.into(),
        new_key_id: OLD.into(),
        new_secret: Secret::new(OLD_SECRET),
    };
    let report = f.apply_edits(&[back], &SaveOptions::default()).unwrap();
    assert_eq!(report.files[0].mode_tightened, None);
    assert_eq!(mode(&d.paths.credentials), 0o400);
    assert_eq!(
        d.read(&backup),
        key_file().replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
}

#[cfg(unix)]
#[test]
fn no_backup_when_turned_off_and_a_new_file_is_0600_in_a_0700_directory() {
    let d = Dir::new(None, None);
    let paths = FilePaths {
        credentials: d.dir.path().join("new/.aws/credentials"),
        config: d.dir.path().join("new/.aws/config"),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    let edit = KeyEdit::SetProfile {
        profile: "dev".into(),
        key_id: NEW.into(),
        secret: Secret::new(NEW_SECRET),
    };
    let report = f
        .apply_edits(&[edit], &SaveOptions { backup: false })
        .unwrap();
    assert_eq!(report.files[0].backup, None);
    assert_eq!(mode(&paths.credentials), 0o600);
    assert_eq!(mode(&d.dir.path().join("new/.aws")), 0o700);
    assert_eq!(
        fs::read_to_string(&paths.credentials).unwrap(),
        format!("[dev]\naws_access_key_id = {NEW}\naws_secret_access_key = {NEW_SECRET}\n")
    );
    assert!(!paths.config.exists());
}

#[test]
fn a_concurrent_change_is_kept_and_the_edit_reapplied() {
    let d = Dir::new(Some(&key_file()), None);
    let mut f = d.load();
    // `aws configure set region ...` meanwhile.
    let theirs = format!(
        "{}region = eu-north-1\n[added]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n",
        key_file()
    );
    fs::write(&d.paths.credentials, &theirs).unwrap();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    assert!(report.files[0].reapplied_on_newer_content);
    assert_eq!(
        d.read(&d.paths.credentials),
        theirs.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
    assert_eq!(d.read(report.files[0].backup.as_ref().unwrap()), theirs);
    assert_eq!(f.profiles_with_key(NEW).len(), 2);
}

#[test]
fn a_concurrent_change_that_removed_the_key_stops_and_writes_nothing() {
    let d = Dir::new(Some(&key_file()), None);
    let mut f = d.load();
    let theirs = "[default]\naws_access_key_id = AKIASOMEONEELSE\naws_secret_access_key = x\n";
    fs::write(&d.paths.credentials, theirs).unwrap();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    assert!(matches!(err, ProfileError::ChangedOnDisk { .. }), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(d.read(&d.paths.credentials), theirs);
    assert_eq!(d.names(), ["credentials"]);
}

#[test]
fn a_failed_write_leaves_the_file_intact_and_no_temporary_file() {
    let d = Dir::new(Some(&key_file()), None);
    let mut f = d.load();
    // The backup path is taken by a non-empty directory: the rename of the backup's
    // temporary file fails after it was written.
    let blocker = d.dir.path().join("credentials.iam-keys.bak");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), "").unwrap();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, ProfileError::Write { saved, .. } if saved.is_empty()),
        "{err}"
    );
    assert!(err.to_string().contains("it is unchanged"), "{err}");
    assert_eq!(d.read(&d.paths.credentials), key_file());
    assert_eq!(d.names(), ["credentials", "credentials.iam-keys.bak"]);
    // The in-memory state is unchanged too: the edit can be retried.
    assert_eq!(f.profiles_with_key(OLD).len(), 1);
}

#[test]
fn a_failure_on_the_config_file_says_the_credentials_file_was_saved() {
    let config =
        format!("[profile c]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n");
    let d = Dir::new(Some(&key_file()), Some(&config));
    let mut f = d.load();
    let blocker = d.dir.path().join("config.iam-keys.bak");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), "").unwrap();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    match &err {
        ProfileError::Write { kind, saved, .. } => {
            assert_eq!(*kind, FileKind::Config);
            assert_eq!(saved, std::slice::from_ref(&d.paths.credentials));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("already saved"), "{err}");
    assert_eq!(d.read(&d.paths.config), config);
    assert!(d.read(&d.paths.credentials).contains(NEW));
    assert!(
        !d.names().iter().any(|n| n.contains("tmp")),
        "{:?}",
        d.names()
    );
}

#[test]
fn check_writable_passes_without_leaving_anything_and_fails_under_a_regular_file() {
    let d = Dir::new(Some(&key_file()), None);
    d.load().check_writable().unwrap();
    assert_eq!(d.names(), ["credentials"]);

    let blocked = FilePaths {
        credentials: d.paths.credentials.join("sub/credentials"),
        config: d.paths.config.clone(),
    };
    let f = ProfileFiles::from_texts(&blocked, "", "").unwrap();
    let err = f.check_writable().unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::NotWritable {
                kind: FileKind::Credentials,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sub/credentials"), "{err}");
}

#[test]
fn a_second_lock_holder_times_out_naming_the_first_and_the_lock_is_released_on_drop() {
    let d = Dir::new(None, None);
    let first = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut |_, _| {
        panic!("the first acquirer must not wait")
    })
    .unwrap();
    assert_eq!(first.path(), d.dir.path().join("credentials.iam-keys.lock"));
    let mut calls = Vec::new();
    let started = std::time::Instant::now();
    let err = RunLock::acquire(
        &d.paths.credentials,
        Duration::from_millis(350),
        &mut |p, pid| calls.push((p.to_path_buf(), pid)),
    )
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(350));
    // Windows byte-range locks are mandatory: another handle cannot read the holder's pid
    // (wine lets it), so there the waiter may not know it; everywhere else it must.
    let me = Some(std::process::id());
    let seen = if cfg!(windows) && calls.first().is_some_and(|c| c.1.is_none()) {
        None
    } else {
        me
    };
    assert_eq!(calls, [(first.path().to_path_buf(), seen)]);
    match &err {
        ProfileError::LockTimeout { holder, .. } => assert_eq!(*holder, seen),
        other => panic!("unexpected {other}"),
    }
    if seen.is_some() {
        assert!(
            err.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{err}"
        );
    }
    drop(first);
    let again = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut |_, _| {
        panic!("released")
    });
    assert!(again.is_ok());
}
