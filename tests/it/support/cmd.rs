//! Running the built `iam-keys` binary (and the AWS CLI) the way a user would, but sealed off
//! from the machine it runs on.
//!
//! A [`Sandbox`] is a temporary directory used as `HOME`, with `.aws/credentials` and
//! `.aws/config` in it. Every command is started with `env_clear()` and then only: `HOME`,
//! `PATH`, `LANG=C.UTF-8`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, `AWS_ENDPOINT_URL`
//! (moto, or a [`FaultProxy`](super::proxy::FaultProxy) given with [`Cmd::endpoint`]),
//! `AWS_EC2_METADATA_DISABLED=true`, `NO_PROXY=127.0.0.1,localhost`, `NO_COLOR=1`, plus what a
//! test adds with [`Cmd::env`]. The host's `AWS_*` variables and its real `~/.aws` never reach
//! the child. Standard input is empty (not a terminal) unless a test gives text.
//!
//! A [`Run`] holds the exit status and both streams, and has assertions that print both
//! streams on failure, with anything shaped like a secret access key masked.
//!
//! Must not: print a secret, leave a child running after its deadline, or run anything that
//! talks to an address other than 127.0.0.1.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::moto::moto;
use super::python::venv_dir;
use super::redact_secrets;

/// How long a command may run before it is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The built binary under test.
pub fn iam_keys_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iam-keys"))
}

/// A temporary HOME with `.aws/credentials` and `.aws/config`; removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// `<home>/.aws/credentials` (written by [`Sandbox::write_credentials`]).
    pub credentials: PathBuf,
    /// `<home>/.aws/config` (written by [`Sandbox::write_config`]).
    pub config: PathBuf,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("home", &self.home())
            .finish()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

impl Sandbox {
    /// A fresh HOME with an empty `.aws/` (mode 0700) and no files in it yet.
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("iam-keys-it-")
            .tempdir()
            .expect("create a temporary HOME");
        let aws = dir.path().join(".aws");
        fs::create_dir(&aws).expect("create HOME/.aws");
        fs::set_permissions(&aws, fs::Permissions::from_mode(0o700)).expect("chmod HOME/.aws");
        Sandbox {
            credentials: aws.join("credentials"),
            config: aws.join("config"),
            dir,
        }
    }

    /// The temporary HOME.
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// A path under HOME.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.home().join(relative)
    }

    /// Writes the credentials file (mode 0600).
    pub fn write_credentials(&self, text: &str) {
        write_private(&self.credentials, text);
    }

    /// Writes the config file (mode 0600).
    pub fn write_config(&self, text: &str) {
        write_private(&self.config, text);
    }

    /// The credentials file's text. It holds secrets: assert on it, never print it.
    pub fn read_credentials(&self) -> String {
        fs::read_to_string(&self.credentials)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.credentials.display()))
    }

    /// The config file's text (it may hold keys too: never print it).
    pub fn read_config(&self) -> String {
        fs::read_to_string(&self.config)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", self.config.display()))
    }

    /// A command line for the binary, to refine (env, stdin, endpoint, timeout) and run.
    pub fn cmd(&self, args: &[&str]) -> Cmd<'_> {
        Cmd {
            sandbox: self,
            program: iam_keys_bin(),
            display_name: "iam-keys".into(),
            args: args.iter().map(OsString::from).collect(),
            envs: Vec::new(),
            stdin: None,
            endpoint: None,
            timeout: DEFAULT_TIMEOUT,
            path_prefix: None,
        }
    }

    /// Runs the binary against moto with the scrubbed environment and waits for it.
    pub fn iam_keys(&self, args: &[&str]) -> Run {
        self.cmd(args).run()
    }

    /// Starts the binary against moto and returns at once (for kill tests); see [`finish`].
    pub fn spawn_iam_keys(&self, args: &[&str]) -> Child {
        self.cmd(args).spawn()
    }

    /// The test venv's AWS CLI v1 (`aws`) with the same scrubbed environment (the venv's
    /// `bin` first on PATH), against moto. Refine it like [`Sandbox::cmd`]. The CLI needs a
    /// region: give the profile one or pass `--region` (no `AWS_DEFAULT_REGION` is set, as it
    /// would override the profile's). It exits 255 on any AWS error.
    pub fn aws(&self, args: &[&str]) -> Cmd<'_> {
        let venv_bin = venv_dir().join("bin");
        Cmd {
            program: venv_bin.join("aws"),
            display_name: "aws".into(),
            path_prefix: Some(venv_bin),
            ..self.cmd(args)
        }
    }

    /// Runs the AWS CLI (for example `["sts", "get-caller-identity", "--profile", "x"]`).
    pub fn aws_cli(&self, args: &[&str]) -> Run {
        self.aws(args).run()
    }
}

fn write_private(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", path.display()));
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A command to run in a [`Sandbox`]: the binary or the AWS CLI, with the scrubbed environment.
#[derive(Clone)]
pub struct Cmd<'a> {
    sandbox: &'a Sandbox,
    program: PathBuf,
    display_name: String,
    args: Vec<OsString>,
    envs: Vec<(String, String)>,
    stdin: Option<String>,
    endpoint: Option<String>,
    timeout: Duration,
    path_prefix: Option<PathBuf>,
}

impl std::fmt::Debug for Cmd<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("program", &self.display_name)
            .field("args", &self.args)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl<'a> Cmd<'a> {
    /// One more argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// An extra environment variable (replaces a default one of the same name).
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    /// Text for standard input (a pipe, not a terminal). Default: empty.
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// `AWS_ENDPOINT_URL` (a [`FaultProxy`](super::proxy::FaultProxy)'s endpoint, say).
    /// Default: this process's moto.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.endpoint = Some(url.to_string());
        self
    }

    /// Kill the command and fail the test after this long. Default [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs another program with the same environment (for tests of the harness itself).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        self.display_name = program.display().to_string();
        self.program = program;
        self
    }

    /// The exact environment the child gets, in order (later entries win).
    pub fn env_list(&self) -> Vec<(String, String)> {
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| moto().endpoint.clone());
        let host_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let path = match &self.path_prefix {
            Some(prefix) => format!("{}:{host_path}", prefix.display()),
            None => host_path,
        };
        let mut env = vec![
            (
                "HOME".to_string(),
                self.sandbox.home().display().to_string(),
            ),
            ("PATH".to_string(), path),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE".to_string(),
                self.sandbox.credentials.display().to_string(),
            ),
            (
                "AWS_CONFIG_FILE".to_string(),
                self.sandbox.config.display().to_string(),
            ),
            ("AWS_ENDPOINT_URL".to_string(), endpoint),
            ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
            ("NO_PROXY".to_string(), "127.0.0.1,localhost".to_string()),
            ("NO_COLOR".to_string(), "1".to_string()),
        ];
        for (k, v) in &self.envs {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        env
    }

    /// The `std::process::Command` this would run (stdio not yet set).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(self.env_list())
            .current_dir(self.sandbox.home());
        cmd
    }

    /// Starts it with stdout and stderr piped, and returns at once. Collect with [`finish`].
    pub fn spawn(self) -> Child {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        if let Some(text) = self.stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            // A thread, so a child that does not read cannot block the test.
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        child
    }

    /// Starts it and reads both streams as they come, so a chatty child (`-vvv`,
    /// `RUST_LOG=trace`) never blocks on a full pipe while a test holds it somewhere.
    /// Collect with [`Running::finish`].
    pub fn start(self) -> Running {
        let timeout = self.timeout;
        let label = self.label();
        let mut child = self.spawn();
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        Running {
            child,
            label,
            timeout,
            out,
            err,
        }
    }

    /// Runs it to the end (or to its deadline: then it is killed and the test fails).
    pub fn run(self) -> Run {
        let timeout = self.timeout;
        let label = self.label();
        let child = self.spawn();
        collect(child, timeout, label)
    }

    fn label(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("{} {}", self.display_name, args.join(" "))
    }
}

/// Waits for a spawned child (see [`Sandbox::spawn_iam_keys`]) and collects its output; kills
/// it after [`DEFAULT_TIMEOUT`]. Works after the test killed it too (status is then negative).
pub fn finish(child: Child) -> Run {
    collect(child, DEFAULT_TIMEOUT, "iam-keys (spawned)".into())
}

/// A child started with [`Cmd::start`], its output being read.
pub struct Running {
    child: Child,
    label: String,
    timeout: Duration,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the child");
    }

    /// Waits for it (killing it and failing the test after its deadline) and collects.
    pub fn finish(self) -> Run {
        wait_and_collect(self.child, self.out, self.err, self.timeout, self.label)
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn collect(mut child: Child, timeout: Duration, label: String) -> Run {
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    wait_and_collect(child, out, err, timeout, label)
}

fn wait_and_collect(
    mut child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
    timeout: Duration,
    label: String,
) -> Run {
    let deadline = Instant::now() + timeout;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait for the killed child"), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("cannot wait for {label}: {e}"),
        }
    };
    let run = Run {
        label,
        status: code_of(status),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    };
    assert!(
        !timed_out,
        "{} did not finish within {timeout:?}: killed\n{run}",
        run.label
    );
    run
}

/// The exit code, or minus the signal number when a signal ended the process.
fn code_of(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| -status.signal().unwrap_or(0))
}

/// What a finished command did.
#[derive(Clone)]
pub struct Run {
    /// The command line, for messages (`iam-keys rotate --all`).
    pub label: String,
    /// The exit code; minus the signal number when killed by a signal.
    pub status: i32,
    /// Standard output. May hold a secret (`--output env`): never print it whole.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl std::fmt::Display for Run {
    /// Both streams, with anything shaped like a secret access key masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            self.label,
            self.status,
            redact_secrets(&self.stdout),
            redact_secrets(&self.stderr)
        )
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Run {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// stdout then stderr.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Fails (printing both streams, masked) unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert!(
            self.status == code,
            "expected exit code {code}, got {}\n{self}",
            self.status
        );
        self
    }

    /// Fails unless the exit code is 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    /// Fails unless stdout contains `needle`.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout does not contain {needle:?}\n{self}"
        );
        self
    }

    /// Fails unless stderr contains `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr does not contain {needle:?}\n{self}"
        );
        self
    }

    /// Fails unless stdout or stderr contains `needle`.
    #[track_caller]
    pub fn assert_output_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "neither stream contains {needle:?}\n{self}"
        );
        self
    }

    /// Fails if `secret` appears in either stream. The message gives where, never the secret.
    #[track_caller]
    pub fn assert_no_secret(&self, secret: &str) -> &Self {
        assert!(!secret.is_empty(), "assert_no_secret: empty secret");
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if let Some(at) = text.find(secret) {
                panic!(
                    "a secret ({} characters) appears in the {name} of `{}` at byte {at}",
                    secret.len(),
                    self.label
                );
            }
        }
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}
