//! Interrupted rotations: describing the journals found, and finishing or undoing them, each
//! in the files it names. `recover` does this for every journal; `rotate` does it first.
//!
//! Must not: choose which journals to handle or in which mode; the commands do.

use super::ui::Ui;
use super::wiring::acquire_lock;
use crate::aws::Connector;
use crate::error::{Error, Outcome};
use crate::profiles::ProfileFiles;
use crate::rotation::journal::{Entry, Journal, JournalStore};
use crate::rotation::recover::{Mode, RecoverError, Recovered, journal_paths};
use crate::rotation::{Engine, ExecOptions};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use crate::time::{Cancel, RealClock};
use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

/// A journal found, for the user: what it records, or why it cannot be read.
pub fn describe_entry(entry: &Entry) -> String {
    match &entry.journal {
        Ok(j) => format!("found an interrupted rotation: {}", describe_journal(j)),
        Err(e) => format!(
            "found a journal of key {} that cannot be used: {}",
            mask_key_id(&entry.old_key_id),
            super::words::chain(e)
        ),
    }
}

/// What recovering needs besides the journals: this run's settings, MFA options, client,
/// engine options, terminal, Ctrl-C flag, and how long to wait for another file set's lock.
pub struct Recovery<'a, C> {
    pub settings: &'a Settings,
    pub mfa: &'a super::mfa::MfaArgs,
    pub connector: &'a C,
    pub options: &'a ExecOptions,
    pub ui: &'a Ui,
    pub cancel: &'a Cancel,
    pub lock_timeout: Duration,
}

impl<C: Connector> Recovery<'_, C> {
    /// `rotate`'s first step: finish the interrupted rotations it finds (a dry run only says
    /// so), after `confirm`; then reload `files`.
    pub async fn before_rotating(
        &self,
        journals: &JournalStore,
        files: &RefCell<ProfileFiles>,
        dry_run: bool,
        confirm: impl FnOnce() -> Result<(), Error>,
    ) -> Result<Pending, Error> {
        let (settings, ui) = (self.settings, self.ui);
        let mut outcome = Outcome::Success;
        let pending = journals.list()?;
        let mut recovered = Vec::new();
        let mut blocked: Vec<(String, String)> = Vec::new();
        if !pending.is_empty() {
            for entry in &pending {
                ui.note(&describe_entry(entry));
            }
            if dry_run {
                ui.note("a real run finishes it first (or run `iam-keys recover`)");
                for entry in &pending {
                    blocked.push((
                        entry.old_key_id.clone(),
                        "an interrupted rotation of this key is recorded; a real run finishes it first"
                            .into(),
                    ));
                }
            } else {
                confirm()?;
                let results = self.run(&pending, Mode::Finish).await;
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
        Ok(Pending {
            outcome,
            recovered,
            blocked,
        })
    }

    /// Finish or undo each journal, in the files it names (not today's environment), under
    /// those files' lock when they are not this run's. An unreadable journal is left alone and
    /// reported; it never stops the others. One result per entry, in order: an error is the
    /// message to show (the journal is kept).
    pub async fn run(&self, entries: &[Entry], mode: Mode) -> Vec<Result<Recovered, String>> {
        let mut sessions = super::mfa::Sessions::default();
        let mut results = Vec::new();
        for entry in entries {
            let result = match &entry.journal {
                Ok(journal) => self.one(entry, journal, mode, &mut sessions).await,
                Err(e) => Err(format!(
                    "{}; nothing was done for this key",
                    super::words::chain(e)
                )),
            };
            results.push(result);
        }
        results
    }

    async fn one(
        &self,
        entry: &Entry,
        journal: &Journal,
        mode: Mode,
        sessions: &mut super::mfa::Sessions,
    ) -> Result<Recovered, String> {
        let (settings, ui) = (self.settings, self.ui);
        let paths = journal_paths(journal, &settings.paths);
        // This run holds the lock of its own credentials file; another file set needs its own.
        let _lock = if same_file(&paths.credentials, &settings.paths.credentials) {
            None
        } else {
            Some(acquire_lock(&paths, self.lock_timeout, ui).map_err(|e| e.to_string())?)
        };
        let files = RefCell::new(ProfileFiles::load(&paths).map_err(|e| {
            format!("cannot read the files this rotation worked on: {e}; the journal is kept")
        })?);
        let session = journal_session(
            journal,
            &files,
            settings,
            self.mfa,
            self.connector,
            ui,
            sessions,
        )
        .await?;
        let progress = super::wiring::step_lines(ui);
        let gates = crate::hooks::ProcessRunner::new(settings.env.vars());
        let engine = Engine {
            connector: self.connector,
            clock: &RealClock,
            files: &files,
            journal: &entry.store,
            options: self.options,
            cancel: self.cancel,
            progress: &progress,
            gates: &gates,
        };
        engine
            .recover(journal, mode, session.as_ref())
            .await
            .map_err(|e| {
                let advice = match &e {
                    // These say what to do themselves.
                    RecoverError::CannotUndo(_)
                    | RecoverError::PlacesChanged { .. }
                    | RecoverError::Gates(_) => "",
                    _ => "; the journal is kept, run `iam-keys recover` again once fixed",
                };
                format!("{e}{advice}")
            })
    }
}

/// What finishing the interrupted rotations left: the run's outcome so far, what was
/// recovered (in words, for the JSON document), and the keys that wait on a journal (with
/// why).
pub struct Pending {
    pub outcome: Outcome,
    pub recovered: Vec<String>,
    pub blocked: Vec<(String, String)>,
}

/// Why a key is not rotated when its journal could not be used or finished.
fn text_of_pending(entry: &crate::rotation::journal::Entry) -> String {
    format!(
        "an interrupted rotation of this key is recorded in {} and is not finished; nothing was changed. \
         Run `iam-keys recover` (or `iam-keys recover --undo`) first",
        entry.path.display()
    )
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
pub async fn journal_session<C: crate::aws::Connector>(
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
    let target = match base {
        // A session written by another tool is used as it is.
        Some(base) if base_is_session => return Ok(Some(base.credentials)),
        Some(base) => base,
        None if serial.is_none() => return Ok(None),
        None => j.endpoint.target(crate::aws::Credentials::long_term(
            j.old_key_id.clone(),
            j.old_secret.clone(),
        )),
    };
    let (session, _) =
        super::mfa::session_for(&target, serial, false, false, mfa, connector, ui, sessions)
            .await
            .map_err(|e| e.explain(ToString::to_string))?;
    Ok(Some(session.unwrap_or(target.credentials)))
}

/// A journal's rotation, in one line.
pub fn describe_journal(j: &Journal) -> String {
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
    ) + &pending_gates(j)
}

/// `; still to run: hook `…`, env file …` for a journal whose hooks have not all passed.
fn pending_gates(j: &Journal) -> String {
    let pending: Vec<String> = j
        .gates
        .iter()
        .filter(|g| !g.passed)
        .map(|g| super::words::describe_gate(&g.gate))
        .collect();
    if pending.is_empty() {
        String::new()
    } else {
        format!("; still to run: {}", pending.join(", "))
    }
}

/// What recovering a journal did, in one line.
pub fn describe_recovered(j: &Journal, r: &Recovered) -> String {
    match r {
        Recovered::Finished {
            new_key_id, retire, ..
        } => format!(
            "finished: {} -> {} (profiles {}); old key {}",
            mask_key_id(&j.old_key_id),
            mask_key_id(new_key_id),
            j.profiles.join(", "),
            super::words::retire_word(*retire)
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
