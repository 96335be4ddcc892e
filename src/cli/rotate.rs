//! `iam-keys rotate`: preflight every selected key (read-only AWS calls), show the plan,
//! confirm, then run the rotation protocol for each key, several keys at a time.

use super::OutputFormat;
use super::advice::{self, Signer};
use super::auth::AuthProfile;
use super::duration::DurationArg;
use super::mfa::{MfaArgs, Sessions};
use super::render::{self, ErrorJson};
use super::ui::Ui;
use crate::aws::limiter::LimitedConnector;
use crate::aws::{Connector, Credentials};
use crate::error::{Error, Outcome};
use crate::inventory::{self, InspectError, KeyGroup};
use crate::profiles::{KeyEdit, ProfileFiles, SaveOptions};
use crate::rotation::clock::{Cancel, RealClock};
use crate::rotation::exec::{Cleanup, Failure, Job};
use crate::rotation::journal::{Destination, Journal, JournalStore};
use crate::rotation::plan::{self, Decision, KeyPlan, PlanOptions, Retire};
use crate::rotation::recover::{Mode, Recovered};
use crate::rotation::{Engine, ExecOptions, KeyOutcome, Step};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use clap::Args;
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use std::cell::RefCell;

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Delete the old key instead of deactivating it
    #[arg(long)]
    pub delete: bool,
    /// Rotate only keys older than this (90d, 12w); others are "not due"
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<DurationArg>,
    /// Do every read-only check and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// When the user's other key is Inactive, delete it first to make room
    #[arg(long)]
    pub delete_inactive: bool,
    /// How long the new key may take to work before the rotation is undone
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub verify_timeout: DurationArg,
    #[command(flatten)]
    pub limit: super::limit::LimitArgs,
    /// Do not keep `<file>.iam-keys.bak` copies of the previous file contents
    #[arg(long)]
    pub no_backup: bool,
    /// How long to wait for another iam-keys run on the same files
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub lock_timeout: DurationArg,
    /// Make the IAM calls with this profile's credentials (an administrator, or a session
    /// written by another tool); the new key is still verified with its own credentials
    #[arg(long, value_name = "NAME")]
    pub auth_profile: Option<String>,
    /// The IAM user whose key is rotated (with --auth-profile). When no profile here holds
    /// that user's key, its single Active key is rotated and the new key is written to the
    /// profile named by --profile (created if missing) or printed with --output env
    #[arg(long, value_name = "NAME", requires = "auth_profile")]
    pub user_name: Option<String>,
    #[command(flatten)]
    pub mfa: MfaArgs,
}

/// One key in the `rotate --output json` document.
#[derive(Debug, Serialize)]
pub struct KeyReport {
    /// Masked old key id.
    pub access_key_id: String,
    /// Every local profile holding the key (all are updated together).
    pub profiles: Vec<String>,
    pub user: Option<String>,
    /// `rotated`, `planned` (dry run), `not-due`, `refused`, `failed`, `partial`.
    pub result: &'static str,
    /// Masked new key id.
    pub new_access_key_id: Option<String>,
    /// `deactivated` or `deleted` (or what would happen, in a dry run).
    pub old_key: Option<&'static str>,
    /// An Inactive key deleted to make room (masked).
    pub deleted_inactive: Option<String>,
    pub age_days: Option<i64>,
    /// The file lines that change (dry run) or changed.
    pub changes: Vec<String>,
    /// The MFA device whose session makes the IAM calls (a code is needed), if any.
    pub mfa_serial: Option<String>,
    pub error: Option<ErrorJson>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub profile: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize)]
pub struct RotateSummary {
    pub rotated: usize,
    pub not_due: usize,
    pub skipped: usize,
    pub failed: usize,
    pub partial: usize,
}

/// The JSON document of `rotate --output json`.
#[derive(Debug, Serialize)]
pub struct RotateReport {
    pub dry_run: bool,
    pub recovered: Vec<String>,
    pub keys: Vec<KeyReport>,
    pub skipped: Vec<Skipped>,
    pub summary: RotateSummary,
}

/// The preflight verdict for one key group.
enum Preflight {
    Ready {
        plan: KeyPlan,
        age_days: Option<i64>,
    },
    NotDue {
        user: String,
        age_days: i64,
    },
    Refused {
        user: String,
        message: String,
    },
    Failed {
        message: String,
        error: Option<ErrorJson>,
    },
}

/// A key to rotate: its report's index, group, plan, IAM credentials and MFA device.
type JobSpec<'a> = (
    usize,
    &'a KeyGroup,
    KeyPlan,
    Option<Credentials>,
    Option<String>,
);

fn retire_word(r: Retire) -> &'static str {
    match r {
        Retire::Deactivate => "deactivated",
        Retire::Delete => "deleted",
    }
}

pub fn run(args: &RotateArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if let Some(w) = settings.ambient_key_warning() {
        ui.warn(&w);
    }
    // A run that may write holds the lock from the first read to the last write.
    let _lock = if args.dry_run {
        None
    } else {
        Some(super::recover::acquire_lock(
            &settings.paths,
            args.lock_timeout.duration,
            ui,
        )?)
    };
    let files = RefCell::new(ProfileFiles::load(&settings.paths)?);
    for warning in files.borrow().warnings() {
        ui.warn(&warning.to_string());
    }
    let sdk = super::sdk_connector(settings, &files.borrow())?;
    let connector = LimitedConnector::new(&sdk, args.limit.limiter());
    let journals = super::recover::journal_store(settings);
    let exec_options = ExecOptions {
        verify_timeout: args.verify_timeout.duration,
        create_throttle_budget: args.limit.throttle_timeout.duration,
        save: SaveOptions {
            backup: !args.no_backup,
        },
        ..ExecOptions::default()
    };
    let cancel = Cancel::default();
    let display = super::progress::Progress::new(ui, exec_options.verify_successes);
    let progress = |key: &str, step: Step| display.step(key, step);
    let engine = Engine {
        connector: &connector,
        clock: &RealClock,
        files: &files,
        journal: &journals,
        options: &exec_options,
        cancel: &cancel,
        progress: &progress,
    };

    super::block_on(async {
        tokio::select! {
            result = rotate(args, settings, ui, &engine, &files, &journals, &display) => result,
            _ = watch_ctrl_c(&cancel, ui) => unreachable!("the Ctrl-C watcher never ends"),
        }
    })
}

/// First Ctrl-C: finish or undo the current step, then stop. Second: leave at once (the
/// journal lets `iam-keys recover` finish).
async fn watch_ctrl_c(cancel: &Cancel, ui: &Ui) {
    let mut presses = 0;
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        presses += 1;
        if presses == 1 {
            cancel.set();
            ui.note("interrupted: finishing or undoing the step in progress (Ctrl-C again to leave now)");
        } else {
            ui.note("leaving now; run `iam-keys recover` to finish or undo");
            std::process::exit(130);
        }
    }
}

async fn rotate<C: Connector>(
    args: &RotateArgs,
    settings: &Settings,
    ui: &Ui,
    engine: &Engine<'_, C, RealClock>,
    files: &RefCell<ProfileFiles>,
    journals: &JournalStore,
    display: &super::progress::Progress<'_>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome::Success;

    // Interrupted rotations first: each in the files its journal names. A journal that
    // cannot be read, or could not be finished, blocks its own key only.
    let pending = journals.list()?;
    let mut recovered = Vec::new();
    let mut blocked: Vec<(String, String)> = Vec::new();
    if !pending.is_empty() {
        for entry in &pending {
            ui.note(&super::recover::describe_entry(entry));
        }
        if args.dry_run {
            ui.note("a real run finishes it first (or run `iam-keys recover`)");
            for entry in &pending {
                blocked.push((
                    entry.old_key_id.clone(),
                    "an interrupted rotation of this key is recorded; a real run finishes it first"
                        .into(),
                ));
            }
        } else {
            confirm(args, ui, "Finish the interrupted rotation(s) first?")?;
            let results = super::recover::recover_entries(
                &pending,
                Mode::Finish,
                settings,
                &args.mfa,
                engine.connector,
                engine.options,
                ui,
            )
            .await;
            for (entry, result) in pending.iter().zip(results) {
                match (result, &entry.journal) {
                    (Ok(result @ Recovered::Unprinted { .. }), Ok(j)) => {
                        let text = describe_recovered(j, &result);
                        ui.warn(&text);
                        recovered.push(text);
                        outcome = outcome.max(Outcome::Partial);
                        blocked.push((entry.old_key_id.clone(), text_of_pending(entry)));
                    }
                    (Ok(result), Ok(j)) => {
                        let text = describe_recovered(j, &result);
                        ui.note(&text);
                        recovered.push(text);
                    }
                    (Ok(_), Err(_)) => unreachable!("an unreadable journal is never recovered"),
                    // Unreadable: kept, and only its own key waits on it.
                    (Err(message), Err(_)) => {
                        ui.warn(&format!(
                            "left the journal of {} alone: {message}",
                            mask_key_id(&entry.old_key_id)
                        ));
                        outcome = outcome.max(Outcome::Attention);
                        blocked.push((entry.old_key_id.clone(), text_of_pending(entry)));
                    }
                    (Err(message), Ok(_)) => {
                        ui.warn(&format!(
                            "could not finish the rotation of {}: {message}",
                            mask_key_id(&entry.old_key_id)
                        ));
                        outcome = outcome.max(Outcome::Partial);
                        blocked.push((entry.old_key_id.clone(), text_of_pending(entry)));
                    }
                }
            }
            let reloaded = ProfileFiles::load(&settings.paths)?;
            *files.borrow_mut() = reloaded;
        }
    }

    // Preflight: read-only calls with each old key, concurrently.
    let inventory = {
        let snapshot = files.borrow();
        let names = settings.selected_names(&snapshot);
        inventory::build(&snapshot, settings, &names)
    };
    let mut skipped: Vec<Skipped> = inventory
        .entries
        .iter()
        .filter(|e| e.depends_on.is_none() && e.skip_reason().is_some())
        .map(|e| Skipped {
            profile: e.name.clone(),
            reason: e.skip_reason().unwrap_or_default(),
        })
        .collect();
    for e in inventory.entries.iter().filter(|e| e.chain_error.is_some()) {
        skipped.push(Skipped {
            profile: e.name.clone(),
            reason: e.chain_error.clone().unwrap_or_default(),
        });
    }
    for e in inventory.entries.iter().filter(|e| e.depends_on.is_some()) {
        ui.note(&format!(
            "profile {} is a role profile; its key lives in profile {}, which is rotated instead",
            e.name,
            e.depends_on.as_deref().unwrap_or_default()
        ));
    }
    let plan_options = PlanOptions {
        older_than: args.older_than.as_ref().map(|d| d.duration),
        delete_old: args.delete,
        delete_inactive: args.delete_inactive,
    };
    let now = Timestamp::now();
    // --auth-profile: its credentials (or an MFA session signed for with them) make every
    // IAM call; --user-name picks whose key is rotated.
    let auth = match &args.auth_profile {
        Some(name) => Some(AuthProfile::load(name, &files.borrow(), settings)?),
        None => None,
    };
    // MFA: one code per device, asked for before anything runs concurrently.
    let mut sessions = Sessions::default();
    let auth_iam = match &auth {
        Some(a) => Some(
            super::auth::credentials(
                a,
                &args.mfa,
                args.dry_run,
                ui,
                engine.connector,
                &mut sessions,
            )
            .await,
        ),
        None => None,
    };
    let groups: Vec<KeyGroup> = match (&auth, &auth_iam, &args.user_name) {
        (Some(a), Some(Ok((iam, _))), Some(user)) => {
            super::auth::user_groups(
                a,
                iam,
                user,
                files,
                settings,
                &inventory.groups,
                engine.connector,
            )
            .await
        }
        _ => inventory.groups.clone(),
    };
    let mut group_sessions: Vec<Result<Option<Credentials>, String>> = Vec::new();
    let mut group_serials: Vec<Option<String>> = Vec::new();
    for group in &groups {
        match &auth_iam {
            Some(result) => {
                group_sessions.push(result.clone().map(|(c, _)| Some(c)));
                group_serials.push(result.as_ref().ok().and_then(|(_, s)| s.clone()));
            }
            None => {
                let (session, serial) =
                    mfa_session(args, ui, engine.connector, group, &mut sessions).await;
                group_sessions.push(session);
                group_serials.push(serial);
            }
        }
    }
    let verdicts: Vec<Preflight> =
        futures_util::stream::iter(groups.iter().zip(&group_sessions).map(|(group, session)| {
            let plan_options = &plan_options;
            let auth = auth.as_ref();
            let blocked_by = blocked
                .iter()
                .find(|(key, _)| *key == group.key_id)
                .map(|(_, why)| why.clone());
            async move {
                if let Some(message) = blocked_by {
                    return Preflight::Failed {
                        message,
                        error: None,
                    };
                }
                match session {
                    Ok(session) => {
                        preflight(
                            engine.connector,
                            files,
                            group,
                            session.as_ref(),
                            auth.map(|a| (a, args.user_name.as_deref())),
                            plan_options,
                            now,
                        )
                        .await
                    }
                    Err(message) => Preflight::Failed {
                        message: message.clone(),
                        error: None,
                    },
                }
            }
        }))
        .buffered(super::limit::MAX_TASKS)
        .collect()
        .await;

    let mut reports: Vec<KeyReport> = Vec::new();
    let mut jobs: Vec<JobSpec<'_>> = Vec::new();
    for (((group, verdict), session), serial) in groups
        .iter()
        .zip(verdicts)
        .zip(&group_sessions)
        .zip(&group_serials)
    {
        let mut report = KeyReport {
            access_key_id: mask_key_id(&group.key_id),
            profiles: group.holders.clone(),
            user: None,
            result: "failed",
            new_access_key_id: None,
            old_key: None,
            deleted_inactive: None,
            age_days: None,
            changes: Vec::new(),
            mfa_serial: serial.clone(),
            error: None,
        };
        match verdict {
            Preflight::Ready { plan, age_days } => {
                report.user = Some(plan.user.clone());
                report.age_days = age_days;
                report.result = "planned";
                report.old_key = Some(retire_word(plan.retire));
                report.deleted_inactive = plan.delete_first.as_deref().map(mask_key_id);
                report.changes = planned_changes(&files.borrow(), group);
                jobs.push((
                    reports.len(),
                    group,
                    plan,
                    session.clone().ok().flatten(),
                    serial.clone(),
                ));
            }
            Preflight::NotDue { user, age_days } => {
                report.user = Some(user);
                report.result = "not-due";
                report.age_days = Some(age_days);
            }
            Preflight::Refused { user, message } => {
                report.user = Some(user);
                report.result = "refused";
                report.error = Some(ErrorJson::other("Refused", message));
            }
            Preflight::Failed { message, error } => {
                report.error =
                    Some(error.unwrap_or_else(|| ErrorJson::other("Preflight", message)));
            }
        }
        reports.push(report);
    }

    if settings.output != OutputFormat::Json {
        let plan_text = render_plan(&reports, &skipped, args);
        if args.dry_run {
            ui.out(&plan_text)?;
        } else if !ui.quiet() {
            eprint!("{plan_text}");
        }
    }
    if args.dry_run {
        let summary = summarise(&reports, &skipped);
        let refused = summary.failed > 0;
        if settings.output == OutputFormat::Json {
            let doc = RotateReport {
                dry_run: true,
                recovered,
                keys: reports,
                skipped,
                summary,
            };
            ui.out(&(serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"))?;
        }
        return Ok(if refused {
            outcome.max(Outcome::Attention)
        } else {
            outcome
        });
    }

    if !jobs.is_empty() {
        confirm(
            args,
            ui,
            &format!(
                "Rotate {} key{}?",
                jobs.len(),
                if jobs.len() == 1 { "" } else { "s" }
            ),
        )?;
    }

    // Execute: every key at once; the limiter bounds the calls in flight.
    display.expect(jobs.len());
    let results: Vec<(usize, KeyOutcome)> = futures_util::stream::iter(jobs.iter().map(
        |(index, group, plan, session, serial)| async move {
            let job = Job {
                plan,
                target: &group.target,
                holders: &group.holders,
                session: session.as_ref(),
                mfa_serial: serial.as_deref(),
                destination: &group.destination,
                auth_profile: args.auth_profile.as_deref(),
            };
            (*index, engine.execute(job).await)
        },
    ))
    .buffer_unordered(super::limit::MAX_TASKS)
    .collect()
    .await;
    display.finish();

    let mut env_out = String::new();
    // Keys printed only (`--output env`): (old key, whether its rotation finished).
    let mut printed = Vec::new();
    for (index, result) in results {
        let report = &mut reports[index];
        let group = jobs
            .iter()
            .find(|(i, ..)| *i == index)
            .map(|(_, g, ..)| *g)
            .expect("a job per result");
        for note in result.save_notes() {
            ui.note(&note);
        }
        if group.destination == Destination::Printed {
            match &result {
                KeyOutcome::Rotated { .. } => printed.push((group.key_id.clone(), true)),
                KeyOutcome::Partial { .. } => printed.push((group.key_id.clone(), false)),
                _ => {}
            }
        }
        apply_outcome(report, group, auth.as_ref(), result, &mut env_out);
    }
    let summary = summarise(&reports, &skipped);
    match settings.output {
        OutputFormat::Json => {
            let doc = RotateReport {
                dry_run: false,
                recovered,
                keys: reports,
                skipped,
                summary,
            };
            ui.out(&(serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"))?;
            return Ok(outcome.max(exit_for(&doc.summary)));
        }
        OutputFormat::Env => {
            match ui.out(&env_out) {
                Err(Error::Output { source, .. }) if !printed.is_empty() => {
                    // The journals still hold the new keys: nothing is lost, but the run is
                    // not done.
                    ui.warn(&format!(
                        "could not print the new keys ({source}); they are kept in the recovery \
                         journal: run `iam-keys recover --output env` to print them"
                    ));
                    eprint!("{}", render_results(&reports, &summary));
                    return Ok(Outcome::Partial);
                }
                written => written?,
            }
            // Only now does the user hold the new keys: until here their journals were kept.
            for (old_key_id, finished) in &printed {
                if let Err(e) = journals.mark_printed(old_key_id, *finished) {
                    ui.warn(&format!(
                        "the new key of {} was printed, but its journal could not be updated: {e}",
                        mask_key_id(old_key_id)
                    ));
                }
            }
            eprint!("{}", render_results(&reports, &summary));
        }
        OutputFormat::Text | OutputFormat::Csv if ui.quiet() => {
            // Cron: nothing when all went well; the failures and the summary otherwise.
            if exit_for(&summary) != Outcome::Success || outcome != Outcome::Success {
                let failed: Vec<KeyReport> = reports
                    .into_iter()
                    .filter(|r| !matches!(r.result, "rotated" | "not-due" | "planned"))
                    .collect();
                ui.out(&render_results(&failed, &summary))?;
            }
        }
        OutputFormat::Text | OutputFormat::Csv => ui.out(&render_results(&reports, &summary))?,
    }
    Ok(outcome.max(exit_for(&summary)))
}

fn exit_for(s: &RotateSummary) -> Outcome {
    if s.partial > 0 {
        Outcome::Partial
    } else if s.failed > 0 {
        Outcome::Attention
    } else {
        Outcome::Success
    }
}

fn confirm(args: &RotateArgs, ui: &Ui, question: &str) -> Result<(), Error> {
    if args.yes {
        return Ok(());
    }
    if !ui.is_interactive() {
        return Err(Error::Usage(
            "not rotating without confirmation: there is no terminal to ask on; pass --yes (or look first with --dry-run)"
                .into(),
        ));
    }
    if ui.confirm(question) {
        Ok(())
    } else {
        Err(Error::Usage("cancelled; nothing was changed".into()))
    }
}

/// The MFA session a key's IAM calls need, if any, and its device: from `--mfa-serial`, the
/// profile's `mfa_serial`, or (`--mfa`) the user's only device. A dry run asks for no code
/// (the device is still returned, so the plan can say a code will be needed).
async fn mfa_session<C: Connector>(
    args: &RotateArgs,
    ui: &Ui,
    connector: &C,
    group: &KeyGroup,
    sessions: &mut Sessions,
) -> (Result<Option<Credentials>, String>, Option<String>) {
    if group.problem.is_some() {
        return (Ok(None), None);
    }
    let mut serial = args
        .mfa
        .mfa_serial
        .clone()
        .or_else(|| group.mfa_serial.clone());
    if serial.is_none() && args.mfa.mfa {
        let client = connector.connect(&group.target);
        let cx = advice::Context {
            profiles: &group.holders,
            key_id: &group.key_id,
            region: &group.target.region,
            signer: Signer::OldKey,
        };
        let user = match inventory::identify(&client).await {
            Ok((_, user)) => user,
            Err(InspectError::Aws(e)) => return (Err(advice::explain(&e, &cx)), None),
            Err(e) => return (Err(e.to_string()), None),
        };
        match super::mfa::pick_device(&client, &user, ui).await {
            Ok(found) => serial = Some(found),
            Err(super::mfa::MfaError::Aws(e)) => return (Err(advice::explain(&e, &cx)), None),
            Err(e) => return (Err(e.to_string()), None),
        }
    }
    let Some(serial) = serial else {
        return (Ok(None), None);
    };
    if args.dry_run && !args.mfa.requested() {
        return (Ok(None), Some(serial));
    }
    let session = sessions
        .get(connector, &group.target, &serial, &args.mfa, ui)
        .await
        .map(Some)
        .map_err(|e| match e {
            super::mfa::MfaError::Aws(error) => {
                let cx = advice::Context {
                    profiles: &group.holders,
                    key_id: &group.key_id,
                    region: &group.target.region,
                    signer: Signer::OldKey,
                };
                format!(
                    "the MFA session for {serial} was refused: {}",
                    advice::explain(&error, &cx)
                )
            }
            other => other.to_string(),
        });
    (session, Some(serial))
}

async fn preflight<C: Connector>(
    connector: &C,
    files: &RefCell<ProfileFiles>,
    group: &KeyGroup,
    session: Option<&Credentials>,
    auth: Option<(&AuthProfile, Option<&str>)>,
    options: &PlanOptions,
    now: Timestamp,
) -> Preflight {
    if let Some(problem) = &group.problem {
        return Preflight::Failed {
            message: problem.clone(),
            error: None,
        };
    }
    for holder in &group.holders {
        if let Err(e) = files.borrow().check_editable(holder) {
            return Preflight::Failed {
                message: e.to_string(),
                error: None,
            };
        }
    }
    let client = connector.connect(&match session {
        Some(session) => crate::aws::Target {
            credentials: session.clone(),
            ..group.target.clone()
        },
        None => group.target.clone(),
    });
    let inspected = match auth {
        Some((_, Some(user))) if group.destination != Destination::Holders => {
            inventory::inspect_user(&client, user).await
        }
        Some((_, user)) => {
            let own = connector.connect(&group.target);
            inventory::inspect_as(&own, &client, &group.key_id, user).await
        }
        None => inventory::inspect(&client, &group.key_id).await,
    };
    let facts = match inspected {
        Ok(facts) => facts,
        Err(InspectError::Aws(e)) => {
            let cx = advice::Context {
                profiles: &group.holders,
                key_id: &group.key_id,
                region: &group.target.region,
                signer: if session.is_some() && auth.is_none() {
                    Signer::MfaSession
                } else {
                    Signer::OldKey
                },
            };
            // With --auth-profile only GetCallerIdentity (for a local key) uses the key itself.
            let message = match auth {
                Some((a, _))
                    if e.action != crate::aws::Action::GetCallerIdentity
                        || group.destination != Destination::Holders =>
                {
                    let signer = if session.is_some_and(|s| *s != a.target.credentials) {
                        Signer::MfaSession
                    } else {
                        Signer::OldKey
                    };
                    a.explain(&e, signer)
                }
                _ => advice::explain(&e, &cx),
            };
            return Preflight::Failed {
                error: Some(ErrorJson::from_aws(&e, message.clone())),
                message,
            };
        }
        Err(e) => {
            return Preflight::Failed {
                message: e.to_string(),
                error: None,
            };
        }
    };
    let held_by = |id: &str| {
        files
            .borrow()
            .profiles_with_key(id)
            .into_iter()
            .map(|h| h.profile)
            .collect()
    };
    match plan::decide(&facts, &group.key_id, &held_by, options, now) {
        Decision::Rotate(plan) => {
            if let Err(e) = files.borrow().check_writable() {
                return Preflight::Failed {
                    message: e.to_string(),
                    error: None,
                };
            }
            if group.destination == Destination::Holders
                && let Err(message) = every_place_covered(&files.borrow(), &group.key_id)
            {
                return Preflight::Refused {
                    user: facts.user,
                    message,
                };
            }
            let age_days = plan.old_created.map(|c| render::age_days(now, c));
            Preflight::Ready { plan, age_days }
        }
        Decision::NotDue { age_days } => Preflight::NotDue {
            user: facts.user,
            age_days,
        },
        Decision::Refuse(refusal) => Preflight::Refused {
            user: facts.user,
            message: refusal.explain(now),
        },
    }
}

/// Why a key is not rotated when its journal could not be used or finished.
fn text_of_pending(entry: &crate::rotation::journal::Entry) -> String {
    format!(
        "an interrupted rotation of this key is recorded in {} and is not finished; nothing was changed. \
         Run `iam-keys recover` (or `iam-keys recover --undo`) first",
        entry.path.display()
    )
}

/// Refused before any key is made when a line the edit would not rewrite holds the key.
fn every_place_covered(files: &ProfileFiles, key_id: &str) -> Result<(), String> {
    let left = plan::uncovered_places(files, key_id).map_err(|e| e.to_string())?;
    if left.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} also hold{} this key, in a section the AWS SDKs ignore but the AWS CLI reads (a name with a space, or \
         `[profile NAME]` in the credentials file); iam-keys does not rotate a key it cannot replace everywhere. \
         Rename the section (`[NAME]` in the credentials file) or remove the line, then run again; nothing was changed",
        left.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if left.len() == 1 { "s" } else { "" }
    ))
}

/// The file lines a rotation of the group's key changes, described without secrets.
fn planned_changes(files: &ProfileFiles, group: &KeyGroup) -> Vec<String> {
    let placeholder = "AKIA................".to_string();
    let edit = match &group.destination {
        Destination::Holders => KeyEdit::Replace {
            old_key_id: group.key_id.clone(),
            new_key_id: placeholder,
            new_secret: crate::secret::Secret::new(""),
        },
        Destination::Profile(profile) => KeyEdit::SetProfile {
            profile: profile.clone(),
            key_id: placeholder,
            secret: crate::secret::Secret::new("x"),
        },
        Destination::Printed => {
            return vec!["no file changes: the new key is printed (--output env)".to_string()];
        }
    };
    match files.plan_edits(&[edit]) {
        Ok(changes) => changes.iter().map(|c| c.to_string()).collect(),
        Err(e) => vec![format!("cannot plan the edit: {e}")],
    }
}

fn apply_outcome(
    report: &mut KeyReport,
    group: &KeyGroup,
    auth: Option<&AuthProfile>,
    result: KeyOutcome,
    env_out: &mut String,
) {
    let cx = |signer| advice::Context {
        profiles: &group.holders,
        key_id: &group.key_id,
        region: &group.target.region,
        signer,
    };
    let mfa_used = report.mfa_serial.is_some();
    let failure_json = |failure: &Failure| match failure {
        // With --auth-profile, the "session" is that profile's credentials: name them.
        Failure::Aws {
            error,
            signer: Signer::MfaSession,
        } if auth.is_some() && !mfa_used => {
            let auth = auth.expect("checked");
            ErrorJson::from_aws(error, auth.explain(error, Signer::OldKey))
        }
        Failure::Aws { error, signer } => {
            ErrorJson::from_aws(error, advice::explain(error, &cx(*signer)))
        }
        Failure::VerifyTimeout { .. } => ErrorJson::other("VerifyTimeout", failure.to_string()),
        Failure::Interrupted => ErrorJson::other("Interrupted", failure.to_string()),
        other => ErrorJson::other("Failed", other.to_string()),
    };
    match result {
        KeyOutcome::Rotated {
            new_key_id,
            new_secret,
            retire,
            deleted_inactive,
            saved,
        } => {
            report.result = "rotated";
            report.new_access_key_id = Some(mask_key_id(&new_key_id));
            report.old_key = Some(retire_word(retire));
            report.deleted_inactive = deleted_inactive.as_deref().map(mask_key_id);
            report.changes = saved
                .files
                .iter()
                .flat_map(|f| f.changes.iter().map(|c| c.to_string()))
                .collect();
            env_out.push_str(&render::env_lines(
                &group.holders,
                report.user.as_deref().unwrap_or_default(),
                &new_key_id,
                &new_secret,
            ));
        }
        KeyOutcome::Failed {
            step,
            failure,
            cleanup,
            deleted_inactive,
        } => {
            report.old_key = None;
            report.deleted_inactive = deleted_inactive.as_deref().map(mask_key_id);
            report.changes.clear();
            // A key this run made that may still be Active is a partial run (exit 3).
            report.result = if cleanup.leaves_key() {
                "partial"
            } else {
                "failed"
            };
            let mut error = failure_json(&failure);
            error.message = format!(
                "{} failed: {}; {}",
                step,
                error.message,
                match &cleanup {
                    Cleanup::NothingCreated => "no key was created, nothing changed".to_string(),
                    Cleanup::NewKeyDeleted(id) => format!(
                        "the new key {} was deleted again, files unchanged",
                        mask_key_id(id)
                    ),
                    Cleanup::LostKeyDeleted(id) => format!(
                        "CreateAccessKey's answer was lost, but it had made the key {}; its secret was lost with \
                         the answer, so that key was deleted. Files unchanged",
                        mask_key_id(id)
                    ),
                    Cleanup::NewKeyLeft { key_id, .. } => format!(
                        "the new key {} is still in IAM and could not be deleted; it is in the recovery journal: \
                         run `iam-keys recover`",
                        mask_key_id(key_id)
                    ),
                    Cleanup::Unresolved { candidates, .. } if candidates.is_empty() => {
                        "CreateAccessKey's answer was lost and the user's keys could not be listed to find the key \
                         it may have made; the recovery journal is kept: run `iam-keys recover`"
                            .to_string()
                    }
                    Cleanup::Unresolved { candidates, .. } => format!(
                        "CreateAccessKey's answer was lost and more than one unknown key fits its window ({}); none \
                         is touched and the recovery journal is kept: run `iam-keys recover`",
                        candidates
                            .iter()
                            .map(|c| mask_key_id(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            );
            report.error = Some(error);
        }
        KeyOutcome::Partial {
            new_key_id,
            new_secret,
            failure,
            deleted_inactive,
        } => {
            report.result = "partial";
            report.new_access_key_id = Some(mask_key_id(&new_key_id));
            report.old_key = None;
            report.deleted_inactive = deleted_inactive.as_deref().map(mask_key_id);
            let mut error = failure_json(&failure);
            error.message = format!(
                "rotated, but the old key {} is still active: {}. The files hold the new key; run `iam-keys recover` \
                 to retire the old one",
                report.access_key_id, error.message
            );
            report.error = Some(error);
            env_out.push_str(&render::env_lines(
                &group.holders,
                report.user.as_deref().unwrap_or_default(),
                &new_key_id,
                &new_secret,
            ));
        }
        KeyOutcome::Stuck {
            new_key_id,
            failure,
            restore_error,
            ..
        } => {
            report.result = "partial";
            report.new_access_key_id = Some(mask_key_id(&new_key_id));
            report.error = Some(ErrorJson::other(
                "Stuck",
                format!(
                    "writing the files failed ({failure}) and restoring them failed too ({restore_error}); both keys \
                     are active and work. Fix the problem, then run `iam-keys recover`"
                ),
            ));
        }
    }
}

fn summarise(reports: &[KeyReport], skipped: &[Skipped]) -> RotateSummary {
    let count = |r: &str| reports.iter().filter(|k| k.result == r).count();
    RotateSummary {
        rotated: count("rotated"),
        not_due: count("not-due"),
        skipped: skipped.len(),
        failed: count("failed") + count("refused"),
        partial: count("partial"),
    }
}

fn render_plan(reports: &[KeyReport], skipped: &[Skipped], args: &RotateArgs) -> String {
    let mut out = String::new();
    let head = if args.dry_run {
        "Plan (dry run, nothing is changed):"
    } else {
        "Plan:"
    };
    out.push_str(head);
    out.push('\n');
    for r in reports {
        let user = r.user.as_deref().unwrap_or("?");
        match r.result {
            "planned" => {
                let age = r
                    .age_days
                    .map(|d| format!(", {d} days old"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  rotate   {} (user {user}{age}): profiles {}\n",
                    r.access_key_id,
                    r.profiles.join(", ")
                ));
                if let Some(inactive) = &r.deleted_inactive {
                    out.push_str(&format!(
                        "           first delete the Inactive key {inactive} to make room\n"
                    ));
                }
                if let Some(serial) = &r.mfa_serial {
                    out.push_str(&format!(
                        "           MFA needed: the IAM calls go through a session for {serial} (one code)\n"
                    ));
                }
                for c in &r.changes {
                    out.push_str(&format!("           {c}\n"));
                }
                out.push_str(&format!(
                    "           then the old key is {}\n",
                    match r.old_key {
                        Some("deleted") => "deleted",
                        _ => "deactivated (Inactive)",
                    }
                ));
            }
            "not-due" => out.push_str(&format!(
                "  not due  {} (user {user}, {} days old, threshold {}): profiles {}\n",
                r.access_key_id,
                r.age_days.unwrap_or_default(),
                args.older_than
                    .as_ref()
                    .map(|d| d.text.as_str())
                    .unwrap_or("-"),
                r.profiles.join(", ")
            )),
            _ => out.push_str(&format!(
                "  {:<8} {} (profiles {}): {}\n",
                r.result,
                r.access_key_id,
                r.profiles.join(", "),
                r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
            )),
        }
    }
    for s in skipped {
        out.push_str(&format!("  skipped  profile {}: {}\n", s.profile, s.reason));
    }
    if reports.is_empty() && skipped.is_empty() {
        out.push_str("  nothing selected\n");
    }
    out
}

fn render_results(reports: &[KeyReport], summary: &RotateSummary) -> String {
    let mut out = String::new();
    for r in reports {
        match r.result {
            "rotated" => out.push_str(&format!(
                "rotated  {} -> {} (profiles {}); old key {}\n",
                r.access_key_id,
                r.new_access_key_id.as_deref().unwrap_or("?"),
                r.profiles.join(", "),
                r.old_key.unwrap_or("?")
            )),
            "not-due" => out.push_str(&format!(
                "not due  {} (profiles {})\n",
                r.access_key_id,
                r.profiles.join(", ")
            )),
            "planned" => {}
            other => out.push_str(&format!(
                "{other:<8} {} (profiles {}): {}\n",
                r.access_key_id,
                r.profiles.join(", "),
                r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
            )),
        }
    }
    out.push_str(&format!(
        "{} rotated, {} not due, {} skipped, {} failed, {} partial\n",
        summary.rotated, summary.not_due, summary.skipped, summary.failed, summary.partial
    ));
    out
}

pub(crate) fn describe_journal(j: &Journal) -> String {
    format!(
        "key {} of user {} (profiles {}), started {}, stopped after stage `{}`{}",
        mask_key_id(&j.old_key_id),
        j.user,
        j.profiles.join(", "),
        j.started,
        serde_json::to_value(j.stage)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        j.new_key_id
            .as_deref()
            .map(|id| format!(", new key {}", mask_key_id(id)))
            .unwrap_or_default()
    )
}

pub(crate) fn describe_recovered(j: &Journal, r: &Recovered) -> String {
    match r {
        Recovered::Finished {
            new_key_id, retire, ..
        } => format!(
            "finished: {} -> {} (profiles {}); old key {}",
            mask_key_id(&j.old_key_id),
            mask_key_id(new_key_id),
            j.profiles.join(", "),
            retire_word(*retire)
        ),
        Recovered::Undone { deleted } if deleted.is_empty() => {
            format!(
                "undone: {} stays in profiles {}; no new key existed",
                mask_key_id(&j.old_key_id),
                j.profiles.join(", ")
            )
        }
        Recovered::Undone { deleted } => format!(
            "undone: {} stays in profiles {}; deleted the new key {}",
            mask_key_id(&j.old_key_id),
            j.profiles.join(", "),
            deleted
                .iter()
                .map(|d| mask_key_id(d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Recovered::Unprinted { new_key_id, .. } => format!(
            "kept: the new key {} of user {} was never printed and the old key {} is already retired; \
             the journal holds its only copy: run `iam-keys recover --output env` to print it",
            mask_key_id(new_key_id),
            j.user,
            mask_key_id(&j.old_key_id)
        ),
    }
}
