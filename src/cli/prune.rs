// Over 500 lines: the command and its JSON and text renderers; the rule itself is in `rotation::prune`.
//! `iam-keys prune`: delete the Inactive keys of the selected profiles' users that were
//! retired long enough ago and not used since (the rules are in [`crate::rotation::prune`]),
//! after a plan and a confirmation like `rotate`. Also the judgement `rotate --prune` uses
//! for the user's Inactive second key ([`PruneContext`]).

use super::OutputFormat;
use super::duration::DurationArg;
use super::mfa::{MfaArgs, Sessions};
use super::render::ErrorJson;
use super::ui::Ui;
use crate::aws::{Connector, KeyStatus};
use crate::error::{Error, Outcome};
use crate::inventory::{self, KeyFacts, LastUse};
use crate::profiles::{FileKind, FilePaths};
use crate::rotation::prune::{self, Candidate, Deleted, Keep, PruneOptions, Verdict};
use crate::rotation::retired::{RetiredKey, RetiredStore};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete only keys retired at least this long ago (7d, 2w, 36h)
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub older_than: DurationArg,
    /// Also judge Inactive keys that iam-keys did not retire on this machine (retired
    /// elsewhere or by hand), counting from the later of their creation and last use
    #[arg(long)]
    pub unrecorded: bool,
    /// List the keys that would be deleted, and why others are kept; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// How long to wait for another iam-keys run on the same files
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub lock_timeout: DurationArg,
    #[command(flatten)]
    pub limit: super::limit::LimitArgs,
    #[command(flatten)]
    pub mfa: MfaArgs,
}

/// One Inactive key (or a recorded key found Active again) in `prune --output json`.
#[derive(Debug, Serialize)]
pub struct PruneKey {
    /// Masked.
    pub access_key_id: String,
    pub user: String,
    pub account: String,
    pub status: String,
    /// `delete` (dry run), `deleted`, `keep`, `failed`.
    pub action: &'static str,
    pub reason: String,
    /// When iam-keys retired it here, from the record.
    pub retired_by_iam_keys: Option<String>,
    /// When it may be pruned.
    pub prune_after: Option<String>,
    pub last_used: Option<String>,
    pub error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub older_than_days: f64,
    pub keys: Vec<PruneKey>,
    /// Profiles whose user could not be read.
    pub errors: Vec<ProfileErrorJson>,
    pub summary: PruneSummary,
}

#[derive(Debug, Serialize)]
pub struct ProfileErrorJson {
    pub profiles: Vec<String>,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct PruneSummary {
    pub deleted: usize,
    pub planned: usize,
    pub kept: usize,
    pub failed: usize,
}

/// What a prune decision needs besides AWS: the rules, the record, the keys journals name,
/// and the files to scan.
pub struct PruneContext {
    pub options: PruneOptions,
    pub record: Vec<RetiredKey>,
    pub journal_keys: Vec<String>,
    pub paths: FilePaths,
}

impl PruneContext {
    /// Read the record and the journals. A record that cannot be read counts as empty
    /// (nothing is deleted by its dates), with a warning.
    pub fn load(settings: &Settings, options: PruneOptions, ui: &Ui) -> PruneContext {
        let record = match settings.state_dir.as_deref().map(RetiredStore::new) {
            Some(store) => store.list().unwrap_or_else(|e| {
                ui.warn(&chain(&e));
                Vec::new()
            }),
            None => Vec::new(),
        };
        let mut journal_keys = Vec::new();
        if let Ok(entries) = super::wiring::journal_store(settings).list() {
            for entry in entries {
                journal_keys.push(entry.old_key_id.clone());
                if let Ok(j) = entry.journal {
                    journal_keys.extend(j.new_key_id);
                    journal_keys.extend(j.orphans);
                    journal_keys.extend(j.deleted_inactive);
                }
            }
        }
        PruneContext {
            options,
            record,
            journal_keys,
            paths: settings.paths.clone(),
        }
    }

    /// The facts about one of the user's keys.
    pub fn candidate(&self, facts: &KeyFacts, key_id: &str) -> Candidate {
        let meta = facts.key(key_id);
        let mut held_at = Vec::new();
        for (kind, path) in [
            (FileKind::Credentials, &self.paths.credentials),
            (FileKind::Config, &self.paths.config),
        ] {
            match crate::profiles::scan::mentions(kind, path, key_id) {
                Ok(found) => held_at.extend(found.iter().map(ToString::to_string)),
                // Unreadable: it may be named there.
                Err(e) => held_at.push(format!("{} (cannot be read: {e})", path.display())),
            }
        }
        let used = facts.last_used.get(key_id);
        Candidate {
            key_id: key_id.to_string(),
            status: meta
                .map(|k| k.status.clone())
                .unwrap_or(KeyStatus::Other("unknown".into())),
            created: meta.and_then(|k| k.created),
            last_used: used.and_then(|u| u.date),
            last_used_known: used.is_some(),
            retired: self.retired(key_id).map(|r| r.retired),
            held_at,
            in_journal: self.journal_keys.iter().any(|k| k == key_id),
        }
    }

    pub fn retired(&self, key_id: &str) -> Option<&RetiredKey> {
        self.record.iter().find(|r| r.access_key_id == key_id)
    }
}

pub fn run(args: &PruneArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if !matches!(settings.output, OutputFormat::Text | OutputFormat::Json) {
        return Err(Error::Usage(
            "prune prints text or json (--output text|json)".into(),
        ));
    }
    if let Some(w) = settings.ambient_key_warning() {
        ui.warn(&w);
    }
    // Holding the run lock: no rotation of these files runs meanwhile.
    let _lock = if args.dry_run {
        None
    } else {
        Some(super::wiring::acquire_lock(
            &settings.paths,
            args.lock_timeout.duration,
            ui,
        )?)
    };
    let files = crate::cli::wiring::load_files(settings, ui)?;
    let options = PruneOptions {
        older_than: args.older_than.duration,
        unrecorded: args.unrecorded,
    };
    let context = PruneContext::load(settings, options, ui);
    let names = settings.selected_names(&files);
    let inventory = inventory::build(&files, settings, &names);
    let sdk = super::sdk_connector(settings, &files)?;
    let connector = crate::aws::limiter::LimitedConnector::new(&sdk, args.limit.limiter());
    crate::time::block_on(prune_all(
        args, settings, ui, &connector, &inventory, &context,
    ))
}

async fn prune_all<C: Connector>(
    args: &PruneArgs,
    settings: &Settings,
    ui: &Ui,
    connector: &C,
    inventory: &inventory::Inventory,
    context: &PruneContext,
) -> Result<Outcome, Error> {
    let now = Timestamp::now();
    let mut sessions = Sessions::default();
    let mut errors = Vec::new();
    let mut keys: Vec<PruneKey> = Vec::new();
    // (client for the user's IAM calls, user, key id, index in `keys`)
    let mut to_delete = Vec::new();
    let mut clients = Vec::new();
    let mut seen_users: Vec<(String, String)> = Vec::new();
    let mut reactivated = Vec::new();
    for group in &inventory.groups {
        if let Some(problem) = &group.problem {
            errors.push(ProfileErrorJson {
                profiles: group.holders.clone(),
                message: problem.to_string(),
            });
            continue;
        }
        // The IAM calls are made with an MFA session when the profile names a device (a
        // dry run reads without one): the same rule as `rotate`.
        let found =
            super::mfa::for_group(group, &args.mfa, args.dry_run, connector, ui, &mut sessions)
                .await;
        let iam_target = match found {
            Ok((Some(session), _)) => group.target.with_credentials(session),
            Ok((None, _)) => group.target.clone(),
            Err(message) => {
                errors.push(ProfileErrorJson {
                    profiles: group.holders.clone(),
                    message,
                });
                continue;
            }
        };
        let own = connector.connect(&group.target);
        let iam = connector.connect(&iam_target);
        let inspected =
            inventory::inspect_as(&own, &iam, &group.key_id, None, LastUse::EveryKey).await;
        let facts = match inspected {
            Ok(facts) => facts,
            Err(e) => {
                let message = match &e {
                    inventory::InspectError::Aws(aws) => super::advice::explain(
                        aws,
                        &super::advice::Context {
                            profiles: &group.holders,
                            key_id: &group.key_id,
                            region: &group.target.region,
                            signer: crate::aws::Signer::OldKey,
                        },
                    ),
                    other => other.to_string(),
                };
                errors.push(ProfileErrorJson {
                    profiles: group.holders.clone(),
                    message,
                });
                continue;
            }
        };
        let who = (facts.identity.account.clone(), facts.user.clone());
        if seen_users.contains(&who) {
            continue;
        }
        seen_users.push(who);
        let client_index = clients.len();
        clients.push(iam);
        for meta in &facts.keys {
            let candidate = context.candidate(&facts, &meta.id);
            let verdict = prune::decide(&candidate, now, &context.options);
            let recorded = context.retired(&meta.id);
            if verdict == Verdict::Keep(Keep::Active) {
                // Turned back on after iam-keys retired it: the record no longer holds.
                if recorded.is_some() {
                    reactivated.push(meta.id.clone());
                }
                continue;
            }
            let prune_after = match &verdict {
                Verdict::Keep(Keep::TooRecent { after, .. }) => Some(crate::time::rfc3339(*after)),
                _ => recorded.map(|r| {
                    crate::time::rfc3339(prune::prune_after(r.retired, context.options.older_than))
                }),
            };
            let action = match verdict {
                Verdict::Delete { .. } => {
                    to_delete.push((
                        client_index,
                        facts.user.clone(),
                        meta.id.clone(),
                        keys.len(),
                    ));
                    "delete"
                }
                Verdict::Keep(_) => "keep",
            };
            keys.push(PruneKey {
                access_key_id: mask_key_id(&meta.id),
                user: facts.user.clone(),
                account: facts.identity.account.clone(),
                status: meta.status.to_string(),
                action,
                reason: super::words::prune_verdict(&verdict, &args.older_than),
                retired_by_iam_keys: recorded.map(|r| crate::time::rfc3339(r.retired)),
                prune_after,
                last_used: candidate.last_used.map(crate::time::rfc3339),
                error: None,
            });
        }
    }
    if !args.dry_run {
        forget(settings, ui, &reactivated);
    }

    let planned = to_delete.len();
    if settings.output == OutputFormat::Text {
        let text = render_plan(&keys, &errors, args.dry_run);
        if args.dry_run {
            ui.out(&text)?;
        } else {
            eprint!("{text}");
        }
    }
    let mut deleted_ids = Vec::new();
    if !args.dry_run && planned > 0 {
        confirm(args, ui, planned)?;
        for (client_index, user, key_id, index) in &to_delete {
            let key = &mut keys[*index];
            match prune::delete(&clients[*client_index], user, key_id).await {
                Deleted::Done => {
                    key.action = "deleted";
                    deleted_ids.push(key_id.clone());
                }
                Deleted::Changed(status) => {
                    key.action = "keep";
                    key.reason = format!(
                        "it was {} when checked again right before the delete; left alone",
                        status
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "gone".into())
                    );
                }
                Deleted::Failed(e) => {
                    key.action = "failed";
                    let message = format!("DeleteAccessKey failed: {e}");
                    key.error = Some(ErrorJson::from_aws(&e, message.clone()));
                    key.reason = message;
                }
            }
        }
        forget(settings, ui, &deleted_ids);
    }
    let summary = PruneSummary {
        deleted: keys.iter().filter(|k| k.action == "deleted").count(),
        planned: keys.iter().filter(|k| k.action == "delete").count(),
        kept: keys.iter().filter(|k| k.action == "keep").count(),
        failed: keys.iter().filter(|k| k.action == "failed").count(),
    };
    let failed = summary.failed > 0 || !errors.is_empty();
    match settings.output {
        OutputFormat::Json => {
            let report = PruneReport {
                dry_run: args.dry_run,
                older_than_days: args.older_than.days(),
                keys,
                errors,
                summary,
            };
            ui.out(&(serde_json::to_string_pretty(&report).expect("serialisable") + "\n"))?;
        }
        _ if !args.dry_run => {
            let mut out = String::new();
            for k in keys.iter().filter(|k| k.action != "keep") {
                out.push_str(&format!(
                    "{:<8} {} ({}@{}){}\n",
                    k.action,
                    k.access_key_id,
                    k.user,
                    k.account,
                    if k.action == "failed" {
                        format!(": {}", k.reason)
                    } else {
                        String::new()
                    }
                ));
            }
            out.push_str(&format!(
                "{} deleted, {} kept, {} failed\n",
                summary.deleted,
                summary.kept,
                summary.failed + errors.len()
            ));
            ui.out(&out)?;
        }
        _ => {}
    }
    Ok(if failed {
        Outcome::Attention
    } else {
        Outcome::Success
    })
}

/// Drop keys from the record (deleted, or turned back on); a failure is a warning.
fn forget(settings: &Settings, ui: &Ui, key_ids: &[String]) {
    if let Some(dir) = &settings.state_dir
        && let Err(e) = RetiredStore::new(dir).remove(key_ids)
    {
        ui.warn(&chain(&e));
    }
}

fn confirm(args: &PruneArgs, ui: &Ui, count: usize) -> Result<(), Error> {
    if args.yes {
        return Ok(());
    }
    if !ui.is_interactive() {
        return Err(Error::Usage(
            "not deleting without confirmation: there is no terminal to ask on; pass --yes (or look first with --dry-run)"
                .into(),
        ));
    }
    let question = format!(
        "Delete {count} Inactive key{} for good?",
        if count == 1 { "" } else { "s" }
    );
    if ui.confirm(&question) {
        Ok(())
    } else {
        Err(Error::Usage("cancelled; nothing was deleted".into()))
    }
}

fn render_plan(keys: &[PruneKey], errors: &[ProfileErrorJson], dry_run: bool) -> String {
    let mut out = String::new();
    let verb = if dry_run { "would delete" } else { "delete" };
    for k in keys {
        let action = if k.action == "delete" { verb } else { "keep" };
        out.push_str(&format!(
            "{action:<12} {} ({}@{}, {}): {}\n",
            k.access_key_id, k.user, k.account, k.status, k.reason
        ));
    }
    for e in errors {
        out.push_str(&format!(
            "error        {}: {}\n",
            e.profiles.join(", "),
            e.message
        ));
    }
    if dry_run {
        let planned = keys.iter().filter(|k| k.action == "delete").count();
        out.push_str(&format!(
            "{planned} to delete, {} kept (dry run: nothing was changed)\n",
            keys.len() - planned
        ));
    } else if keys.is_empty() && errors.is_empty() {
        out.push_str("no Inactive keys\n");
    }
    out
}

/// An error with its causes on one line, for a warning.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}
