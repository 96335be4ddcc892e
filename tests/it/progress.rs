//! Live progress (issue 12) in a pseudo-terminal: redrawn in place on a terminal, plain lines
//! under `TERM=dumb`, nothing redrawn when piped, nothing at all with `--quiet`; never a secret.

use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A pseudo-terminal of 40 rows and 120 columns: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors on success; we own them from then on.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors returned by openpty.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Three profiles of distinct users; (sandbox, secrets).
fn three() -> (Sandbox, Vec<String>) {
    let m = moto();
    let sandbox = Sandbox::new();
    let mut text = String::new();
    let mut secrets = Vec::new();
    for i in 0..3 {
        let user = m.unique("progress");
        m.create_user(&user);
        let (id, secret) = m.create_key(&user);
        text.push_str(&format!(
            "[p{i}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n"
        ));
        secrets.push(secret);
    }
    sandbox.write_credentials(&text);
    (sandbox, secrets)
}

/// Runs `cmd` with stderr on a fresh pseudo-terminal: (exit code, stdout, terminal bytes).
fn on_terminal(mut cmd: Command) -> (i32, String, String) {
    let (master, slave) = openpty();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().expect("start iam-keys");
    // The child holds the only slave now: reading the master ends (EIO) when it exits.
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "iam-keys hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let terminal = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (status.code().unwrap_or(-1), stdout, terminal)
}

fn rotate(sandbox: &Sandbox, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut args = vec!["rotate", "--all", "--yes"];
    args.extend_from_slice(extra);
    let mut cmd = sandbox.cmd(&args).endpoint(&moto().endpoint).command();
    cmd.env_remove("NO_COLOR").env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[track_caller]
fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "a secret was shown");
    }
}

#[test]
fn on_a_terminal_each_key_has_a_line_redrawn_in_place() {
    let (sandbox, secrets) = three();
    let (code, stdout, terminal) = on_terminal(rotate(&sandbox, &[], &[]));
    assert_eq!(code, 0, "{stdout}\n{terminal:?}");
    assert!(
        terminal.contains("\x1b[") && terminal.contains('\r'),
        "cursor movement and carriage returns: {terminal:?}"
    );
    assert!(
        terminal.contains("keys rotated"),
        "a summary bar: {terminal:?}"
    );
    assert!(
        terminal.contains("verify "),
        "a key's verification: {terminal:?}"
    );
    assert!(terminal.contains("/3"), "counted: {terminal:?}");
    assert!(
        terminal.contains("AKIA"),
        "keys named (masked): {terminal:?}"
    );
    assert!(stdout.contains("3 rotated"), "{stdout}");
    assert_no_secret(&terminal, &secrets);
    assert_no_secret(&stdout, &secrets);
}

#[test]
fn a_dumb_terminal_gets_plain_lines() {
    let (sandbox, secrets) = three();
    let (code, _, terminal) = on_terminal(rotate(&sandbox, &[], &[("TERM", "dumb")]));
    assert_eq!(code, 0, "{terminal:?}");
    assert!(!terminal.contains("\x1b["), "no escape codes: {terminal:?}");
    assert!(terminal.contains("verifying the new key"), "{terminal:?}");
    assert!(
        terminal.contains("the new key answered (2/3)"),
        "{terminal:?}"
    );
    // The terminal turns each "\n" into "\r\n"; no other carriage return is written.
    assert_eq!(
        terminal.matches('\r').count(),
        terminal.matches('\n').count(),
        "{terminal:?}"
    );
    assert_no_secret(&terminal, &secrets);
}

#[test]
fn no_color_gets_plain_lines_too() {
    let (sandbox, _) = three();
    let (code, _, terminal) = on_terminal(rotate(&sandbox, &[], &[("NO_COLOR", "1")]));
    assert_eq!(code, 0, "{terminal:?}");
    assert!(!terminal.contains("\x1b["), "{terminal:?}");
    assert!(terminal.contains("verifying the new key"), "{terminal:?}");
}

#[test]
fn quiet_prints_nothing_when_all_went_well() {
    let (sandbox, _) = three();
    let (code, stdout, terminal) = on_terminal(rotate(&sandbox, &["--quiet"], &[]));
    assert_eq!(code, 0, "{terminal:?}");
    assert_eq!(stdout, "");
    assert_eq!(terminal, "");
}

#[test]
fn quiet_prints_the_failure_and_the_summary() {
    let (sandbox, _) = three();
    // A fourth profile whose key IAM does not know.
    let mut text = sandbox.read_credentials();
    text.push_str("[broken]\naws_access_key_id = AKIAZZZZZZZZZZZZZZZZ\naws_secret_access_key = not-a-real-secret-0000000000000000000000\n");
    sandbox.write_credentials(&text);
    let (code, stdout, _) = on_terminal(rotate(&sandbox, &["--quiet"], &[]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("AKIA…ZZZZ"), "{stdout}");
    assert!(
        stdout.contains("3 rotated, 0 not due, 0 skipped, 1 failed"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().count(),
        2,
        "only the failure and the summary: {stdout}"
    );
}

#[test]
fn piped_stderr_gets_no_redraws() {
    let (sandbox, secrets) = three();
    let output = rotate(&sandbox, &[], &[])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
    assert!(!stderr.contains('\r'), "{stderr:?}");
    assert!(!stderr.contains("keys rotated"), "{stderr:?}");
    assert_no_secret(&stderr, &secrets);
}
