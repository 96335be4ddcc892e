//! `iam-keys schedule` on Linux in a sandboxed HOME, with `systemctl` and `crontab` replaced
//! by recording scripts first on `PATH` (the seam at the process level; the unit tests in
//! `src/schedule/tests.rs` replace the `System` trait itself). Then the installed job's own
//! command line is run against moto: quiet when nothing is due, a log line for a profile
//! that needs an MFA code, a rotation when a key is due, and `schedule status` reporting it.

use crate::support::cmd::{Sandbox, iam_keys_bin};
use crate::support::moto::moto;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
echo "$*" >> "$HOME/systemctl.calls"
if [ -e "$HOME/no-systemd" ]; then echo "Failed to connect to bus" >&2; exit 1; fi
exit 0
"#;

const FAKE_CRONTAB: &str = r#"#!/bin/sh
echo "$*" >> "$HOME/crontab.calls"
case "$1" in
  -l) if [ -e "$HOME/crontab.txt" ]; then cat "$HOME/crontab.txt"; else echo "no crontab for $USER" >&2; exit 1; fi ;;
  -) cat > "$HOME/crontab.txt" ;;
  *) exit 2 ;;
esac
"#;

/// A directory with the fake `systemctl` and `crontab`, and the PATH that puts it first.
fn fake_tools(sandbox: &Sandbox) -> String {
    let bin = sandbox.path("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, text) in [("systemctl", FAKE_SYSTEMCTL), ("crontab", FAKE_CRONTAB)] {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:/usr/bin:/bin", bin.display())
}

fn schedule(sandbox: &Sandbox, path: &str, args: &[&str]) -> crate::support::cmd::Run {
    let mut all = vec!["schedule"];
    all.extend_from_slice(args);
    sandbox.cmd(&all).env("PATH", path).run()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The words of a systemd `ExecStart=` line (double-quoted by the generator).
fn exec_words(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut words = Vec::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => word.push(chars.next().unwrap()),
                '"' => break,
                '%' | '$' => {
                    chars.next();
                    word.push(c);
                }
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

#[test]
fn install_status_and_uninstall_with_a_systemd_user_timer() {
    let sandbox = Sandbox::new();
    let path = fake_tools(&sandbox);
    let units = sandbox.path(".config/systemd/user");

    // --dry-run prints the files and writes nothing.
    let dry = schedule(
        &sandbox,
        &path,
        &[
            "install",
            "--every",
            "45d",
            "--at",
            "08:15",
            "--all",
            "--dry-run",
        ],
    );
    dry.assert_code(0);
    let binary = std::fs::canonicalize(iam_keys_bin()).unwrap();
    for needle in [
        "would install a systemd user timer",
        "iam-keys.service ---",
        "OnCalendar=*-*-* 08:15:00",
        "Persistent=true",
        &format!(
            "ExecStart=\"{}\" \"rotate\" \"--older-than\" \"45d\"",
            binary.display()
        ),
        &format!(
            "Environment=\"AWS_SHARED_CREDENTIALS_FILE={}\"",
            sandbox.credentials.display()
        ),
    ] {
        assert!(dry.stdout.contains(needle), "{needle}\n{}", dry.stdout);
    }
    assert!(!units.exists());
    assert!(
        !sandbox.path("systemctl.calls").exists()
            || !read(&sandbox.path("systemctl.calls")).contains("enable")
    );

    let run = schedule(
        &sandbox,
        &path,
        &["install", "--every", "45d", "--at", "08:15", "--all"],
    );
    run.assert_code(0);
    let service = read(&units.join("iam-keys.service"));
    let timer = read(&units.join("iam-keys.timer"));
    assert!(timer.contains("OnCalendar=*-*-* 08:15:00"), "{timer}");
    let words = exec_words(&service);
    assert_eq!(
        PathBuf::from(&words[0]),
        binary,
        "the absolute path of this binary"
    );
    assert_eq!(
        &words[1..],
        [
            "rotate",
            "--older-than",
            "45d",
            "--yes",
            "--scheduled",
            "--all"
        ]
    );
    let calls = read(&sandbox.path("systemctl.calls"));
    assert!(
        calls.contains("--user daemon-reload\n--user enable --now iam-keys.timer\n"),
        "{calls}"
    );

    let status = schedule(&sandbox, &path, &["status"]);
    status.assert_code(0);
    for needle in [
        "installed: systemd user timer",
        "runs: daily at 08:15; next ",
        "last run: none yet",
    ] {
        assert!(
            status.stdout.contains(needle),
            "{needle}\n{}",
            status.stdout
        );
    }

    let gone = schedule(&sandbox, &path, &["uninstall"]);
    gone.assert_code(0);
    assert!(
        gone.stdout.contains("the scheduled job is removed"),
        "{}",
        gone.stdout
    );
    assert!(!units.join("iam-keys.service").exists() && !units.join("iam-keys.timer").exists());
    assert!(read(&sandbox.path("systemctl.calls")).contains("--user disable --now iam-keys.timer"));
    let again = schedule(&sandbox, &path, &["uninstall"]);
    again.assert_code(0);
    assert!(
        again.stdout.contains("nothing installed"),
        "{}",
        again.stdout
    );
    schedule(&sandbox, &path, &["status"])
        .assert_code(0)
        .assert_stdout_contains("installed: nothing");
}

#[test]
fn without_systemd_the_job_is_a_crontab_line_beside_the_users_own() {
    let sandbox = Sandbox::new();
    let path = fake_tools(&sandbox);
    std::fs::write(sandbox.path("no-systemd"), "").unwrap();
    std::fs::write(sandbox.path("crontab.txt"), "MAILTO=me\n5 4 * * * backup\n").unwrap();
    schedule(&sandbox, &path, &["install", "--profile", "work"]).assert_code(0);
    let text = read(&sandbox.path("crontab.txt"));
    assert!(text.starts_with("MAILTO=me\n5 4 * * * backup\n"), "{text}");
    let binary = std::fs::canonicalize(iam_keys_bin()).unwrap();
    assert!(
        text.contains(&format!(
            "0 10 * * * AWS_SHARED_CREDENTIALS_FILE='{}'",
            sandbox.credentials.display()
        )) && text.contains(&format!(
            "'{}' 'rotate' '--older-than' '30d' '--yes' '--scheduled' '--profile' 'work' # iam-keys schedule",
            binary.display()
        )),
        "{text}"
    );
    schedule(&sandbox, &path, &["status"])
        .assert_code(0)
        .assert_stdout_contains("installed: crontab line");
    schedule(&sandbox, &path, &["uninstall"]).assert_code(0);
    assert_eq!(
        read(&sandbox.path("crontab.txt")),
        "MAILTO=me\n5 4 * * * backup\n"
    );
    schedule(&sandbox, &path, &["uninstall"])
        .assert_code(0)
        .assert_stdout_contains("nothing installed");
}

#[test]
fn bad_input_is_named() {
    let sandbox = Sandbox::new();
    let path = fake_tools(&sandbox);
    schedule(&sandbox, &path, &["install", "--at", "25:00"])
        .assert_code(2)
        .assert_stderr_contains("`25:00` is not a time of day");
}

/// The job as installed: run its own command line. Nothing due: exit 0, no output, a log
/// line. A profile needing an MFA code: skipped and logged. A due key: rotated and printed.
#[test]
fn the_installed_job_is_quiet_when_nothing_is_due_and_logs_every_run() {
    let m = moto();
    let user = m.unique("sched-job");
    m.create_user(&user);
    let (id, secret) = m.create_key(&user);
    let mfa_user = m.unique("sched-mfa");
    m.create_user(&mfa_user);
    let (mfa_id, mfa_secret) = m.create_key(&mfa_user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[app]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\
         [secure]\naws_access_key_id = {mfa_id}\naws_secret_access_key = {mfa_secret}\n"
    ));
    sandbox.write_config(&format!(
        "[profile secure]\nmfa_serial = arn:aws:iam::123456789012:mfa/{mfa_user}\n"
    ));
    let path = fake_tools(&sandbox);
    schedule(&sandbox, &path, &["install", "--all", "--every", "30d"]).assert_code(0);
    let unit = read(&sandbox.path(".config/systemd/user/iam-keys.service"));
    let words = exec_words(&unit);
    // The unit's own environment (files and state directory, made explicit).
    let unit_env: Vec<(String, String)> = unit
        .lines()
        .filter(|l| l.starts_with("Environment="))
        .map(|l| {
            let word = exec_words(&l.replacen("Environment=", "ExecStart=", 1)).remove(0);
            let (k, v) = word.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(unit_env.len(), 3, "{unit}");
    let job = |words: &[String]| {
        let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        // The unit's own program, arguments and environment; stdin closed, as under a scheduler.
        let mut cmd = sandbox.cmd(&args).program(&words[0]);
        for (k, v) in &unit_env {
            cmd = cmd.env(k, v.clone());
        }
        cmd.run()
    };

    let quiet = job(&words);
    quiet.assert_code(0);
    let log_path = sandbox.path(".local/state/iam-keys/schedule.log");
    let log = read(&log_path);
    assert!(log.contains("run: exit 0, 0 rotated, 1 not due"), "{log}");
    assert!(
        log.contains("skipped secure: needs an MFA code") && log.contains("--mfa-command"),
        "{log}"
    );
    // Only the MFA skip is worth saying; the rest is quiet.
    assert!(quiet.stdout.contains("skipped secure"), "{}", quiet.stdout);

    // Now only the plain profile, with every key due: it is rotated and said.
    let mut due = words.clone();
    let at = due.iter().position(|w| w == "30d").unwrap();
    due[at] = "0s".into();
    let all = due.iter().position(|w| w == "--all").unwrap();
    due.splice(all..=all, ["--profile".to_string(), "app".to_string()]);
    let rotated = job(&due);
    rotated.assert_code(0);
    assert!(
        rotated.stdout.contains("rotated AKIA"),
        "{}",
        rotated.stdout
    );
    rotated.assert_no_secret(&secret);
    assert_ne!(
        sandbox.read_credentials().lines().nth(1).unwrap(),
        format!("aws_access_key_id = {id}")
    );

    // Nothing due again for that profile: no output at all.
    let mut none = due.clone();
    let at = none.iter().position(|w| w == "0s").unwrap();
    none[at] = "30d".into();
    let silent = job(&none);
    silent.assert_code(0);
    assert_eq!(silent.stdout, "", "a run with nothing due says nothing");

    let status = schedule(&sandbox, &path, &["status", "--output", "json"]);
    status.assert_code(0);
    let doc = status.json();
    assert_eq!(doc["installed"][0], "systemd", "{doc}");
    assert_eq!(doc["last_run"]["outcome"], "nothing due", "{doc}");
    assert_eq!(doc["last_run"]["exit_code"], 0, "{doc}");
    assert!(doc["next_run"].is_string(), "{doc}");
    let log = read(&log_path);
    assert_eq!(log.matches(" run: exit ").count(), 3, "{log}");
    assert!(!log.contains(&secret));
}
