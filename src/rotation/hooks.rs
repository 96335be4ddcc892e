//! Gates: the places outside the AWS files that must hold the new key before the old key is
//! retired. A gate is a hook (a command that receives the new key on its standard input and
//! puts it somewhere: a CI secret, a password manager) or a dotenv file whose
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` are rewritten.
//!
//! The protocol step (see the README's table): new key verified and in the files → every
//! gate, each once → retire. The old key is retired only when every gate passed (a hook
//! exited 0 within its timeout, a dotenv file was saved and read back). The journal records
//! each gate and whether it passed, so recovery runs only those that did not. A hook that
//! succeeded just before a crash, before its pass was recorded, runs again: hooks must be
//! idempotent.
//!
//! What a gate does is behind [`GateRunner`], so unit tests and the simulation run gates in
//! process; the real runner (processes, dotenv files) is [`crate::hooks`].
//!
//! Must not: print, spawn processes or touch files (the runner does). Outcomes are plain
//! values; `cli::words::describe_gate_failure` words them.

use crate::secret::Secret;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How long a hook may run unless `--hook-timeout` (or the journal) says otherwise.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// How a hook receives the new key on its standard input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookFormat {
    /// One JSON object: `profile`, `user`, `account`, `access_key_id`, `secret_access_key`,
    /// `old_access_key_id`.
    #[default]
    Json,
    /// `AWS_ACCESS_KEY_ID=…` and `AWS_SECRET_ACCESS_KEY=…` lines (what `gh secret set -f -`
    /// reads).
    Dotenv,
}

impl HookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            HookFormat::Json => "json",
            HookFormat::Dotenv => "dotenv",
        }
    }
}

/// One place the new key must reach before the old key is retired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Gate {
    /// A command, as the user wrote it (split into argv without a shell; see
    /// [`split_command`]).
    Hook {
        command: String,
        format: HookFormat,
        /// The profile whose `iam_keys_hook` set it (none: `--hook`).
        #[serde(default)]
        profile: Option<String>,
    },
    /// A dotenv file (absolute path) whose AWS key variables get the new key.
    EnvFile {
        path: PathBuf,
        #[serde(default)]
        profile: Option<String>,
    },
}

impl Gate {
    /// The profile that configured this gate, if any.
    pub fn profile(&self) -> Option<&str> {
        match self {
            Gate::Hook { profile, .. } | Gate::EnvFile { profile, .. } => profile.as_deref(),
        }
    }
}

/// A gate and whether it has passed, as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    #[serde(flatten)]
    pub gate: Gate,
    pub passed: bool,
}

/// What a gate is handed: the new key and non-secret facts about it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The profile the gate belongs to, else the first profile that held the old key.
    pub profile: String,
    pub user: String,
    pub account: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub old_access_key_id: String,
    /// How long a hook may run.
    pub timeout: Duration,
}

/// How one gate ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateResult {
    Passed,
    /// The hook exited with this code, or was killed by this signal.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The hook did not finish in time; it (and its process group) was killed.
    TimedOut {
        after: Duration,
    },
    /// The hook could not be started, or the dotenv file could not be written: why (no
    /// secret in it).
    Error(String),
}

impl GateResult {
    pub fn passed(&self) -> bool {
        *self == GateResult::Passed
    }
}

/// Runs gates. The real runner spawns processes and edits files; tests run them in process.
pub trait GateRunner {
    fn run<'a>(&'a self, gate: &'a Gate, delivery: &'a Delivery) -> LocalBoxFuture<'a, GateResult>;
}

/// No gates can run: every gate fails (a build of the engine that was given none).
pub struct NoGates;

impl GateRunner for NoGates {
    fn run<'a>(&'a self, _: &'a Gate, _: &'a Delivery) -> LocalBoxFuture<'a, GateResult> {
        Box::pin(async { GateResult::Error("no gate runner is configured".into()) })
    }
}

/// A command line split into its program and arguments, POSIX-shell style quoting
/// (`'…'`, `"…"`, `\`) but no shell: no variables, globs, pipes or redirections, so nothing
/// in it is interpreted by a shell. `None`: unbalanced quotes or no program.
pub fn split_command(command: &str) -> Option<Vec<String>> {
    let words = shlex::split(command)?;
    if words.is_empty() || words[0].is_empty() {
        return None;
    }
    Some(words)
}

/// The bytes a hook reads on its standard input.
pub fn stdin_payload(format: HookFormat, delivery: &Delivery) -> Secret {
    match format {
        HookFormat::Json => {
            let doc = serde_json::json!({
                "profile": delivery.profile,
                "user": delivery.user,
                "account": delivery.account,
                "access_key_id": delivery.access_key_id,
                "secret_access_key": delivery.secret_access_key.expose(),
                "old_access_key_id": delivery.old_access_key_id,
            });
            Secret::new(doc.to_string() + "\n")
        }
        HookFormat::Dotenv => Secret::new(format!(
            "AWS_ACCESS_KEY_ID={}\nAWS_SECRET_ACCESS_KEY={}\n",
            delivery.access_key_id,
            delivery.secret_access_key.expose()
        )),
    }
}

/// An in-process runner for unit tests and the simulation: every gate passes unless a
/// result is scripted for its command (or path); every delivery is recorded, with whether
/// `active` said the old key was still Active at that moment.
#[cfg(test)]
#[derive(Default)]
pub struct ScriptedGates {
    /// Results to give, per gate label, first to last; when a label's queue is empty the
    /// gate passes.
    pub script: std::cell::RefCell<std::collections::BTreeMap<String, Vec<GateResult>>>,
    /// (gate label, new key id, secret) of every run.
    pub runs: std::cell::RefCell<Vec<(String, String, Secret)>>,
    /// (old key id, gate label) of every run that passed.
    pub passes: std::cell::RefCell<std::collections::BTreeSet<(String, String)>>,
    /// Called at every run (a test can look at IAM there).
    #[allow(clippy::type_complexity)]
    pub on_run: std::cell::RefCell<Option<Box<dyn Fn(&Gate, &Delivery)>>>,
}

#[cfg(test)]
impl ScriptedGates {
    pub fn label(gate: &Gate) -> String {
        match gate {
            Gate::Hook { command, .. } => command.clone(),
            Gate::EnvFile { path, .. } => path.display().to_string(),
        }
    }

    /// The next runs of `label` end with `results`, in order.
    pub fn fail(&self, label: &str, results: Vec<GateResult>) {
        self.script.borrow_mut().insert(label.to_string(), results);
    }

    pub fn labels_run(&self) -> Vec<String> {
        self.runs.borrow().iter().map(|(l, ..)| l.clone()).collect()
    }
}

#[cfg(test)]
impl GateRunner for ScriptedGates {
    fn run<'a>(&'a self, gate: &'a Gate, d: &'a Delivery) -> LocalBoxFuture<'a, GateResult> {
        Box::pin(async move {
            let label = Self::label(gate);
            if let Some(f) = self.on_run.borrow().as_ref() {
                f(gate, d);
            }
            self.runs.borrow_mut().push((
                label.clone(),
                d.access_key_id.clone(),
                d.secret_access_key.clone(),
            ));
            let result = match self.script.borrow_mut().get_mut(&label) {
                Some(queue) if !queue.is_empty() => queue.remove(0),
                _ => GateResult::Passed,
            };
            if result.passed() {
                self.passes
                    .borrow_mut()
                    .insert((d.old_access_key_id.clone(), label));
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            profile: "dev".into(),
            user: "alice".into(),
            account: "123456789012".into(),
            access_key_id: "AKIANEW".into(),
            secret_access_key: Secret::new("s3cr3t/+x"),
            old_access_key_id: "AKIAOLD".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn json_payload_has_every_field() {
        let payload = stdin_payload(HookFormat::Json, &delivery());
        let v: serde_json::Value = serde_json::from_str(payload.expose()).unwrap();
        assert_eq!(v["profile"], "dev");
        assert_eq!(v["user"], "alice");
        assert_eq!(v["account"], "123456789012");
        assert_eq!(v["access_key_id"], "AKIANEW");
        assert_eq!(v["secret_access_key"], "s3cr3t/+x");
        assert_eq!(v["old_access_key_id"], "AKIAOLD");
    }

    #[test]
    fn dotenv_payload_is_two_lines() {
        let payload = stdin_payload(HookFormat::Dotenv, &delivery());
        assert_eq!(
            payload.expose(),
            "AWS_ACCESS_KEY_ID=AKIANEW\nAWS_SECRET_ACCESS_KEY=s3cr3t/+x\n"
        );
    }

    #[test]
    fn commands_split_without_a_shell() {
        assert_eq!(
            split_command("gh secret set -f - --repo 'o/r x'").unwrap(),
            ["gh", "secret", "set", "-f", "-", "--repo", "o/r x"]
        );
        // Shell syntax is not interpreted: it reaches the program as words.
        assert_eq!(
            split_command("echo $HOME | cat").unwrap(),
            ["echo", "$HOME", "|", "cat"]
        );
        assert_eq!(split_command("a 'unbalanced"), None);
        assert_eq!(split_command("   "), None);
        assert_eq!(split_command("''"), None);
    }

    #[test]
    fn gate_states_round_trip_through_json() {
        let states = vec![
            GateState {
                gate: Gate::Hook {
                    command: "x y".into(),
                    format: HookFormat::Dotenv,
                    profile: Some("dev".into()),
                },
                passed: true,
            },
            GateState {
                gate: Gate::EnvFile {
                    path: "/p/.env".into(),
                    profile: None,
                },
                passed: false,
            },
        ];
        let text = serde_json::to_string(&states).unwrap();
        assert!(text.contains(r#""kind":"hook""#), "{text}");
        let back: Vec<GateState> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, states);
    }
}
