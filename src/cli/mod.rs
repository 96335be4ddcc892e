//! The command line: clap definitions of the global options and one file per command, the
//! renderers (text and JSON), prompts and progress lines.
//!
//! Must not: call AWS or edit files directly. Commands get resolved [`Settings`] and call
//! into `rotation`, `profiles` and `policy`.
//!
//! [`Settings`]: crate::settings::Settings

pub mod advice;
pub mod audit;
pub mod auth;
pub mod completions;
pub mod duration;
pub mod limit;
pub mod man;
pub mod mfa;
pub mod policy;
pub mod policy_apply;
pub mod progress;
pub mod recover;
pub mod render;
pub mod rotate;
pub mod status;
pub mod ui;

use clap::{Args, Parser, Subcommand, ValueEnum};
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text
    Text,
    /// JSON with stable field names (see the README)
    Json,
    /// `AWS_ACCESS_KEY_ID=…` lines for each new key (rotate and recover; the one way a secret is printed)
    Env,
    /// Comma-separated values with a header row (audit only)
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each profile's key: owner, age, last use, and keys held by no local profile
    Status(status::StatusArgs),
    /// Rotate the access keys of the selected profiles
    Rotate(rotate::RotateArgs),
    /// Finish or undo a rotation that was interrupted
    Recover(recover::RecoverArgs),
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

/// Run a future on a single-threaded runtime: the work is a few HTTP calls per key, run
/// concurrently but never in parallel, so file edits need no locking between tasks.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded tokio runtime can always be built")
        .block_on(future)
}
