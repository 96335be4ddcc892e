//! Hooks that gate retirement, end to end against moto: the hook is a shell script that
//! records its standard input, arguments and environment; the old key is retired only when
//! every hook exited 0 in time; a failing, hanging or killed hook (or a killed iam-keys)
//! leaves the old key Active and the journal ready; `recover` runs only the hooks that have
//! not passed.

use crate::invariants::{current_key, setup_user, status_of};
use crate::support::cmd::Sandbox;
use crate::support::moto::{ACCOUNT_ID, moto};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn default_profile(sandbox: &Sandbox, id: &str, secret: &str) {
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
}

/// An executable script in the sandbox; `{dir}` in `body` is the sandbox's `hooks/` dir.
fn script(sandbox: &Sandbox, name: &str, body: &str) -> PathBuf {
    let dir = sandbox.path("hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n{}\n",
            body.replace("{dir}", &dir.display().to_string())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn journals(sandbox: &Sandbox) -> Vec<PathBuf> {
    match std::fs::read_dir(sandbox.home().join(".aws/.iam-keys")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// How many lines a hook's run log has (one per run).
fn runs(sandbox: &Sandbox, log: &str) -> usize {
    std::fs::read_to_string(sandbox.path("hooks").join(log))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn the_secret_reaches_the_hooks_stdin_and_not_its_arguments_environment_or_our_output() {
    let m = moto();
    let (user, old, old_secret) = setup_user("hook-secret");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    let hook = script(
        &sandbox,
        "record",
        "cat > {dir}/stdin\nprintf '%s\\n' \"$0\" \"$@\" > {dir}/argv\nenv > {dir}/env\necho hook-was-here",
    );
    let command = format!("{} --target 'a b'", hook.display());
    let run = sandbox
        .cmd(&["rotate", "--yes", "-vvv", "--hook", &command])
        .env("RUST_LOG", "trace")
        // What a user's shell might have exported: never handed on to a hook.
        .env("AWS_SECRET_ACCESS_KEY", "ExportedShellSecretValue")
        .env("AWS_SESSION_TOKEN", "ExportedShellSessionToken")
        .run();
    run.assert_code(0);
    let (new, new_secret) = current_key(&sandbox);
    assert_ne!(new, old);
    run.assert_no_secret(&new_secret);
    // The hook's own output reached our stderr, not our stdout.
    assert!(run.stderr.contains("hook-was-here"), "{run}");
    assert!(!run.stdout.contains("hook-was-here"));

    let dir = sandbox.path("hooks");
    let stdin: serde_json::Value = serde_json::from_str(&read(&dir.join("stdin"))).unwrap();
    assert_eq!(stdin["access_key_id"], new.as_str());
    assert_eq!(stdin["secret_access_key"], new_secret.as_str());
    assert_eq!(stdin["old_access_key_id"], old.as_str());
    assert_eq!(stdin["user"], user.as_str());
    assert_eq!(stdin["account"], ACCOUNT_ID);
    assert_eq!(stdin["profile"], "default");

    let argv = read(&dir.join("argv"));
    assert_eq!(
        argv,
        format!("{}\n--target\na b\n", hook.display()),
        "split without a shell"
    );
    let env = read(&dir.join("env"));
    for (what, text) in [("argv", &argv), ("env", &env)] {
        for secret in [
            new_secret.as_str(),
            old_secret.as_str(),
            "ExportedShellSecretValue",
            "ExportedShellSessionToken",
        ] {
            assert!(!text.contains(secret), "a secret in the hook's {what}");
        }
    }
    assert!(
        env.contains(&format!("IAM_KEYS_ACCESS_KEY_ID={new}\n")),
        "{env}"
    );
    assert!(env.contains("IAM_KEYS_PROFILE=default\n"), "{env}");
    assert!(env.contains(&format!("IAM_KEYS_USER={user}\n")), "{env}");
    assert!(!env.contains("AWS_SECRET_ACCESS_KEY"), "{env}");
    assert!(!env.contains("AWS_SESSION_TOKEN"), "{env}");

    // The hook ran before the old key was retired, and the rotation finished.
    assert_eq!(status_of(&user, &old), "Inactive");
    assert!(m.key_works_as(&new, &new_secret, &user));
    assert!(journals(&sandbox).is_empty());
}

#[test]
fn a_profile_hook_reads_dotenv_lines() {
    let (user, old, old_secret) = setup_user("hook-dotenv");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    let hook = script(&sandbox, "gh", "cat > {dir}/stdin");
    sandbox.write_config(&format!(
        "[default]\nregion = us-east-1\niam_keys_hook = {}\niam_keys_hook_format = dotenv\n",
        hook.display()
    ));
    let plan = sandbox.iam_keys(&["rotate", "--dry-run"]);
    plan.assert_code(0);
    plan.assert_stdout_contains(&format!(
        "then hook `{}` (profile default) gets the new key",
        hook.display()
    ));
    sandbox.iam_keys(&["rotate", "--yes"]).assert_code(0);
    let (new, new_secret) = current_key(&sandbox);
    assert_eq!(
        read(&sandbox.path("hooks/stdin")),
        format!("AWS_ACCESS_KEY_ID={new}\nAWS_SECRET_ACCESS_KEY={new_secret}\n")
    );
    assert_eq!(status_of(&user, &old), "Inactive");
}

#[test]
fn a_failing_hook_leaves_the_old_key_active_and_recover_runs_only_the_hooks_that_failed() {
    let m = moto();
    let (user, old, old_secret) = setup_user("hook-fail");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    let ok = script(&sandbox, "ok", "cat >/dev/null; echo run >> {dir}/ok.log");
    let flaky = script(
        &sandbox,
        "flaky",
        "cat >/dev/null; echo run >> {dir}/flaky.log; [ -e {dir}/broken ] && exit 5; exit 0",
    );
    std::fs::write(sandbox.path("hooks/broken"), "").unwrap();
    let (ok, flaky) = (ok.display().to_string(), flaky.display().to_string());
    let run = sandbox.iam_keys(&["rotate", "--yes", "--hook", &ok, "--hook", &flaky]);
    run.assert_code(3);
    run.assert_output_contains(&format!("hook `{flaky}` exited with status 5"));
    run.assert_output_contains("iam-keys recover");
    // The new key is in the files and works, the old one is still Active, the journal waits.
    let (new, new_secret) = current_key(&sandbox);
    assert_ne!(new, old);
    assert!(m.key_works_as(&new, &new_secret, &user));
    assert_eq!(status_of(&user, &old), "Active");
    let journal = journals(&sandbox);
    assert_eq!(journal.len(), 1);
    let doc: serde_json::Value = serde_json::from_str(&read(&journal[0])).unwrap();
    let passed: Vec<bool> = doc["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(passed, [true, false]);
    assert_eq!(
        (runs(&sandbox, "ok.log"), runs(&sandbox, "flaky.log")),
        (1, 1)
    );

    // Still broken: recover keeps everything as it is.
    let again = sandbox.iam_keys(&["recover", "--yes"]);
    assert_ne!(again.status, 0, "{again}");
    again.assert_stderr_contains("stopped after stage `persisted`, new key");
    again.assert_stderr_contains(&format!("; still to run: hook `{flaky}`"));
    again.assert_output_contains(&format!("hook `{flaky}` exited with status 5"));
    assert_eq!(status_of(&user, &old), "Active");
    assert_eq!(
        (runs(&sandbox, "ok.log"), runs(&sandbox, "flaky.log")),
        (1, 2)
    );

    // Fixed: recover runs only the hook that had not passed, then retires the old key.
    std::fs::remove_file(sandbox.path("hooks/broken")).unwrap();
    let done = sandbox.iam_keys(&["recover", "--yes"]);
    done.assert_code(0);
    done.assert_no_secret(&new_secret);
    assert_eq!(
        (runs(&sandbox, "ok.log"), runs(&sandbox, "flaky.log")),
        (1, 3)
    );
    assert_eq!(status_of(&user, &old), "Inactive");
    assert!(journals(&sandbox).is_empty());
    assert_eq!(current_key(&sandbox).0, new);
}

#[test]
fn a_hanging_hook_is_killed_with_its_children_and_the_old_key_stays_active() {
    let (user, old, old_secret) = setup_user("hook-hang");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    // Hangs while `hang` exists; its background child would write `orphan` if it survived.
    let hook = script(
        &sandbox,
        "hang",
        "cat >/dev/null\nif [ -e {dir}/hang-now ]; then (sleep 3; touch {dir}/orphan) & sleep 60; fi\necho run >> {dir}/hang.log",
    );
    std::fs::write(sandbox.path("hooks/hang-now"), "").unwrap();
    let hook = hook.display().to_string();
    let started = Instant::now();
    let run = sandbox.iam_keys(&["rotate", "--yes", "--hook-timeout", "2s", "--hook", &hook]);
    run.assert_code(3);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the timeout was not kept"
    );
    run.assert_output_contains(&format!(
        "hook `{hook}` did not finish within 2s and was killed"
    ));
    assert_eq!(status_of(&user, &old), "Active");
    assert_eq!(journals(&sandbox).len(), 1);
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !sandbox.path("hooks/orphan").exists(),
        "the hook's process group was not killed"
    );

    // recover takes its own timeout.
    let started = Instant::now();
    let again = sandbox.iam_keys(&["recover", "--yes", "--hook-timeout", "1s"]);
    assert_ne!(again.status, 0, "{again}");
    again.assert_output_contains(&format!("hook `{hook}` did not finish within 1s"));
    assert!(started.elapsed() < Duration::from_secs(40));
    assert_eq!(status_of(&user, &old), "Active");

    std::fs::remove_file(sandbox.path("hooks/hang-now")).unwrap();
    sandbox.iam_keys(&["recover", "--yes"]).assert_code(0);
    assert_eq!(runs(&sandbox, "hang.log"), 1);
    assert_eq!(status_of(&user, &old), "Inactive");
    assert!(journals(&sandbox).is_empty());
}

#[test]
fn a_hook_killed_by_a_signal_is_named_and_gates_retirement() {
    let (user, old, old_secret) = setup_user("hook-signal");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    let hook = script(&sandbox, "die", "cat >/dev/null; kill -9 $$");
    let hook = hook.display().to_string();
    let run = sandbox.iam_keys(&["rotate", "--yes", "--hook", &hook]);
    run.assert_code(3);
    run.assert_output_contains(&format!("hook `{hook}` was killed by signal 9"));
    assert_eq!(status_of(&user, &old), "Active");
    assert_eq!(journals(&sandbox).len(), 1);
}

#[test]
fn iam_keys_killed_during_a_hook_leaves_the_old_key_active_and_recover_runs_it_again() {
    let m = moto();
    let (user, old, old_secret) = setup_user("hook-kill");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    // Signals that it runs, then waits (the first time) until told to finish.
    let hook = script(
        &sandbox,
        "slow",
        "cat >/dev/null\necho run >> {dir}/slow.log\nif [ ! -e {dir}/second ]; then touch {dir}/second; touch {dir}/started; sleep 30; fi",
    );
    let hook = hook.display().to_string();
    let mut child = sandbox.spawn_iam_keys(&["rotate", "--yes", "--hook", &hook]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sandbox.path("hooks/started").exists() {
        assert!(Instant::now() < deadline, "the hook never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    let _ = child.wait();
    // Killed mid-hook: the files hold the new key, the old key is Active, the journal is
    // persisted with the hook not passed.
    let (new, new_secret) = current_key(&sandbox);
    assert_ne!(new, old);
    assert_eq!(status_of(&user, &old), "Active");
    let journal = journals(&sandbox);
    assert_eq!(journal.len(), 1);
    let doc: serde_json::Value = serde_json::from_str(&read(&journal[0])).unwrap();
    assert_eq!(doc["stage"], "persisted");
    assert_eq!(doc["gates"][0]["passed"], false);

    let done = sandbox.iam_keys(&["recover", "--yes"]);
    done.assert_code(0);
    assert_eq!(
        runs(&sandbox, "slow.log"),
        2,
        "the hook ran again: hooks must be idempotent"
    );
    assert_eq!(status_of(&user, &old), "Inactive");
    assert!(m.key_works_as(&new, &new_secret, &user));
    assert!(journals(&sandbox).is_empty());
}

#[test]
fn a_hook_that_cannot_be_split_is_refused_before_anything_changes() {
    let (user, old, old_secret) = setup_user("hook-bad");
    let sandbox = Sandbox::new();
    default_profile(&sandbox, &old, &old_secret);
    let run = sandbox.iam_keys(&["rotate", "--yes", "--hook", "notify 'unbalanced"]);
    assert_ne!(run.status, 0, "{run}");
    run.assert_output_contains("--hook notify 'unbalanced: cannot be split");
    assert_eq!(
        moto().list_keys(&user),
        vec![(old.clone(), "Active".into())]
    );
    assert_eq!(current_key(&sandbox).0, old);
}
