//! One moto server per test process: the local IAM and STS the binary is tested against
//! (see `shared/reference/moto.md` for what moto does and does not model).
//!
//! [`moto()`] starts it on first use from the test venv (`moto_server -H 127.0.0.1 -p 0`, the
//! port read from its `Running on` log line, so there is no race for a port), bound to
//! 127.0.0.1 only. It is started through a small Python wrapper that holds our end of a pipe
//! on its stdin: when the test process ends, however it ends, the pipe closes and the wrapper
//! stops moto; and moto has `PR_SET_PDEATHSIG` set to SIGKILL should the wrapper itself die.
//! No orphan survives a test run. moto's own log goes to `<target dir>/moto-logs/`.
//!
//! Authentication checking is ON: the wrapper's first steps, with checking still off, create
//! the IAM user `admin` with an inline `Allow */*` policy and an access key; then
//! `POST /moto-api/reset-auth` with body `0` switches checking on, so unknown and deleted keys
//! get `InvalidClientTokenId` (HTTP 403, in moto's non-AWS envelope: the Rust SDK sees no
//! code) and policies are evaluated by action (moto cannot scope to a user ARN: test policies
//! use `Resource: "*"`). Inactive keys still authenticate in moto.
//!
//! The helpers are synchronous (tests may be plain `#[test]` functions) and run the Rust SDK,
//! signed with the admin key, on a runtime owned here; they also work when called from inside
//! a tokio runtime. Clients are built from explicit credentials only: the host's `AWS_*`
//! variables and `~/.aws` are never read. Each test makes its own users ([`Moto::unique`]):
//! the server is shared by every test of the process.
//!
//! Must not: reset moto's state or its auth switch after start (tests run in parallel on it),
//! print a secret, or send traffic anywhere but 127.0.0.1.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_iam::config::{BehaviorVersion, Region};
use aws_sdk_iam::types::StatusType;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use super::mask;
use super::python::{target_dir, venv_bin, venv_python};

/// The account moto uses unless told otherwise.
pub const ACCOUNT_ID: &str = "123456789012";

/// The region every test client signs for.
pub const REGION: &str = "us-east-1";

/// The actions a user needs to rotate their own keys (and to find their MFA device).
/// `sts:GetSessionToken` is here because moto, unlike AWS, needs an explicit Allow for it (MFA
/// flows call it with the old key); `sts:GetCallerIdentity` is always allowed.
pub const SELF_SERVICE_ACTIONS: &[&str] = &[
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:GetUser",
    "iam:ListMFADevices",
    "sts:GetSessionToken",
];

/// An identity policy allowing `actions` on `Resource: "*"` (the only resource moto matches).
pub fn policy_allowing(actions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }]
    })
    .to_string()
}

/// The moto server of this test process, started on first use. Panics (in every test that
/// asks) when it cannot be started, with the reason.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
    match MOTO.get_or_init(Moto::start) {
        Ok(moto) => moto,
        Err(why) => panic!("the moto server could not be started: {why}"),
    }
}

/// A second moto server of this test process, with authentication checking OFF, for what
/// moto cannot do with it on: requests whose signature moto recomputes differently from the
/// Rust SDK (form values with `${...}`, as in a managed policy document), and
/// assumed-role credentials from another account (Organizations). Tests that use it say why.
pub fn moto_without_auth() -> &'static Moto {
    static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
    match MOTO.get_or_init(|| Moto::start_with(false)) {
        Ok(moto) => moto,
        Err(why) => panic!("the second moto server could not be started: {why}"),
    }
}

/// A unique name for this process's moto (IAM user names, device names): `prefix-N`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A running moto server with auth checking on, and an admin identity to set up tests with.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The port moto listens on (127.0.0.1 only).
    pub port: u16,
    /// moto's log file (request lines, tracebacks).
    pub log: PathBuf,
    admin_key_id: String,
    admin_secret: String,
    admin: aws_sdk_iam::Client,
    runtime: tokio::runtime::Runtime,
    // Held for the life of the process: the wrapper stops moto when this pipe closes.
    _wrapper: Mutex<(Child, ChildStdin)>,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("endpoint", &self.endpoint)
            .field("admin_key_id", &mask(&self.admin_key_id))
            .finish_non_exhaustive()
    }
}

/// The wrapper: starts moto with PR_SET_PDEATHSIG, copies its output to the log, reports the
/// port on stdout, and stops moto when its own stdin reaches end of file.
const WRAPPER: &str = r#"
import ctypes, re, signal, subprocess, sys, threading
moto_server, log_path = sys.argv[1], sys.argv[2]

def die_with_parent():
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass

log = open(log_path, "ab", buffering=0)
child = subprocess.Popen(
    [moto_server, "-H", "127.0.0.1", "-p", "0"],
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    preexec_fn=die_with_parent,
)
port = None
for line in child.stdout:
    log.write(line)
    m = re.search(rb"Running on http://127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
if port is None:
    print("EXITED %s" % child.wait(), flush=True)
    sys.exit(1)

def pump():
    for line in child.stdout:
        log.write(line)

threading.Thread(target=pump, daemon=True).start()
print("PORT %d %d" % (port, child.pid), flush=True)
sys.stdin.buffer.read()  # returns when the test process closes the pipe (or dies)
child.terminate()
try:
    child.wait(timeout=5)
except subprocess.TimeoutExpired:
    child.kill()
    child.wait()
"#;

impl Moto {
    fn start() -> Result<Moto, String> {
        Moto::start_with(true)
    }

    fn start_with(auth: bool) -> Result<Moto, String> {
        let started = Instant::now();
        let moto_server = venv_bin("moto_server");
        let log_dir = target_dir().join("moto-logs");
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
        let suffix = if auth { "" } else { "-noauth" };
        let log = log_dir.join(format!("moto-{}{suffix}.log", std::process::id()));

        let mut child = Command::new(venv_python())
            .arg("-u")
            .arg("-c")
            .arg(WRAPPER)
            .arg(&moto_server)
            .arg(&log)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &log_dir)
            .env("LANG", "C.UTF-8")
            .env("PYTHONUNBUFFERED", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run the venv's python: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        // Read the port line on a thread, so a silent failure cannot hang the tests.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let port: u16 = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["PORT", port, _pid] => port.parse().map_err(|e| format!("bad port line: {e}"))?,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "moto_server did not report its port within 60 s (wrapper said {:?}); \
                     its log {}:\n{}",
                    line.trim(),
                    log.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
        };
        let endpoint = format!("http://127.0.0.1:{port}");

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("moto-admin")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;

        // Auth is still off: any signature is accepted. Make the admin, then switch it on.
        let bootstrap = iam_client(&endpoint, "AKIAIOSFODNN7EXAMPLE", "bootstrap", None);
        let (admin_key_id, admin_secret) = runtime.block_on(async {
            bootstrap
                .create_user()
                .user_name("admin")
                .send()
                .await
                .map_err(|e| format!("CreateUser admin: {}", DisplayErrorContext(e)))?;
            bootstrap
                .put_user_policy()
                .user_name("admin")
                .policy_name("admin-all")
                .policy_document(policy_allowing(&["*"]))
                .send()
                .await
                .map_err(|e| format!("PutUserPolicy admin: {}", DisplayErrorContext(e)))?;
            let out = bootstrap
                .create_access_key()
                .user_name("admin")
                .send()
                .await
                .map_err(|e| format!("CreateAccessKey admin: {}", DisplayErrorContext(e)))?;
            let key = out.access_key().ok_or("CreateAccessKey admin: no key")?;
            Ok::<_, String>((
                key.access_key_id().to_string(),
                key.secret_access_key().to_string(),
            ))
        })?;
        let (status, body) = if auth {
            http_post(&endpoint, "/moto-api/reset-auth", "text/plain", "0")
                .map_err(|e| format!("POST /moto-api/reset-auth: {e}"))?
        } else {
            (200, String::new())
        };
        if status != 200 {
            return Err(format!(
                "POST /moto-api/reset-auth answered {status}: {body}"
            ));
        }

        let admin = iam_client(&endpoint, &admin_key_id, &admin_secret, None)
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .build();
        let moto = Moto {
            endpoint,
            port,
            log,
            admin_key_id,
            admin_secret,
            admin: aws_sdk_iam::Client::from_conf(admin),
            runtime,
            _wrapper: Mutex::new((child, stdin)),
        };
        // Prove the switch took: the admin key works, an unknown key does not.
        let me = moto.whoami(&moto.admin_key_id, &moto.admin_secret)?;
        if !me.ends_with(":user/admin") {
            return Err(format!("the admin key authenticates as {me}"));
        }
        if auth && moto.whoami("AKIAIOSFODNN7EXAMPLE", "bootstrap").is_ok() {
            return Err("auth checking is not on: an unknown key was accepted".into());
        }
        eprintln!(
            "moto: {} ready in {:.2} s (log {})",
            moto.endpoint,
            started.elapsed().as_secs_f64(),
            moto.log.display()
        );
        Ok(moto)
    }

    /// Runs a future to completion on the runtime owned here. Works from plain threads and
    /// from inside another tokio runtime (it then blocks on a helper thread).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime.block_on(fut))
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        } else {
            self.runtime.block_on(fut)
        }
    }

    /// The admin's IAM client (an inline `Allow */*`), for setup the helpers do not cover.
    pub fn admin_iam(&self) -> &aws_sdk_iam::Client {
        &self.admin
    }

    /// The admin's access key id and secret (for `--auth-profile` style tests). Never print
    /// the secret.
    pub fn admin_credentials(&self) -> (&str, &str) {
        (&self.admin_key_id, &self.admin_secret)
    }

    /// A unique name in this moto: `prefix-N`.
    pub fn unique(&self, prefix: &str) -> String {
        unique(prefix)
    }

    /// Creates an IAM user allowed [`SELF_SERVICE_ACTIONS`] on `Resource: "*"`.
    pub fn create_user(&self, name: &str) {
        self.create_user_with_policy(name, &policy_allowing(SELF_SERVICE_ACTIONS));
    }

    /// Creates an IAM user with `policy_json` as its one inline policy.
    pub fn create_user_with_policy(&self, name: &str, policy_json: &str) {
        self.block_on(async {
            self.admin
                .create_user()
                .user_name(name)
                .send()
                .await
                .map_err(|e| format!("CreateUser {name}: {}", DisplayErrorContext(e)))?;
            self.admin
                .put_user_policy()
                .user_name(name)
                .policy_name("test-policy")
                .policy_document(policy_json)
                .send()
                .await
                .map_err(|e| format!("PutUserPolicy {name}: {}", DisplayErrorContext(e)))?;
            Ok::<_, String>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Creates an access key for `user`: (access key id, secret). Never print the secret.
    pub fn create_key(&self, user: &str) -> (String, String) {
        let out = self
            .block_on(self.admin.create_access_key().user_name(user).send())
            .unwrap_or_else(|e| panic!("CreateAccessKey {user}: {}", DisplayErrorContext(e)));
        let key = out.access_key().expect("CreateAccessKey returned a key");
        (
            key.access_key_id().to_string(),
            key.secret_access_key().to_string(),
        )
    }

    /// `user`'s access keys as (id, status), in IAM's order.
    pub fn list_keys(&self, user: &str) -> Vec<(String, String)> {
        let out = self
            .block_on(self.admin.list_access_keys().user_name(user).send())
            .unwrap_or_else(|e| panic!("ListAccessKeys {user}: {}", DisplayErrorContext(e)));
        out.access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap_or_default().to_string(),
                    k.status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Sets a key's status (`Active` or `Inactive`; moto stores any string).
    pub fn set_key_status(&self, user: &str, id: &str, status: &str) {
        self.block_on(
            self.admin
                .update_access_key()
                .user_name(user)
                .access_key_id(id)
                .status(StatusType::from(status))
                .send(),
        )
        .unwrap_or_else(|e| {
            panic!(
                "UpdateAccessKey {user} {} {status}: {}",
                mask(id),
                DisplayErrorContext(e)
            )
        });
    }

    /// Deletes a key.
    pub fn delete_key(&self, user: &str, id: &str) {
        self.block_on(
            self.admin
                .delete_access_key()
                .user_name(user)
                .access_key_id(id)
                .send(),
        )
        .unwrap_or_else(|e| {
            panic!(
                "DeleteAccessKey {user} {}: {}",
                mask(id),
                DisplayErrorContext(e)
            )
        });
    }

    /// Creates a virtual MFA device named after `user`, enables it for `user` (moto checks no
    /// codes), and returns its serial number (an ARN).
    pub fn create_virtual_mfa(&self, user: &str) -> String {
        self.block_on(async {
            let out = self
                .admin
                .create_virtual_mfa_device()
                .virtual_mfa_device_name(user)
                .send()
                .await
                .map_err(|e| {
                    format!("CreateVirtualMFADevice {user}: {}", DisplayErrorContext(e))
                })?;
            let serial = out
                .virtual_mfa_device()
                .map(|d| d.serial_number().to_string())
                .ok_or("CreateVirtualMFADevice returned no device")?;
            self.admin
                .enable_mfa_device()
                .user_name(user)
                .serial_number(&serial)
                .authentication_code1("123456")
                .authentication_code2("654321")
                .send()
                .await
                .map_err(|e| format!("EnableMFADevice {user}: {}", DisplayErrorContext(e)))?;
            Ok::<_, String>(serial)
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// GetCallerIdentity with this key, straight to moto: Ok(the caller's ARN) or Err(a
    /// description of the refusal: code or HTTP status; never the secret).
    pub fn whoami(&self, id: &str, secret: &str) -> Result<String, String> {
        self.whoami_at(&self.endpoint, id, secret, None)
    }

    /// GetCallerIdentity at `endpoint` (moto or a proxy), optionally with a session token.
    pub fn whoami_at(
        &self,
        endpoint: &str,
        id: &str,
        secret: &str,
        session_token: Option<&str>,
    ) -> Result<String, String> {
        let sts = sts_client(endpoint, id, secret, session_token);
        match self.block_on(sts.get_caller_identity().send()) {
            Ok(out) => Ok(out.arn().unwrap_or_default().to_string()),
            Err(e) => Err(describe_sdk_error(&e)),
        }
    }

    /// Whether this key authenticates as `user` against moto (inactive keys do, in moto).
    pub fn key_works_as(&self, id: &str, secret: &str, user: &str) -> bool {
        self.whoami(id, secret)
            .is_ok_and(|arn| arn == format!("arn:aws:iam::{ACCOUNT_ID}:user/{user}"))
    }
}

/// "CODE: message (HTTP status)" for an SDK error, or its display chain; never a secret.
pub fn describe_sdk_error<E, R>(e: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sts::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("<no code>"),
                err.message().unwrap_or("<no message>")
            )
        }
        other => format!("{}", DisplayErrorContext(other)),
    }
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

fn credentials(id: &str, secret: &str, session_token: Option<&str>) -> Credentials {
    Credentials::new(
        id,
        secret,
        session_token.map(str::to_string),
        None,
        "iam-keys-tests",
    )
}

/// An IAM client for `endpoint` signed with exactly these credentials (us-east-1, no retries,
/// 60 s operation timeout). Nothing is read from the environment or `~/.aws`.
pub fn iam_client(
    endpoint: &str,
    id: &str,
    secret: &str,
    session_token: Option<&str>,
) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials(id, secret, session_token))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        )
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

/// An STS client for `endpoint` signed with exactly these credentials (us-east-1, no retries,
/// 60 s operation timeout). Nothing is read from the environment or `~/.aws`.
pub fn sts_client(
    endpoint: &str,
    id: &str,
    secret: &str,
    session_token: Option<&str>,
) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials(id, secret, session_token))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https(),
        )
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// A plain HTTP/1.1 POST to `base` (`http://127.0.0.1:PORT`) + `path`: (status, body).
pub fn http_post(
    base: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other(format!("not an http:// URL: {base}")))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:.200}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `n` profiles `[p0]` … `[pN-1]` in a new sandbox's credentials file, each holding the one
/// key of its own new moto user: the sandbox and (profile, user, key id) per profile.
pub fn distinct_profiles(
    n: usize,
    prefix: &str,
) -> (super::cmd::Sandbox, Vec<(String, String, String)>) {
    let m = moto();
    let sandbox = super::cmd::Sandbox::new();
    let mut text = String::new();
    let mut users = Vec::new();
    for i in 0..n {
        let user = m.unique(prefix);
        m.create_user(&user);
        let (id, secret) = m.create_key(&user);
        text.push_str(&format!(
            "[p{i}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n"
        ));
        users.push((format!("p{i}"), user, id));
    }
    sandbox.write_credentials(&text);
    (sandbox, users)
}
