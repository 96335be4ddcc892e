//! `iam-keys audit`: every IAM user's access keys in the account of the selected profile (or
//! in every account of an organization), with findings, as a table, JSON or CSV, and an exit
//! code for CI.
//!
//! The wiring only: arguments, credentials (MFA as for `rotate`), which source, the
//! organization loop, progress lines. The rules are in [`crate::audit`]; the words and
//! formats in [`render`].
//!
//! Must not: change anything in AWS or in the profile files.

pub mod render;

use super::auth::{self, AuthProfile};
use super::duration::DurationArg;
use super::mfa::{MfaArgs, Sessions};
use super::ui::Ui;
use crate::audit::collect::{self, Collected, Options, Progress, SelfServiceNames, Ungated};
use crate::audit::{Failure, Finding, Thresholds, UserFacts};
use crate::aws::account::AccountIam;
use crate::aws::limiter::{Limited, Limiter};
use crate::aws::sdk::SdkConnector;
use crate::aws::sdk::account::SdkAccountClient;
use crate::aws::{AwsError, Target};
use crate::error::{Error, Outcome};
use crate::profiles::ProfileFiles;
use crate::settings::Settings;
use clap::{Args, ValueEnum};
use futures_util::StreamExt;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// With `--source auto`, accounts with more users than this are read from the credential
/// report (see the README's audit figures for the measurement behind it).
pub const AUTO_REPORT_ABOVE_USERS: usize = 1000;

/// A credential report older than this is flagged in the output.
pub const STALE_REPORT: Duration = Duration::from_secs(4 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Source {
    /// ListUsers, ListAccessKeys, GetAccessKeyLastUsed: fresh, with key ids
    Api,
    /// One credential report: fewer calls on large accounts; no key ids, only slots
    CredentialReport,
    /// `api` up to 1,000 users, the credential report above
    Auto,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Where the facts come from
    #[arg(long, value_enum, default_value_t = Source::Auto)]
    pub source: Source,
    /// ROTATE: an Active key older than this
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub max_age: DurationArg,
    /// UNUSED / NEVER_USED: an Active key not used (or, never used, created) this long ago
    #[arg(long, value_name = "DURATION", default_value = "45d")]
    pub max_unused: DurationArg,
    /// INACTIVE: an Inactive key neither created nor used this long ago
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub max_inactive: DurationArg,
    /// Findings that make the exit code 1, comma-separated (default: all but OK and EXEMPT)
    #[arg(long, value_name = "FINDINGS", value_delimiter = ',', value_parser = parse_finding)]
    pub fail_on: Vec<Finding>,
    /// With --org, accounts are read `--concurrency` at a time (at most 8)
    #[command(flatten)]
    pub limit: crate::cli::limit::LimitArgs,
    /// The group `policy --apply --group` made (for NO_SELF_SERVICE)
    #[arg(long, value_name = "NAME", default_value = crate::policy::SELF_SERVICE_NAME)]
    pub self_service_group: String,
    /// Audit every account of the organization (the profile is in the management account)
    #[arg(long, requires = "role_name")]
    pub org: bool,
    /// With --org: the role to assume in each account
    #[arg(long, value_name = "NAME", requires = "org")]
    pub role_name: Option<String>,
    #[command(flatten)]
    pub mfa: MfaArgs,
}

fn parse_finding(s: &str) -> Result<Finding, String> {
    Finding::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Finding::ALL.iter().map(|f| f.as_str()).collect();
        format!("`{s}` is not a finding: use {}", names.join(", "))
    })
}

/// What was read from one account.
#[derive(Debug)]
pub struct AccountAudit {
    pub account: String,
    /// The organization's name for it, with --org.
    pub name: Option<String>,
    pub source: Option<Source>,
    pub collected: Collected,
}

/// The whole run, before the rules.
#[derive(Debug)]
pub struct AuditRun {
    pub accounts: Vec<AccountAudit>,
}

impl AuditRun {
    pub fn users(&self) -> Vec<UserFacts> {
        self.accounts
            .iter()
            .flat_map(|a| a.collected.users.iter().cloned())
            .collect()
    }

    pub fn failures(&self) -> Vec<Failure> {
        self.accounts
            .iter()
            .flat_map(|a| a.collected.failures.iter().cloned())
            .collect()
    }
}

pub fn run(args: &AuditArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if settings.output == super::OutputFormat::Env {
        return Err(Error::Usage(
            "--output env is for `rotate`; audit prints text, json or csv".into(),
        ));
    }
    let files = crate::cli::wiring::load_files(settings, ui)?;
    let auth = AuthProfile::selected(
        &files,
        settings,
        "audit signs with one profile's credentials: name it with --profile NAME (not --all)",
    )?;
    let name = &auth.name;
    let connector = super::sdk_connector(settings, &files)?;
    let profile = files.profile(name);
    let orgs_endpoint = settings.endpoint_for("organizations", profile.as_ref(), &files);
    let thresholds = Thresholds {
        max_age: args.max_age.duration,
        max_unused: args.max_unused.duration,
        max_inactive: args.max_inactive.duration,
    };
    let fail_on = if args.fail_on.is_empty() {
        Finding::default_fail_on()
    } else {
        args.fail_on.clone()
    };
    let limiter = args.limit.limiter();
    let limited = crate::aws::limiter::LimitedConnector::new(&connector, limiter.clone());
    let run = crate::time::block_on(async {
        let mut sessions = Sessions::default();
        let (credentials, _) =
            auth::credentials(&auth, &args.mfa, false, ui, &limited, &mut sessions)
                .await
                .map_err(Error::Usage)?;
        let target = Target {
            credentials,
            ..auth.target.clone()
        };
        let client = Limited::new(
            connector.connect_account(&target, orgs_endpoint.as_deref()),
            limiter.clone(),
        );
        Ok::<_, Error>(if args.org {
            audit_org(
                &client,
                &limiter,
                &connector,
                &target,
                orgs_endpoint.as_deref(),
                args,
                ui,
            )
            .await
        } else {
            AuditRun {
                accounts: vec![audit_account(&client, None, None, args, ui).await],
            }
        })
    })?;
    let now = Timestamp::now();
    let report =
        render::Report::build(&run, &thresholds, &fail_on, &key_holders(&files), name, now);
    for account in &report.accounts {
        let Some(hours) = account.report_age_hours else {
            continue;
        };
        if hours <= STALE_REPORT.as_secs_f64() / 3600.0 {
            ui.note(&format!(
                "account {}: credential report generated {} ({} old)",
                account.account,
                account.report_generated.as_deref().unwrap_or("?"),
                render::hours_text(hours),
            ));
        } else {
            ui.warn(&format!(
                "account {}: the credential report is {} old (generated {}); IAM makes a new one \
                 at most every 4 hours. Use --source api for fresh data",
                account.account,
                render::hours_text(hours),
                account.report_generated.as_deref().unwrap_or("?"),
            ));
        }
    }
    let text = match settings.output {
        super::OutputFormat::Json => report.json(),
        super::OutputFormat::Csv => report.csv(),
        _ => report.text(),
    };
    ui.out(&text)?;
    for e in &report.errors {
        ui.warn(&e.text());
    }
    Ok(report.outcome())
}

/// Key id → the local profiles holding it.
fn key_holders(files: &ProfileFiles) -> BTreeMap<String, Vec<String>> {
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in files.profile_names() {
        if let Some(id) = files
            .profile(&name)
            .and_then(|p| p.get("aws_access_key_id").map(str::to_string))
        {
            holders.entry(id).or_default().push(name);
        }
    }
    holders
}

fn options(args: &AuditArgs) -> Options {
    Options {
        // The limiter bounds the calls; this only bounds the users in memory at once.
        concurrency: crate::cli::limit::MAX_TASKS,
        self_service: Some(SelfServiceNames {
            group: args.self_service_group.clone(),
        }),
    }
}

fn progress_line<'a>(ui: &'a Ui, account: &'a str) -> impl Fn(Progress) + 'a {
    move |p: Progress| {
        let step = (p.users_total / 10).max(25);
        if p.users_done == p.users_total || p.users_done.is_multiple_of(step) {
            ui.progress(&format!(
                "audit {account}: {}/{} users, {} keys",
                p.users_done, p.users_total, p.keys_done
            ));
        }
    }
}

/// One account, through `client`. `known_account` skips GetCallerIdentity (with --org).
pub async fn audit_account<A: AccountIam>(
    client: &A,
    known_account: Option<&str>,
    name: Option<String>,
    args: &AuditArgs,
    ui: &Ui,
) -> AccountAudit {
    let account = match known_account {
        Some(id) => id.to_string(),
        None => match client.caller_identity().await {
            Ok(identity) => identity.account,
            Err(e) => return failed_account("-".into(), name, e),
        },
    };
    let options = options(args);
    let progress = progress_line(ui, &account);
    let (source, collected) = match args.source {
        Source::CredentialReport => (
            Source::CredentialReport,
            from_report(client, &account, &options, &progress).await,
        ),
        Source::Api | Source::Auto => {
            let users = match collect::list_users(client, &Ungated).await {
                Ok(users) => users,
                Err(e) => return failed_account(account.clone(), name, e),
            };
            let listed = users.len();
            let mut collected = if args.source == Source::Auto && listed > AUTO_REPORT_ABOVE_USERS {
                ui.progress(&format!(
                    "audit {account}: {listed} users: reading the credential report"
                ));
                let mut c = from_report(client, &account, &options, &progress).await;
                c.users_listed = Some(listed);
                c
            } else {
                collect::from_api(client, &account, users, &options, &Ungated, &progress).await
            };
            collected.calls += 1;
            let source = if collected.report_generated.is_some() {
                Source::CredentialReport
            } else {
                Source::Api
            };
            (source, collected)
        }
    };
    drop(progress);
    AccountAudit {
        account,
        name,
        source: Some(source),
        collected,
    }
}

async fn from_report<A: AccountIam>(
    client: &A,
    account: &str,
    options: &Options,
    progress: &dyn Fn(Progress),
) -> Collected {
    collect::from_report(
        client,
        account,
        options,
        &Ungated,
        tokio::time::sleep,
        progress,
    )
    .await
}

fn failed_account(account: String, name: Option<String>, error: AwsError) -> AccountAudit {
    AccountAudit {
        collected: Collected {
            failures: vec![Failure {
                account: account.clone(),
                user: None,
                error,
            }],
            ..Collected::default()
        },
        account,
        name,
        source: None,
    }
}

/// Every account of the organization: ListAccounts with the profile's credentials, then in
/// each Active account AssumeRole and the audit, `--concurrency` accounts at a time (each
/// with its own `--concurrency` users). A failure is that account's error row.
async fn audit_org(
    management: &Limited<SdkAccountClient>,
    limiter: &Rc<Limiter>,
    connector: &SdkConnector,
    target: &Target,
    orgs_endpoint: Option<&str>,
    args: &AuditArgs,
    ui: &Ui,
) -> AuditRun {
    let role = args.role_name.as_deref().unwrap_or_default();
    let accounts = match management.list_accounts().await {
        Ok(accounts) => accounts,
        Err(e) => {
            return AuditRun {
                accounts: vec![failed_account("-".into(), None, e)],
            };
        }
    };
    let partition = crate::settings::partition_for_region(&target.region);
    ui.progress(&format!(
        "audit: {} accounts in the organization",
        accounts.len()
    ));
    let audits: Vec<AccountAudit> = futures_util::stream::iter(accounts)
        .filter(|a| std::future::ready(a.status.is_empty() || a.status == "ACTIVE"))
        .map(|account| async move {
            let role_arn = format!("arn:{partition}:iam::{}:role/{role}", account.id);
            let name = Some(account.name.clone());
            match management.assume_role(&role_arn, "iam-keys-audit").await {
                Err(e) => failed_account(account.id.clone(), name, e),
                Ok(credentials) => {
                    let assumed = Target {
                        credentials,
                        ..target.clone()
                    };
                    let client = Limited::new(
                        connector.connect_account(&assumed, orgs_endpoint),
                        limiter.clone(),
                    );
                    audit_account(&client, Some(&account.id), name, args, ui).await
                }
            }
        })
        .buffered(args.limit.concurrency.clamp(1, 8) as usize)
        .collect()
        .await;
    AuditRun { accounts: audits }
}

/// `--output csv` is for `audit` only: refused for every other command before it runs.
pub fn check_output(command: &super::Command, settings: &Settings) -> Result<(), Error> {
    if settings.output == super::OutputFormat::Csv && !matches!(command, super::Command::Audit(_)) {
        return Err(Error::Usage(
            "--output csv is for `audit`; this command prints text or json".into(),
        ));
    }
    Ok(())
}
