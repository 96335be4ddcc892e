//! `iam-keys completions` and `iam-keys man`: the generated bash script really completes
//! when sourced, and every man page renders with `man -l` and groff without a warning.
//!
//! Needs bash, man (man-db) and groff (groff-base); `.ci/run` installs them. A missing tool
//! fails the test with what to install; nothing is skipped.

use crate::support::cmd::Sandbox;
use std::path::Path;
use std::process::{Command, Output};

/// A tool the test needs, found on PATH, or a failure that says what to install.
fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "`{tool}` is not on PATH: these tests need it (Debian/Ubuntu: apt-get install {package}; .ci/run installs it)"
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// What bash offers for `line` (the words typed so far, the last one being completed), with
/// the generated script sourced into a clean shell and its completion function called as
/// bash's programmable completion calls it.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
set -u
source "$1"; shift
spec=$(complete -p iam-keys) || { echo "no completion registered for iam-keys" >&2; exit 3; }
func=$(sed -n 's/.* -F \([^ ]*\) .*/\1/p' <<<"$spec")
[[ -n "$func" ]] || { echo "no -F function in: $spec" >&2; exit 3; }
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMP_KEY=9
prev=""
((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
"$func" iam-keys "${COMP_WORDS[COMP_CWORD]}" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c", DRIVER, "driver"])
        .arg(script)
        .args(words));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "completing {words:?} failed ({}): {stderr}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_commands_and_options_from_the_sourced_script() {
    require("bash", "bash");
    let sandbox = Sandbox::new();
    let run = sandbox.iam_keys(&["completions", "bash"]);
    run.assert_code(0);
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    let script = sandbox.path("iam-keys.bash");
    std::fs::write(&script, &run.stdout).unwrap();

    assert_eq!(bash_complete(&script, &["iam-keys", "ro"]), ["rotate"]);
    assert_eq!(
        bash_complete(&script, &["iam-keys", "--pro"]),
        ["--profile"]
    );
    assert_eq!(
        bash_complete(&script, &["iam-keys", "rotate", "--pro"]),
        ["--profile"],
        "a global option completes after a command too"
    );
    assert_eq!(
        bash_complete(&script, &["iam-keys", "rotate", "--dry"]),
        ["--dry-run"]
    );
    assert_eq!(
        bash_complete(&script, &["iam-keys", "completions", "p"]),
        ["powershell"]
    );
    let mut outputs = bash_complete(&script, &["iam-keys", "status", "--output", ""]);
    outputs.sort();
    assert_eq!(outputs, ["csv", "env", "json", "text"]);
}

#[test]
fn every_shell_gets_a_script_and_a_bad_shell_is_a_usage_error() {
    let sandbox = Sandbox::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = sandbox.iam_keys(&["completions", shell]);
        run.assert_code(0);
        assert!(
            run.stdout.contains("rotate") && run.stdout.contains("--profile"),
            "{shell}: {}",
            run.stdout
        );
    }
    sandbox
        .iam_keys(&["completions", "tcsh"])
        .assert_code(2)
        .assert_stderr_contains("possible values: bash, zsh, fish, powershell, elvish");
}

/// `man -l` with warnings on, and groff with every warning: stderr must be empty.
fn render_without_warnings(page: &Path) -> String {
    let man = run(Command::new("man")
        .args(["--warnings", "-l"])
        .arg(page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat"));
    let stderr = String::from_utf8_lossy(&man.stderr);
    assert!(
        man.status.success() && stderr.is_empty(),
        "man --warnings -l {} ({}): {stderr}",
        page.display(),
        man.status
    );
    let groff = run(Command::new("groff")
        .args(["-ww", "-z", "-man", "-Tutf8"])
        .arg(page));
    let stderr = String::from_utf8_lossy(&groff.stderr);
    assert!(
        groff.status.success() && stderr.is_empty(),
        "groff -ww {} ({}): {stderr}",
        page.display(),
        groff.status
    );
    String::from_utf8_lossy(&man.stdout).into_owned()
}

#[test]
fn every_man_page_renders_with_man_and_groff_without_warnings() {
    require("man", "man-db");
    require("groff", "groff-base");
    let sandbox = Sandbox::new();
    let dir = sandbox.path("man");
    let run = sandbox.iam_keys(&["man", "--dir", dir.to_str().unwrap()]);
    run.assert_code(0);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "iam-keys-audit.1",
            "iam-keys-completions.1",
            "iam-keys-man.1",
            "iam-keys-policy.1",
            "iam-keys-prune.1",
            "iam-keys-recover.1",
            "iam-keys-rotate.1",
            "iam-keys-schedule.1",
            "iam-keys-status.1",
            "iam-keys.1",
        ]
    );
    for page in &pages {
        let text = render_without_warnings(&dir.join(page));
        assert!(text.contains("--profile"), "{page}: {text}");
    }
    let main = render_without_warnings(&dir.join("iam-keys.1"));
    for section in [
        "SYNOPSIS",
        "iam-keys-rotate(1)",
        "EXIT STATUS",
        "ENVIRONMENT",
    ] {
        assert!(
            main.contains(section),
            "iam-keys(1) lacks {section}: {main}"
        );
    }
    let rotate = render_without_warnings(&dir.join("iam-keys-rotate.1"));
    assert!(rotate.contains("--dry-run"), "{rotate}");

    // `iam-keys man` prints the same main page the directory holds.
    let printed = sandbox.iam_keys(&["man"]);
    printed.assert_code(0);
    assert_eq!(
        printed.stdout,
        std::fs::read_to_string(dir.join("iam-keys.1")).unwrap()
    );
}
