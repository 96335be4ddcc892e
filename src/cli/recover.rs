//! `iam-keys recover`: finish (default) or undo (`--undo`) the rotations that an earlier run
//! left in the journal.

use super::OutputFormat;
use super::rotate::{describe_journal, describe_recovered};
use super::ui::Ui;
use crate::error::{Error, Outcome};
use crate::profiles::{ProfileFiles, RunLock, SaveOptions};
use crate::rotation::clock::{Cancel, RealClock};
use crate::rotation::journal::JournalStore;
use crate::rotation::recover::{Mode, RecoverError, Recovered};
use crate::rotation::{Engine, ExecOptions, Step};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use clap::Args;
use std::cell::RefCell;

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Undo instead: put the old key back in the files and delete the new key
    #[arg(long)]
    pub undo: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Do not keep `<file>.iam-keys.bak` copies of the previous file contents
    #[arg(long)]
    pub no_backup: bool,
    #[command(flatten)]
    pub mfa: super::mfa::MfaArgs,
}

pub fn run(args: &RecoverArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    let mut on_wait = |path: &std::path::Path, _pid: Option<u32>| {
        ui.note(&format!(
            "waiting for another iam-keys run that holds {}",
            path.display()
        ));
    };
    let lock = RunLock::acquire(
        &settings.paths.credentials,
        std::time::Duration::from_secs(30),
        &mut on_wait,
    )?;
    for stale in lock.remove_stale_temp_files(&settings.paths) {
        ui.note(&format!(
            "removed a temporary file left by an interrupted save: {}",
            stale.display()
        ));
    }
    let journals = JournalStore::beside(&settings.paths.credentials);
    let pending = journals.list()?;
    if pending.is_empty() {
        ui.out("nothing to recover: no interrupted rotation\n")?;
        return Ok(Outcome::Success);
    }
    for j in &pending {
        ui.note(&format!(
            "found an interrupted rotation: {}",
            describe_journal(j)
        ));
    }
    if !args.yes {
        if !ui.is_interactive() {
            return Err(Error::Usage(
                "not recovering without confirmation: no terminal to ask on; pass --yes".into(),
            ));
        }
        let what = if args.undo { "Undo" } else { "Finish" };
        if !ui.confirm(&format!("{what} {} rotation(s)?", pending.len())) {
            return Err(Error::Usage("cancelled; nothing was changed".into()));
        }
    }
    let files = RefCell::new(ProfileFiles::load(&settings.paths)?);
    let connector = super::sdk_connector(settings, &files.borrow())?;
    let options = ExecOptions {
        save: SaveOptions {
            backup: !args.no_backup,
        },
        ..ExecOptions::default()
    };
    let cancel = Cancel::default();
    let progress = |key: &str, step: Step| ui.progress(&format!("{}: {step}", mask_key_id(key)));
    let engine = Engine {
        connector: &connector,
        clock: &RealClock,
        files: &files,
        journal: &journals,
        options: &options,
        cancel: &cancel,
        progress: &progress,
    };
    let mode = if args.undo { Mode::Undo } else { Mode::Finish };
    let mut outcome = Outcome::Success;
    let mut lines = String::new();
    // `--output env`: new keys that only a journal held, printed before their journals go.
    let mut env_out = String::new();
    let mut printed = Vec::new();
    super::block_on(async {
        let mut sessions = super::mfa::Sessions::default();
        for j in &pending {
            let session = match journal_session(
                j,
                &files,
                settings,
                &args.mfa,
                &connector,
                ui,
                &mut sessions,
            )
            .await
            {
                Ok(session) => session,
                Err(e) => {
                    lines.push_str(&format!("failed   {}: {e}\n", mask_key_id(&j.old_key_id)));
                    outcome = Outcome::Partial;
                    continue;
                }
            };
            match engine.recover(j, mode, session.as_ref()).await {
                Ok(Recovered::Unprinted {
                    new_key_id,
                    new_secret,
                }) if settings.output == OutputFormat::Env => {
                    env_out.push_str(&super::render::env_lines(
                        &j.profiles,
                        &j.user,
                        &new_key_id,
                        &new_secret,
                    ));
                    printed.push((j.old_key_id.clone(), new_key_id));
                }
                Ok(result @ Recovered::Unprinted { .. }) => {
                    lines.push_str(&format!("{}\n", describe_recovered(j, &result)));
                    outcome = Outcome::Partial;
                }
                Ok(result) => lines.push_str(&format!("{}\n", describe_recovered(j, &result))),
                Err(e) => {
                    let advice = match &e {
                        RecoverError::CannotUndo(_) => String::new(),
                        _ => "; the journal is kept, run `iam-keys recover` again once fixed"
                            .to_string(),
                    };
                    lines.push_str(&format!(
                        "failed   {}: {e}{advice}\n",
                        mask_key_id(&j.old_key_id)
                    ));
                    outcome = Outcome::Partial;
                }
            }
        }
    });
    if settings.output == OutputFormat::Env {
        ui.out(&env_out)?;
        for (old_key_id, new_key_id) in printed {
            match journals.mark_printed(&old_key_id, true) {
                Ok(()) => lines.push_str(&format!(
                    "finished: printed the new key {} (the old key {} was already retired)\n",
                    mask_key_id(&new_key_id),
                    mask_key_id(&old_key_id)
                )),
                Err(e) => {
                    lines.push_str(&format!(
                        "failed   {}: the new key was printed, but its journal could not be removed: {e}\n",
                        mask_key_id(&old_key_id)
                    ));
                    outcome = Outcome::Partial;
                }
            }
        }
        eprint!("{lines}");
    } else {
        ui.out(&lines)?;
    }
    Ok(outcome)
}

/// The credentials for a journal's IAM calls: the `--auth-profile` it was made with (from the
/// files as they are now), through an MFA session when the journal (or `--mfa-serial`) names a
/// device; `None` means the old key itself.
pub(crate) async fn journal_session<C: crate::aws::Connector>(
    j: &crate::rotation::journal::Journal,
    files: &RefCell<ProfileFiles>,
    settings: &Settings,
    mfa: &super::mfa::MfaArgs,
    connector: &C,
    ui: &Ui,
    sessions: &mut super::mfa::Sessions,
) -> Result<Option<crate::aws::Credentials>, String> {
    let base = match &j.auth_profile {
        Some(name) => {
            let auth = super::auth::AuthProfile::load(name, &files.borrow(), settings)
                .map_err(|e| format!("the rotation was made with --auth-profile {name}: {e}"))?;
            Some(auth.target)
        }
        None => None,
    };
    let base_is_session = base
        .as_ref()
        .is_some_and(|t| t.credentials.session_token.is_some());
    let serial = j.mfa_serial.clone().or_else(|| mfa.mfa_serial.clone());
    match (serial, base) {
        (Some(serial), base) if !base_is_session => {
            let target = base.unwrap_or_else(|| crate::aws::Target {
                credentials: crate::aws::Credentials::long_term(
                    j.old_key_id.clone(),
                    j.old_secret.clone(),
                ),
                region: j.endpoint.region.clone(),
                iam_endpoint: j.endpoint.iam_endpoint.clone(),
                sts_endpoint: j.endpoint.sts_endpoint.clone(),
            });
            sessions
                .get(connector, &target, &serial, mfa, ui)
                .await
                .map(Some)
                .map_err(|e| e.to_string())
        }
        (_, Some(base)) => Ok(Some(base.credentials)),
        (_, None) => Ok(None),
    }
}
