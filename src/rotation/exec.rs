// Over 500 lines: the state machine, each step beside its failure branch, read top to bottom as the README's protocol table.
//! The state machine that carries out a [`KeyPlan`]: intent → (make room) → create → verify
//! → persist → hooks and env files ([`super::hooks`]) → retire → done, with the failure branch
//! of every step (see the table in the README). Distinct keys run concurrently on one thread; file edits go through the one
//! `RefCell<ProfileFiles>` and never across an `.await`, so there is a single writer. Each
//! key's journal writes run on a blocking thread (`Engine::journal_io`), each awaited before
//! the step it records.
//!
//! Must not: print (progress goes to the `progress` callback), or retire an old key before
//! the new key has authenticated repeatedly, is saved in every file that held the old one,
//! and every hook and env file of the rotation took it.

use super::hooks::{Gate, GateResult, GateRunner, GateState};
use super::journal::{
    Destination, Endpoint, Journal, JournalError, JournalPaths, JournalStore, Stage, VERSION,
    VERSION_WITHOUT_GATES, Window,
};
use super::plan::{KeyPlan, Retire};
use crate::aws::{AwsError, Connector, Credentials, ErrorKind, Iam, KeyStatus, Signer, Target};
use crate::profiles::scan::Mention;
use crate::profiles::{FileKind, KeyEdit, ProfileError, ProfileFiles, SaveOptions, SaveReport};
use crate::secret::{Secret, mask_key_id};
use crate::time::{Backoff, Cancel, Clock, rfc3339, signed};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::time::Duration;

/// CreateAccessKey is sent at most this many times for one rotation, and again only after a
/// refusal that made nothing (Throttling), within [`CREATE_BUDGET`]. Enough for an account
/// that IAM throttles while many keys rotate at once (the limiter of `aws::limiter` sends
/// CreateAccessKey once, so each attempt's window is in the journal before it is sent).
const CREATE_ATTEMPTS: u32 = 10;

/// How long those attempts may take in all, not counting their waits for a turn at the
/// limiter (each attempt's window is recorded when its turn comes).
const CREATE_BUDGET: Duration = Duration::from_secs(60);

/// The latest a rotation's CreateAccessKey is believed to take effect after the rotation
/// `started` (a journal whose window says otherwise is not believed past it): making room,
/// the create attempts and their budget, and a margin. An attempt whose turn at the limiter
/// comes later than that allows moves `started` to its turn (see `Engine::execute`).
const CREATE_WITHIN: Duration = Duration::from_secs(4 * 60);

/// Tunables of the protocol.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// How long the new key may take to work before the rotation is undone.
    pub verify_timeout: Duration,
    /// Consecutive successful calls with the new key before it counts as working.
    pub verify_successes: u32,
    /// Time from sending one of those successful calls to sending the next (IAM propagates
    /// unevenly, so they are spread out).
    pub success_gap: Duration,
    pub backoff_initial: Duration,
    pub backoff_max_step: Duration,
    pub save: SaveOptions,
    /// The latest a CreateAccessKey can take effect after it was sent: the SDK's operation
    /// timeout (one attempt; see `aws::Action::retry_safe`).
    pub create_call_budget: Duration,
    /// How far our clock and IAM's may disagree when a key's CreateDate is compared with the
    /// create call's window. SigV4 refuses requests signed more than 5 minutes off IAM's
    /// time by more than that, so a call that reached IAM was signed within it.
    pub clock_skew: Duration,
    /// How many times the user's keys are listed after a CreateAccessKey whose answer was
    /// lost, backing off between lists, before concluding that no key was created (IAM's
    /// lists may lag a create by a moment).
    pub relists: u32,
    /// How long each hook may run before it is killed and counts as failed: given
    /// (`--hook-timeout`), else what the journal recorded, else
    /// [`super::hooks::DEFAULT_HOOK_TIMEOUT`].
    pub hook_timeout: Option<Duration>,
    /// How long CreateAccessKey is sent again while IAM answers `Throttling`
    /// (`--throttle-timeout`), at most [`CREATE_BUDGET`].
    pub create_throttle_budget: Duration,
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
            create_call_budget: Duration::from_secs(30),
            clock_skew: Duration::from_secs(5 * 60),
            relists: 3,
            hook_timeout: None,
            create_throttle_budget: CREATE_BUDGET,
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
    /// One more call with the new key succeeded (not the last one needed).
    Verified,
    WaitForIam,
    Persist,
    /// Handing the new key to the hooks and env files.
    Gates,
    Retire,
    Done,
}

/// Why a step failed.
#[derive(Debug)]
pub enum Failure {
    Aws {
        error: AwsError,
        signer: Signer,
    },
    Files(Box<ProfileError>),
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
    /// Lines of the files still name the old key after the save (a section the edit does not
    /// cover, or an edit made meanwhile): the old key is not retired while they do.
    StillHeld(Vec<Mention>),
    /// The Inactive key the plan would delete to make room is no longer Inactive (someone
    /// turned it back on): it is left alone.
    InactiveKeyChanged {
        key_id: String,
        status: Option<KeyStatus>,
    },
    /// Hooks or env files that did not take the new key (each with how it ended): the old
    /// key stays Active until every one has.
    Gates(Vec<(Gate, GateResult)>),
}

/// What happened to a new key after a failure.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleanup {
    /// No key was created.
    NothingCreated,
    /// The key created by this run was deleted again.
    NewKeyDeleted(String),
    /// CreateAccessKey's answer was lost, but the key it made was found (its secret is
    /// lost with the answer) and deleted.
    LostKeyDeleted(String),
    /// The created key could not be deleted: it is in the journal; `recover` deletes it.
    NewKeyLeft {
        key_id: String,
        error: Option<AwsError>,
    },
    /// CreateAccessKey's answer was lost and whether it made a key could not be settled
    /// (the keys could not be listed, or more than one unknown key fits the call's window,
    /// which are listed and left alone). The journal is kept; `recover` looks again.
    Unresolved {
        candidates: Vec<String>,
        error: Option<AwsError>,
    },
}

impl Cleanup {
    /// A key this run made may still exist in IAM: the run is partial (exit 3), never
    /// "nothing changed".
    pub fn leaves_key(&self) -> bool {
        matches!(
            self,
            Cleanup::NewKeyLeft { .. } | Cleanup::Unresolved { .. }
        )
    }
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
    /// Hooks and env files that must hold the new key before the old key is retired.
    pub gates: &'a [Gate],
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
    /// Runs hooks and writes env files (in process in tests).
    pub gates: &'a dyn GateRunner,
}

impl<C: Connector, K: Clock> Engine<'_, C, K> {
    fn journal_for(&self, job: &Job<'_>, started: &str) -> Journal {
        let files = self.files.borrow();
        let mut paths: Vec<PathBuf> = Vec::new();
        for holder in files.profiles_with_key(&job.plan.old_key_id) {
            for origin in holder.locations {
                let path = match origin.file {
                    FileKind::Credentials => absolute(&files.paths().credentials),
                    FileKind::Config => absolute(&files.paths().config),
                };
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        Journal {
            version: if job.gates.is_empty() {
                VERSION_WITHOUT_GATES
            } else {
                VERSION
            },
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
            endpoint: Endpoint::of(job.target),
            mfa_serial: job.mfa_serial.map(str::to_string),
            destination: job.destination.clone(),
            auth_profile: job.auth_profile.map(str::to_string),
            printed: false,
            paths: Some(JournalPaths {
                credentials: absolute(&files.paths().credentials),
                config: absolute(&files.paths().config),
            }),
            create_window: None,
            orphans: Vec::new(),
            gates: job
                .gates
                .iter()
                .map(|gate| GateState {
                    gate: gate.clone(),
                    passed: false,
                })
                .collect(),
            hook_timeout_ms: (!job.gates.is_empty()).then(|| {
                let timeout = self
                    .options
                    .hook_timeout
                    .unwrap_or(super::hooks::DEFAULT_HOOK_TIMEOUT);
                u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
            }),
        }
    }

    fn step(&self, key: &str, step: Step) {
        (self.progress)(key, step)
    }

    /// Journal I/O, on a blocking thread. The runtime has one thread: with many keys at
    /// once, each key's fsyncs would hold up every other key's calls (50 intents written in
    /// a row left IAM idle for a tenth of a second). The caller still waits for it: nothing
    /// the write records happens before it is on disk.
    async fn journal_io<T: Send + 'static>(
        &self,
        io: impl FnOnce(&JournalStore) -> T + Send + 'static,
    ) -> T {
        let store = self.journal.clone();
        match tokio::task::spawn_blocking(move || io(&store)).await {
            Ok(value) => value,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Write (replace) the journal of a rotation: [`JournalStore::write`] on a blocking thread.
    async fn write_journal(&self, journal: &Journal) -> Result<(), JournalError> {
        let journal = journal.clone();
        self.journal_io(move |store| store.write(&journal)).await
    }

    /// Rotate one key, all branches included.
    pub async fn execute(&self, job: Job<'_>) -> KeyOutcome {
        let plan = job.plan;
        let key = plan.old_key_id.as_str();
        let iam_signer = Signer::of(job.session.is_some(), Signer::OldKey);
        let iam = self.connector.connect(&match job.session {
            Some(session) => job.target.with_credentials(session.clone()),
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
        let started_at = self.clock.now();
        let started = rfc3339(started_at);
        let mut journal = self.journal_for(&job, &started);
        let intent = journal.clone();
        if let Err(e) = self.journal_io(move |store| store.start(&intent)).await {
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
            if let Err(failure) = self.make_room(&iam, &plan.user, inactive, iam_signer).await {
                let _ = self.journal.remove(key);
                return failed(Step::MakeRoom, failure, Cleanup::NothingCreated, None);
            }
            journal.deleted_inactive = Some(inactive.clone());
            journal.known_keys.retain(|k| k != inactive);
            self.note_retired(&plan.user, &plan.account, inactive, Retire::Delete);
            if let Err(e) = self.write_journal(&journal).await {
                return failed(
                    Step::MakeRoom,
                    Failure::Journal(e),
                    Cleanup::NothingCreated,
                    Some(inactive.clone()),
                );
            }
        }
        let deleted_inactive = journal.deleted_inactive.clone();

        // Create, and record the new key the moment it exists. CreateAccessKey is never
        // re-sent after a failure that may have taken effect (the SDK gives it one attempt):
        // the user's keys are listed, the key it made, if any, is deleted, and the rotation
        // fails saying so; at most one key is ever made per rotation. Only a refusal that
        // made nothing (Throttling) is sent again.
        self.step(key, Step::Create);
        let mut create_backoff = Backoff::new(
            self.clock.now(),
            self.options.backoff_initial,
            self.options.backoff_max_step,
            self.options.create_throttle_budget.min(CREATE_BUDGET),
        );
        let mut attempt = 0;
        let created = loop {
            attempt += 1;
            // The window in which this attempt can take effect is on disk before it is sent:
            // recorded once the call has its turn at the limiter (however long it waited for
            // it), from that moment to the end of the call's budget. An earlier attempt is
            // sent again only after a refusal that made nothing, so the window is this
            // attempt's alone.
            let asked = self.clock.now();
            let turn = Cell::new(asked);
            let record = async || {
                let sent = self.clock.now();
                turn.set(sent);
                // A window is believed only within CREATE_WITHIN of `started`: after a wait
                // for the turn that would leave this one (and a minute) outside it, the
                // rotation counts as started now. Nothing was made before this attempt.
                let end = sent + signed(self.options.create_call_budget + Duration::from_secs(60));
                if end > started_at + signed(CREATE_WITHIN) {
                    journal.started = rfc3339(sent);
                }
                journal.create_window = Some(Window {
                    from: rfc3339(sent),
                    to: rfc3339(sent + signed(self.options.create_call_budget)),
                });
                self.write_journal(&journal).await
            };
            let answer = iam.create_access_key_recorded(&plan.user, record).await;
            // The wait for the turn is not the attempts' time: it does not spend their budget.
            create_backoff.extend(turn.get().duration_since(asked).unsigned_abs());
            let error = match answer {
                Ok(Ok(created)) => break created,
                Ok(Err(error)) => error,
                Err(e) => {
                    // Not sent (an earlier attempt, if any, was refused and made nothing).
                    let _ = self.journal.remove(key);
                    return failed(
                        Step::Create,
                        Failure::Journal(e),
                        Cleanup::NothingCreated,
                        deleted_inactive,
                    );
                }
            };
            let cleanup = if error.kind.may_have_taken_effect() {
                self.reconcile_lost_create(&iam, &mut journal, true).await
            } else {
                Cleanup::NothingCreated
            };
            if !error.kind.may_have_taken_effect()
                && error.kind.is_transient()
                && attempt < CREATE_ATTEMPTS
                && !self.cancel.is_set()
                && create_backoff.wait(self.clock, self.cancel).await
            {
                continue;
            }
            if !cleanup.leaves_key() {
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
        };
        journal.stage = Stage::Created;
        journal.new_key_id = Some(created.id.clone());
        journal.new_secret = Some(created.secret.clone());
        if let Err(e) = self.write_journal(&journal).await {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !cleanup.leaves_key() {
                let _ = self.journal.remove(key);
            }
            return failed(Step::Create, Failure::Journal(e), cleanup, deleted_inactive);
        }

        // Verify: the new key must authenticate as the same user, several times.
        self.step(key, Step::Verify);
        let new_credentials = Credentials::long_term(created.id.clone(), created.secret.clone());
        let new_client = self
            .connector
            .connect(&job.target.with_credentials(new_credentials));
        if let Err(failure) = self
            .verify(&new_client, &plan.account, &plan.user, key)
            .await
        {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !cleanup.leaves_key() {
                let _ = self.journal.remove(key);
            }
            return failed(Step::Verify, failure, cleanup, deleted_inactive);
        }
        journal.stage = Stage::Verified;
        if let Err(e) = self.write_journal(&journal).await {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !cleanup.leaves_key() {
                let _ = self.journal.remove(key);
            }
            return failed(Step::Verify, Failure::Journal(e), cleanup, deleted_inactive);
        }
        if self.cancel.is_set() {
            let cleanup = self.delete_new_key(&iam, plan, &created.id).await;
            if !cleanup.leaves_key() {
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
                        if !cleanup.leaves_key() {
                            let _ = self.journal.remove(key);
                        }
                        failed(
                            Step::Persist,
                            Failure::Files(Box::new(error)),
                            cleanup,
                            deleted_inactive,
                        )
                    }
                    Err(restore_error) => KeyOutcome::Stuck {
                        new_key_id: created.id.clone(),
                        new_secret: created.secret.clone(),
                        failure: Failure::Files(Box::new(error)),
                        restore_error,
                    },
                };
            }
        };
        journal.stage = Stage::Persisted;
        if let Err(e) = self.write_journal(&journal).await {
            // The files hold a working new key; only the record of it failed. Carry on:
            // retiring the old key is what the user asked for, and the journal is removed
            // right after anyway.
            tracing::warn!(key = %mask_key_id(key), error = %e, "could not record the persisted stage");
        }

        // Last check before retiring: no line of either file, in any section, names the old key.
        if let Err(failure) = self.nothing_holds(&plan.old_key_id) {
            return KeyOutcome::Partial {
                new_key_id: created.id,
                new_secret: created.secret,
                failure,
                deleted_inactive,
            };
        }

        // Hooks and env files: each must hold the new key before the old key goes. Each pass
        // is recorded in the journal, so recovery runs only the others.
        if !journal.gates.is_empty() {
            self.step(key, Step::Gates);
            if let Err(failure) = self
                .run_gates(&mut journal, &created.id, &created.secret)
                .await
            {
                return KeyOutcome::Partial {
                    new_key_id: created.id,
                    new_secret: created.secret,
                    failure,
                    deleted_inactive,
                };
            }
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
                self.note_retired(&plan.user, &plan.account, key, plan.retire);
                // A key to be printed lives only in the journal until the caller has written
                // it out ([`JournalStore::mark_printed`]); the old key is retired, so it must survive.
                if *job.destination != Destination::Printed {
                    let key = key.to_string();
                    let _ = self.journal_io(move |store| store.remove(&key)).await;
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
                    signer: Signer::of(job.session.is_some(), Signer::NewKey),
                },
                deleted_inactive,
            },
        }
    }

    /// Keep the record of retired keys ([`super::retired`]) in step: a deactivated key is
    /// noted with the time, a deleted one forgotten. Only where a state directory is known;
    /// a failure is logged and never fails the rotation (the key is retired either way;
    /// without the record, `prune` only waits longer).
    pub(super) fn note_retired(&self, user: &str, account: &str, key_id: &str, retire: Retire) {
        let Some(dir) = self.journal.state_dir() else {
            return;
        };
        let store = super::retired::RetiredStore::new(dir);
        let result = match retire {
            Retire::Deactivate => store.add(super::retired::RetiredKey {
                access_key_id: key_id.to_string(),
                user: user.to_string(),
                account: account.to_string(),
                retired: self.clock.now(),
            }),
            Retire::Delete => store.remove(&[key_id.to_string()]),
        };
        if let Err(e) = result {
            tracing::warn!(key = %mask_key_id(key_id), error = %e, "could not update the record of retired keys");
        }
    }

    /// Delete the Inactive second key to make room. It was Inactive when planned; someone may
    /// have turned it back on since, and IAM has no conditional delete, so look once more
    /// right before. Already gone counts as done.
    async fn make_room(
        &self,
        iam: &C::Client,
        user: &str,
        inactive: &str,
        signer: Signer,
    ) -> Result<(), Failure> {
        let aws = |error| Failure::Aws { error, signer };
        let status = iam
            .list_access_keys(user)
            .await
            .map_err(aws)?
            .into_iter()
            .find(|k| k.id == inactive)
            .map(|k| k.status);
        if status.as_ref().is_some_and(|s| *s != KeyStatus::Inactive) {
            return Err(Failure::InactiveKeyChanged {
                key_id: inactive.to_string(),
                status,
            });
        }
        match iam.delete_access_key(user, inactive).await {
            Err(error) if error.kind != ErrorKind::NoSuchEntity => Err(aws(error)),
            _ => Ok(()),
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
            let asked = self.clock.now();
            let answer = client.caller_identity().await;
            // The wait for its turn is not verification time.
            let sent = sent_at(client, asked);
            backoff.extend(sent.duration_since(asked).unsigned_abs());
            let rejection = match answer {
                Ok(identity)
                    if identity.account == account
                        && identity.user_name().as_deref() == Some(user) =>
                {
                    streak += 1;
                    if streak >= self.options.verify_successes {
                        return Ok(());
                    }
                    self.step(key, Step::Verified);
                    // The gap runs from this call's sending, so successive calls are sent
                    // `success_gap` apart whatever IAM's answers and the limiter's waits take.
                    let took = self.clock.now().duration_since(sent).unsigned_abs();
                    self.cancel
                        .sleep(self.clock, self.options.success_gap.saturating_sub(took))
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
    /// this step is finished, within the verify timeout (waits for a turn at the limiter
    /// aside, as in [`Engine::verify`]).
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
            let asked = self.clock.now();
            let result = match retire {
                Retire::Deactivate => {
                    client
                        .update_access_key(user, old_key_id, KeyStatus::Inactive)
                        .await
                }
                Retire::Delete => client.delete_access_key(user, old_key_id).await,
            };
            let sent = sent_at(client, asked);
            backoff.extend(sent.duration_since(asked).unsigned_abs());
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
        match self.delete_key(iam, &plan.user, new_key_id).await {
            Ok(()) => Cleanup::NewKeyDeleted(new_key_id.to_string()),
            Err(e) => Cleanup::NewKeyLeft {
                key_id: new_key_id.to_string(),
                error: Some(e),
            },
        }
    }

    /// Re-read both files from disk: a failure names every setting line that still holds
    /// `old_key_id`, in any section (the AWS CLI reads sections the SDKs ignore).
    pub fn nothing_holds(&self, old_key_id: &str) -> Result<(), Failure> {
        let paths = self.files.borrow().paths().clone();
        let mut places = Vec::new();
        for (kind, path) in [
            (FileKind::Credentials, &paths.credentials),
            (FileKind::Config, &paths.config),
        ] {
            match crate::profiles::scan::mentions(kind, path, old_key_id) {
                Ok(found) => places.extend(found),
                Err(source) => {
                    return Err(Failure::Files(Box::new(ProfileError::Read {
                        kind,
                        path: path.clone(),
                        source,
                    })));
                }
            }
        }
        if places.is_empty() {
            Ok(())
        } else {
            Err(Failure::StillHeld(places))
        }
    }

    /// After a CreateAccessKey whose answer may have been lost: find the key it made and
    /// delete it (its secret is lost with the answer). A key is this rotation's only if no
    /// one knows it (not in the journal's known keys, in no file, in no other journal), IAM's
    /// CreateDate falls in the create call's window, widened by the clock-skew allowance, and
    /// it has never been used (GetAccessKeyLastUsed: no one ever held its secret). More than
    /// one such key: none is touched. `relist`: IAM's list may lag the
    /// create, so list a few times before concluding that nothing was made.
    pub async fn reconcile_lost_create(
        &self,
        iam: &C::Client,
        journal: &mut Journal,
        relist: bool,
    ) -> Cleanup {
        let attempts = if relist {
            self.options.relists.max(1)
        } else {
            1
        };
        let mut backoff = Backoff::new(
            self.clock.now(),
            self.options.backoff_initial,
            self.options.backoff_max_step,
            Duration::from_secs(3600),
        );
        let never = Cancel::default();
        let others = self.journal.keys_of_other_journals(&journal.old_key_id);
        let window = self.create_window(journal);
        let mut candidates = Vec::new();
        for attempt in 1..=attempts {
            let keys = match iam.list_access_keys(&journal.user).await {
                Ok(keys) => keys,
                Err(e) => {
                    return Cleanup::Unresolved {
                        candidates: Vec::new(),
                        error: Some(e),
                    };
                }
            };
            candidates = keys
                .into_iter()
                .filter(|k| {
                    !journal.known_keys.contains(&k.id)
                        && !others.contains(&k.id)
                        && self.files.borrow().profiles_with_key(&k.id).is_empty()
                        && k.created.is_some_and(|c| window.0 <= c && c <= window.1)
                })
                .map(|k| k.id)
                .collect();
            if !candidates.is_empty() || attempt == attempts {
                break;
            }
            backoff.wait(self.clock, &never).await;
        }
        // No one ever held a lost key's secret, so it has never been used: a key that has
        // been is someone else's, made in the same minutes.
        let mut unused = Vec::new();
        for id in candidates {
            match iam.access_key_last_used(&id).await {
                Ok(last) if last.date.is_none() => unused.push(id),
                Ok(_) => {}
                Err(e) => {
                    return Cleanup::Unresolved {
                        candidates: vec![id],
                        error: Some(e),
                    };
                }
            }
        }
        let candidates = unused;
        match candidates.as_slice() {
            [] => Cleanup::NothingCreated,
            [lost] => {
                // On disk before it goes: a run killed now deletes exactly this key.
                if !journal.orphans.contains(lost) {
                    journal.orphans.push(lost.clone());
                }
                if self.journal.write(journal).is_err() {
                    return Cleanup::Unresolved {
                        candidates: candidates.clone(),
                        error: None,
                    };
                }
                match self.delete_key(iam, &journal.user, lost).await {
                    Ok(()) => Cleanup::LostKeyDeleted(lost.clone()),
                    Err(error) => Cleanup::NewKeyLeft {
                        key_id: lost.clone(),
                        error: Some(error),
                    },
                }
            }
            _ => Cleanup::Unresolved {
                candidates,
                error: None,
            },
        }
    }

    /// The span in which a CreateAccessKey of this rotation could have taken effect, by IAM's
    /// clock: the recorded window, never before the rotation `started` nor later than
    /// [`CREATE_WITHIN`] after it (a version 1 journal has only `started`), widened by the
    /// clock-skew allowance at both ends.
    fn create_window(&self, journal: &Journal) -> (jiff::Timestamp, jiff::Timestamp) {
        let parse = |t: &str| t.parse::<jiff::Timestamp>().ok();
        let skew = signed(self.options.clock_skew);
        let started = parse(&journal.started);
        let (from, to) = match &journal.create_window {
            Some(w) => (parse(&w.from), parse(&w.to)),
            None => (None, None),
        };
        let Some(from) = from.max(started) else {
            // Nothing to anchor a window to: no key can be told to be this rotation's.
            return (jiff::Timestamp::MAX, jiff::Timestamp::MIN);
        };
        let latest = started.unwrap_or(from) + signed(CREATE_WITHIN);
        // Whole seconds in the journal: round the end up by one.
        let to = to.unwrap_or(latest).min(latest) + jiff::SignedDuration::from_secs(1);
        (from - skew, to + skew)
    }

    /// Delete a key this rotation made, retrying transient errors within a bound.
    pub(super) async fn delete_key_of(
        &self,
        iam: &C::Client,
        user: &str,
        key_id: &str,
    ) -> Result<(), AwsError> {
        self.delete_key(iam, user, key_id).await
    }

    /// Load the engine's files again from disk.
    pub(super) fn reload(&self) -> Result<(), ProfileError> {
        let paths = self.files.borrow().paths().clone();
        let fresh = ProfileFiles::load(&paths)?;
        *self.files.borrow_mut() = fresh;
        Ok(())
    }

    async fn delete_key(&self, iam: &C::Client, user: &str, key_id: &str) -> Result<(), AwsError> {
        let never = Cancel::default();
        let mut backoff = Backoff::new(
            self.clock.now(),
            self.options.backoff_initial,
            self.options.backoff_max_step,
            self.options.verify_timeout.min(Duration::from_secs(30)),
        );
        loop {
            match iam.delete_access_key(user, key_id).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind == ErrorKind::NoSuchEntity => return Ok(()),
                Err(e) if e.kind.is_transient() => {
                    if !backoff.wait(self.clock, &never).await {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// When `client`'s last call, asked for at `asked`, was sent: later when it waited for its
/// turn at the limiter. That wait is not IAM's time, and is not counted against a step's
/// budget (with many keys and a slow pace it would otherwise use it up while IAM was never
/// asked).
fn sent_at<I: Iam>(client: &I, asked: jiff::Timestamp) -> jiff::Timestamp {
    client
        .last_sent_at()
        .filter(|t| *t >= asked)
        .unwrap_or(asked)
}

/// A path made absolute against the current directory (not through links), for the journal.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The gates step: hooks and env files (see [`super::hooks`]).
impl<C: Connector, K: Clock> Engine<'_, C, K> {
    /// Run every gate of `journal` that has not passed, in order, each once; record each
    /// pass in the journal at once. Gates after a failed one still run (fewer to run again
    /// later). A gate that passed just before a crash, before its pass was recorded, runs
    /// again on recovery: hooks must be idempotent.
    pub async fn run_gates(
        &self,
        journal: &mut Journal,
        new_key_id: &str,
        new_secret: &Secret,
    ) -> Result<(), Failure> {
        let timeout = self
            .options
            .hook_timeout
            .or(journal.hook_timeout_ms.map(Duration::from_millis))
            .unwrap_or(super::hooks::DEFAULT_HOOK_TIMEOUT);
        let mut failed = Vec::new();
        for i in 0..journal.gates.len() {
            if journal.gates[i].passed {
                continue;
            }
            if self.cancel.is_set() {
                return Err(Failure::Interrupted);
            }
            let gate = journal.gates[i].gate.clone();
            let delivery = super::hooks::Delivery {
                profile: gate
                    .profile()
                    .map(str::to_string)
                    .or_else(|| journal.profiles.first().cloned())
                    .unwrap_or_default(),
                user: journal.user.clone(),
                account: journal.account.clone(),
                access_key_id: new_key_id.to_string(),
                secret_access_key: new_secret.clone(),
                old_access_key_id: journal.old_key_id.clone(),
                timeout,
            };
            let result = self.gates.run(&gate, &delivery).await;
            if result.passed() {
                journal.gates[i].passed = true;
                if let Err(e) = self.journal.write(journal) {
                    // It passed; only the record failed. It runs again if this run dies.
                    tracing::warn!(error = %e, "could not record a passed hook in the journal");
                }
            } else {
                failed.push((gate, result));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Failure::Gates(failed))
        }
    }
}
