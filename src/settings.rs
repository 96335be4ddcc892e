//! Resolved settings: the literal command-line arguments plus the environment, read once,
//! turned into the values the commands use (files, selected profiles, region and endpoints
//! per profile, output style).
//!
//! Must not: read the environment anywhere but [`Env::from_process`], touch the network, or
//! edit files.

use crate::aws::{Credentials, Target};
use crate::profiles::{FilePaths, Profile, ProfileError, ProfileFiles};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The global options as plain values: what the command line gave (`cli::GlobalArgs::flags`),
/// before the environment and the files are consulted.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--profile`, in the order given.
    pub profiles: Vec<String>,
    /// `--all`.
    pub all: bool,
    pub credentials_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub region: Option<String>,
    pub output: OutputFormat,
    pub no_color: bool,
    /// `-v` count.
    pub verbose: u8,
    /// `--quiet`.
    pub quiet: bool,
}

/// How results are written on stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text
    #[default]
    Text,
    /// JSON with stable field names (see the README)
    Json,
    /// `AWS_ACCESS_KEY_ID=…` lines for each new key (rotate and recover; the one way a secret is printed)
    Env,
    /// Comma-separated values with a header row (audit only)
    Csv,
}

/// A snapshot of the environment variables, taken once at start.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment made of the given pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Every variable (for what a hook inherits, filtered by [`crate::hooks`]).
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A variable's value; empty counts as unset, as in the AWS CLI.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn is_true(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Which profiles a command works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Named profiles, in the order given (duplicates removed).
    Named(Vec<String>),
    /// Every profile in either file.
    All,
}

/// Everything a command needs to know that is not its own arguments.
#[derive(Clone, Debug)]
pub struct Settings {
    pub paths: FilePaths,
    pub selection: Selection,
    /// Whether `--profile` was given (not just `$AWS_PROFILE` or `default`).
    pub explicit_profiles: bool,
    pub region: Option<String>,
    pub output: OutputFormat,
    pub color: bool,
    pub verbose: u8,
    /// `--quiet`: no progress, no notes; results only when something failed.
    pub quiet: bool,
    /// Redraw progress in place on stderr: a terminal, not `--quiet` or `-v`, and neither
    /// `NO_COLOR` nor `TERM=dumb`. Otherwise progress is plain lines (or nothing).
    pub live_progress: bool,
    /// iam-keys' own per-user state (the index of recovery journals): `IAM_KEYS_STATE_DIR`,
    /// else the platform's state directory. `None` when no home directory is known.
    pub state_dir: Option<std::path::PathBuf>,
    pub env: Env,
}

/// The per-user state directory: `IAM_KEYS_STATE_DIR`; else `$XDG_STATE_HOME/iam-keys`, or
/// `~/.local/state/iam-keys` (Linux and other Unix); `~/Library/Application Support/iam-keys`
/// (macOS); `%LOCALAPPDATA%\iam-keys` (Windows).
fn state_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(dir) = env("IAM_KEYS_STATE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if cfg!(windows) {
        return env("LOCALAPPDATA").map(|d| PathBuf::from(d).join("iam-keys"));
    }
    if cfg!(target_os = "macos") {
        return crate::profiles::home_dir(env)
            .map(|h| PathBuf::from(h).join("Library/Application Support/iam-keys"));
    }
    if let Some(xdg) = env("XDG_STATE_HOME").filter(|d| std::path::Path::new(d).is_absolute()) {
        return Some(PathBuf::from(xdg).join("iam-keys"));
    }
    crate::profiles::home_dir(env).map(|h| PathBuf::from(h).join(".local/state/iam-keys"))
}

impl Settings {
    pub fn resolve(args: &Flags, env: Env) -> Result<Settings, ProfileError> {
        let lookup = |name: &str| env.get(name).map(str::to_string);
        let paths = FilePaths::resolve(
            args.credentials_file.clone(),
            args.config_file.clone(),
            &lookup,
        )?;
        let selection = if args.all {
            Selection::All
        } else if args.profiles.is_empty() {
            Selection::Named(vec![
                env.get("AWS_PROFILE").unwrap_or("default").to_string(),
            ])
        } else {
            let mut names: Vec<String> = Vec::new();
            for name in &args.profiles {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
            Selection::Named(names)
        };
        let stderr_terminal = {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal()
        };
        let dumb = env.get("TERM") == Some("dumb");
        let color = !args.no_color && env.get("NO_COLOR").is_none() && !dumb && stderr_terminal;
        let live_progress = stderr_terminal
            && !args.quiet
            && args.verbose == 0
            && env.get("NO_COLOR").is_none()
            && !dumb;
        Ok(Settings {
            paths,
            selection,
            explicit_profiles: !args.profiles.is_empty(),
            region: args.region.clone(),
            output: args.output,
            color,
            verbose: args.verbose,
            quiet: args.quiet,
            live_progress,
            state_dir: state_dir(&lookup),
            env,
        })
    }

    /// The profile names selected, given what the files hold.
    pub fn selected_names(&self, files: &ProfileFiles) -> Vec<String> {
        match &self.selection {
            Selection::All => files.profile_names(),
            Selection::Named(names) => names.clone(),
        }
    }

    /// Warn-worthy environment: exported keys are ignored on purpose (we always use the
    /// profile's own key), which surprises people who expect the AWS CLI's precedence.
    pub fn ambient_key_warning(&self) -> Option<String> {
        self.env.get("AWS_ACCESS_KEY_ID").map(|_| {
            "AWS_ACCESS_KEY_ID is set in the environment; iam-keys ignores it and uses each \
             profile's own key from the files"
                .to_string()
        })
    }

    /// The region for a profile: `--region`, then the profile's `region`, then
    /// `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`. The profile comes before the
    /// environment (unlike the AWS CLI) because one run covers many profiles, and a
    /// GovCloud or China profile must keep its own region.
    pub fn region_for(&self, profile: Option<&Profile>) -> String {
        self.region
            .clone()
            .or_else(|| profile.and_then(|p| p.get("region")).map(str::to_string))
            .or_else(|| self.env.get("AWS_REGION").map(str::to_string))
            .or_else(|| self.env.get("AWS_DEFAULT_REGION").map(str::to_string))
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    /// The endpoint for one service (`iam` or `sts`), following the SDK conventions:
    /// `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, the profile's `[services]` entry,
    /// the profile's `endpoint_url`; none of them when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
    /// or the profile's `ignore_configured_endpoint_urls` is true.
    pub fn endpoint_for(
        &self,
        service: &str,
        profile: Option<&Profile>,
        files: &ProfileFiles,
    ) -> Option<String> {
        let ignored = self.env.is_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            || profile
                .and_then(|p| p.get("ignore_configured_endpoint_urls"))
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if ignored {
            return None;
        }
        let var = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
        self.env
            .get(&var)
            .or_else(|| self.env.get("AWS_ENDPOINT_URL"))
            .map(str::to_string)
            .or_else(|| {
                let p = profile?;
                p.get("services")
                    .and_then(|section| files.services_endpoint(section, service))
            })
            .or_else(|| {
                profile
                    .and_then(|p| p.get("endpoint_url"))
                    .map(str::to_string)
            })
    }

    /// A fully resolved call target for a profile and credentials.
    pub fn target(
        &self,
        profile: Option<&Profile>,
        files: &ProfileFiles,
        credentials: Credentials,
    ) -> Target {
        Target {
            credentials,
            region: self.region_for(profile),
            iam_endpoint: self.endpoint_for("iam", profile, files),
            sts_endpoint: self.endpoint_for("sts", profile, files),
        }
    }

    /// A CA bundle for TLS (the SDK ignores `AWS_CA_BUNDLE`; we honour it and `ca_bundle`).
    pub fn ca_bundle(&self, profile: Option<&Profile>) -> Option<std::path::PathBuf> {
        self.env
            .get("AWS_CA_BUNDLE")
            .map(str::to_string)
            .or_else(|| profile.and_then(|p| p.get("ca_bundle")).map(str::to_string))
            .map(std::path::PathBuf::from)
    }
}

#[cfg(test)]
impl Settings {
    /// Settings for unit tests: the named profiles, files that do not exist, no environment.
    pub(crate) fn for_tests(profiles: &[&str]) -> Settings {
        Settings::resolve(
            &Flags {
                profiles: profiles.iter().map(|p| p.to_string()).collect(),
                credentials_file: Some("/nonexistent/credentials".into()),
                config_file: Some("/nonexistent/config".into()),
                no_color: true,
                ..Default::default()
            },
            Env::default(),
        )
        .expect("settings without files or environment always resolve")
    }
}

/// The partition a region belongs to: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`.
pub fn partition_for_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_region_prefix() {
        assert_eq!(partition_for_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_for_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_for_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_for_region("us-east-1"), "aws");
        assert_eq!(partition_for_region("eu-west-1"), "aws");
    }

    fn settings_without_flags() -> Settings {
        Settings::for_tests(&["gov", "china", "plain"])
    }

    #[test]
    fn region_flag_and_environment_order() {
        let mut settings = settings_without_flags();
        let files = ProfileFiles::from_texts(
            &settings.paths,
            "",
            "[profile gov]\nregion = us-gov-west-1\n",
        )
        .unwrap();
        let gov = files.profile("gov");
        settings.env = Env::from_pairs([("AWS_REGION", "eu-west-1")]);
        assert_eq!(
            settings.region_for(gov.as_ref()),
            "us-gov-west-1",
            "the profile first"
        );
        assert_eq!(settings.region_for(None), "eu-west-1");
        settings.region = Some("cn-northwest-1".into());
        assert_eq!(
            settings.region_for(gov.as_ref()),
            "cn-northwest-1",
            "--region wins"
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = Env::from_pairs([("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(env.get("AWS_REGION"), None);
        assert_eq!(env.get("AWS_DEFAULT_REGION"), Some("eu-west-1"));
    }
}
