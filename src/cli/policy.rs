//! `iam-keys policy`: print the self-service IAM policy.

use crate::error::Error;
use crate::policy::{Partition, PolicyOptions, self_service_policy};
use crate::settings::{Settings, partition_for_region};
use clap::Args;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Account id in the ARN (default: any account, `*`)
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// A literal user name instead of `${aws:username}` (for one policy per user)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Partition in the ARN (default: from --region, else aws)
    #[arg(long, value_parser = ["aws", "aws-cn", "aws-us-gov"])]
    pub partition: Option<String>,
    /// Deny key changes unless signed in with MFA (allows ListMFADevices)
    #[arg(long)]
    pub mfa: bool,
    /// Also allow ChangePassword and GetAccountPasswordPolicy
    #[arg(long)]
    pub with_password: bool,
}

pub fn run(args: &PolicyArgs, settings: &Settings) -> Result<String, Error> {
    let partition = match &args.partition {
        Some(p) => Partition::parse(p).expect("clap restricts the values"),
        None => settings
            .region
            .as_deref()
            .and_then(|r| Partition::parse(partition_for_region(r)))
            .unwrap_or(Partition::Aws),
    };
    let options = PolicyOptions {
        account: args.account.clone(),
        user: args.user.clone(),
        partition,
        mfa: args.mfa,
        with_password: args.with_password,
    };
    let doc = self_service_policy(&options).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(serde_json::to_string_pretty(&doc).expect("a JSON value serialises") + "\n")
}
