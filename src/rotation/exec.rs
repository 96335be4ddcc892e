//! The state machine that carries out a [`KeyPlan`]: intent → (make room) → create → verify
//! → persist → retire → done, with the failure branch of every step (see the table in the
//! README). Distinct keys run concurrently on one thread; file edits go through the one
//! `RefCell<ProfileFiles>` and never across an `.await`, so there is a single writer.
//!
//! Must not: print (progress goes to the `progress` callback), or retire an old key before
//! the new key has authenticated repeatedly and is saved in every file that held the old one.

use super::clock::{Backoff, Cancel, Clock};
use super::journal::{Destination, Endpoint, Journal, JournalError, JournalStore, Stage, VERSION};
use super::plan::{KeyPlan, Retire};
use crate::aws::{AwsError, Connector, Credentials, ErrorKind, Iam, KeyStatus, Target};
use crate::cli::advice::Signer;
use crate::profiles::{KeyEdit, ProfileError, ProfileFiles, SaveOptions, SaveReport};
use crate::secret::{Secret, mask_key_id};
use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Tunables of the protocol.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// How long the new key may take to work before the rotation is undone.
    pub verify_timeout: Duration,
    /// Consecutive successful calls with the new key before it counts as working.
    pub verify_successes: u32,
    /// Pause between those successful calls (IAM propagates unevenly).
    pub success_gap: Duration,
    pub backoff_initial: Duration,
    pub backoff_max_step: Duration,
    pub save: SaveOptions,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            verify_timeout: Duration::from_secs(60),
            verify_successes: 3,
            success_gap: Duration::from_millis(500),
            backoff_initial: Duration::from_secs(1),
            backoff_max_step: Duration::from_secs(8),
            save: SaveOptions { backup: true },
        }
    }
}

/// The steps, for progress lines and failure reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Journal,
    MakeRoom,
    Create,
    Verify,
    WaitForIam,
    Persist,
    Retire,
    Done,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Journal => "writing the recovery journal",
            Step::MakeRoom => "deleting the Inactive second key",
            Step::Create => "creating the new key",
            Step::Verify => "verifying the new key",
            Step::WaitForIam => "waiting for IAM to accept the new key",
            Step::Persist => "writing the files",
            Step::Retire => "retiring the old key",
            Step::Done => "done",
        })
    }
}

/// Why a step failed.
#[derive(Debug)]
pub enum Failure {
    Aws {
        error: AwsError,
        signer: Signer,
    },
    Files(ProfileError),
    Journal(JournalError),
    /// The new key did not work within the verify timeout.
    VerifyTimeout {
        waited: Duration,
        last: Option<AwsError>,
    },
    /// The new key authenticated as someone else (never expected; refused).
    WrongIdentity {
        arn: String,
    },
    /// Ctrl-C.
    Interrupted,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Aws { error, .. } => write!(f, "{error}"),
            // These are the end of the line (shown as one message, not as an error chain):
            // say why, too (`No space left on device`, `Operation not permitted`).
            Failure::Files(e) => write_with_causes(f, e),
            Failure::Journal(e) => write_with_causes(f, e),
            Failure::VerifyTimeout { waited, last } => {
                write!(f, "the new key did not work within {}s", waited.as_secs())?;
                if let Some(e) = last {
                    write!(f, " (last answer: {e})")?;
                }
                write!(
                    f,
                    "; IAM may be slow today: try again later or raise --verify-timeout"
                )
            }
            Failure::WrongIdentity { arn } => write!(
                f,
                "the new key authenticates as {arn}, not as the key's user"
            ),
            Failure::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// `error`, then each of its sources, as `error (cause: source: source)`.
pub(super) fn write_with_causes(
    f: &mut fmt::Formatter<'_>,
    error: &dyn std::error::Error,
) -> fmt::Result {
    write!(f, "{error}")?;
    let mut source = error.source();
    let mut first = true;
    while let Some(cause) = source {
        write!(f, "{}{cause}", if first { " (cause: " } else { ": " })?;
        first = false;
        source = cause.source();
    }
    if !first {
        write!(f, ")")?;
    }
    Ok(())
}

/// What happened to a new key after a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// No key was created.
    NothingCreated,
    /// The key created by this run was deleted again.
    NewKeyDeleted(String),
    /// The created key could not be deleted: it is in the journal; `recover` deletes it.
    NewKeyLeft {
        key_id: String,
        error: Option<AwsError>,
    },
}

/// How one key's rotation ended.
#[derive(Debug)]
pub enum KeyOutcome {
    /// New key in every file, old key retired.
    Rotated {
        new_key_id: String,
        new_secret: Secret,
        retire: Retire,
        deleted_inactive: Option<String>,
        saved: SaveReport,
    },
    /// Nothing changed for this key (apart from a deleted Inactive key, if it was asked for).
    Failed {
        step: Step,
        failure: Failure,
        cleanup: Cleanup,
        deleted_inactive: Option<String>,
    },
    /// The new key is in the files, but the old key is still Active (exit 3; the journal
    /// is kept so `recover` or the next `rotate` finishes it).
    Partial {
        new_key_id: String,
        new_secret: Secret,
        failure: Failure,
        deleted_inactive: Option<String>,
    },
    /// The files could be neither finished nor restored: both keys are Active and some
    /// files hold the new one. The journal is kept; `recover` finishes it.
    Stuck {
        new_key_id: String,
        new_secret: Secret,
        failure: Failure,
        restore_error: ProfileError,
    },
}

impl KeyOutcome {
    /// What the save did to the files that the user should be told, beyond the key change:
    /// a mode tightened to 0600, an edit made meanwhile by another program that the new key
    /// was written into. Carries no secret.
    pub fn save_notes(&self) -> Vec<String> {
        let KeyOutcome::Rotated { saved, .. } = self else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        for file in &saved.files {
            if let Some((from, to)) = file.mode_tightened {
                notes.push(format!(
                    "{} {}: mode tightened from {from:04o} to {to:04o}, as it holds secret keys",
                    file.kind,
                    file.path.display()
                ));
            }
            if file.reapplied_on_newer_content {
                notes.push(format!(
                    "{} {} was changed by another program during the rotation; the new key was written into its newer content",
                    file.kind,
                    file.path.display()
                ));
            }
        }
        notes
    }
}

/// One key to rotate.
pub struct Job<'a> {
    pub plan: &'a KeyPlan,
    /// The old key, with where to call.
    pub target: &'a Target,
    pub holders: &'a [String],
    /// An MFA session for the IAM calls, when the account requires MFA.
    pub session: Option<&'a Credentials>,
    pub mfa_serial: Option<&'a str>,
    /// Where the new key goes: the old key's holders, a named profile, or only printed.
    pub destination: &'a Destination,
    /// The profile whose credentials are `session` (`--auth-profile`), for the journal.
    pub auth_profile: Option<&'a str>,
}

/// Everything a rotation needs from outside, injected.
pub struct Engine<'a, C: Connector, K: Clock> {
    pub connector: &'a C,
    pub clock: &'a K,
    pub files: &'a RefCell<ProfileFiles>,
    pub journal: &'a JournalStore,
    pub options: &'a ExecOptions,
    pub cancel: &'a Cancel,
    pub progress: &'a dyn Fn(&str, Step),
}

fn with_credentials(target: &Target, credentials: Credentials) -> Target {
    Target {
        credentials,
        ..target.clone()
    }
}

impl<C: Connector, K: Clock> Engine<'_, C, K> {
    fn journal_for(&self, job: &Job<'_>, started: &str) -> Journal {
        let files = self.files.borrow();
        let mut paths: Vec<PathBuf> = Vec::new();
        for holder in files.profiles_with_key(&job.plan.old_key_id) {
            for origin in holder.locations {
                let path = match origin.file {
                    crate::profiles::FileKind::Credentials => files.paths().credentials.clone(),
                    crate::profiles::FileKind::Config => files.paths().config.clone(),
                };
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        Journal {
            version: VERSION,
            stage: Stage::Intent,
            started: started.to_string(),
            user: job.plan.user.clone(),
            account: job.plan.account.clone(),
            arn: job.plan.arn.clone(),
            old_key_id: job.plan.old_key_id.clone(),
            old_secret: job.target.credentials.secret_access_key.clone(),
            known_keys: job.plan.known_keys.clone(),
            profiles: job.holders.to_vec(),
            files: paths,
            retire: job.plan.retire,
            deleted_inactive: None,
            new_key_id: None,
            new_secret: None,
            endpoint: Endpoint {
                region: job.target.region.clone(),
                iam_endpoint: job.target.iam_endpoint.clone(),
                sts_endpoint: job.target.sts_endpoint.clone(),
            },
            mfa_serial: job.mfa_serial.map(str::to_string),
            destination: job.destination.clone(),
            auth_profile: job.auth_profile.map(str::to_string),
            printed: false,
        }
    }

    fn step(&self, key: &str, step: Step) {
        (self.progress)(key, step)
    }

    /// Rotate one key, all branches included.
    pub async fn execute(&self, job: Job<'_>) -> KeyOutcome {
        let plan = job.plan;
        let key = plan.old_key_id.as_str();
        let iam_signer = if job.session.is_some() {
            Signer::MfaSession
        } else {
            Signer::OldKey
        };
        let iam = self.connector.connect(&match job.session {
            Some(session) => with_credentials(job.target, session.clone()),
            None => job.target.clone(),
        });
        let failed = |step, failure, cleanup, deleted_inactive| KeyOutcome::Failed {
            step,
            failure,
            cleanup,
            deleted_inactive,
        };

        // Intent: nothing changes before the journal is on disk.
        self.step(key, Step::Journal);
        let started = crate::cli::render::rfc3339(self.clock.now());
        let mut journal = self.journal_for(&job, &started);
        if let Err(e) = self.journal.start(&journal) {
            return failed(
                Step::Journal,
                Failure::Journal(e),
                Cleanup::NothingCreated,
                None,
            );
        }
        if self.cancel.is_set() {
            let _ = self.journal.remove(key);
            return failed(
                Step::Journal,
                Failure::Interrupted,
                Cleanup::NothingCreated,
                None,
            );
        }

        // Make room: only an Inactive key, only when asked (the plan says so).
        if let Some(inactive) = &plan.delete_first {
            self.step(key, Step::MakeRoom);
            if let Err(error) = iam.delete_access_key(&plan.user, inactive).await
                && error.kind != ErrorKind::NoSuchEntity
            {
                let _ = self.journal.remove(key);
                return failed(
                    Step::MakeRoom,
                    Failure::Aws {
                        error,
                        signer: iam_signer,
                    },
                    Cleanup::NothingCreated,
                    None,
                );
            }
            journal.deleted_inactive = Some(inactive.clone());
            journal.known_keys.retain(|k| k != inactive);
            if let Err(e) = self.journal.write(&journal) {
                return failed(
                    Step::MakeRoom,
                    Failure::Journal(e),
                    Cleanup::NothingCreated,
                    Some(inactive.clone()),
                );
            }
        }
        let deleted_inactive = journal.deleted_inactive.clone();

        // Create, and record the new key the moment it exists.
        self.step(key, Step::Create);
        let created = match iam.create_access_key(&plan.user).await {
            Ok(created) => created,
            Err(error) => {
                // A lost answer may still have created a key: find it and delete it.
                let cleanup = if error.kind.is_transient() {
                    self.delete_unknown_keys(&iam, plan).await
                } else {
                    Cleanup::NothingCreated
                };
                if !matches!(cleanup, Cleanup::NewKeyLeft { .. }) {
                    let _ = self.journal.remove(key);
                }
                return failed(
                    Step::Create,
                    Failure::Aws {
                        error,
                        signer: iam_signer,
                    },
                    cleanup,
                    deleted_inactive,
                );
            }
        };
        journal.stage = Stage::Created;
        journal.new_key_id = Some(created.id.clone());
        journal.new_secret = Some(created.secret.clone());
        if let Err(e) = self.journal.write(&journal) {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !matches!(cleanup, Cleanup::NewKeyLeft { .. }) {
                let _ = self.journal.remove(key);
            }
            return failed(Step::Create, Failure::Journal(e), cleanup, deleted_inactive);
        }

        // Verify: the new key must authenticate as the same user, several times.
        self.step(key, Step::Verify);
        let new_credentials = Credentials::long_term(created.id.clone(), created.secret.clone());
        let new_client = self
            .connector
            .connect(&with_credentials(job.target, new_credentials));
        if let Err(failure) = self
            .verify(&new_client, &plan.account, &plan.user, key)
            .await
        {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !matches!(cleanup, Cleanup::NewKeyLeft { .. }) {
                let _ = self.journal.remove(key);
            }
            return failed(Step::Verify, failure, cleanup, deleted_inactive);
        }
        journal.stage = Stage::Verified;
        if let Err(e) = self.journal.write(&journal) {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !matches!(cleanup, Cleanup::NewKeyLeft { .. }) {
                let _ = self.journal.remove(key);
            }
            return failed(Step::Verify, Failure::Journal(e), cleanup, deleted_inactive);
        }
        if self.cancel.is_set() {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !matches!(cleanup, Cleanup::NewKeyLeft { .. }) {
                let _ = self.journal.remove(key);
            }
            return failed(
                Step::Verify,
                Failure::Interrupted,
                cleanup,
                deleted_inactive,
            );
        }

        // Persist: every profile holding the old key, in both files, in one save per file.
        self.step(key, Step::Persist);
        let saved = match self.persist_to(job.destination, plan, &created.id, &created.secret) {
            Ok(saved) => saved,
            Err(error) => {
                return match self.restore_files(
                    plan,
                    &created.id,
                    &job.target.credentials.secret_access_key,
                ) {
                    Ok(()) => {
                        let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
                        if !matches!(cleanup, Cleanup::NewKeyLeft { .. }) {
                            let _ = self.journal.remove(key);
                        }
                        failed(
                            Step::Persist,
                            Failure::Files(error),
                            cleanup,
                            deleted_inactive,
                        )
                    }
                    Err(restore_error) => KeyOutcome::Stuck {
                        new_key_id: created.id.clone(),
                        new_secret: created.secret.clone(),
                        failure: Failure::Files(error),
                        restore_error,
                    },
                };
            }
        };
        journal.stage = Stage::Persisted;
        if let Err(e) = self.journal.write(&journal) {
            // The files hold a working new key; only the record of it failed. Carry on:
            // retiring the old key is what the user asked for, and the journal is removed
            // right after anyway.
            tracing::warn!(key = %mask_key_id(key), error = %e, "could not record the persisted stage");
        }

        // Retire the old key, signed with the new key (or the MFA session).
        self.step(key, Step::Retire);
        let retire_client = match job.session {
            Some(_) => &iam,
            None => &new_client,
        };
        match self
            .retire(retire_client, &plan.user, &plan.old_key_id, plan.retire)
            .await
        {
            Ok(()) => {
                // A key to be printed lives only in the journal until the caller has written
                // it out ([`JournalStore::mark_printed`]); the old key is retired, so it must survive.
                if *job.destination != Destination::Printed {
                    let _ = self.journal.remove(key);
                }
                self.step(key, Step::Done);
                KeyOutcome::Rotated {
                    new_key_id: created.id,
                    new_secret: created.secret,
                    retire: plan.retire,
                    deleted_inactive,
                    saved,
                }
            }
            Err(error) => KeyOutcome::Partial {
                new_key_id: created.id,
                new_secret: created.secret,
                failure: Failure::Aws {
                    error,
                    signer: if job.session.is_some() {
                        Signer::MfaSession
                    } else {
                        Signer::NewKey
                    },
                },
                deleted_inactive,
            },
        }
    }

    /// Call with the new key until it authenticates as `expected_arn` several times in a
    /// row, with bounded exponential backoff between failures.
    /// The user is compared by account and name, not by the whole ARN, so a user with an
    /// IAM path (`user/team/alice`) matches a plan that knows only `alice`.
    pub async fn verify(
        &self,
        client: &C::Client,
        account: &str,
        user: &str,
        key: &str,
    ) -> Result<(), Failure> {
        let start = self.clock.now();
        let mut backoff = Backoff::new(
            start,
            self.options.backoff_initial,
            self.options.backoff_max_step,
            self.options.verify_timeout,
        );
        let mut streak = 0;
        loop {
            if self.cancel.is_set() {
                return Err(Failure::Interrupted);
            }
            let rejection = match client.caller_identity().await {
                Ok(identity)
                    if identity.account == account
                        && identity.user_name().as_deref() == Some(user) =>
                {
                    streak += 1;
                    if streak >= self.options.verify_successes {
                        return Ok(());
                    }
                    self.cancel
                        .sleep(self.clock, self.options.success_gap)
                        .await;
                    continue;
                }
                Ok(identity) => return Err(Failure::WrongIdentity { arn: identity.arn }),
                Err(e) if e.kind.is_auth_failure() || e.kind.is_transient() => e,
                Err(error) => {
                    return Err(Failure::Aws {
                        error,
                        signer: Signer::NewKey,
                    });
                }
            };
            streak = 0;
            self.step(key, Step::WaitForIam);
            if !backoff.wait(self.clock, self.cancel).await {
                if self.cancel.is_set() {
                    return Err(Failure::Interrupted);
                }
                let waited = self.clock.now().duration_since(start).unsigned_abs();
                return Err(Failure::VerifyTimeout {
                    waited,
                    last: Some(rejection),
                });
            }
        }
    }

    /// Deactivate or delete the old key, retrying while IAM has not yet accepted the
    /// signer (propagation) or answers with a transient error. Ctrl-C does not stop it:
    /// this step is finished, within the verify timeout.
    pub async fn retire(
        &self,
        client: &C::Client,
        user: &str,
        old_key_id: &str,
        retire: Retire,
    ) -> Result<(), AwsError> {
        let never = Cancel::default();
        let mut backoff = Backoff::new(
            self.clock.now(),
            self.options.backoff_initial,
            self.options.backoff_max_step,
            self.options.verify_timeout,
        );
        loop {
            let result = match retire {
                Retire::Deactivate => {
                    client
                        .update_access_key(user, old_key_id, KeyStatus::Inactive)
                        .await
                }
                Retire::Delete => client.delete_access_key(user, old_key_id).await,
            };
            match result {
                Ok(()) => return Ok(()),
                // Already gone (an earlier attempt whose answer was lost): retired.
                Err(e) if e.kind == ErrorKind::NoSuchEntity => return Ok(()),
                Err(e) if e.kind.is_auth_failure() || e.kind.is_transient() => {
                    if !backoff.wait(self.clock, &never).await {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Write the new key into every profile holding the old one.
    pub fn persist(
        &self,
        plan: &KeyPlan,
        new_key_id: &str,
        new_secret: &Secret,
    ) -> Result<SaveReport, ProfileError> {
        self.persist_to(&Destination::Holders, plan, new_key_id, new_secret)
    }

    /// Write the new key where `destination` says (nothing to write when it is printed).
    pub fn persist_to(
        &self,
        destination: &Destination,
        plan: &KeyPlan,
        new_key_id: &str,
        new_secret: &Secret,
    ) -> Result<SaveReport, ProfileError> {
        let edit = match destination {
            Destination::Holders => KeyEdit::Replace {
                old_key_id: plan.old_key_id.clone(),
                new_key_id: new_key_id.to_string(),
                new_secret: new_secret.clone(),
            },
            Destination::Profile(profile) => KeyEdit::SetProfile {
                profile: profile.clone(),
                key_id: new_key_id.to_string(),
                secret: new_secret.clone(),
            },
            Destination::Printed => return Ok(SaveReport { files: Vec::new() }),
        };
        self.files
            .borrow_mut()
            .apply_edits(&[edit], &self.options.save)
    }

    /// Put the old key back wherever a failed save left the new one.
    fn restore_files(
        &self,
        plan: &KeyPlan,
        new_key_id: &str,
        old_secret: &Secret,
    ) -> Result<(), ProfileError> {
        if self.files.borrow().profiles_with_key(new_key_id).is_empty() {
            return Ok(());
        }
        let edit = KeyEdit::Replace {
            old_key_id: new_key_id.to_string(),
            new_key_id: plan.old_key_id.clone(),
            new_secret: old_secret.clone(),
        };
        self.files
            .borrow_mut()
            .apply_edits(&[edit], &SaveOptions { backup: false })
            .map(|_| ())
    }

    /// Delete a key this run created (signed with the old key or session), retrying
    /// transient errors a few times.
    async fn delete_new_key(&self, iam: &C::Client, plan: &KeyPlan, new_key_id: &str) -> Cleanup {
        let never = Cancel::default();
        let mut backoff = Backoff::new(
            self.clock.now(),
            self.options.backoff_initial,
            self.options.backoff_max_step,
            self.options.verify_timeout.min(Duration::from_secs(30)),
        );
        loop {
            match iam.delete_access_key(&plan.user, new_key_id).await {
                Ok(()) => return Cleanup::NewKeyDeleted(new_key_id.to_string()),
                Err(e) if e.kind == ErrorKind::NoSuchEntity => {
                    return Cleanup::NewKeyDeleted(new_key_id.to_string());
                }
                Err(e) if e.kind.is_transient() => {
                    if !backoff.wait(self.clock, &never).await {
                        return Cleanup::NewKeyLeft {
                            key_id: new_key_id.to_string(),
                            error: Some(e),
                        };
                    }
                }
                Err(e) => {
                    return Cleanup::NewKeyLeft {
                        key_id: new_key_id.to_string(),
                        error: Some(e),
                    };
                }
            }
        }
    }

    /// After a CreateAccessKey whose answer was lost: delete any key of the user that was
    /// not there when the plan was made and that no file holds.
    pub async fn delete_unknown_keys(&self, iam: &C::Client, plan: &KeyPlan) -> Cleanup {
        let keys = match iam.list_access_keys(&plan.user).await {
            Ok(keys) => keys,
            Err(e) => {
                return Cleanup::NewKeyLeft {
                    key_id: "(unknown)".into(),
                    error: Some(e),
                };
            }
        };
        let mut result = Cleanup::NothingCreated;
        for k in keys {
            let in_files = !self.files.borrow().profiles_with_key(&k.id).is_empty();
            if plan.known_keys.contains(&k.id) || in_files {
                continue;
            }
            result = self.delete_new_key(iam, plan, &k.id).await;
            if matches!(result, Cleanup::NewKeyLeft { .. }) {
                return result;
            }
        }
        result
    }
}
