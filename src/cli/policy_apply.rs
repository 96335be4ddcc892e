//! `iam-keys policy --apply`: hand out the self-service policy with an administrator's
//! profile, through [`crate::grant`], and say each change.
//!
//! Must not: print a secret; change anything with `--dry-run`.

use super::auth::{self, AuthProfile};
use super::policy::PolicyArgs;
use super::ui::Ui;
use crate::aws::Target;
use crate::error::{Error, Outcome};
use crate::grant::{self, Change, GrantError};
use crate::policy::PolicyOptions;
use crate::settings::Settings;

pub fn run(args: &PolicyArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if args.group.is_none() && args.users.is_empty() && !args.all_users_with_keys {
        return Err(Error::Usage(
            "--apply needs --group [NAME] (recommended), --user NAME or --all-users-with-keys"
                .into(),
        ));
    }
    if args.account.is_some() {
        return Err(Error::Usage(
            "--apply uses the account of the profile's credentials: drop --account".into(),
        ));
    }
    let files = crate::cli::wiring::load_files(settings, ui)?;
    let auth = AuthProfile::selected(
        &files,
        settings,
        "--apply signs with one administrator's profile: name it with --profile NAME",
    )?;
    let connector = super::sdk_connector(settings, &files)?;
    let options = PolicyOptions {
        account: None,
        user: None,
        partition: args.partition(settings),
        mfa: args.mfa,
        with_password: args.with_password,
    };
    // The run's limiter (default options): throttled calls wait and are sent again.
    let limiter = crate::aws::limiter::Limiter::new(Default::default());
    let limited = crate::aws::limiter::LimitedConnector::new(&connector, limiter.clone());
    let result = crate::time::block_on(async {
        let mut sessions = super::mfa::Sessions::default();
        let (credentials, _) = auth::credentials(
            &auth,
            &args.session_mfa(),
            false,
            ui,
            &limited,
            &mut sessions,
        )
        .await
        .map_err(Error::Usage)?;
        let target = Target {
            credentials,
            ..auth.target.clone()
        };
        let client =
            crate::aws::limiter::Limited::new(connector.connect_account(&target, None), limiter);
        Ok::<_, Error>(match &args.group {
            Some(group) => {
                grant::to_group(
                    &client,
                    group,
                    &options,
                    args.add_users_with_keys,
                    args.dry_run,
                )
                .await
            }
            None => {
                grant::to_users(
                    &client,
                    &args.users,
                    args.all_users_with_keys,
                    &options,
                    args.dry_run,
                )
                .await
            }
        })
    })?;
    match result {
        Ok(outcome) => {
            ui.out(&render(&outcome, args.dry_run))?;
            Ok(Outcome::Success)
        }
        Err(GrantError::Policy(e)) => Err(Error::Usage(e.to_string())),
        Err(GrantError::Aws(e)) => {
            ui.warn(&super::audit::render::explain_apply(&e, &auth.name));
            Ok(Outcome::Attention)
        }
        Err(e) => {
            ui.warn(&e.to_string());
            Ok(Outcome::Attention)
        }
    }
}

/// One line per change (`would …` in a dry run), then a summary line.
pub fn render(outcome: &grant::Outcome, dry_run: bool) -> String {
    let verb = |now: &str, would: &str| {
        if dry_run {
            format!("would {would}")
        } else {
            now.to_string()
        }
    };
    let mut out = String::new();
    for change in &outcome.changes {
        let line = match change {
            Change::CreatePolicy { name, arn } => format!(
                "{} managed policy {name} ({arn})",
                verb("created", "create")
            ),
            Change::DeleteVersion { arn, version } => format!(
                "{} version {version} of {arn} (IAM keeps at most 5 versions)",
                verb("deleted", "delete")
            ),
            Change::NewDefaultVersion { arn, version } => format!(
                "{} a new default version{} of {arn} (the document changed)",
                verb("made", "make"),
                version
                    .as_ref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default()
            ),
            Change::CreateGroup { name } => {
                format!("{} group {name}", verb("created", "create"))
            }
            Change::AttachPolicy { group, arn } => {
                format!("{} {arn} to group {group}", verb("attached", "attach"))
            }
            Change::AddToGroup { group, user } => {
                format!("{} user {user} to group {group}", verb("added", "add"))
            }
            Change::PutInlinePolicy {
                user,
                name,
                replaces,
            } => format!(
                "{} inline policy {name} on user {user}{}",
                verb("put", "put"),
                if *replaces {
                    " (replacing a different one)"
                } else {
                    ""
                }
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let n = outcome.changes.len();
    if n == 0 {
        out.push_str(&format!(
            "nothing to change: everything is in place ({} checked)\n",
            outcome.in_place.len()
        ));
    } else {
        out.push_str(&format!(
            "{n} change{}{}; {} already in place\n",
            if n == 1 { "" } else { "s" },
            if dry_run {
                " to make (dry run: none made)"
            } else {
                " made"
            },
            outcome.in_place.len()
        ));
    }
    out
}
