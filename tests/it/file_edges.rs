//! The file-system edges of issue 10, against moto: what sits at the lock path or at a
//! profile file's path is not always a regular file of ours (a planted symlink, a FIFO, a
//! directory, a huge file), a file can have a second name (a hard link, a single-file bind
//! mount), and a save killed mid-way leaves a temporary file. Each test states the rule it
//! checks and then runs the invariants of [`crate::invariants`].
//!
//! The tests run as root (bind mounts need it); where the machine does not allow a mount,
//! the test fails with the reason: nothing is skipped.

use crate::invariants::{self, Case, Retired, block};
use crate::profiles_compat::botocore_reads;
use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use iam_keys::profiles::FilePaths;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A refusal must come at once: a run that hangs (a FIFO read) is killed here and fails.
const PROMPT: Duration = Duration::from_secs(20);

/// A sandbox whose `default` profile holds the case's key.
fn standard(sandbox: &Sandbox, case: &Case) {
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    sandbox.write_config("[default]\nregion = us-east-1\n");
}

fn mkfifo(path: &Path) {
    let out = std::process::Command::new("mkfifo")
        .arg(path)
        .output()
        .expect("run mkfifo");
    assert!(
        out.status.success(),
        "mkfifo {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- the lock (defect 5)

#[test]
fn a_symlink_planted_at_the_lock_path_is_refused_and_its_target_is_untouched() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "symlinked lock", &["default"]);
    standard(&sandbox, &case);
    // Someone who can write the directory plants a link to a file the victim can write.
    let victim = sandbox.path("victim");
    std::fs::write(&victim, "precious content\n").unwrap();
    let lock = sandbox.path(".aws/credentials.iam-keys.lock");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let before = (sandbox.read_credentials(), sandbox.read_config());
    let run = sandbox.cmd(&["rotate", "--yes"]).timeout(PROMPT).run();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious content\n",
        "the link's target was changed\n{run}"
    );
    run.assert_code(2)
        .assert_stderr_contains(&lock.display().to_string())
        .assert_stderr_contains("symbolic link");
    assert!(
        std::fs::symlink_metadata(&lock)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left for the user to inspect"
    );
    assert!(
        (sandbox.read_credentials(), sandbox.read_config()) == before,
        "the files changed"
    );
    invariants::restored(&case, &[&run], &case.old_only(), false);
}

#[test]
fn a_stale_lock_file_left_by_a_dead_run_is_still_fine() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "stale lock", &["default"]);
    standard(&sandbox, &case);
    // A run killed with SIGKILL leaves its pid in the (unlocked) file.
    std::fs::write(sandbox.path(".aws/credentials.iam-keys.lock"), "999999").unwrap();
    let run = sandbox.cmd(&["rotate", "--yes"]).timeout(PROMPT).run();
    run.assert_code(0);
    invariants::converged(&case, &[&run], Retired::Inactive);
}

// ---------------------------------------------------------------- non-regular files (defect 6)

/// Run `rotate --yes` and check that it is refused promptly, with exit 2, naming `path`,
/// with `why` in the message, and that nothing changed.
fn refused_at_once(sandbox: &Sandbox, case: &Case, args: &[&str], path: &Path, why: &str) {
    let before = sandbox.read_credentials();
    let started = Instant::now();
    let run = sandbox.cmd(args).timeout(PROMPT).run();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the refusal took {:?}\n{run}",
        started.elapsed()
    );
    run.assert_code(2)
        .assert_stderr_contains(&path.display().to_string())
        .assert_stderr_contains(why);
    assert_eq!(
        sandbox.read_credentials(),
        before,
        "the credentials changed"
    );
    assert_eq!(
        moto().list_keys(&case.user),
        case.old_only(),
        "IAM changed\n{run}"
    );
}

#[test]
fn a_fifo_as_the_config_file_is_refused_at_once() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "FIFO config", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    let fifo = sandbox.path("config-fifo");
    mkfifo(&fifo);
    let fifo_arg = fifo.display().to_string();
    refused_at_once(
        &sandbox,
        &case,
        &["rotate", "--yes", "--config-file", &fifo_arg],
        &fifo,
        "a FIFO",
    );
    // The lock was released: the next run is not kept waiting.
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let run = sandbox
        .cmd(&["rotate", "--yes", "--lock-timeout", "0s"])
        .timeout(PROMPT)
        .run();
    run.assert_code(0);
    invariants::converged(&case, &[&run], Retired::Inactive);
}

#[test]
fn a_fifo_as_the_credentials_file_is_refused_at_once_by_status_too() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "FIFO credentials", &["default"]);
    sandbox.write_config(&format!(
        "{}region = us-east-1\n",
        block("default", &case.old_id, &case.old_secret)
    ));
    mkfifo(&sandbox.credentials);
    let started = Instant::now();
    let run = sandbox.cmd(&["status"]).timeout(PROMPT).run();
    assert!(started.elapsed() < Duration::from_secs(10), "{run}");
    run.assert_code(2)
        .assert_stderr_contains(&sandbox.credentials.display().to_string())
        .assert_stderr_contains("a FIFO");
}

#[test]
fn a_directory_as_the_config_file_is_refused_naming_it() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "directory config", &["default"]);
    standard(&sandbox, &case);
    std::fs::remove_file(&sandbox.config).unwrap();
    std::fs::create_dir(&sandbox.config).unwrap();
    refused_at_once(
        &sandbox,
        &case,
        &["rotate", "--yes"],
        &sandbox.config,
        "is a directory",
    );
}

#[test]
fn an_oversize_credentials_file_is_refused_naming_it_and_the_cap() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "oversize", &["default"]);
    standard(&sandbox, &case);
    // A sparse file of 17 MiB: valid profiles first, then holes (NUL bytes).
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&sandbox.credentials)
        .unwrap();
    file.set_len(17 * 1024 * 1024).unwrap();
    drop(file);
    refused_at_once(
        &sandbox,
        &case,
        &["rotate", "--yes"],
        &sandbox.credentials,
        "16 MiB",
    );
}

#[test]
fn dev_null_as_the_config_file_reads_as_empty_and_is_never_written() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "config /dev/null", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    let null_before = std::fs::metadata("/dev/null").unwrap();
    let run = sandbox
        .cmd(&["rotate", "--yes", "--config-file", "/dev/null"])
        .timeout(PROMPT)
        .run();
    run.assert_code(0).assert_stdout_contains("1 rotated");
    let null_after = std::fs::metadata("/dev/null").unwrap();
    assert!(
        null_after.file_type().is_char_device() && null_after.ino() == null_before.ino(),
        "/dev/null is still the device"
    );
    assert!(
        sandbox
            .read_credentials()
            .contains("aws_access_key_id = AKIA")
    );
    assert!(!sandbox.read_credentials().contains(&case.old_id));
}

// ---------------------------------------------------------------- second names (defect 8)

/// What botocore reads for `default` when the credentials file is `credentials`.
fn botocore_key_at(sandbox: &Sandbox, credentials: &Path) -> Option<String> {
    let paths = FilePaths {
        credentials: credentials.to_path_buf(),
        config: sandbox.config.clone(),
    };
    botocore_reads(sandbox.home(), &paths, &["default"])
        .remove("default")
        .and_then(|seen| seen.key)
}

#[test]
fn a_hard_linked_credentials_file_is_rewritten_in_place_so_both_names_hold_the_new_key() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "hard link", &["default"]);
    standard(&sandbox, &case);
    let other = sandbox.path("other-name");
    std::fs::hard_link(&sandbox.credentials, &other).unwrap();
    let inode = std::fs::metadata(&sandbox.credentials).unwrap().ino();
    let run = sandbox
        .cmd(&["rotate", "--yes", "--no-backup"])
        .timeout(Duration::from_secs(120))
        .run();
    run.assert_code(0)
        .assert_stderr_contains("rewritten in place");
    let new = invariants::converged(&case, &[&run], Retired::Inactive);
    assert_eq!(
        botocore_key_at(&sandbox, &other).as_deref(),
        Some(new.as_str()),
        "the other name holds the new key"
    );
    let meta = std::fs::metadata(&sandbox.credentials).unwrap();
    assert_eq!(meta.ino(), inode, "the same file, not a replacement");
    assert_eq!(meta.nlink(), 2, "both names are kept");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    // --no-backup: the safety backup written before the in-place rewrite is removed.
    assert!(
        !sandbox.path(".aws/credentials.iam-keys.bak").exists(),
        "no backup is left with --no-backup"
    );
}

/// `mount --bind` of one file for the life of the guard.
struct BindMount(PathBuf);

impl BindMount {
    fn mount(source: &Path, target: &Path) -> BindMount {
        let out = std::process::Command::new("mount")
            .arg("--bind")
            .arg(source)
            .arg(target)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount --bind of a single file is not permitted here ({}); this test needs root \
             and mount(2) (CI runs as root)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        BindMount(target.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_bind_mounted_credentials_file_is_rewritten_in_place() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "bind mount", &["default"]);
    // The host's file, mounted alone over the sandbox's credentials file (as a container
    // gets it): renaming over a mount point fails with EBUSY.
    let host = sandbox.path("host");
    std::fs::create_dir(&host).unwrap();
    let source = host.join("credentials");
    std::fs::write(&source, block("default", &case.old_id, &case.old_secret)).unwrap();
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o600)).unwrap();
    sandbox.write_credentials("");
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let mount = BindMount::mount(&source, &sandbox.credentials);
    let run = sandbox
        .cmd(&["rotate", "--yes"])
        .timeout(Duration::from_secs(120))
        .run();
    run.assert_code(0)
        .assert_stderr_contains("rewritten in place");
    let new = invariants::converged(&case, &[&run], Retired::Inactive);
    assert!(
        sandbox.read_credentials().contains(&new),
        "the mounted view holds the new key"
    );
    drop(mount);
    let host_text = std::fs::read_to_string(&source).unwrap();
    assert!(
        host_text.contains(&new),
        "the host's file holds the new key"
    );
    assert!(!host_text.contains(&case.old_id));
    assert!(
        sandbox.path(".aws/credentials.iam-keys.bak").exists(),
        "the backup is kept (no --no-backup)"
    );
}

// ---------------------------------------------------------------- temporary files

#[test]
fn a_stale_temporary_file_of_ours_is_removed_and_anyone_elses_is_kept() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "stale temp", &["default"]);
    standard(&sandbox, &case);
    // What a save killed between creating its temporary file and renaming it leaves.
    let stale = sandbox.path(".aws/.iam-keys-tmp.credentials.Xy12Ab");
    std::fs::write(&stale, block("default", "AKIASTALESTALESTALE1", "s")).unwrap();
    std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Not ours: another user's file with the same shape of name is left alone.
    let foreign = sandbox.path(".aws/.iam-keys-tmp.config.Zz99Zz");
    std::fs::write(&foreign, "").unwrap();
    std::os::unix::fs::chown(&foreign, Some(4242), Some(4242)).unwrap();
    let run = sandbox.cmd(&["rotate", "--yes"]).timeout(PROMPT).run();
    run.assert_code(0)
        .assert_stderr_contains("removed a temporary file left by an interrupted save");
    assert!(!stale.exists(), "the stale temporary file is gone");
    assert!(foreign.exists(), "another user's file is kept");
    invariants::converged(&case, &[&run], Retired::Inactive);
    let left: Vec<String> = std::fs::read_dir(sandbox.path(".aws"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".iam-keys-tmp.") && !n.contains("Zz99Zz"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn a_dry_run_removes_nothing() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "edges", "dry run temp", &["default"]);
    standard(&sandbox, &case);
    let stale = sandbox.path(".aws/.iam-keys-tmp.credentials.Xy12Ab");
    std::fs::write(&stale, "").unwrap();
    let run = sandbox.cmd(&["rotate", "--dry-run"]).timeout(PROMPT).run();
    run.assert_code(0);
    assert!(
        stale.exists(),
        "a dry run takes no lock and deletes nothing"
    );
}
