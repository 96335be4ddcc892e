//! `iam-keys recover`: finish (default) or undo (`--undo`) the rotations that an earlier run
//! left in the journal, wherever the per-user index says they are, each in the files it
//! names. `rotate` runs the same recovery ([`Recovery`]) before it starts.

use super::OutputFormat;
use super::duration::DurationArg;
use super::pending::{Recovery, describe_entry, describe_recovered};
use super::ui::Ui;
use super::wiring::{acquire_lock, confirm, journal_store, with_ctrl_c};
use crate::error::{Error, Outcome};
use crate::profiles::{ProfileFiles, SaveOptions};
use crate::rotation::ExecOptions;
use crate::rotation::recover::{Mode, Recovered};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use crate::time::Cancel;
use clap::Args;

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
    /// How long to wait for another iam-keys run on the same files
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub lock_timeout: DurationArg,
    #[command(flatten)]
    pub mfa: super::mfa::MfaArgs,
    /// How long each hook that has not passed may run (default: what the rotation was given,
    /// else 60s)
    #[arg(long, value_name = "DURATION")]
    pub hook_timeout: Option<super::duration::DurationArg>,
    #[command(flatten)]
    pub limit: super::limit::LimitArgs,
}

pub fn run(args: &RecoverArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    let _lock = acquire_lock(&settings.paths, args.lock_timeout.duration, ui)?;
    let journals = journal_store(settings);
    let pending = journals.list()?;
    if pending.is_empty() {
        ui.out("nothing to recover: no interrupted rotation\n")?;
        return Ok(Outcome::Success);
    }
    for entry in &pending {
        ui.note(&describe_entry(entry));
    }
    let what = if args.undo { "Undo" } else { "Finish" };
    confirm(
        args.yes,
        ui,
        &format!("{what} {} rotation(s)?", pending.len()),
        "not recovering without confirmation: no terminal to ask on; pass --yes",
    )?;
    let files = ProfileFiles::load(&settings.paths)?;
    let sdk = super::sdk_connector(settings, &files)?;
    let connector = crate::aws::limiter::LimitedConnector::new(&sdk, args.limit.limiter());
    let options = ExecOptions {
        save: SaveOptions {
            backup: !args.no_backup,
        },
        hook_timeout: args.hook_timeout.as_ref().map(|d| d.duration),
        ..ExecOptions::default()
    };
    let mode = if args.undo { Mode::Undo } else { Mode::Finish };
    let mut outcome = Outcome::Success;
    let mut lines = String::new();
    // `--output env`: new keys that only a journal held, printed before their journals go.
    let mut env_out = String::new();
    let mut printed = Vec::new();
    let cancel = Cancel::default();
    let recovery = Recovery {
        settings,
        mfa: &args.mfa,
        connector: &connector,
        options: &options,
        ui,
        cancel: &cancel,
        lock_timeout: args.lock_timeout.duration,
    };
    let results = crate::time::block_on(with_ctrl_c(&cancel, ui, recovery.run(&pending, mode)));
    for (entry, result) in pending.iter().zip(results) {
        match (result, entry.journal.as_ref()) {
            (
                Ok(Recovered::Unprinted {
                    new_key_id,
                    new_secret,
                }),
                Ok(j),
            ) if settings.output == OutputFormat::Env => {
                env_out.push_str(&super::render::env_lines(
                    &j.profiles,
                    &j.user,
                    &new_key_id,
                    &new_secret,
                ));
                printed.push((entry, new_key_id));
            }
            (Ok(result @ Recovered::Unprinted { .. }), Ok(j)) => {
                lines.push_str(&format!("{}\n", describe_recovered(j, &result)));
                outcome = Outcome::Partial;
            }
            (Ok(result), Ok(j)) => lines.push_str(&format!("{}\n", describe_recovered(j, &result))),
            (Ok(_), Err(_)) => unreachable!("an unreadable journal is never recovered"),
            (Err(message), _) => {
                lines.push_str(&format!(
                    "failed   {}: {message}\n",
                    mask_key_id(&entry.old_key_id)
                ));
                outcome = Outcome::Partial;
            }
        }
    }
    if settings.output == OutputFormat::Env {
        ui.out(&env_out)?;
        for (entry, new_key_id) in printed {
            match entry.store.mark_printed(&entry.old_key_id, true) {
                Ok(()) => lines.push_str(&format!(
                    "finished: printed the new key {} (the old key {} was already retired)\n",
                    mask_key_id(&new_key_id),
                    mask_key_id(&entry.old_key_id)
                )),
                Err(e) => {
                    lines.push_str(&format!(
                        "failed   {}: the new key was printed, but its journal could not be removed: {e}\n",
                        mask_key_id(&entry.old_key_id)
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
