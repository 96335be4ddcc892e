//! Finishing or undoing a rotation that was interrupted, from its journal.
//!
//! | stage left | finish | undo |
//! | --- | --- | --- |
//! | intent | (nothing to finish) | the key a lost CreateAccessKey answer made, if one fits the call's window and no one knows it |
//! | created, verified | verify the new key, write it to the files, retire the old key | delete the new key |
//! | persisted | run the hooks and env files that have not passed, retire the old key | put the old key back in the files, delete the new key (refused once a hook or env file took the new key) |
//!
//! Recovery trusts the journal, not today's environment: the engine works on the files the
//! journal names ([`journal_paths`]). The old key is retired only once the new key is
//! verified and, re-read from disk, in every profile that held the old key, with no line of
//! either file naming the old key; otherwise the journal is kept and the error says why.
//! Keys recorded as orphans (made by a lost answer) are deleted, exactly those.
//!
//! A key meant to be printed (`--output env`) has no files: until the run marks it printed,
//! it is undone while the old key is Active, and handed back to be printed once it is not.
//!
//! Must not: touch a key that is neither the journal's old nor its new key, apart from the
//! key a lost CreateAccessKey answer made (see `Engine::reconcile_lost_create`).

use super::exec::{Cleanup, Engine, Failure};
use super::hooks::Gate;
use super::journal::{Destination, Journal, Stage};
use super::plan::{KeyPlan, Retire};
use crate::aws::{AwsError, Connector, Credentials, Iam, KeyStatus, Signer};
use crate::profiles::scan::Mention;
use crate::profiles::{FilePaths, KeyEdit, ProfileError, SaveOptions};
use crate::secret::Secret;
use crate::time::Clock;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Finish,
    Undo,
}

/// What recovery did.
#[derive(Debug)]
pub enum Recovered {
    /// The new key is in the files and the old key is retired.
    Finished {
        new_key_id: String,
        new_secret: Secret,
        retire: Retire,
    },
    /// The old key is in the files and the keys created by the rotation are deleted.
    Undone { deleted: Vec<String> },
    /// A key meant to be printed (`--output env`) never was, and the old key is already
    /// retired: nothing can be undone, and the kept journal holds the only copy of the new
    /// secret. The caller prints it, then [`JournalStore::mark_printed`] removes the journal.
    ///
    /// [`JournalStore::mark_printed`]: super::journal::JournalStore::mark_printed
    Unprinted {
        new_key_id: String,
        new_secret: Secret,
    },
}

/// Why an undo cannot be done: the way out is to finish instead.
#[derive(Debug, PartialEq, Eq)]
pub enum CannotUndo {
    /// The old key is Inactive, or deleted (`status` is `None`).
    OldKeyRetired {
        old_key_id: String,
        status: Option<KeyStatus>,
    },
    /// The new key was written into a profile that never held the old key's secret.
    OldSecretUnknown {
        new_key_id: String,
        profiles: Vec<String>,
    },
    /// Hooks or env files already took the new key: undoing would delete the key they hold.
    GatesTookNewKey {
        gates: Vec<Gate>,
        new_key_id: String,
    },
}

#[derive(Debug)]
pub enum RecoverError {
    Aws {
        error: AwsError,
        signer: Signer,
    },
    Files(Box<ProfileError>),
    Verify(Box<Failure>),
    /// Undo asked for, but it cannot be done any more.
    CannotUndo(CannotUndo),
    /// A key the journal does not know could not be deleted.
    Cleanup(Cleanup),
    /// Profiles that held the old key hold neither key now (edited or removed since the
    /// rotation started, or the journal's files are not there): the new key would reach no
    /// one, so the old key is not retired.
    PlacesChanged {
        profiles: Vec<String>,
        paths: Vec<PathBuf>,
        /// Refused while undoing (the way out is then to finish, and the other way round).
        undo: bool,
    },
    /// Lines of the files still name a key that is about to be retired or deleted.
    StillHeld(Vec<Mention>),
    /// Hooks or env files that still did not take the new key ([`Failure::Gates`]): the old
    /// key stays Active and the journal records which passed.
    Gates(Box<Failure>),
}

fn plan_of(journal: &Journal) -> KeyPlan {
    KeyPlan {
        user: journal.user.clone(),
        account: journal.account.clone(),
        arn: journal.arn.clone(),
        old_key_id: journal.old_key_id.clone(),
        old_created: None,
        delete_first: None,
        retire: journal.retire,
        known_keys: journal.known_keys.clone(),
    }
}

/// The files a journal's rotation worked on: the paths it recorded (version 2), else
/// `current` (a version 1 journal recorded none).
pub fn journal_paths(journal: &Journal, current: &FilePaths) -> FilePaths {
    match &journal.paths {
        Some(p) => FilePaths {
            credentials: p.credentials.clone(),
            config: p.config.clone(),
        },
        None => current.clone(),
    }
}

impl<C: Connector, K: Clock> Engine<'_, C, K> {
    /// Finish or undo the rotation a journal describes; the journal is removed when done.
    /// `session` is an MFA session for IAM calls when the account needs one. The engine's
    /// files must be the journal's own ([`journal_paths`]), and its store the journal's
    /// directory.
    pub async fn recover(
        &self,
        journal: &Journal,
        mode: Mode,
        session: Option<&Credentials>,
    ) -> Result<Recovered, RecoverError> {
        let mut journal = journal.clone();
        let plan = plan_of(&journal);
        let old = Credentials::long_term(journal.old_key_id.clone(), journal.old_secret.clone());
        let iam_as_old = self
            .connector
            .connect(&journal.endpoint.target(session.cloned().unwrap_or(old)));
        let old_signer = Signer::of(session.is_some(), Signer::OldKey);
        let aws = |signer| move |error| RecoverError::Aws { error, signer };

        // Keys made by lost CreateAccessKey answers, recorded before their deletion: exactly
        // these are deleted, whatever the mode.
        let mut deleted = Vec::new();
        for orphan in journal.orphans.clone() {
            if let Err(error) = self
                .delete_key_of(&iam_as_old, &journal.user, &orphan)
                .await
            {
                return Err(RecoverError::Cleanup(Cleanup::NewKeyLeft {
                    key_id: orphan,
                    error: Some(error),
                }));
            }
            deleted.push(orphan);
        }

        let (Some(new_id), Some(new_secret)) =
            (journal.new_key_id.clone(), journal.new_secret.clone())
        else {
            // No new key is known. A version 2 journal without a create window never sent
            // CreateAccessKey; otherwise its answer may have been lost: look for the key.
            if journal.version >= 2 && journal.create_window.is_none() {
                return self.done(&journal, Recovered::Undone { deleted });
            }
            return match self
                .reconcile_lost_create(&iam_as_old, &mut journal, true)
                .await
            {
                Cleanup::NewKeyLeft { key_id, error } => {
                    Err(RecoverError::Cleanup(Cleanup::NewKeyLeft { key_id, error }))
                }
                unresolved @ Cleanup::Unresolved { .. } => Err(RecoverError::Cleanup(unresolved)),
                Cleanup::LostKeyDeleted(id) | Cleanup::NewKeyDeleted(id) => {
                    deleted.push(id);
                    self.done(&journal, Recovered::Undone { deleted })
                }
                Cleanup::NothingCreated => self.done(&journal, Recovered::Undone { deleted }),
            };
        };
        let list_keys = async || {
            iam_as_old
                .list_access_keys(&journal.user)
                .await
                .map_err(aws(old_signer))
        };
        let new_credentials = Credentials::long_term(new_id.clone(), new_secret.clone());
        let as_new = self
            .connector
            .connect(&journal.endpoint.target(new_credentials));
        let files_have_new = !self.files.borrow().profiles_with_key(&new_id).is_empty();
        let files_have_old = !self
            .files
            .borrow()
            .profiles_with_key(&journal.old_key_id)
            .is_empty();

        // A key meant to be printed that never was reached no one: undo while the old key is
        // Active. Once the old key is retired, the journal holds the only working key: it
        // must be printed, not deleted.
        let mode = if journal.destination == Destination::Printed && !journal.printed {
            let keys = list_keys().await?;
            let old_active = keys
                .iter()
                .any(|k| k.id == journal.old_key_id && k.status == KeyStatus::Active);
            let new_exists = keys.iter().any(|k| k.id == new_id);
            if !old_active && new_exists {
                return Ok(Recovered::Unprinted {
                    new_key_id: new_id,
                    new_secret,
                });
            }
            Mode::Undo
        } else {
            mode
        };
        let writes_profile = matches!(journal.destination, Destination::Profile(_));
        match mode {
            Mode::Finish => {
                // Before the files were written, the failed run's own cleanup may have
                // deleted the new key. A list that does not show it proves nothing (IAM's
                // lists lag a create): such a key is verified like any other, and if it does
                // not work, deleted (exactly it), never abandoned with its secret.
                let listed = files_have_new || list_keys().await?.iter().any(|k| k.id == new_id);
                // Every place that held the old key must still hold the old or the new one;
                // otherwise the new key would be written nowhere.
                if journal.destination == Destination::Holders {
                    self.places_unchanged(&journal, &new_id, false)?;
                }
                let to_profile = writes_profile && !files_have_new;
                if journal.stage < Stage::Persisted || files_have_old || to_profile {
                    let verified = self
                        .verify(
                            &as_new,
                            &journal.account,
                            &journal.user,
                            &journal.old_key_id,
                        )
                        .await;
                    match verified {
                        Ok(()) => {}
                        Err(_) if !listed => {
                            self.delete_key_of(&iam_as_old, &journal.user, &new_id)
                                .await
                                .map_err(aws(old_signer))?;
                            deleted.push(new_id);
                            return self.done(&journal, Recovered::Undone { deleted });
                        }
                        Err(f) => return Err(RecoverError::Verify(Box::new(f))),
                    }
                    if files_have_old || to_profile {
                        self.persist_to(&journal.destination, &plan, &new_id, &new_secret)
                            .map_err(|e| RecoverError::Files(Box::new(e)))?;
                    }
                }
                // Re-read from disk: the new key is in every place, no line names the old one.
                if journal.destination != Destination::Printed {
                    self.reload()
                        .map_err(|e| RecoverError::Files(Box::new(e)))?;
                    if journal.destination == Destination::Holders {
                        self.places_unchanged(&journal, &new_id, false)?;
                    }
                    self.nothing_holds(&journal.old_key_id)
                        .map_err(still_held)?;
                }
                // Hooks and env files that have not passed run now (only those), then retire.
                if journal.gates.iter().any(|g| !g.passed) {
                    self.run_gates(&mut journal, &new_id, &new_secret)
                        .await
                        .map_err(|f| RecoverError::Gates(Box::new(f)))?;
                }
                let retire_client = if session.is_some() {
                    &iam_as_old
                } else {
                    &as_new
                };
                self.retire(
                    retire_client,
                    &journal.user,
                    &journal.old_key_id,
                    journal.retire,
                )
                .await
                .map_err(aws(Signer::NewKey))?;
                self.note_retired(
                    &journal.user,
                    &journal.account,
                    &journal.old_key_id,
                    journal.retire,
                );
                self.done(
                    &journal,
                    Recovered::Finished {
                        new_key_id: new_id,
                        new_secret,
                        retire: journal.retire,
                    },
                )
            }
            Mode::Undo => {
                // The old key must still be usable: Active and listed.
                let keys = list_keys().await?;
                match keys.iter().find(|k| k.id == journal.old_key_id) {
                    Some(k) if k.status == KeyStatus::Active => {}
                    Some(k) => {
                        return Err(RecoverError::CannotUndo(CannotUndo::OldKeyRetired {
                            old_key_id: journal.old_key_id.clone(),
                            status: Some(k.status.clone()),
                        }));
                    }
                    None => {
                        return Err(RecoverError::CannotUndo(CannotUndo::OldKeyRetired {
                            old_key_id: journal.old_key_id.clone(),
                            status: None,
                        }));
                    }
                }
                // A hook or env file that already took the new key would be left with a deleted
                // key: the way out is to finish.
                let passed: Vec<Gate> = journal
                    .gates
                    .iter()
                    .filter(|g| g.passed)
                    .map(|g| g.gate.clone())
                    .collect();
                if !passed.is_empty() {
                    return Err(RecoverError::CannotUndo(CannotUndo::GatesTookNewKey {
                        gates: passed,
                        new_key_id: new_id.clone(),
                    }));
                }
                // Every place that held the old key must hold the old or the new one: a place
                // the user emptied would be left with neither once the new key is gone.
                if journal.destination == Destination::Holders {
                    self.places_unchanged(&journal, &new_id, true)?;
                }
                if files_have_new && writes_profile {
                    return Err(RecoverError::CannotUndo(CannotUndo::OldSecretUnknown {
                        new_key_id: new_id.clone(),
                        profiles: journal.profiles.clone(),
                    }));
                }
                if files_have_new {
                    let edit = KeyEdit::Replace {
                        old_key_id: new_id.clone(),
                        new_key_id: journal.old_key_id.clone(),
                        new_secret: journal.old_secret.clone(),
                    };
                    self.files
                        .borrow_mut()
                        .apply_edits(
                            &[edit],
                            &SaveOptions {
                                backup: self.options.save.backup,
                            },
                        )
                        .map_err(|e| RecoverError::Files(Box::new(e)))?;
                }
                // Exactly the new key goes, and only once no line names it. It is deleted
                // even when the list does not show it (lists lag; a key already gone answers
                // NoSuchEntity, which is done).
                self.nothing_holds(&new_id).map_err(still_held)?;
                self.delete_key_of(&iam_as_old, &journal.user, &new_id)
                    .await
                    .map_err(aws(old_signer))?;
                if keys.iter().any(|k| k.id == new_id) {
                    deleted.push(new_id);
                }
                self.done(&journal, Recovered::Undone { deleted })
            }
        }
    }

    /// The journal's profiles (`Holders`) each hold the old or the new key in the files as
    /// loaded.
    fn places_unchanged(
        &self,
        journal: &Journal,
        new_id: &str,
        undo: bool,
    ) -> Result<(), RecoverError> {
        let files = self.files.borrow();
        let holding = |id: &str| files.holder_names(id);
        let (old, new) = (holding(&journal.old_key_id), holding(new_id));
        let gone: Vec<String> = journal
            .profiles
            .iter()
            .filter(|p| !old.contains(p) && !new.contains(p))
            .cloned()
            .collect();
        if gone.is_empty() {
            Ok(())
        } else {
            let p = files.paths();
            Err(RecoverError::PlacesChanged {
                profiles: gone,
                paths: vec![p.credentials.clone(), p.config.clone()],
                undo,
            })
        }
    }

    fn done(&self, journal: &Journal, result: Recovered) -> Result<Recovered, RecoverError> {
        if let Err(e) = self.journal.remove(&journal.old_key_id) {
            tracing::warn!(error = %e, "could not remove the finished journal");
        }
        Ok(result)
    }
}

fn still_held(failure: Failure) -> RecoverError {
    match failure {
        Failure::StillHeld(places) => RecoverError::StillHeld(places),
        other => RecoverError::Verify(Box::new(other)),
    }
}
