// Over 500 lines: golden files and a sandboxed install per scheduler, one story each.
//! The generated files against golden copies (`tests/golden/schedule/`; regenerate with
//! `IAM_KEYS_UPDATE_GOLDEN=1 cargo test --lib schedule`), parsed back (plist with the
//! `plist` crate, task XML with `roxmltree`, the units with `systemd-analyze verify` on
//! Linux), and install/uninstall into a sandboxed home with the scheduler commands recorded.

#[cfg(unix)]
use super::system::Action;
use super::system::{self, Output, Places, System};
use super::*;
use std::cell::RefCell;
use std::path::Path;

fn unix_spec() -> JobSpec {
    JobSpec {
        binary: "/home/alice/.cargo/bin/iam-keys".into(),
        every: "30d".into(),
        hour: 9,
        minute: 30,
        profiles: JobProfiles::Named(vec!["default".into(), "work 2".into()]),
        credentials_file: "/home/alice/.aws/credentials".into(),
        config_file: "/home/alice/.aws/config".into(),
        state_dir: "/home/alice/.local/state/iam-keys".into(),
        mfa_command: Some("ykman oath accounts code -s 'aws:alice' | tail -1 # 100%".into()),
    }
}

fn windows_spec() -> JobSpec {
    JobSpec {
        binary: r"C:\Users\alice\.cargo\bin\iam-keys.exe".into(),
        every: "90d".into(),
        hour: 17,
        minute: 5,
        profiles: JobProfiles::All,
        credentials_file: r"C:\Users\alice\.aws\credentials".into(),
        config_file: r"C:\Users\Alice Smith\aws config".into(),
        state_dir: r"C:\Users\alice\AppData\Local\iam-keys".into(),
        mfa_command: None,
    }
}

#[cfg(unix)]
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/schedule")
        .join(name);
    if std::env::var_os("IAM_KEYS_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} cannot be read ({e}); create it with IAM_KEYS_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{name} differs from {}; if the change is meant, regenerate with IAM_KEYS_UPDATE_GOLDEN=1",
        path.display()
    );
}

// The launchd and systemd files join Unix paths: generated on a Unix host (as they are
// installed), so their golden copies are compared there; the task XML is host-independent
// and checked there too.
#[cfg(unix)]
#[test]
fn the_generated_files_match_the_golden_copies() {
    golden("iam-keys.service", &systemd_service(&unix_spec()));
    golden("iam-keys.timer", &systemd_timer(&unix_spec()));
    golden("crontab", &cron_lines(&unix_spec()));
    golden(
        "io.github.iam-keys.rotate.plist",
        &launchd_plist(&unix_spec()),
    );
    golden("iam-keys-task.xml", &task_xml(&windows_spec()));
}

#[test]
fn the_timer_catches_up_and_spreads_the_runs() {
    let timer = systemd_timer(&unix_spec());
    for line in [
        "OnCalendar=*-*-* 09:30:00",
        "Persistent=true",
        "RandomizedDelaySec=1h",
        "WantedBy=timers.target",
    ] {
        assert!(timer.lines().any(|l| l == line), "{line}\n{timer}");
    }
}

/// The inverse of [`systemd_quote`] for one word (systemd's unquoting, for the test).
fn systemd_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
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
                    assert_eq!(chars.next(), Some(c), "single {c} in {line}");
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
fn the_service_runs_this_binary_by_absolute_path_with_explicit_files() {
    let spec = unix_spec();
    let service = systemd_service(&spec);
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut expected = vec![spec.binary.display().to_string()];
    expected.extend(spec.args());
    assert_eq!(systemd_words(exec), expected);
    assert_eq!(
        &expected[1..8],
        [
            "rotate",
            "--older-than",
            "30d",
            "--yes",
            "--scheduled",
            "--profile",
            "default"
        ]
    );
    let env: Vec<Vec<String>> = service
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .map(systemd_words)
        .collect();
    assert_eq!(
        env,
        vec![
            vec!["AWS_SHARED_CREDENTIALS_FILE=/home/alice/.aws/credentials".to_string()],
            vec!["AWS_CONFIG_FILE=/home/alice/.aws/config".to_string()],
            vec!["IAM_KEYS_STATE_DIR=/home/alice/.local/state/iam-keys".to_string()],
        ]
    );
}

/// `systemd-analyze verify` accepts the unit and the timer (Linux; it must be installed:
/// a missing tool fails the test rather than skipping it).
#[cfg(target_os = "linux")]
#[test]
fn systemd_analyze_verify_accepts_the_units() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("bin/iam-keys");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::write(&binary, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = JobSpec {
        binary: binary.clone(),
        ..unix_spec()
    };
    let units = dir.path().join("units");
    std::fs::create_dir(&units).unwrap();
    std::fs::write(units.join("iam-keys.service"), systemd_service(&spec)).unwrap();
    std::fs::write(units.join("iam-keys.timer"), systemd_timer(&spec)).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("iam-keys.service"))
        .arg(units.join("iam-keys.timer"))
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze cannot be run ({e}): install systemd (Debian: apt-get install systemd) to check the units"
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only complaints about our two files count (the host's own units may have others).
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("iam-keys.service") || l.contains("iam-keys.timer"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn the_plist_parses_back_to_the_same_job() {
    let spec = unix_spec();
    let value = plist::Value::from_reader_xml(launchd_plist(&spec).as_bytes()).unwrap();
    let dict = value.as_dictionary().unwrap();
    assert_eq!(
        dict.get("Label").and_then(|v| v.as_string()),
        Some(LAUNCHD_LABEL)
    );
    let argv: Vec<&str> = dict
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    let mut expected = vec![spec.binary.display().to_string()];
    expected.extend(spec.args());
    assert_eq!(argv, expected);
    let env = dict
        .get("EnvironmentVariables")
        .and_then(|v| v.as_dictionary())
        .unwrap();
    for (k, v) in spec.env() {
        assert_eq!(env.get(k).and_then(|x| x.as_string()), Some(v.as_str()));
    }
    let when = dict
        .get("StartCalendarInterval")
        .and_then(|v| v.as_dictionary())
        .unwrap();
    assert_eq!(
        when.get("Hour").and_then(|v| v.as_unsigned_integer()),
        Some(9)
    );
    assert_eq!(
        when.get("Minute").and_then(|v| v.as_unsigned_integer()),
        Some(30)
    );
}

/// `CommandLineToArgvW`'s rules, for reading the task's arguments back.
fn windows_split(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        let mut quoted = false;
        let mut backslashes = 0;
        while let Some(&c) = chars.peek() {
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            chars.next();
            match c {
                '\\' => backslashes += 1,
                '"' => {
                    arg.push_str(&"\\".repeat(backslashes / 2));
                    if backslashes % 2 == 1 {
                        arg.push('"');
                    } else {
                        quoted = !quoted;
                    }
                    backslashes = 0;
                }
                c => {
                    arg.push_str(&"\\".repeat(backslashes));
                    backslashes = 0;
                    arg.push(c);
                }
            }
        }
        arg.push_str(&"\\".repeat(backslashes));
        args.push(arg);
    }
}

#[test]
fn the_task_xml_parses_back_to_the_same_job() {
    let spec = windows_spec();
    let xml = task_xml(&spec);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let ns = "http://schemas.microsoft.com/windows/2004/02/mit/task";
    assert_eq!(doc.root_element().tag_name().namespace(), Some(ns));
    let text = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name((ns, name)))
            .and_then(|n| n.text())
            .unwrap_or_else(|| panic!("no {name} in the task"))
            .to_string()
    };
    assert_eq!(text("StartWhenAvailable"), "true");
    assert_eq!(text("StartBoundary"), "2026-01-01T17:05:00");
    assert_eq!(text("DaysInterval"), "1");
    assert_eq!(text("LogonType"), "InteractiveToken");
    assert_eq!(text("Command"), r"C:\Users\alice\.cargo\bin\iam-keys.exe");
    let mut expected = spec.args();
    expected.extend([
        "--credentials-file".to_string(),
        r"C:\Users\alice\.aws\credentials".to_string(),
        "--config-file".to_string(),
        r"C:\Users\Alice Smith\aws config".to_string(),
    ]);
    assert_eq!(windows_split(&text("Arguments")), expected);
}

#[test]
fn quoting_survives_awkward_words() {
    for word in [
        "plain",
        "two words",
        r#"say "hi""#,
        r"C:\dir\",
        r#"C:\dir\"x"#,
        r"a\\b",
        "",
    ] {
        assert_eq!(
            windows_split(&windows_quote(word)),
            vec![word.to_string()],
            "{word:?}"
        );
    }
    assert_eq!(sh_quote("it's 100%"), r"'it'\''s 100\%'");
    assert_eq!(systemd_quote(r#"a"b\c%d$e"#), r#""a\"b\\c%%d$$e""#);
}

#[test]
fn at_is_a_time_of_day() {
    assert_eq!(parse_at("09:30"), Ok((9, 30)));
    assert_eq!(parse_at("23:59"), Ok((23, 59)));
    for bad in ["24:00", "9", "09:60", "09:5", "noon"] {
        let err = parse_at(bad).unwrap_err();
        assert!(err.contains(bad) && err.contains("HH:MM"), "{err}");
    }
    let tz = jiff::tz::TimeZone::UTC;
    let now = jiff::civil::date(2026, 12, 1)
        .at(10, 0, 0, 0)
        .to_zoned(tz)
        .unwrap();
    assert_eq!(
        next_run(now.clone(), 9, 30).unwrap().to_string(),
        "2026-12-02T09:30:00+00:00[UTC]"
    );
    assert_eq!(
        next_run(now, 11, 0).unwrap().to_string(),
        "2026-12-01T11:00:00+00:00[UTC]"
    );
}

/// A scheduler that records every command and keeps a crontab.
#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
    crontab: RefCell<Option<String>>,
    no_systemd: bool,
}

impl System for Recorder {
    fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
        let line = std::iter::once(program)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        self.calls.borrow_mut().push(line.clone());
        let ok = |stdout: String| {
            Ok(Output {
                code: Some(0),
                stdout,
                stderr: String::new(),
            })
        };
        match (program, args) {
            ("systemctl", _) if self.no_systemd => Ok(Output {
                code: Some(1),
                stdout: String::new(),
                stderr: "Failed to connect to bus".into(),
            }),
            ("systemctl", _) => ok(String::new()),
            ("crontab", ["-l"]) => match self.crontab.borrow().clone() {
                Some(text) => ok(text),
                None => Ok(Output {
                    code: Some(1),
                    stdout: String::new(),
                    stderr: "no crontab for alice".into(),
                }),
            },
            ("crontab", ["-"]) => {
                *self.crontab.borrow_mut() = Some(stdin.unwrap_or_default().to_string());
                ok(String::new())
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{line}: not in this sandbox"),
            )),
        }
    }
}

fn places(home: &Path) -> Places {
    Places {
        home: home.to_path_buf(),
        config_home: home.join(".config"),
        state_dir: home.join(".local/state/iam-keys"),
        uid: Some(1000),
    }
}

// Detection and install of a Linux scheduler: a Unix host (a Windows host detects Task
// Scheduler).
#[cfg(unix)]
#[test]
fn systemd_install_and_uninstall_in_a_sandboxed_home() {
    let home = tempfile::tempdir().unwrap();
    let places = places(home.path());
    let sys = Recorder::default();
    assert_eq!(system::detect(&sys).unwrap(), Backend::Systemd);
    sys.calls.borrow_mut().clear();
    let spec = unix_spec();
    system::install(&sys, Backend::Systemd, &spec, &places).unwrap();
    let service = home.path().join(".config/systemd/user/iam-keys.service");
    let timer = home.path().join(".config/systemd/user/iam-keys.timer");
    assert_eq!(
        std::fs::read_to_string(&service).unwrap(),
        systemd_service(&spec)
    );
    assert_eq!(
        std::fs::read_to_string(&timer).unwrap(),
        systemd_timer(&spec)
    );
    assert_eq!(
        *sys.calls.borrow(),
        [
            "systemctl --user daemon-reload",
            "systemctl --user enable --now iam-keys.timer"
        ]
    );
    assert!(system::installed(&sys, Backend::Systemd, &places));
    sys.calls.borrow_mut().clear();
    let done = system::uninstall(&sys, system::platform_backends(), &places).unwrap();
    assert!(done.contains(&Action::Remove(timer.clone())), "{done:?}");
    assert!(!service.exists() && !timer.exists());
    assert!(
        sys.calls
            .borrow()
            .contains(&"systemctl --user disable --now iam-keys.timer".to_string())
    );
    // Twice: nothing left, nothing done, no error.
    let again = system::uninstall(&sys, system::platform_backends(), &places).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert!(!system::installed(&sys, Backend::Systemd, &places));
}

#[cfg(unix)]
#[test]
fn cron_install_keeps_the_other_lines_and_uninstall_removes_only_ours() {
    let home = tempfile::tempdir().unwrap();
    let places = places(home.path());
    let sys = Recorder {
        no_systemd: true,
        crontab: RefCell::new(Some("MAILTO=alice\n0 1 * * * backup.sh\n".into())),
        ..Default::default()
    };
    assert_eq!(system::detect(&sys).unwrap(), Backend::Cron);
    let spec = unix_spec();
    system::install(&sys, Backend::Cron, &spec, &places).unwrap();
    // Installing again replaces our lines rather than adding more.
    system::install(&sys, Backend::Cron, &spec, &places).unwrap();
    let text = sys.crontab.borrow().clone().unwrap();
    assert_eq!(
        text,
        format!("MAILTO=alice\n0 1 * * * backup.sh\n{}", cron_lines(&spec))
    );
    assert!(system::installed(&sys, Backend::Cron, &places));
    system::uninstall(&sys, system::platform_backends(), &places).unwrap();
    assert_eq!(
        sys.crontab.borrow().as_deref(),
        Some("MAILTO=alice\n0 1 * * * backup.sh\n")
    );
    let again = system::uninstall(&sys, system::platform_backends(), &places).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn no_scheduler_is_a_clear_error() {
    struct Nothing;
    impl System for Nothing {
        fn run(&self, _: &str, _: &[&str], _: Option<&str>) -> std::io::Result<Output> {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }
    if cfg!(target_os = "linux") {
        let err = system::detect(&Nothing).unwrap_err().to_string();
        assert!(
            err.contains("crontab") && err.contains("--backend"),
            "{err}"
        );
    }
}

#[test]
fn a_failing_scheduler_command_is_named_with_its_error() {
    let home = tempfile::tempdir().unwrap();
    let places = places(home.path());
    let sys = Recorder {
        no_systemd: true,
        ..Default::default()
    };
    let err = system::install(&sys, Backend::Systemd, &unix_spec(), &places)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("systemctl --user daemon-reload") && err.contains("Failed to connect to bus"),
        "{err}"
    );
}
