//! `iam-keys policy`: print the self-service IAM policy (or, with `--audit`, the auditor's),
//! or hand the self-service policy out with `--apply` (see [`super::policy_apply`]).

use crate::error::{Error, Outcome};
use crate::policy::{Partition, PolicyOptions, audit_policy, self_service_policy};
use crate::settings::{Settings, partition_for_region};
use clap::Args;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Account id in the ARN (default: any account, `*`; with --apply: the profile's account)
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// A literal user name instead of `${aws:username}`; with --apply, a user to give an
    /// inline policy (repeatable)
    #[arg(long = "user", value_name = "NAME")]
    pub users: Vec<String>,
    /// Partition in the ARN (default: from --region, else aws)
    #[arg(long, value_parser = ["aws", "aws-cn", "aws-us-gov"])]
    pub partition: Option<String>,
    /// Deny key changes unless signed in with MFA (allows ListMFADevices)
    #[arg(long)]
    pub mfa: bool,
    /// Also allow ChangePassword and GetAccountPasswordPolicy
    #[arg(long)]
    pub with_password: bool,
    /// Print the read-only policy `iam-keys audit` needs instead
    #[arg(long, conflicts_with_all = ["apply", "users", "mfa", "with_password"])]
    pub audit: bool,
    /// With --audit: add what `audit --org` needs (ListAccounts, AssumeRole on --role-name)
    #[arg(long, requires_all = ["audit", "role_name"])]
    pub org: bool,
    /// With --audit --org: the role `audit --org --role-name` assumes in each account
    #[arg(long, value_name = "NAME", requires = "org")]
    pub role_name: Option<String>,
    /// Create or update the policy in IAM with the selected (administrator's) profile:
    /// with --group, a managed policy attached to a group; with --user or
    /// --all-users-with-keys, an inline policy per user
    #[arg(long)]
    pub apply: bool,
    /// With --apply: the group (created if missing) and managed policy name
    #[arg(long, value_name = "NAME", num_args = 0..=1,
          default_missing_value = crate::policy::SELF_SERVICE_NAME, requires = "apply",
          conflicts_with_all = ["users", "all_users_with_keys"])]
    pub group: Option<String>,
    /// With --apply --group: put every user who holds an access key into the group
    #[arg(long, requires = "group")]
    pub add_users_with_keys: bool,
    /// With --apply: an inline policy for every user who holds an access key
    #[arg(long, requires = "apply", conflicts_with = "users")]
    pub all_users_with_keys: bool,
    /// With --apply: show each change and make none
    #[arg(long, requires = "apply")]
    pub dry_run: bool,
    /// With --apply: MFA device ARN for the IAM calls (default: the profile's `mfa_serial`)
    #[arg(long, value_name = "ARN", requires = "apply")]
    pub mfa_serial: Option<String>,
    /// With --apply: the current one-time code (otherwise asked for on the terminal)
    #[arg(
        long,
        value_name = "CODE",
        requires = "apply",
        conflicts_with = "mfa_command"
    )]
    pub mfa_code: Option<String>,
    /// With --apply: a command that prints the code, e.g. `ykman oath accounts code -s aws`
    #[arg(long, value_name = "COMMAND", requires = "apply")]
    pub mfa_command: Option<String>,
}

impl PolicyArgs {
    /// The MFA options of the administrator's session (`--mfa` here shapes the document).
    pub fn session_mfa(&self) -> super::mfa::MfaArgs {
        super::mfa::MfaArgs {
            mfa_serial: self.mfa_serial.clone(),
            mfa: false,
            mfa_code: self.mfa_code.clone(),
            mfa_command: self.mfa_command.clone(),
        }
    }

    pub fn partition(&self, settings: &Settings) -> Partition {
        match &self.partition {
            Some(p) => Partition::parse(p).expect("clap restricts the values"),
            None => settings
                .region
                .as_deref()
                .and_then(|r| Partition::parse(partition_for_region(r)))
                .unwrap_or(Partition::Aws),
        }
    }
}

/// The command without `--apply`: print the document.
pub fn run_command(
    args: &PolicyArgs,
    settings: &Settings,
    ui: &super::ui::Ui,
) -> Result<Outcome, Error> {
    let text = run(args, settings)?;
    ui.out(&text)?;
    Ok(Outcome::Success)
}

/// The document to print.
pub fn run(args: &PolicyArgs, settings: &Settings) -> Result<String, Error> {
    let partition = args.partition(settings);
    if args.audit {
        let doc = audit_policy(partition, args.role_name.as_deref());
        return Ok(super::render::json(&doc));
    }
    let user = match args.users.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        _ => {
            return Err(Error::Usage(
                "one --user when printing a policy (several are for --apply)".into(),
            ));
        }
    };
    let options = PolicyOptions {
        account: args.account.clone(),
        user,
        partition,
        mfa: args.mfa,
        with_password: args.with_password,
    };
    let doc = self_service_policy(&options).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(super::render::json(&doc))
}
