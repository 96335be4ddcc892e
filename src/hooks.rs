//! The real [`GateRunner`]: hooks run as processes, dotenv files edited on disk.
//!
//! A hook's command is split into argv with POSIX-shell quoting rules but **no shell**
//! ([`split_command`]): no variable expansion, globbing, pipes or redirections, so nothing in
//! a profile's `iam_keys_hook` is interpreted by a shell, and the secret can never be spliced
//! into a command line. A hook that needs a shell says so: `sh -c '…'`.
//!
//! The process gets:
//! - the new key only on its **standard input** ([`stdin_payload`]), which is then closed;
//! - our environment **minus every `AWS_*` variable** except the non-secret location and
//!   region settings ([`PASSED_AWS_VARS`]), so an `AWS_SECRET_ACCESS_KEY` or
//!   `AWS_SESSION_TOKEN` the user's shell exported never reaches it; plus the non-secret
//!   facts `IAM_KEYS_PROFILE`, `IAM_KEYS_USER`, `IAM_KEYS_ACCOUNT`,
//!   `IAM_KEYS_ACCESS_KEY_ID` (the new key id) and `IAM_KEYS_OLD_ACCESS_KEY_ID`;
//! - our stderr as its stdout and stderr (never our stdout, which carries `--output json`/`env`).
//!   What it prints is its own business: iam-keys never reads or logs it.
//!
//! It runs in its own process group; when it outlives its timeout the whole group is killed
//! (SIGKILL) and the gate fails.
//!
//! Must not: log the payload or the hook's output.

use crate::profiles::dotenv;
use crate::rotation::hooks::{
    Delivery, Gate, GateResult, GateRunner, split_command, stdin_payload,
};
use futures_util::future::LocalBoxFuture;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// `AWS_*` variables a hook inherits: where files are and which region, never a credential.
pub const PASSED_AWS_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
];

/// Runs hooks as processes and writes dotenv files.
pub struct ProcessRunner {
    /// The environment a hook starts from (already without credentials).
    base_env: Vec<(String, String)>,
}

impl ProcessRunner {
    /// A runner whose hooks inherit `vars` minus the credential variables.
    pub fn new<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> ProcessRunner {
        ProcessRunner {
            base_env: vars
                .into_iter()
                .filter(|(k, _)| passes(k))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    async fn run_hook(
        &self,
        command: &str,
        format: crate::rotation::hooks::HookFormat,
        d: &Delivery,
    ) -> GateResult {
        let Some(argv) = split_command(command) else {
            return GateResult::Error(
                "the command cannot be split into words (unbalanced quotes?)".into(),
            );
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(self.base_env.iter().map(|(k, v)| (k, v)))
            .env("IAM_KEYS_PROFILE", &d.profile)
            .env("IAM_KEYS_USER", &d.user)
            .env("IAM_KEYS_ACCOUNT", &d.account)
            .env("IAM_KEYS_ACCESS_KEY_ID", &d.access_key_id)
            .env("IAM_KEYS_OLD_ACCESS_KEY_ID", &d.old_access_key_id)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(std::io::stderr()))
            .stderr(Stdio::from(std::io::stderr()))
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => return GateResult::Error(format!("cannot start {}: {e}", argv[0])),
        };
        let payload = stdin_payload(format, d);
        let pid = child.id();
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A hook that does not read its input closes the pipe: that is its choice.
                let _ = stdin.write_all(payload.expose().as_bytes()).await;
                let _ = stdin.shutdown().await;
                drop(stdin);
            }
            child.wait().await
        };
        let waited = tokio::time::timeout(d.timeout, run).await;
        match waited {
            Ok(Ok(status)) if status.success() => GateResult::Passed,
            Ok(Ok(status)) => GateResult::Exited {
                code: status.code(),
                signal: signal_of(&status),
            },
            Ok(Err(e)) => GateResult::Error(format!("cannot wait for {}: {e}", argv[0])),
            Err(_) => {
                kill_group(pid);
                let _ = child.kill().await;
                GateResult::TimedOut { after: d.timeout }
            }
        }
    }
}

/// Whether a variable of ours reaches a hook.
fn passes(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("IAM_KEYS_") {
        return false;
    }
    !upper.starts_with("AWS_") || PASSED_AWS_VARS.contains(&upper.as_str())
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Kill the hook's whole process group (it is its leader: `process_group(0)`).
#[cfg(unix)]
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pid: Option<u32>) {}

impl GateRunner for ProcessRunner {
    fn run<'a>(&'a self, gate: &'a Gate, d: &'a Delivery) -> LocalBoxFuture<'a, GateResult> {
        Box::pin(async move {
            match gate {
                Gate::Hook {
                    command, format, ..
                } => self.run_hook(command, *format, d).await,
                Gate::EnvFile { path, .. } => {
                    match dotenv::save_key(
                        path,
                        &d.old_access_key_id,
                        &d.access_key_id,
                        &d.secret_access_key,
                    ) {
                        Ok(_) => GateResult::Passed,
                        Err(e) => GateResult::Error(e.to_string()),
                    }
                }
            }
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::rotation::hooks::HookFormat;
    use crate::secret::Secret;
    use std::time::Duration;

    fn delivery(timeout: Duration) -> Delivery {
        Delivery {
            profile: "dev".into(),
            user: "alice".into(),
            account: "123456789012".into(),
            access_key_id: "AKIANEWNEWNEW".into(),
            secret_access_key: Secret::new("TopSecretValue+/123"),
            old_access_key_id: "AKIAOLDOLDOLD".into(),
            timeout,
        }
    }

    fn hook(command: String) -> Gate {
        Gate::Hook {
            command,
            format: HookFormat::Json,
            profile: None,
        }
    }

    #[test]
    fn the_secret_reaches_stdin_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {o}.stdin; printf '%s\\n' \"$0\" \"$@\" > {o}.argv; env > {o}.env",
            o = out.display()
        );
        let runner = ProcessRunner::new([
            ("PATH", "/usr/bin:/bin"),
            ("AWS_SECRET_ACCESS_KEY", "ShellExportedSecret"),
            ("AWS_SESSION_TOKEN", "ShellToken"),
            ("aws_access_key_id", "lowercase"),
            ("AWS_REGION", "eu-west-1"),
            ("HOME", "/nowhere"),
        ]);
        let gate = hook(format!("sh -c {}", shlex::try_quote(&script).unwrap()));
        let result = crate::time::block_on(runner.run(&gate, &delivery(Duration::from_secs(20))));
        assert_eq!(result, GateResult::Passed);
        let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", out.display())).unwrap();
        assert!(read("stdin").contains("TopSecretValue+/123"));
        for ext in ["argv", "env"] {
            let text = read(ext);
            assert!(!text.contains("TopSecretValue"), "{ext}: {text}");
            assert!(!text.contains("ShellExportedSecret"), "{ext}: {text}");
            assert!(!text.contains("ShellToken"), "{ext}: {text}");
            assert!(!text.contains("lowercase"), "{ext}: {text}");
        }
        let env = read("env");
        assert!(
            env.contains("IAM_KEYS_ACCESS_KEY_ID=AKIANEWNEWNEW"),
            "{env}"
        );
        assert!(env.contains("IAM_KEYS_PROFILE=dev"), "{env}");
        assert!(env.contains("IAM_KEYS_USER=alice"), "{env}");
        assert!(env.contains("AWS_REGION=eu-west-1"), "{env}");
    }

    #[test]
    fn a_failing_hook_reports_its_exit_code() {
        let runner = ProcessRunner::new([("PATH", "/usr/bin:/bin")]);
        let result = crate::time::block_on(runner.run(
            &hook("sh -c 'exit 7'".into()),
            &delivery(Duration::from_secs(20)),
        ));
        assert_eq!(
            result,
            GateResult::Exited {
                code: Some(7),
                signal: None
            }
        );
    }

    #[test]
    fn a_hanging_hook_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-alive");
        let runner = ProcessRunner::new([("PATH", "/usr/bin:/bin")]);
        // The child outlives the timeout and would write the marker if not killed with its group.
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let result = crate::time::block_on(runner.run(
            &hook(format!("sh -c {}", shlex::try_quote(&script).unwrap())),
            &delivery(Duration::from_millis(500)),
        ));
        assert_eq!(
            result,
            GateResult::TimedOut {
                after: Duration::from_millis(500)
            }
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(3));
        assert!(!marker.exists(), "the hook's child was not killed");
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it() {
        let runner = ProcessRunner::new([("PATH", "/usr/bin:/bin")]);
        let result = crate::time::block_on(runner.run(
            &hook("/no/such/hook-program".into()),
            &delivery(Duration::from_secs(5)),
        ));
        match result {
            GateResult::Error(message) => {
                assert!(message.contains("/no/such/hook-program"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
