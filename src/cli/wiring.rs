//! What `rotate` and `recover` both set up around the engine: the run lock, the journal
//! store, the confirmation, the progress lines and Ctrl-C.
//!
//! Must not: decide what to rotate or recover; the commands do.

use super::ui::Ui;
use crate::error::Error;
use crate::profiles::{FilePaths, RunLock};
use crate::rotation::Step;
use crate::rotation::journal::JournalStore;
use crate::secret::mask_key_id;
use crate::settings::Settings;
use crate::time::Cancel;
use std::future::Future;
use std::path::Path;

/// The journals of this run: beside the credentials file, and every other one the per-user
/// index knows.
pub fn journal_store(settings: &Settings) -> JournalStore {
    JournalStore::beside(&settings.paths.credentials).with_index(settings.state_dir.as_deref())
}

/// The run lock of a pair of files (beside the credentials file), saying once that it waits
/// for another run; then our own temporary files that an interrupted save left are removed.
pub fn acquire_lock(
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

/// The two profile files, read once, with what the user should know about them said on
/// stderr (sections the SDKs read differently, and the like).
pub fn load_files(settings: &Settings, ui: &Ui) -> Result<crate::profiles::ProfileFiles, Error> {
    let files = crate::profiles::ProfileFiles::load(&settings.paths)?;
    for warning in files.warnings() {
        ui.warn(&warning.to_string());
    }
    Ok(files)
}

/// Ask before changing anything, unless `--yes`. Without a terminal to ask on, refuse with
/// `no_terminal` (which says what to pass instead).
pub fn confirm(yes: bool, ui: &Ui, question: &str, no_terminal: &str) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !ui.is_interactive() {
        return Err(Error::Usage(no_terminal.into()));
    }
    if ui.confirm(question) {
        Ok(())
    } else {
        Err(Error::Usage("cancelled; nothing was changed".into()))
    }
}

/// The progress line of each step, with the key masked (`-v`).
pub fn step_lines(ui: &Ui) -> impl Fn(&str, Step) + '_ {
    move |key: &str, step: Step| {
        if step != Step::Done {
            ui.progress(&format!("{}: {step}", mask_key_id(key)));
        }
    }
}

/// Run `work` with Ctrl-C watched: see [`watch_ctrl_c`].
pub async fn with_ctrl_c<T>(cancel: &Cancel, ui: &Ui, work: impl Future<Output = T>) -> T {
    tokio::select! {
        result = work => result,
        _ = watch_ctrl_c(cancel, ui) => unreachable!("the Ctrl-C watcher never ends"),
    }
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
