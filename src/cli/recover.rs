//! `iam-keys recover`: finish (default) or undo (`--undo`) the rotations that an earlier run
//! left in the journal, wherever the per-user index says they are, each in the files it
//! names. `rotate` runs the same recovery ([`recover_entries`]) before it starts.

use super::OutputFormat;
use super::rotate::{describe_journal, describe_recovered};
use super::ui::Ui;
use crate::aws::Connector;
use crate::error::{Error, Outcome};
use crate::profiles::{FilePaths, ProfileFiles, RunLock, SaveOptions};
use crate::rotation::clock::{Cancel, RealClock};
use crate::rotation::journal::{Entry, Journal, JournalStore};
use crate::rotation::recover::{Mode, RecoverError, Recovered, journal_paths};
use crate::rotation::{Engine, ExecOptions, Step};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use clap::Args;
use std::cell::RefCell;
use std::path::Path;

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
    #[command(flatten)]
    pub limit: super::limit::LimitArgs,
}

pub fn run(args: &RecoverArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    let _lock = acquire_lock(&settings.paths, LOCK_TIMEOUT, ui)?;
    let journals = journal_store(settings);
    let pending = journals.list()?;
    if pending.is_empty() {
        ui.out("nothing to recover: no interrupted rotation\n")?;
        return Ok(Outcome::Success);
    }
    for entry in &pending {
        ui.note(&describe_entry(entry));
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
    let files = ProfileFiles::load(&settings.paths)?;
    let sdk = super::sdk_connector(settings, &files)?;
    let connector = crate::aws::limiter::LimitedConnector::new(&sdk, args.limit.limiter());
    let options = ExecOptions {
        save: SaveOptions {
            backup: !args.no_backup,
        },
        ..ExecOptions::default()
    };
    let mode = if args.undo { Mode::Undo } else { Mode::Finish };
    let mut outcome = Outcome::Success;
    let mut lines = String::new();
    // `--output env`: new keys that only a journal held, printed before their journals go.
    let mut env_out = String::new();
    let mut printed = Vec::new();
    let results = super::block_on(recover_entries(
        &pending, mode, settings, &args.mfa, &connector, &options, ui,
    ));
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

/// How long `recover` waits for another run's lock.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The journals of this run: beside the credentials file, and every other one the per-user
/// index knows.
pub(crate) fn journal_store(settings: &Settings) -> JournalStore {
    JournalStore::beside(&settings.paths.credentials).with_index(settings.state_dir.as_deref())
}

/// The run lock of a pair of files (beside the credentials file), saying once that it waits
/// for another run; then our own temporary files that an interrupted save left are removed.
pub(crate) fn acquire_lock(
    paths: &FilePaths,
    timeout: std::time::Duration,
    ui: &Ui,
) -> Result<RunLock, Error> {
    let mut told = false;
    let mut on_wait = |path: &Path, pid: Option<u32>| {
        if !told {
            told = true;
            let holder = pid.map(|p| format!(" (process {p})")).unwrap_or_default();
            ui.note(&format!(
                "waiting up to {}s for another iam-keys run{holder} that holds {}",
                timeout.as_secs(),
                path.display()
            ));
        }
    };
    let lock = RunLock::acquire(&paths.credentials, timeout, &mut on_wait)?;
    for stale in lock.remove_stale_temp_files(paths) {
        ui.note(&format!(
            "removed a temporary file left by an interrupted save: {}",
            stale.display()
        ));
    }
    Ok(lock)
}

/// A journal found, for the user: what it records, or why it cannot be read.
pub(crate) fn describe_entry(entry: &Entry) -> String {
    match &entry.journal {
        Ok(j) => format!("found an interrupted rotation: {}", describe_journal(j)),
        Err(e) => format!(
            "found a journal of key {} that cannot be used: {}",
            mask_key_id(&entry.old_key_id),
            chain(e)
        ),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Finish or undo each journal, in the files it names (not today's environment), under those
/// files' lock when they are not this run's. An unreadable journal is left alone and
/// reported; it never stops the others. One result per entry, in order: an error is the
/// message to show (the journal is kept).
pub(crate) async fn recover_entries<C: Connector>(
    entries: &[Entry],
    mode: Mode,
    settings: &Settings,
    mfa: &super::mfa::MfaArgs,
    connector: &C,
    options: &ExecOptions,
    ui: &Ui,
) -> Vec<Result<Recovered, String>> {
    let mut sessions = super::mfa::Sessions::default();
    let mut results = Vec::new();
    for entry in entries {
        let result = match &entry.journal {
            Ok(journal) => {
                recover_one(
                    entry,
                    journal,
                    mode,
                    settings,
                    mfa,
                    connector,
                    options,
                    ui,
                    &mut sessions,
                )
                .await
            }
            Err(e) => Err(format!("{}; nothing was done for this key", chain(e))),
        };
        results.push(result);
    }
    results
}

#[allow(clippy::too_many_arguments)]
async fn recover_one<C: Connector>(
    entry: &Entry,
    journal: &Journal,
    mode: Mode,
    settings: &Settings,
    mfa: &super::mfa::MfaArgs,
    connector: &C,
    options: &ExecOptions,
    ui: &Ui,
    sessions: &mut super::mfa::Sessions,
) -> Result<Recovered, String> {
    let paths = journal_paths(journal, &settings.paths);
    // This run holds the lock of its own credentials file; another file set needs its own.
    let _lock = if same_file(&paths.credentials, &settings.paths.credentials) {
        None
    } else {
        Some(acquire_lock(&paths, LOCK_TIMEOUT, ui).map_err(|e| e.to_string())?)
    };
    let files = RefCell::new(ProfileFiles::load(&paths).map_err(|e| {
        format!("cannot read the files this rotation worked on: {e}; the journal is kept")
    })?);
    let session = journal_session(journal, &files, settings, mfa, connector, ui, sessions).await?;
    let cancel = Cancel::default();
    let progress = |key: &str, step: Step| {
        if step != Step::Done {
            ui.progress(&format!("{}: {step}", mask_key_id(key)))
        }
    };
    let engine = Engine {
        connector,
        clock: &RealClock,
        files: &files,
        journal: &entry.store,
        options,
        cancel: &cancel,
        progress: &progress,
    };
    engine
        .recover(journal, mode, session.as_ref())
        .await
        .map_err(|e| {
            let advice = match &e {
                // These say what to do themselves.
                RecoverError::CannotUndo(_) | RecoverError::PlacesChanged { .. } => "",
                _ => "; the journal is kept, run `iam-keys recover` again once fixed",
            };
            format!("{e}{advice}")
        })
}

/// The same file, whether named through a symlink or not.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
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
