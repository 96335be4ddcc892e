//! The command line: clap definitions of the global options and one file per command; the
//! wiring `rotate` and `recover` share ([`wiring`], [`pending`]); the words users read
//! ([`advice`], [`words`], [`render`]); prompts and progress lines ([`ui`]).
//!
//! Must not: edit files directly, or decide what happens to a key. Commands get resolved
//! [`Settings`] and call into `rotation`, `profiles`, `policy`, `audit`, `grant` and
//! `schedule`. The only AWS calls made here are the read-only ones around them: the MFA
//! session and device lookup ([`mfa`]) and `--auth-profile`'s identity ([`auth`]).
//!
//! [`Settings`]: crate::settings::Settings

pub mod advice;
pub mod audit;
pub mod auth;
pub mod completions;
pub mod duration;
pub mod hooks;
pub mod limit;
pub mod man;
pub mod mfa;
pub mod pending;
pub mod policy;
pub mod policy_apply;
pub mod progress;
pub mod prune;
pub mod recover;
pub mod render;
pub mod rotate;
pub mod schedule;
pub mod status;
pub mod ui;
pub mod wiring;
pub mod words;

use crate::settings::Flags;
pub use crate::settings::OutputFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Rotate long-lived AWS IAM access keys safely, for one profile or all of them.
#[derive(Debug, Parser)]
#[command(name = "iam-keys", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, named as the AWS CLI names them.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Profile to use; repeat for several (default: $AWS_PROFILE, else `default`)
    #[arg(long = "profile", value_name = "NAME", global = true)]
    pub profiles: Vec<String>,

    /// Every profile in the credentials and config files
    #[arg(long, global = true, conflicts_with = "profiles")]
    pub all: bool,

    /// Shared credentials file (default: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials)
    #[arg(long, value_name = "PATH", global = true)]
    pub credentials_file: Option<PathBuf>,

    /// Shared config file (default: $AWS_CONFIG_FILE, else ~/.aws/config)
    #[arg(long, value_name = "PATH", global = true)]
    pub config_file: Option<PathBuf>,

    /// Region for the AWS calls (default: the profile's, then $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,

    /// No colour (also when NO_COLOR is set or stderr is not a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// More detail on stderr; -vv for debug logs (secrets are never logged)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// For cron: no progress and no notes; only errors, and the summary when something failed
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl GlobalArgs {
    /// The parsed options as the plain values `settings` resolves from.
    pub fn flags(&self) -> Flags {
        Flags {
            profiles: self.profiles.clone(),
            all: self.all,
            credentials_file: self.credentials_file.clone(),
            config_file: self.config_file.clone(),
            region: self.region.clone(),
            output: self.output,
            no_color: self.no_color,
            verbose: self.verbose,
            quiet: self.quiet,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each profile's key: owner, age, last use, and keys held by no local profile
    Status(status::StatusArgs),
    /// Rotate the access keys of the selected profiles
    Rotate(rotate::RotateArgs),
    /// Finish or undo a rotation that was interrupted
    Recover(recover::RecoverArgs),
    /// Delete Inactive keys that iam-keys retired at least --older-than ago and that were not used since
    Prune(prune::PruneArgs),
    /// Run `rotate` daily on this machine (systemd timer, cron, launchd, Task Scheduler)
    Schedule(schedule::ScheduleArgs),
    /// Print the IAM policy that lets each user rotate only their own keys
    Policy(policy::PolicyArgs),
    /// Every IAM user's access keys in the account (or organization), with findings, for CI
    Audit(audit::AuditArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(completions::CompletionsArgs),
    /// Print the man page, a command's page, or write them all with --dir
    Man(man::ManArgs),
}

/// The SDK connector for a run: one HTTP client shared by every key's calls.
pub(crate) fn sdk_connector(
    settings: &crate::settings::Settings,
    files: &crate::profiles::ProfileFiles,
) -> Result<crate::aws::sdk::SdkConnector, crate::error::Error> {
    let default_profile = files.profile("default");
    let ca_bundle = settings.ca_bundle(default_profile.as_ref());
    crate::aws::sdk::SdkConnector::new(crate::aws::sdk::ConnectorSettings {
        ca_bundle,
        ..Default::default()
    })
    .map_err(|e| crate::error::Error::Connector(Box::new(e)))
}
