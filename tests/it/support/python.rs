//! The Python virtualenv the integration tests take their tools from: `moto_server` (the local
//! IAM/STS), the AWS CLI v1 (`aws`, to check that rewritten files work for another client) and
//! `parliament` (the policy linter), pinned in `tests/requirements.txt`.
//!
//! The venv lives at `<target dir>/test-venv` (`CARGO_TARGET_DIR` at run time, else
//! `<crate>/target`). It is created with `python3 -m venv` and filled with
//! `pip install -r tests/requirements.txt` when it is missing or when the requirements file
//! changed since the last install: a verbatim copy of the installed requirements file is kept
//! in `test-venv/.requirements.txt`, written last (so a half-done install is never taken for a
//! finished one). `scripts/demo.sh` follows the same convention and shares the venv.
//!
//! Safe when many test threads and several test processes ask at once: a `OnceLock` inside the
//! process, an exclusive `flock` on `<target dir>/test-venv.lock` across processes.
//! When `python3` is missing or pip fails, it panics and says what to install: the tests that
//! need the venv are never skipped.
//!
//! Must not: touch anything outside the target dir, or print anything but progress notes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The requirements file this venv is built from.
pub fn requirements_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/requirements.txt")
}

/// The cargo target directory: `CARGO_TARGET_DIR` at run time (relative to the crate root when
/// relative), else `<crate>/target`.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join(dir),
        _ => manifest.join("target"),
    }
}

/// The venv directory (`<target dir>/test-venv`), created or refreshed on first use.
pub fn venv_dir() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = target_dir().join("test-venv");
        ensure_venv(&dir);
        dir
    })
    .clone()
}

/// The venv's Python interpreter.
pub fn venv_python() -> PathBuf {
    venv_bin("python")
}

/// A program installed in the venv's `bin/` (`aws`, `moto_server`, `parliament`, ...).
pub fn venv_bin(name: &str) -> PathBuf {
    let path = venv_dir().join("bin").join(name);
    assert!(
        path.exists(),
        "{} is not in the test venv {}: is it in tests/requirements.txt? \
         (delete the venv to force a reinstall)",
        name,
        venv_dir().display()
    );
    path
}

/// The marker that says which requirements the venv holds.
fn marker(dir: &Path) -> PathBuf {
    dir.join(".requirements.txt")
}

fn is_current(dir: &Path, wanted: &[u8]) -> bool {
    fs::read(marker(dir)).is_ok_and(|have| have == wanted) && dir.join("bin/python").exists()
}

fn ensure_venv(dir: &Path) {
    let req_path = requirements_file();
    let wanted =
        fs::read(&req_path).unwrap_or_else(|e| panic!("cannot read {}: {e}", req_path.display()));
    let parent = dir.parent().expect("the venv dir has a parent");
    fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));

    // Another process may be installing right now: wait for it, then look again.
    let lock_path = parent.join("test-venv.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open the venv lock {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if !is_current(dir, &wanted) {
        install(dir, &req_path, &wanted);
    }
    drop(lock); // closing the file releases the lock
}

fn install(dir: &Path, req_path: &Path, wanted: &[u8]) {
    let started = Instant::now();
    eprintln!(
        "test venv: installing {} into {} (about a minute, once)",
        req_path.display(),
        dir.display()
    );
    // A stale marker must not survive a failed install.
    let _ = fs::remove_file(marker(dir));

    let log_path = dir.with_extension("install.log");
    let log = File::create(&log_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));

    // `--clear` gives a fresh venv when the requirements changed: no package left over from
    // an older pin list.
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log fd"))
        .stderr(log.try_clone().expect("dup log fd"))
        .status();
    match created {
        Err(e) => panic!(
            "cannot run `python3 -m venv` ({e}): the integration tests need Python 3.10 or \
             newer with the venv module on PATH as `python3` \
             (Debian/Ubuntu: apt-get install python3 python3-venv)"
        ),
        Ok(status) if !status.success() => panic!(
            "`python3 -m venv --clear {}` failed ({status}); output in {}:\n{}\n\
             fix: install the venv module (Debian/Ubuntu: apt-get install python3-venv)",
            dir.display(),
            log_path.display(),
            tail(&log_path)
        ),
        Ok(_) => {}
    }

    let pip = Command::new(dir.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(req_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log fd"))
        .stderr(log)
        .status()
        .unwrap_or_else(|e| panic!("cannot run pip in {}: {e}", dir.display()));
    assert!(
        pip.success(),
        "`pip install -r {}` into {} failed ({pip}); output in {}:\n{}\n\
         fix: check network access to PyPI (and PIP_INDEX_URL if you use a mirror), then \
         rerun the tests; delete {} to start over",
        req_path.display(),
        dir.display(),
        log_path.display(),
        tail(&log_path),
        dir.display()
    );

    // The marker goes last, atomically: its presence means a complete install.
    let tmp = dir.join(".requirements.txt.tmp");
    let mut f = File::create(&tmp).expect("create the venv marker");
    f.write_all(wanted).expect("write the venv marker");
    f.sync_all().expect("sync the venv marker");
    fs::rename(&tmp, marker(dir)).expect("rename the venv marker");
    eprintln!(
        "test venv: ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The last lines of a log file, for a panic message.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
