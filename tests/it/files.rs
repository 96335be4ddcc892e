//! Files and processes (issue 6): real file-system failures and real concurrent processes
//! around a rotation, each followed by the invariants of [`crate::invariants`].
//!
//! The tests run as root (mode bits do not stop root), so read-only and full are made real:
//! a directory made immutable with `chattr +i` (EPERM for root too), and a 64 KiB tmpfs
//! mounted for the test and filled up (ENOSPC). Both are undone when the test ends, failing
//! or not. Where the machine allows neither, the test fails with the reason: nothing is
//! skipped.

use crate::invariants::{self, Case, Retired, block};
use crate::support::cmd::{Run, Sandbox, finish};
use crate::support::moto::moto;
use crate::support::proxy::{FaultProxy, KeyMatch, Rule};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

fn verbose<'a>(sandbox: &'a Sandbox, args: &[&str]) -> crate::support::cmd::Cmd<'a> {
    let mut args = args.to_vec();
    args.push("-vvv");
    sandbox.cmd(&args).env("RUST_LOG", "trace")
}

/// `chattr +i` on a path for the life of the guard (root cannot create, delete or rename
/// entries in an immutable directory).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let out = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .output()
            .expect("run chattr");
        assert!(
            out.status.success(),
            "chattr +i {} is not possible here ({}): this test needs a file system with \
             immutable attributes and root",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// A tmpfs of `size` mounted on `dir` for the life of the guard.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
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
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_read_only_directory_is_refused_before_anything_changes() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "read-only directory", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    sandbox.write_config("[default]\nregion = us-east-1\n");
    // The lock file is made first (as an earlier run leaves it); then nothing in `.aws`
    // can be created, renamed or removed, by root either.
    std::fs::write(sandbox.path(".aws/credentials.iam-keys.lock"), "").unwrap();
    let before = (sandbox.read_credentials(), sandbox.read_config());
    let guard = Immutable::set(&sandbox.path(".aws"));
    let run = verbose(&sandbox, &["rotate", "--yes"]).run();
    drop(guard);
    run.assert_code(1)
        .assert_stdout_contains("1 failed")
        .assert_stdout_contains(".aws");
    assert!(
        (sandbox.read_credentials(), sandbox.read_config()) == before,
        "the files changed"
    );
    invariants::restored(&case, &[&run], &case.old_only(), false);
}

#[test]
fn a_directory_that_turns_read_only_mid_rotation_is_undone() {
    // The config file lives (through a symlink) in its own directory, which becomes
    // immutable after the files were read: the credentials file is saved, the config file
    // cannot be; the credentials file must be put back and the new key deleted.
    let m = moto();
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "read-only mid-rotation", &["a", "c"]);
    sandbox.write_credentials(&block("a", &case.old_id, &case.old_secret));
    let cfgdir = sandbox.path("cfgdir");
    std::fs::create_dir(&cfgdir).unwrap();
    std::fs::write(
        cfgdir.join("config"),
        format!(
            "[profile c]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = us-east-1\n",
            case.old_id, case.old_secret
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        cfgdir.join("config"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink(cfgdir.join("config"), &sandbox.config).unwrap();
    let before = (sandbox.read_credentials(), sandbox.read_config());
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::hold_before("CreateAccessKey").times(1));
    let child = verbose(&sandbox, &["rotate", "--all", "--yes"])
        .endpoint(&proxy.endpoint)
        .start();
    assert!(proxy.wait_held(1, WAIT), "CreateAccessKey was not held");
    let guard = Immutable::set(&cfgdir);
    proxy.release_all();
    let run = child.finish();
    drop(guard);
    run.assert_code(1)
        .assert_stdout_contains("writing the files failed")
        .assert_stdout_contains("was deleted again, files unchanged");
    assert!(
        (sandbox.read_credentials(), sandbox.read_config()) == before,
        "the files are as before"
    );
    invariants::restored(&case, &[&run], &case.old_only(), true);
}

#[test]
fn a_full_disk_fails_the_save_and_is_undone() {
    // The credentials file is a link into a 64 KiB tmpfs filled to the last byte; the
    // journal lives beside the link (in HOME/.aws), as for a dotfiles repository.
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "full disk", &["default"]);
    let disk = sandbox.path("disk");
    let tmpfs = Tmpfs::mount(&disk, "64k").unwrap_or_else(|why| {
        panic!(
            "mounting a 64 KiB tmpfs is not permitted here ({why}); this test needs root and \
             mount(2) (CI runs as root)"
        )
    });
    let real = disk.join("credentials");
    std::fs::write(&real, block("default", &case.old_id, &case.old_secret)).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, &sandbox.credentials).unwrap();
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let before = (sandbox.read_credentials(), sandbox.read_config());
    // The disk fills up while the rotation runs (after it took its lock and read the
    // files; a disk full from the start fails earlier, at the lock, exit 2).
    let proxy = FaultProxy::start(&moto().endpoint);
    proxy.add_rule(Rule::hold_before("CreateAccessKey").times(1));
    let child = verbose(&sandbox, &["rotate", "--yes"])
        .endpoint(&proxy.endpoint)
        .start();
    assert!(proxy.wait_held(1, WAIT), "CreateAccessKey was not held");
    let mut filler = std::fs::File::create(disk.join("filler")).unwrap();
    let chunk = vec![0u8; 1024];
    let full = loop {
        if let Err(e) = filler.write_all(&chunk).and_then(|()| filler.sync_all()) {
            break e;
        }
    };
    assert_eq!(
        full.raw_os_error(),
        Some(28),
        "the tmpfs is full (ENOSPC): {full}"
    );
    proxy.release_all();
    let run = child.finish();
    run.assert_code(1)
        .assert_stdout_contains("writing the files failed")
        .assert_stdout_contains("No space left on device")
        .assert_stdout_contains("was deleted again, files unchanged");
    assert!(
        (sandbox.read_credentials(), sandbox.read_config()) == before,
        "the files are as before"
    );
    invariants::restored(&case, &[&run], &case.old_only(), false);
    drop(filler);
    drop(tmpfs);
}

#[test]
fn a_credentials_file_behind_a_symlink_stays_a_symlink() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "symlink", &["default"]);
    let dotfiles = sandbox.path("dotfiles");
    std::fs::create_dir(&dotfiles).unwrap();
    let real = dotfiles.join("aws-credentials");
    std::fs::write(&real, block("default", &case.old_id, &case.old_secret)).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&real, &sandbox.credentials).unwrap();
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let run = verbose(&sandbox, &["rotate", "--yes"]).run();
    run.assert_code(0);
    assert!(
        std::fs::symlink_metadata(&sandbox.credentials)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the credentials file is still a symlink"
    );
    assert_eq!(
        std::fs::read_link(&sandbox.credentials).unwrap(),
        real,
        "to the same target"
    );
    let new = invariants::converged(&case, &[&run], Retired::Inactive);
    assert!(
        std::fs::read_to_string(&real).unwrap().contains(&new),
        "the target holds the new key"
    );
    assert_eq!(mode(&real), 0o600);
}

#[test]
fn a_0644_credentials_file_is_tightened_to_0600_and_the_user_is_told() {
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "mode 0644", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    sandbox.write_config("[default]\nregion = us-east-1\n");
    std::fs::set_permissions(&sandbox.credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = verbose(&sandbox, &["rotate", "--yes"]).run();
    run.assert_code(0)
        .assert_stderr_contains("mode tightened from 0644 to 0600");
    assert_eq!(mode(&sandbox.credentials), 0o600);
    invariants::converged(&case, &[&run], Retired::Inactive);
}

#[test]
fn an_aws_configure_set_between_the_read_and_the_write_is_not_lost() {
    let m = moto();
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "configure set meanwhile", &["shared"]);
    sandbox.write_credentials(&block("shared", &case.old_id, &case.old_secret));
    sandbox.write_config(&format!(
        "{}region = us-east-1\noutput = json\n",
        block("profile shared", &case.old_id, &case.old_secret)
    ));
    let proxy = FaultProxy::start(&m.endpoint);
    proxy.add_rule(Rule::hold_before("CreateAccessKey").times(1));
    let child = verbose(&sandbox, &["rotate", "--profile", "shared", "--yes"])
        .endpoint(&proxy.endpoint)
        .start();
    assert!(proxy.wait_held(1, WAIT), "CreateAccessKey was not held");
    // The AWS CLI edits the config file while the rotation holds the old content.
    sandbox
        .aws(&[
            "configure",
            "set",
            "region",
            "eu-north-1",
            "--profile",
            "shared",
        ])
        .run()
        .assert_code(0);
    sandbox
        .aws(&["configure", "set", "cli_pager", "", "--profile", "shared"])
        .run()
        .assert_code(0);
    assert!(sandbox.read_config().contains("eu-north-1"));
    proxy.release_all();
    let run = child.finish();
    run.assert_code(0)
        .assert_stderr_contains("was changed by another program during the rotation");
    let new = invariants::converged(&case, &[&run], Retired::Inactive);
    let config = sandbox.read_config();
    assert!(
        config.contains("region = eu-north-1"),
        "the AWS CLI's edit is kept"
    );
    assert!(
        config.contains("cli_pager"),
        "the AWS CLI's new key is kept"
    );
    assert!(config.contains("output = json"));
    assert!(config.contains(&new), "and the new key is written");
    assert!(!config.contains(&case.old_id));
}

/// Whether process `pid` has `path` open (its /proc fd links).
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(|e| e.ok())
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == path))
}

#[test]
fn two_rotations_started_at_once_serialize_on_the_lock() {
    let m = moto();
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "two at once", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let proxy = FaultProxy::start(&m.endpoint);
    // Whichever gets the lock first is held at CreateAccessKey until the other is waiting.
    proxy.add_rule(Rule::hold_before("CreateAccessKey").times(1));
    let first = verbose(&sandbox, &["rotate", "--yes", "--lock-timeout", "60s"])
        .endpoint(&proxy.endpoint)
        .start();
    let second = verbose(&sandbox, &["rotate", "--yes", "--lock-timeout", "60s"])
        .endpoint(&proxy.endpoint)
        .start();
    assert!(proxy.wait_held(1, WAIT), "CreateAccessKey was not held");
    let lock = std::fs::canonicalize(sandbox.path(".aws/credentials.iam-keys.lock")).unwrap();
    let deadline = Instant::now() + WAIT;
    while !(has_open(first.id(), &lock) && has_open(second.id(), &lock)) {
        assert!(
            Instant::now() < deadline,
            "both runs did not open the lock file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.release_all();
    let runs = [first.finish(), second.finish()];
    let mut codes: Vec<i32> = runs.iter().map(|r| r.status).collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![0, 1],
        "one rotates, the other then refuses\n{}\n{}",
        runs[0],
        runs[1]
    );
    let (winner, loser) = if runs[0].status == 0 {
        (&runs[0], &runs[1])
    } else {
        (&runs[1], &runs[0])
    };
    winner.assert_stdout_contains("1 rotated");
    loser
        .assert_stderr_contains("waiting up to 60s for another iam-keys run")
        .assert_stdout_contains("--delete-inactive");
    assert_eq!(proxy.count("CreateAccessKey"), 1, "one key was created");
    invariants::converged(&case, &[winner, loser], Retired::Inactive);
}

/// Spawn, and read stderr line by line as it comes: (child, lines, the whole stderr).
fn spawn_watching(
    cmd: crate::support::cmd::Cmd<'_>,
) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = cmd.spawn();
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Wait (bounded) for a stderr line containing `needle`; every line seen is kept in `seen`.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

fn sigint(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

/// Run until `rule` holds a call, press Ctrl-C, wait until the tool says it heard it,
/// release, and collect the run (stderr from the watcher).
fn interrupt_at(sandbox: &Sandbox, proxy: &FaultProxy, rule: Rule) -> Run {
    proxy.add_rule(rule);
    let (child, rx) =
        spawn_watching(verbose(sandbox, &["rotate", "--yes"]).endpoint(&proxy.endpoint));
    assert!(proxy.wait_held(1, WAIT), "the call was not held");
    sigint(child.id());
    let mut seen = Vec::new();
    let heard = wait_line(&rx, "interrupted: finishing or undoing", &mut seen);
    proxy.clear_rules();
    proxy.release_all();
    let mut run = finish(child);
    while let Ok(line) = rx.recv_timeout(WAIT) {
        seen.push(line);
    }
    run.stderr = seen.join("\n") + "\n";
    assert!(heard, "the tool did not say it was interrupted\n{run}");
    run
}

#[test]
fn ctrl_c_during_verification_undoes_the_step_and_says_so() {
    let m = moto();
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "Ctrl-C in verify", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let before = sandbox.read_credentials();
    let proxy = FaultProxy::start(&m.endpoint);
    let rule = Rule::hold_before("GetCallerIdentity").key(KeyMatch::IsNot(case.old_id.clone()));
    let run = interrupt_at(&sandbox, &proxy, rule);
    run.assert_code(1)
        .assert_stdout_contains("verifying the new key failed: interrupted")
        .assert_stdout_contains("was deleted again, files unchanged");
    assert_eq!(sandbox.read_credentials(), before, "the file is unchanged");
    invariants::restored(&case, &[&run], &case.old_only(), false);
}

#[test]
fn ctrl_c_while_retiring_finishes_the_step_and_says_so() {
    let m = moto();
    let sandbox = Sandbox::new();
    let case = Case::new_user(&sandbox, "files", "Ctrl-C in retire", &["default"]);
    sandbox.write_credentials(&block("default", &case.old_id, &case.old_secret));
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let proxy = FaultProxy::start(&m.endpoint);
    let run = interrupt_at(&sandbox, &proxy, Rule::hold_before("UpdateAccessKey"));
    run.assert_code(0).assert_stdout_contains("1 rotated");
    invariants::converged(&case, &[&run], Retired::Inactive);
}
