//! Which hooks and env files a key's rotation must update before the old key is retired:
//! `rotate --hook CMD` / `--env-file PATH` (every key of the run) and, for each profile that
//! holds the key, `iam_keys_hook`, `iam_keys_hook_format` and `iam_keys_env_file` under
//! `[profile x]` in the config file (botocore and the SDKs ignore keys they do not know).
//!
//! Everything is checked before anything changes: a command that cannot be split into
//! words, an unknown format, a relative `iam_keys_env_file` (a scheduled run's working
//! directory is not the user's), an env file that is not a regular file, does not parse or
//! holds another key.

use super::duration::DurationArg;
use crate::profiles::{ProfileFiles, dotenv};
use crate::rotation::hooks::{Gate, HookFormat, split_command};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// The profile setting naming a hook.
pub const HOOK_KEY: &str = "iam_keys_hook";
/// The profile setting naming how that hook reads the key (`json`, `dotenv`).
pub const HOOK_FORMAT_KEY: &str = "iam_keys_hook_format";
/// The profile setting naming a dotenv file.
pub const ENV_FILE_KEY: &str = "iam_keys_env_file";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum HookFormatArg {
    /// One JSON object: profile, user, account, access_key_id, secret_access_key, old_access_key_id
    #[default]
    Json,
    /// AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines (what `gh secret set -f -` reads)
    Dotenv,
}

impl From<HookFormatArg> for HookFormat {
    fn from(f: HookFormatArg) -> Self {
        match f {
            HookFormatArg::Json => HookFormat::Json,
            HookFormatArg::Dotenv => HookFormat::Dotenv,
        }
    }
}

/// `rotate`'s flags for other places that hold the key.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// Before the old key is retired, run CMD and give it the new key on its standard input
    /// (never in its arguments or environment); the old key is retired only if it exits 0.
    /// Split into words with shell quoting rules but run without a shell (write `sh -c '…'`
    /// for one). Repeatable
    #[arg(long = "hook", value_name = "CMD")]
    pub hooks: Vec<String>,
    /// How --hook commands read the key on standard input
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "json")]
    pub hook_format: HookFormatArg,
    /// How long each hook may run (default 60s); one still running then is killed and the old
    /// key stays Active
    #[arg(long, value_name = "DURATION")]
    pub hook_timeout: Option<DurationArg>,
    /// Before the old key is retired, write the new key into this dotenv file's
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (comments, order, quoting kept; file 0600).
    /// Repeatable
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,
}

/// The gates of one key held by `holders`, whose old key is `old_key_id`. `home`: for `~/`
/// in `iam_keys_env_file`. Errors name the profile or flag and say what to do.
pub fn gates_for(
    args: &HookArgs,
    files: &ProfileFiles,
    holders: &[String],
    old_key_id: &str,
    home: Option<&str>,
) -> Result<Vec<Gate>, String> {
    let mut gates: Vec<Gate> = Vec::new();
    let mut push = |gate: Gate| {
        let same = |g: &Gate| match (g, &gate) {
            (Gate::Hook { command: a, .. }, Gate::Hook { command: b, .. }) => a == b,
            (Gate::EnvFile { path: a, .. }, Gate::EnvFile { path: b, .. }) => a == b,
            _ => false,
        };
        if !gates.iter().any(same) {
            gates.push(gate);
        }
    };
    for holder in holders {
        let Some(profile) = files.profile(holder) else {
            continue;
        };
        if let Some(command) = profile.get(HOOK_KEY) {
            if split_command(command).is_none() {
                return Err(format!(
                    "profile {holder}: {HOOK_KEY} = {command} cannot be split into a program and its arguments \
                     (unbalanced quotes?); fix it in the config file"
                ));
            }
            let format = match profile.get(HOOK_FORMAT_KEY) {
                None => HookFormat::Json,
                Some(v) if v.eq_ignore_ascii_case("json") => HookFormat::Json,
                Some(v) if v.eq_ignore_ascii_case("dotenv") => HookFormat::Dotenv,
                Some(v) => {
                    return Err(format!(
                        "profile {holder}: {HOOK_FORMAT_KEY} = {v} is not a format; use json or dotenv"
                    ));
                }
            };
            push(Gate::Hook {
                command: command.to_string(),
                format,
                profile: Some(holder.clone()),
            });
        }
        if let Some(value) = profile.get(ENV_FILE_KEY) {
            let path = match (value.strip_prefix("~/"), home) {
                (Some(rest), Some(home)) => Path::new(home).join(rest),
                _ => PathBuf::from(value),
            };
            if !path.is_absolute() {
                return Err(format!(
                    "profile {holder}: {ENV_FILE_KEY} = {value} is not an absolute path; write the whole path \
                     (or ~/…), as a scheduled run starts in another directory"
                ));
            }
            push(Gate::EnvFile {
                path,
                profile: Some(holder.clone()),
            });
        }
    }
    for command in &args.hooks {
        if split_command(command).is_none() {
            return Err(format!(
                "--hook {command}: cannot be split into a program and its arguments (unbalanced quotes?)"
            ));
        }
        push(Gate::Hook {
            command: command.clone(),
            format: args.hook_format.into(),
            profile: None,
        });
    }
    for path in &args.env_files {
        push(Gate::EnvFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            profile: None,
        });
    }
    for gate in &gates {
        if let Gate::EnvFile { path, .. } = gate {
            dotenv::check(path, old_key_id).map_err(|e| e.to_string())?;
        }
    }
    Ok(gates)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::profiles::FilePaths;

    const KEY: &str = "AKIAOLDKEY0000000001";

    fn files(config: &str) -> ProfileFiles {
        let paths = FilePaths {
            credentials: "/nonexistent/credentials".into(),
            config: "/nonexistent/config".into(),
        };
        let credentials = format!(
            "[a]\naws_access_key_id = {KEY}\naws_secret_access_key = s\n\
             [b]\naws_access_key_id = {KEY}\naws_secret_access_key = s\n"
        );
        ProfileFiles::from_texts(&paths, &credentials, config).unwrap()
    }

    fn args(hooks: &[&str], env_files: &[&str]) -> HookArgs {
        HookArgs {
            hooks: hooks.iter().map(|h| h.to_string()).collect(),
            hook_format: HookFormatArg::Dotenv,
            hook_timeout: None,
            env_files: env_files.iter().map(PathBuf::from).collect(),
        }
    }

    fn holders() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn profile_gates_come_first_then_flags_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join(".env");
        let config = "[profile a]\niam_keys_hook = notify --to ops\niam_keys_env_file = ~/app.env\n\
             [profile b]\niam_keys_hook = notify --to ops\niam_keys_hook_format = DOTENV\n";
        let home = dir.path().display().to_string();
        let gates = gates_for(
            &args(
                &["gh secret set -f -", "notify --to ops"],
                &[env.to_str().unwrap()],
            ),
            &files(config),
            &holders(),
            KEY,
            Some(&home),
        )
        .unwrap();
        assert_eq!(
            gates,
            vec![
                Gate::Hook {
                    command: "notify --to ops".into(),
                    format: HookFormat::Json,
                    profile: Some("a".into()),
                },
                Gate::EnvFile {
                    path: dir.path().join("app.env"),
                    profile: Some("a".into()),
                },
                Gate::Hook {
                    command: "gh secret set -f -".into(),
                    format: HookFormat::Dotenv,
                    profile: None,
                },
                Gate::EnvFile {
                    path: env,
                    profile: None,
                },
            ]
        );
    }

    #[test]
    fn bad_settings_are_refused_naming_the_profile_or_flag() {
        let refused = |config: &str, hooks: &[&str]| {
            gates_for(
                &args(hooks, &[]),
                &files(config),
                &holders(),
                KEY,
                Some("/home/u"),
            )
            .unwrap_err()
        };
        let e = refused(
            "[profile b]\niam_keys_hook_format = yaml\niam_keys_hook = x\n",
            &[],
        );
        assert!(
            e.contains("profile b: iam_keys_hook_format = yaml is not a format"),
            "{e}"
        );
        let e = refused("[profile a]\niam_keys_env_file = app/.env\n", &[]);
        assert!(
            e.contains("profile a: iam_keys_env_file = app/.env is not an absolute path"),
            "{e}"
        );
        let e = refused("[profile a]\niam_keys_hook = say \"hi\n", &[]);
        assert!(
            e.contains("profile a: iam_keys_hook = say \"hi cannot be split"),
            "{e}"
        );
        let e = refused("", &["ok", "bad 'quote"]);
        assert!(e.contains("--hook bad 'quote: cannot be split"), "{e}");
    }

    #[test]
    fn no_settings_no_gates() {
        let gates = gates_for(&args(&[], &[]), &files(""), &holders(), KEY, None).unwrap();
        assert!(gates.is_empty());
    }
}
