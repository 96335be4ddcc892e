//! Finishing or undoing a rotation that was interrupted, from its journal.
//!
//! | stage left | finish | undo |
//! | --- | --- | --- |
//! | intent | (nothing to finish) | delete any key of the user created since, held by no file |
//! | created, verified | verify the new key, write it to the files, retire the old key | delete the new key |
//! | persisted | retire the old key | put the old key back in the files, delete the new key |
//!
//! A key meant to be printed (`--output env`) has no files: until the run marks it printed,
//! it is undone while the old key is Active, and handed back to be printed once it is not.
//!
//! Must not: touch a key that is neither the journal's old nor its new key, apart from a key
//! created after the journal's start that no file holds (the lost answer of CreateAccessKey).

use super::clock::Clock;
use super::exec::{Cleanup, Engine, Failure};
use super::journal::{Destination, Journal, Stage};
use super::plan::{KeyPlan, Retire};
use crate::aws::{AwsError, Connector, Credentials, Iam, KeyStatus, Target};
use crate::cli::advice::Signer;
use crate::profiles::{KeyEdit, ProfileError, SaveOptions};
use crate::secret::{Secret, mask_key_id};
use std::fmt;

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

#[derive(Debug)]
pub enum RecoverError {
    Aws {
        error: AwsError,
        signer: Signer,
    },
    Files(Box<ProfileError>),
    Verify(Box<Failure>),
    /// Undo asked for, but the old key is already retired.
    CannotUndo(String),
    /// A key the journal does not know could not be deleted.
    Cleanup(Cleanup),
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Aws { error, .. } => write!(f, "{error}"),
            RecoverError::Files(e) => super::exec::write_with_causes(f, e.as_ref()),
            RecoverError::Verify(e) => write!(f, "{e}"),
            RecoverError::CannotUndo(why) => write!(f, "{why}"),
            RecoverError::Cleanup(c) => write!(f, "could not clean up: {c:?}"),
        }
    }
}

fn target(journal: &Journal, credentials: Credentials) -> Target {
    Target {
        credentials,
        region: journal.endpoint.region.clone(),
        iam_endpoint: journal.endpoint.iam_endpoint.clone(),
        sts_endpoint: journal.endpoint.sts_endpoint.clone(),
    }
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

impl<C: Connector, K: Clock> Engine<'_, C, K> {
    /// Finish or undo the rotation a journal describes; the journal is removed when done.
    /// `session` is an MFA session for IAM calls when the account needs one.
    pub async fn recover(
        &self,
        journal: &Journal,
        mode: Mode,
        session: Option<&Credentials>,
    ) -> Result<Recovered, RecoverError> {
        let plan = plan_of(journal);
        let old = Credentials::long_term(journal.old_key_id.clone(), journal.old_secret.clone());
        let iam_as_old = self
            .connector
            .connect(&target(journal, session.cloned().unwrap_or(old)));
        let old_signer = if session.is_some() {
            Signer::MfaSession
        } else {
            Signer::OldKey
        };
        // The user's keys as IAM lists them now, with the credentials of the IAM calls.
        let list_keys = async || {
            iam_as_old
                .list_access_keys(&journal.user)
                .await
                .map_err(|error| RecoverError::Aws {
                    error,
                    signer: old_signer,
                })
        };
        let (Some(new_id), Some(new_secret)) =
            (journal.new_key_id.clone(), journal.new_secret.clone())
        else {
            // Intent: no new key is known; one may exist if CreateAccessKey's answer was lost.
            return match self.delete_unknown_keys(&iam_as_old, &plan).await {
                Cleanup::NewKeyLeft {
                    error: Some(error), ..
                } => Err(RecoverError::Aws {
                    error,
                    signer: old_signer,
                }),
                left @ Cleanup::NewKeyLeft { .. } => Err(RecoverError::Cleanup(left)),
                Cleanup::NewKeyDeleted(id) => {
                    self.done(journal, Recovered::Undone { deleted: vec![id] })
                }
                Cleanup::NothingCreated => {
                    self.done(journal, Recovered::Undone { deleted: vec![] })
                }
            };
        };
        let new_credentials = Credentials::long_term(new_id.clone(), new_secret.clone());
        let as_new = self.connector.connect(&target(journal, new_credentials));
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
                if !files_have_new {
                    // Before the files were written, the new key may already have been
                    // deleted by the failed run's own cleanup: then there is nothing to finish.
                    let keys = list_keys().await?;
                    if !keys.iter().any(|k| k.id == new_id) {
                        return self.done(journal, Recovered::Undone { deleted: vec![] });
                    }
                }
                let to_profile = writes_profile && !files_have_new;
                if journal.stage < Stage::Persisted || files_have_old || to_profile {
                    self.verify(
                        &as_new,
                        &journal.account,
                        &journal.user,
                        &journal.old_key_id,
                    )
                    .await
                    .map_err(|f| RecoverError::Verify(Box::new(f)))?;
                    if files_have_old || to_profile {
                        self.persist_to(&journal.destination, &plan, &new_id, &new_secret)
                            .map_err(|e| RecoverError::Files(Box::new(e)))?;
                    }
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
                .map_err(|error| RecoverError::Aws {
                    error,
                    signer: Signer::NewKey,
                })?;
                self.done(
                    journal,
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
                        return Err(RecoverError::CannotUndo(format!(
                            "the old key {} is already {}; finish the rotation instead (`iam-keys recover`)",
                            mask_key_id(&journal.old_key_id),
                            k.status
                        )));
                    }
                    None => {
                        return Err(RecoverError::CannotUndo(format!(
                            "the old key {} is already deleted; finish the rotation instead (`iam-keys recover`)",
                            mask_key_id(&journal.old_key_id)
                        )));
                    }
                }
                if files_have_new && writes_profile {
                    return Err(RecoverError::CannotUndo(format!(
                        "the new key {} is already in profile {}, and the old key's secret was never on this \
                         machine to put back; finish the rotation instead (`iam-keys recover`)",
                        mask_key_id(&new_id),
                        journal.profiles.join(", ")
                    )));
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
                match self.delete_unknown_keys(&iam_as_old, &plan).await {
                    Cleanup::NewKeyLeft {
                        error: Some(error), ..
                    } => Err(RecoverError::Aws {
                        error,
                        signer: old_signer,
                    }),
                    left @ Cleanup::NewKeyLeft { .. } => Err(RecoverError::Cleanup(left)),
                    _ => {
                        let deleted = keys
                            .iter()
                            .filter(|k| !journal.known_keys.contains(&k.id))
                            .map(|k| k.id.clone())
                            .collect();
                        self.done(journal, Recovered::Undone { deleted })
                    }
                }
            }
        }
    }

    fn done(&self, journal: &Journal, result: Recovered) -> Result<Recovered, RecoverError> {
        if let Err(e) = self.journal.remove(&journal.old_key_id) {
            tracing::warn!(error = %e, "could not remove the finished journal");
        }
        Ok(result)
    }
}
