//! Tests of [`super`] (journal.rs), kept apart so the module reads on its own.

use super::*;

pub(crate) fn sample() -> Journal {
    Journal {
        version: VERSION,
        stage: Stage::Created,
        started: "2026-11-22T00:00:00Z".into(),
        user: "alice".into(),
        account: "123456789012".into(),
        arn: "arn:aws:iam::123456789012:user/alice".into(),
        old_key_id: "AKIAOLD0000000000000".into(),
        old_secret: Secret::new("old-secret-value-0000000000000000000000000"),
        known_keys: vec!["AKIAOLD0000000000000".into()],
        profiles: vec!["dev".into()],
        files: vec![PathBuf::from("/tmp/credentials")],
        retire: Retire::Deactivate,
        deleted_inactive: None,
        new_key_id: Some("AKIANEW0000000000000".into()),
        new_secret: Some(Secret::new("new-secret-value-0000000000000000000000000")),
        endpoint: Endpoint {
            region: "us-east-1".into(),
            iam_endpoint: None,
            sts_endpoint: None,
        },
        mfa_serial: None,
        destination: Destination::Holders,
        auth_profile: None,
        printed: false,
        paths: Some(JournalPaths {
            credentials: PathBuf::from("/tmp/credentials"),
            config: PathBuf::from("/tmp/config"),
        }),
        create_window: None,
        orphans: Vec::new(),
        gates: Vec::new(),
        hook_timeout_ms: None,
    }
}

#[test]
fn a_journal_round_trips_with_its_secrets_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::beside(&dir.path().join("credentials"));
    let journal = sample();
    store.write(&journal).unwrap();
    assert_eq!(store.readable(), vec![journal.clone()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file_mode = std::fs::metadata(store.path_for(&journal.old_key_id))
            .unwrap()
            .permissions()
            .mode();
        let dir_mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(file_mode & 0o777, 0o600);
        assert_eq!(dir_mode & 0o777, 0o700);
    }
    let leftovers: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left: {leftovers:?}"
    );
    store.remove(&journal.old_key_id).unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_new_rotation_never_overwrites_a_pending_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::beside(&dir.path().join("credentials"));
    let pending = sample();
    store.write(&pending).unwrap();
    let mut fresh = sample();
    fresh.stage = Stage::Intent;
    fresh.new_key_id = None;
    fresh.new_secret = None;
    let err = store.start(&fresh).unwrap_err();
    assert!(matches!(err, JournalError::Pending { .. }), "{err}");
    assert_eq!(
        store.readable(),
        vec![pending],
        "the pending journal is untouched"
    );
}

#[test]
fn the_journal_debug_form_shows_no_secret() {
    let text = format!("{:?}", sample());
    assert!(!text.contains("old-secret-value"), "{text}");
    assert!(!text.contains("new-secret-value"), "{text}");
}

/// Issue 10, defect 7: one unreadable journal is reported for its own key and does not
/// hide the others; a newer version is named for what it is.
#[test]
fn a_damaged_or_newer_journal_is_one_entry_among_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::beside(&dir.path().join("credentials"));
    store.write(&sample()).unwrap();
    std::fs::write(store.path_for("AKIAX"), b"{ not json").unwrap();
    let mut newer = serde_json::to_value(sample()).unwrap();
    newer["version"] = 99.into();
    newer["old_key_id"] = "AKIAZ".into();
    std::fs::write(store.path_for("AKIAZ"), newer.to_string()).unwrap();

    let entries = store.list().unwrap();
    let keys: Vec<&str> = entries.iter().map(|e| e.old_key_id.as_str()).collect();
    assert_eq!(keys, ["AKIAOLD0000000000000", "AKIAX", "AKIAZ"]);
    assert!(entries[0].journal.is_ok());
    let damaged = entries[1].journal.as_ref().unwrap_err();
    assert!(matches!(damaged, JournalError::Damaged { .. }), "{damaged}");
    assert!(
        damaged.to_string().contains("journal-AKIAX.json"),
        "{damaged}"
    );
    let newer = entries[2].journal.as_ref().unwrap_err();
    assert!(
        matches!(newer, JournalError::Newer { version: 99, .. }),
        "{newer}"
    );
    assert!(newer.to_string().contains("newer iam-keys"), "{newer}");
    assert!(!newer.to_string().contains("damaged"), "{newer}");
}

#[test]
fn a_version_1_journal_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::beside(&dir.path().join("credentials"));
    let mut v1 = serde_json::to_value(sample()).unwrap();
    v1["version"] = 1.into();
    let object = v1.as_object_mut().unwrap();
    object.remove("paths");
    object.remove("create_window");
    object.remove("orphans");
    std::fs::create_dir_all(store.dir()).unwrap();
    std::fs::write(store.path_for("AKIAOLD0000000000000"), v1.to_string()).unwrap();
    let read = store.readable();
    assert_eq!(read[0].version, 1);
    assert_eq!(read[0].paths, None);
}

/// Issue 10, defect 1: a run where `AWS_SHARED_CREDENTIALS_FILE` points elsewhere, or
/// that names the file through a symlink, finds the journal through the index.
#[test]
fn the_index_finds_a_journal_beside_another_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = JournalStore::beside(&dir.path().join("a/credentials")).with_index(Some(&state));
    let other = JournalStore::beside(&dir.path().join("b/credentials")).with_index(Some(&state));
    let journal = sample();
    first.start(&journal).unwrap();

    let found = other.list().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, first.path_for(&journal.old_key_id));
    assert_eq!(found[0].store.dir(), first.dir());
    let err = other.start(&journal).unwrap_err();
    assert!(matches!(err, JournalError::Pending { .. }), "{err}");

    found[0].store.remove(&journal.old_key_id).unwrap();
    assert!(other.list().unwrap().is_empty());
    assert!(first.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(state.join("journals")).unwrap().count(),
        0
    );
}

/// Issue 10, defect 5 (journal side): a journal directory that is a symlink is refused,
/// and nothing is written through it.
#[cfg(unix)]
#[test]
fn a_symlinked_journal_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join(".iam-keys")).unwrap();
    let store = JournalStore::beside(&dir.path().join("credentials"));
    let err = store.start(&sample()).unwrap_err();
    assert!(matches!(err, JournalError::Unsafe { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(store.list().is_err());
}

#[cfg(unix)]
#[test]
fn a_journal_directory_open_to_others_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = JournalStore::beside(&dir.path().join("credentials"));
    std::fs::create_dir(store.dir()).unwrap();
    std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    store.start(&sample()).unwrap();
    let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}
