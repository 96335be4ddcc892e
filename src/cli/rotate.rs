// Over 500 lines: the command's one story (finish pending, preflight, plan, confirm, execute, report) and its options.
//! `iam-keys rotate`: preflight every selected key (read-only AWS calls), show the plan,
//! confirm, then run the rotation protocol for each key, several keys at a time.

use super::OutputFormat;
use super::auth::AuthProfile;
use super::duration::DurationArg;
use super::mfa::{MfaArgs, Sessions};
use super::pending::{Pending, Recovery};
use super::render::rotate::{
    KeyReport, RotateReport, RotateSummary, Skipped, apply_outcome, planned_changes, render_plan,
    render_results, summarise,
};
use super::render::{self, ErrorJson};
use super::ui::Ui;
use super::wiring::{acquire_lock, journal_store, with_ctrl_c};
use super::words::describe_gate;
use crate::aws::limiter::LimitedConnector;
use crate::aws::{Connector, Credentials};
use crate::error::{Error, Outcome};
use crate::inventory::Destination;
use crate::inventory::{self, KeyGroup};
use crate::profiles::{ProfileFiles, SaveOptions};
use crate::rotation::exec::Job;
use crate::rotation::hooks::Gate;
use crate::rotation::journal::JournalStore;
use crate::rotation::plan::{KeyPlan, PlanOptions};
use crate::rotation::preflight::{AuthCaller, Caller, Preflight, Pruner, Verdict};
use crate::rotation::{Engine, ExecOptions, KeyOutcome, Step};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use crate::time::{Cancel, RealClock};
use clap::Args;
use futures_util::StreamExt;
use jiff::Timestamp;
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
    /// When the user's other key is Inactive, delete it first if `iam-keys prune` would: retired
    /// by iam-keys here at least --prune-older-than ago and not used since
    #[arg(long)]
    pub prune: bool,
    /// Run as the job `iam-keys schedule install` writes: never ask; skip a profile that
    /// needs an MFA code unless --mfa-command is given; log to the state directory; print
    /// only when a key was rotated or something needs attention
    #[arg(long)]
    pub scheduled: bool,
    /// With --prune: how long ago the key must have been retired
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub prune_older_than: DurationArg,
    #[command(flatten)]
    pub mfa: MfaArgs,
    #[command(flatten)]
    pub hooks: super::hooks::HookArgs,
}

/// A key to rotate: its report's index, group, plan, IAM credentials and MFA device.
type JobSpec<'a> = (
    usize,
    &'a KeyGroup,
    KeyPlan,
    Option<Credentials>,
    Option<String>,
    Vec<Gate>,
);

pub fn run(args: &RotateArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if args.scheduled && settings.env.get(super::schedule::CHILD_ENV).is_none() {
        return super::schedule::run_job(settings, ui);
    }
    if let Some(w) = settings.ambient_key_warning() {
        ui.warn(&w);
    }
    // A run that may write holds the lock from the first read to the last write.
    let _lock = if args.dry_run {
        None
    } else {
        Some(acquire_lock(
            &settings.paths,
            args.lock_timeout.duration,
            ui,
        )?)
    };
    let files = RefCell::new(super::wiring::load_files(settings, ui)?);
    let sdk = super::sdk_connector(settings, &files.borrow())?;
    let connector = LimitedConnector::new(&sdk, args.limit.limiter());
    let journals = journal_store(settings);
    let exec_options = ExecOptions {
        verify_timeout: args.verify_timeout.duration,
        hook_timeout: args.hooks.hook_timeout.as_ref().map(|d| d.duration),
        create_throttle_budget: args.limit.throttle_timeout.duration,
        save: SaveOptions {
            backup: !args.no_backup,
        },
        ..ExecOptions::default()
    };
    let cancel = Cancel::default();
    let display = super::progress::Progress::new(ui, exec_options.verify_successes);
    let progress = |key: &str, step: Step| display.step(key, step);
    let gates = crate::hooks::ProcessRunner::new(settings.env.vars());
    let engine = Engine {
        connector: &connector,
        clock: &RealClock,
        files: &files,
        journal: &journals,
        options: &exec_options,
        cancel: &cancel,
        progress: &progress,
        gates: &gates,
    };

    crate::time::block_on(async {
        with_ctrl_c(
            &cancel,
            ui,
            rotate(args, settings, ui, &engine, &files, &journals, &display),
        )
        .await
    })
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
    // Interrupted rotations first: each in the files its journal names. A journal that
    // cannot be read, or could not be finished, blocks its own key only.
    let recovery = Recovery {
        settings,
        mfa: &args.mfa,
        connector: engine.connector,
        options: engine.options,
        ui,
        cancel: engine.cancel,
        lock_timeout: args.lock_timeout.duration,
    };
    let Pending {
        outcome,
        recovered,
        blocked,
    } = recovery
        .before_rotating(journals, files, args.dry_run, || {
            confirm(args, ui, "Finish the interrupted rotation(s) first?")
        })
        .await?;

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
            reason: e
                .chain_error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
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
    // --prune: the record of retired keys and the journals, read after the recoveries above.
    let prune_context = args.prune.then(|| {
        super::prune::PruneContext::load(
            settings,
            crate::rotation::prune::PruneOptions {
                older_than: args.prune_older_than.duration,
                unrecorded: false,
            },
            ui,
        )
    });
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
    let mut groups: Vec<KeyGroup> = match (&auth, &auth_iam, &args.user_name) {
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
    // A scheduled run never waits for input: a key whose IAM calls need an MFA code is
    // skipped, with the reason in the job's log, unless a command gives the code.
    if args.scheduled
        && auth.is_none()
        && args.mfa.mfa_code.is_none()
        && args.mfa.mfa_command.is_none()
    {
        groups.retain(|group| {
            let serial = super::mfa::named_device(&args.mfa, group);
            let needs_code = group.problem.is_none() && (serial.is_some() || args.mfa.mfa);
            if needs_code {
                for profile in &group.holders {
                    skipped.push(Skipped {
                        profile: profile.clone(),
                        reason: format!(
                            "needs an MFA code ({}) and a scheduled run asks for none: reinstall the job with \
                             `iam-keys schedule install --mfa-command CMD`, or rotate it by hand",
                            serial.as_deref().unwrap_or("--mfa")
                        ),
                    });
                }
            }
            !needs_code
        });
    }
    let mut group_sessions: Vec<Result<Option<Credentials>, String>> = Vec::new();
    let mut group_serials: Vec<Option<String>> = Vec::new();
    for group in &groups {
        match &auth_iam {
            Some(result) => {
                group_sessions.push(result.clone().map(|(c, _)| Some(c)));
                group_serials.push(result.as_ref().ok().and_then(|(_, s)| s.clone()));
            }
            None => {
                let (session, serial) = if group.problem.is_some() {
                    (Ok(None), None)
                } else {
                    match super::mfa::for_group(
                        group,
                        &args.mfa,
                        args.dry_run,
                        engine.connector,
                        ui,
                        &mut sessions,
                    )
                    .await
                    {
                        Ok((session, serial)) => (Ok(session), serial),
                        Err(message) => (Err(message), None),
                    }
                };
                group_sessions.push(session);
                group_serials.push(serial);
            }
        }
    }
    let pruner = prune_context.as_ref().map(|context| {
        move |facts: &inventory::KeyFacts, id: &str| {
            crate::rotation::prune::decide(&context.candidate(facts, id), now, &context.options)
        }
    });
    let preflight = Preflight {
        connector: engine.connector,
        files,
        options: &plan_options,
        pruner: pruner.as_ref().map(|p| p as Pruner<'_>),
        now,
    };
    // Each key's verdict, or why it was not checked (a pending journal, no MFA session).
    let verdicts: Vec<Result<Verdict, String>> =
        futures_util::stream::iter(groups.iter().zip(&group_sessions).map(|(group, session)| {
            let preflight = &preflight;
            let auth = auth.as_ref();
            let blocked_by = blocked
                .iter()
                .find(|(key, _)| *key == group.key_id)
                .map(|(_, why)| why.clone());
            async move {
                if let Some(message) = blocked_by {
                    return Err(message);
                }
                let session = session.as_ref().map_err(Clone::clone)?;
                let caller = Caller {
                    session: session.as_ref(),
                    auth: auth.map(|a| AuthCaller {
                        credentials: &a.target.credentials,
                        user_name: args.user_name.as_deref(),
                    }),
                };
                Ok(preflight.check(group, caller).await)
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
            hooks: Vec::new(),
            error: None,
        };
        match verdict {
            Ok(Verdict::Ready { plan, age_days }) => {
                report.user = Some(plan.user.clone());
                let home = crate::profiles::home_dir(&|k| settings.env.get(k).map(str::to_string));
                let gates = match super::hooks::gates_for(
                    &args.hooks,
                    &files.borrow(),
                    &group.holders,
                    &plan.old_key_id,
                    home.as_deref(),
                ) {
                    Ok(gates) => gates,
                    Err(message) => {
                        report.error = Some(ErrorJson::other("Preflight", message));
                        reports.push(report);
                        continue;
                    }
                };
                report.hooks = gates.iter().map(describe_gate).collect();
                report.age_days = age_days;
                report.result = "planned";
                report.old_key = Some(super::words::retire_word(plan.retire));
                report.deleted_inactive = plan.delete_first.as_deref().map(mask_key_id);
                report.changes = planned_changes(&files.borrow(), group);
                jobs.push((
                    reports.len(),
                    group,
                    plan,
                    session.clone().ok().flatten(),
                    serial.clone(),
                    gates,
                ));
            }
            Ok(Verdict::NotDue { user, age_days }) => {
                report.user = Some(user);
                report.result = "not-due";
                report.age_days = Some(age_days);
            }
            Ok(Verdict::Refused { user, why }) => {
                report.user = Some(user);
                report.result = "refused";
                let prune_older_than = args.prune.then_some(&args.prune_older_than);
                report.error = Some(ErrorJson::other(
                    "Refused",
                    render::rotate::refused_words(why, prune_older_than, now),
                ));
            }
            Ok(Verdict::Failed(e)) => {
                let (message, error) = render::rotate::failure_words(&e, group, auth.as_ref());
                report.error =
                    Some(error.unwrap_or_else(|| ErrorJson::other("Preflight", message)));
            }
            Err(message) => report.error = Some(ErrorJson::other("Preflight", message)),
        }
        reports.push(report);
    }

    // One --env-file for several keys: each would overwrite the other's key.
    if !args.hooks.env_files.is_empty() && jobs.len() > 1 {
        return Err(Error::Usage(format!(
            "--env-file names one file for every key of the run, but {} keys are to be rotated; select one \
             profile (--profile), or set iam_keys_env_file under each [profile …] in the config file instead",
            jobs.len()
        )));
    }
    if settings.output != OutputFormat::Json {
        let plan_text = render_plan(
            &reports,
            &skipped,
            args.dry_run,
            args.older_than.as_ref().map(|d| d.text.as_str()),
        );
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
            ui.out(&render::json(&doc))?;
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
        |(index, group, plan, session, serial, gates)| async move {
            let job = Job {
                plan,
                target: &group.target,
                holders: &group.holders,
                session: session.as_ref(),
                mfa_serial: serial.as_deref(),
                destination: &group.destination,
                auth_profile: args.auth_profile.as_deref(),
                gates,
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
        for note in super::words::save_notes(&result) {
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
            ui.out(&render::json(&doc))?;
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
    super::wiring::confirm(
        args.yes,
        ui,
        question,
        "not rotating without confirmation: there is no terminal to ask on; pass --yes (or look first with --dry-run)",
    )
}
