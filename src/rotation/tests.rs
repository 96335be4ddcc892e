// Over 500 lines: one test per branch of the state machine and of recovery, all on the one `World` fixture at the top.
//! Every branch of the rotation state machine and of recovery, against the in-memory IAM
//! with scripted faults and a fake clock (no real sleeping), on real temporary files.

use super::exec::{Cleanup, Engine, ExecOptions, Failure, Job, KeyOutcome, Step};
use super::hooks::{Gate, GateResult, HookFormat, ScriptedGates};
use super::journal::{Destination, JournalStore, Stage};
use crate::time::block_on;
use crate::time::{Cancel, FakeClock};

use super::plan::{Decision, KeyPlan, PlanOptions, Retire, decide};
use super::recover::{Mode, RecoverError, Recovered};
use crate::aws::fake::{FakeConnector, FakeIam, Fault};
use crate::aws::{Action, Connector, Credentials, ErrorKind, KeyStatus, Target};
use crate::inventory;
use crate::profiles::{FilePaths, ProfileFiles};
use crate::secret::Secret;
use jiff::Timestamp;
use std::cell::RefCell;
use std::time::Duration;

const START: &str = "2026-11-22T08:00:00Z";

struct World {
    iam: FakeIam,
    clock: FakeClock,
    dir: tempfile::TempDir,
    paths: FilePaths,
    user: String,
    old_id: String,
    old_secret: Secret,
    /// Hooks and env files of the next rotation, run in process.
    gates: ScriptedGates,
    gate_list: Vec<Gate>,
}

impl World {
    /// A user `alice` with one Active key, 100 days old, held by the profiles the
    /// credentials/config texts name (`{ID}` and `{SECRET}` are filled in).
    fn new(credentials: &str, config: &str) -> World {
        let start: Timestamp = START.parse().unwrap();
        let iam = FakeIam::new();
        iam.set_now(start);
        let hook = iam.clone();
        let clock = FakeClock::with_hook(start, move |d| hook.advance(d));
        iam.add_user("alice");
        let (old_id, old_secret) = iam.add_key(
            "alice",
            start - jiff::SignedDuration::from_hours(24 * 100),
            KeyStatus::Active,
        );
        let dir = tempfile::tempdir().unwrap();
        let paths = FilePaths {
            credentials: dir.path().join("credentials"),
            config: dir.path().join("config"),
        };
        let fill = |t: &str| {
            t.replace("{ID}", &old_id)
                .replace("{SECRET}", old_secret.expose())
        };
        std::fs::write(&paths.credentials, fill(credentials)).unwrap();
        std::fs::write(&paths.config, fill(config)).unwrap();
        World {
            iam,
            clock,
            dir,
            paths,
            user: "alice".into(),
            old_id,
            old_secret,
            gates: ScriptedGates::default(),
            gate_list: Vec::new(),
        }
    }

    fn simple() -> World {
        World::new(
            "[dev]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n",
            "[profile dev]\nregion = eu-west-1\n",
        )
    }

    fn target(&self) -> Target {
        Target {
            credentials: Credentials::long_term(self.old_id.clone(), self.old_secret.clone()),
            region: "us-east-1".into(),
            iam_endpoint: None,
            sts_endpoint: None,
        }
    }

    fn files(&self) -> RefCell<ProfileFiles> {
        RefCell::new(ProfileFiles::load(&self.paths).unwrap())
    }

    fn journal(&self) -> JournalStore {
        JournalStore::beside(&self.paths.credentials)
    }

    fn credentials_text(&self) -> String {
        std::fs::read_to_string(&self.paths.credentials).unwrap()
    }

    fn key_status(&self, id: &str) -> Option<KeyStatus> {
        self.iam
            .keys(&self.user)
            .into_iter()
            .find(|k| k.id == id)
            .map(|k| k.status)
    }

    fn plan(&self, options: PlanOptions) -> KeyPlan {
        let client = FakeConnector::new(&self.iam).connect(&self.target());
        let facts = block_on(inventory::inspect(&client, &self.old_id)).unwrap();
        match decide(
            &facts,
            &self.old_id,
            &|_| vec![],
            &options,
            self.clock_now(),
        ) {
            Decision::Rotate(plan) => plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    fn clock_now(&self) -> Timestamp {
        use crate::time::Clock;
        self.clock.now()
    }
}

/// Run one rotation in the world; returns the outcome and the steps reported.
fn rotate(
    world: &World,
    plan: &KeyPlan,
    options: &ExecOptions,
    cancel: &Cancel,
) -> (KeyOutcome, Vec<Step>) {
    execute(
        world,
        &world.files(),
        plan,
        options,
        cancel,
        None,
        &Destination::Holders,
    )
}

/// Run one rotation of the world's `dev` key on the given files (loaded earlier, when a test
/// changes the disk under them), optionally through an MFA session (or an administrator's
/// credentials), to the given destination.
fn execute(
    world: &World,
    files: &RefCell<ProfileFiles>,
    plan: &KeyPlan,
    options: &ExecOptions,
    cancel: &Cancel,
    session: Option<&Credentials>,
    destination: &Destination,
) -> (KeyOutcome, Vec<Step>) {
    let run = Run {
        files,
        plan,
        options,
        cancel,
        session,
        destination,
    };
    execute_through(world, &FakeConnector::new(&world.iam), run, async {})
}

/// What one rotation of the world's `dev` key runs on.
struct Run<'a> {
    files: &'a RefCell<ProfileFiles>,
    plan: &'a KeyPlan,
    options: &'a ExecOptions,
    cancel: &'a Cancel,
    session: Option<&'a Credentials>,
    destination: &'a Destination,
}

/// [`execute`] through any connector, with `beside` running at the same time (a call that
/// holds a limiter's slot, for instance).
fn execute_through<C: Connector>(
    world: &World,
    connector: &C,
    run: Run<'_>,
    beside: impl std::future::Future<Output = ()>,
) -> (KeyOutcome, Vec<Step>) {
    let journal = world.journal();
    let steps = RefCell::new(Vec::new());
    let progress = |_: &str, s: Step| steps.borrow_mut().push(s);
    let engine = Engine {
        connector,
        clock: &world.clock,
        files: run.files,
        journal: &journal,
        options: run.options,
        cancel: run.cancel,
        progress: &progress,
        gates: &world.gates,
    };
    let target = world.target();
    let holders = vec!["dev".to_string()];
    let rotation = engine.execute(Job {
        plan: run.plan,
        target: &target,
        holders: &holders,
        session: run.session,
        mfa_serial: run.session.map(|_| "arn:aws:iam::123456789012:mfa/alice"),
        destination: run.destination,
        auth_profile: None,
        gates: &world.gate_list,
    });
    let ((), outcome) = block_on(async { tokio::join!(beside, rotation) });
    (outcome, steps.into_inner())
}

fn recover(world: &World, mode: Mode) -> Result<Recovered, RecoverError> {
    recover_as(world, mode, None)
}

/// Recovery with IAM calls made with `session` (an MFA session or an administrator's keys).
fn recover_as(
    world: &World,
    mode: Mode,
    session: Option<&Credentials>,
) -> Result<Recovered, RecoverError> {
    let connector = FakeConnector::new(&world.iam);
    let files = world.files();
    let journal = world.journal();
    let options = ExecOptions::default();
    let cancel = Cancel::default();
    let progress = |_: &str, _: Step| {};
    let engine = Engine {
        connector: &connector,
        clock: &world.clock,
        files: &files,
        journal: &journal,
        options: &options,
        cancel: &cancel,
        progress: &progress,
        gates: &world.gates,
    };
    let mine = journal
        .readable()
        .into_iter()
        .find(|j| j.old_key_id == world.old_id)
        .expect("a journal of the world's key");
    block_on(engine.recover(&mine, mode, session))
}

fn new_key_of(outcome: &KeyOutcome) -> String {
    match outcome {
        KeyOutcome::Rotated { new_key_id, .. } | KeyOutcome::Partial { new_key_id, .. } => {
            new_key_id.clone()
        }
        other => panic!("expected a new key, got {other:?}"),
    }
}

#[test]
fn happy_path_writes_the_new_key_deactivates_the_old_and_clears_the_journal() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    let (outcome, steps) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    assert!(
        matches!(
            outcome,
            KeyOutcome::Rotated {
                retire: Retire::Deactivate,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        steps,
        vec![
            Step::Journal,
            Step::Create,
            Step::Verify,
            Step::Verified,
            Step::Verified,
            Step::Persist,
            Step::Retire,
            Step::Done
        ]
    );
    let text = world.credentials_text();
    assert!(
        text.contains(&new_id) && !text.contains(&world.old_id),
        "{}",
        text.lines().next().unwrap()
    );
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert_eq!(world.key_status(&new_id), Some(KeyStatus::Active));
    assert!(world.journal().readable().is_empty());
    // Verified with the new key several times, and the old key retired with the new key.
    let calls = world.iam.calls();
    let verify_calls = calls
        .iter()
        .filter(|c| c.action == Action::GetCallerIdentity && c.key_id == new_id)
        .count();
    assert_eq!(verify_calls, 3);
    let retire = calls
        .iter()
        .find(|c| c.action == Action::UpdateAccessKey)
        .unwrap();
    assert_eq!(
        retire.key_id, new_id,
        "the old key is retired with the new key"
    );
}

#[test]
fn delete_option_deletes_the_old_key() {
    let world = World::simple();
    let plan = world.plan(PlanOptions {
        delete_old: true,
        ..Default::default()
    });
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    assert_eq!(world.key_status(&world.old_id), None);
    assert_eq!(world.iam.keys(&world.user).len(), 1);
    assert_eq!(world.key_status(&new_id), Some(KeyStatus::Active));
}

#[test]
fn an_inactive_second_key_is_deleted_first_when_asked() {
    let world = World::simple();
    let (inactive, _) = world
        .iam
        .add_key("alice", START.parse().unwrap(), KeyStatus::Inactive);
    let plan = world.plan(PlanOptions {
        delete_inactive: true,
        ..Default::default()
    });
    let (outcome, steps) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(
        matches!(&outcome, KeyOutcome::Rotated { deleted_inactive: Some(d), .. } if *d == inactive),
        "{outcome:?}"
    );
    assert_eq!(steps[1], Step::MakeRoom);
    assert_eq!(world.key_status(&inactive), None);
}

#[test]
fn create_refused_changes_nothing() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::CreateAccessKey,
        Fault::always(ErrorKind::LimitExceeded),
    );
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                step: Step::Create,
                cleanup: Cleanup::NothingCreated,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(world.credentials_text(), before);
    assert_eq!(world.iam.keys(&world.user).len(), 1);
    assert!(world.journal().readable().is_empty());
}

/// Issue 10, defect 2: the answer of CreateAccessKey is lost after the key was made. It is
/// not sent again: the key it made is found by its window, recorded, and deleted (its secret
/// is gone with the answer), and the rotation fails saying so. At most one key per rotation.
#[test]
fn a_lost_create_answer_leaves_no_orphan_key() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::CreateAccessKey,
        Fault::once(ErrorKind::Network).after_effect(),
    );
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let KeyOutcome::Failed {
        step: Step::Create,
        cleanup: Cleanup::LostKeyDeleted(lost),
        ..
    } = &outcome
    else {
        panic!("expected the lost key deleted, got {outcome:?}");
    };
    assert_eq!(world.iam.count(Action::CreateAccessKey), 1, "never re-sent");
    let made = world
        .iam
        .calls()
        .into_iter()
        .find(|c| c.action == Action::CreateAccessKey)
        .and_then(|c| c.target_key);
    assert_eq!(
        made.as_ref(),
        Some(lost),
        "the key it made is the one deleted"
    );
    let keys = world.iam.keys(&world.user);
    assert_eq!(keys.len(), 1, "only the old key is left: {keys:?}");
    assert_eq!(keys[0].status, KeyStatus::Active);
    assert_eq!(world.credentials_text(), before);
    assert!(world.journal().readable().is_empty());
}

/// A refusal that made nothing (Throttling) is sent again, within a bound.
#[test]
fn a_throttled_create_is_sent_again() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world
        .iam
        .fail(Action::CreateAccessKey, Fault::once(ErrorKind::Throttling));
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(world.iam.count(Action::CreateAccessKey), 2);
}

/// The same with a 503 after the effect: one call, the lost key deleted, nothing left.
#[test]
fn a_create_answer_lost_after_a_server_error_leaves_only_the_old_key() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::CreateAccessKey,
        Fault::always(ErrorKind::ServiceUnavailable).after_effect(),
    );
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert_lost_key_deleted(&world, &outcome);
    assert_eq!(world.iam.count(Action::CreateAccessKey), 1, "never re-sent");
    assert_eq!(world.credentials_text(), before);
}

/// Run one rotation through a limiter with one slot, held first by another call for `hold`
/// of the fake clock (a second at a time, letting the rotation run in between): the
/// rotation's CreateAccessKey waits that long for its turn.
fn rotate_behind_a_busy_slot(world: &World, plan: &KeyPlan, hold: Duration) -> KeyOutcome {
    use crate::aws::limiter::{LimitedConnector, Limiter, LimiterOptions};
    use crate::time::Clock;
    let fake = FakeConnector::new(&world.iam);
    let limiter = std::rc::Rc::new(Limiter::with_clock(
        world.clock.clone(),
        LimiterOptions::with_cap(1),
    ));
    let busy = async {
        limiter
            .call(Action::ListAccessKeys, || async {
                for _ in 0..hold.as_secs() {
                    world.clock.sleep(Duration::from_secs(1)).await;
                    tokio::task::yield_now().await;
                }
                Ok::<(), crate::aws::AwsError>(())
            })
            .await
            .unwrap()
    };
    let run = Run {
        files: &world.files(),
        plan,
        options: &ExecOptions::default(),
        cancel: &Cancel::default(),
        session: None,
        destination: &Destination::Holders,
    };
    let connector = LimitedConnector::new(&fake, limiter.clone());
    execute_through(world, &connector, run, busy).0
}

/// A CreateAccessKey that waits long for its turn at the limiter (90 s, behind a call that
/// holds the only slot) is sent once when its turn comes, and the rotation finishes: its
/// window is recorded at that moment, so no wait can make the recorded window stale.
#[test]
fn a_create_that_waits_long_for_its_turn_is_sent_once_and_the_rotation_finishes() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    let started = world.clock_now();
    let outcome = rotate_behind_a_busy_slot(&world, &plan, Duration::from_secs(90));
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(world.iam.count(Action::CreateAccessKey), 1, "sent once");
    assert!(
        world.clock.elapsed_since(started) >= Duration::from_secs(90),
        "it waited for its turn"
    );
}

/// A create whose turn came ten minutes after the rotation started, and whose answer was lost
/// after it took effect: the key it made is still found by its window (the rotation counts
/// as started at that turn) and deleted; only the old key is left.
#[test]
fn a_lost_create_answer_after_a_long_wait_for_its_turn_leaves_no_orphan() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::CreateAccessKey,
        Fault::once(ErrorKind::ServiceUnavailable).after_effect(),
    );
    let outcome = rotate_behind_a_busy_slot(&world, &plan, Duration::from_secs(600));
    assert_lost_key_deleted(&world, &outcome);
}

/// The create failed after it took effect, the key it made was found and deleted: only the
/// old key is left, Active, and no journal.
#[track_caller]
fn assert_lost_key_deleted(world: &World, outcome: &KeyOutcome) {
    assert!(
        matches!(
            outcome,
            KeyOutcome::Failed {
                step: Step::Create,
                cleanup: Cleanup::LostKeyDeleted(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    let keys = world.iam.keys(&world.user);
    assert_eq!(keys.len(), 1, "only the old key is left: {keys:?}");
    assert_eq!(keys[0].id, world.old_id);
    assert_eq!(keys[0].status, KeyStatus::Active);
    assert!(world.journal().readable().is_empty());
}

/// Clients whose GetCallerIdentity, UpdateAccessKey and DeleteAccessKey wait `queue` of the
/// fake clock before they are sent, as a call waits for its turn behind a busy limiter, and
/// say when the last was sent.
struct Queued {
    inner: FakeConnector,
    clock: FakeClock,
    queue: Duration,
}

struct QueuedClient {
    inner: crate::aws::fake::FakeClient,
    clock: FakeClock,
    queue: Duration,
    sent: std::cell::Cell<Option<Timestamp>>,
}

impl QueuedClient {
    async fn wait_for_the_turn(&self) {
        use crate::time::Clock;
        self.clock.sleep(self.queue).await;
        self.sent.set(Some(self.clock.now()));
    }
}

impl Connector for Queued {
    type Client = QueuedClient;
    fn connect(&self, target: &Target) -> QueuedClient {
        QueuedClient {
            inner: self.inner.connect(target),
            clock: self.clock.clone(),
            queue: self.queue,
            sent: std::cell::Cell::new(None),
        }
    }
}

impl crate::aws::Iam for QueuedClient {
    async fn caller_identity(&self) -> Result<crate::aws::CallerIdentity, crate::aws::AwsError> {
        self.wait_for_the_turn().await;
        self.inner.caller_identity().await
    }
    fn last_sent_at(&self) -> Option<Timestamp> {
        self.sent.get()
    }
    async fn list_access_keys(
        &self,
        user: &str,
    ) -> Result<Vec<crate::aws::AccessKeyMeta>, crate::aws::AwsError> {
        self.inner.list_access_keys(user).await
    }
    async fn create_access_key(
        &self,
        user: &str,
    ) -> Result<crate::aws::NewAccessKey, crate::aws::AwsError> {
        self.inner.create_access_key(user).await
    }
    async fn update_access_key(
        &self,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> Result<(), crate::aws::AwsError> {
        self.wait_for_the_turn().await;
        self.inner.update_access_key(user, key_id, status).await
    }
    async fn delete_access_key(
        &self,
        user: &str,
        key_id: &str,
    ) -> Result<(), crate::aws::AwsError> {
        self.wait_for_the_turn().await;
        self.inner.delete_access_key(user, key_id).await
    }
    async fn access_key_last_used(
        &self,
        key_id: &str,
    ) -> Result<crate::aws::LastUsed, crate::aws::AwsError> {
        self.inner.access_key_last_used(key_id).await
    }
    async fn list_mfa_devices(
        &self,
        user: &str,
    ) -> Result<Vec<crate::aws::MfaDevice>, crate::aws::AwsError> {
        self.inner.list_mfa_devices(user).await
    }
    async fn session_token(
        &self,
        mfa_serial: &str,
        code: &Secret,
        duration_seconds: i32,
    ) -> Result<Credentials, crate::aws::AwsError> {
        self.inner
            .session_token(mfa_serial, code, duration_seconds)
            .await
    }
}

/// Rotates `plan` with every GetCallerIdentity, UpdateAccessKey and DeleteAccessKey waiting
/// 40 s for its turn ([`Queued`]), at the default options (a 60 s verify timeout).
fn rotate_behind_a_queue(world: &World, plan: &KeyPlan) -> (KeyOutcome, Vec<Step>) {
    let connector = Queued {
        inner: FakeConnector::new(&world.iam),
        clock: world.clock.clone(),
        queue: Duration::from_secs(40),
    };
    let options = ExecOptions::default();
    assert_eq!(options.verify_timeout, Duration::from_secs(60));
    let run = Run {
        files: &world.files(),
        plan,
        options: &options,
        cancel: &Cancel::default(),
        session: None,
        destination: &Destination::Holders,
    };
    execute_through(world, &connector, run, async {})
}

/// Time a verification call spends waiting for its turn at the limiter is not verification
/// time: a new key refused twice while it propagates, each call waiting 40 s for its turn
/// (many keys, a slow pace), is still verified, though 80 s pass before its second answer
/// and the verify timeout is 60 s.
#[test]
fn waiting_for_a_turn_does_not_count_against_the_verify_timeout() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world.iam.propagation_delay(2);
    let (outcome, steps) = rotate_behind_a_queue(&world, &plan);
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    let waits = steps.iter().filter(|s| **s == Step::WaitForIam).count();
    assert_eq!(waits, 2, "refused twice while it propagated");
}

/// The same for the retire: each UpdateAccessKey waits 40 s for its turn and IAM refuses the
/// new key twice while it propagates, so 81 s pass before the third attempt, past the 60 s
/// the retire is given; the waits for a turn are not counted, and the old key is retired.
#[test]
fn waiting_for_a_turn_does_not_count_against_the_retire_budget() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::UpdateAccessKey,
        Fault::once(ErrorKind::InvalidClientTokenId).times(2),
    );
    let (outcome, _) = rotate_behind_a_queue(&world, &plan);
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert_eq!(world.iam.count(Action::UpdateAccessKey), 3);
}

#[test]
fn slow_propagation_is_waited_out_with_backoff() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world.iam.propagation_delay(4);
    let start = world.clock_now();
    let (outcome, steps) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(steps.iter().filter(|s| **s == Step::WaitForIam).count(), 4);
    // 1 + 2 + 4 + 8 seconds of backoff, then two 0.5 s gaps between the three successes.
    assert_eq!(world.clock.elapsed_since(start), Duration::from_secs(16));
}

/// A new key that works once and then fails again (IAM propagates unevenly) starts the
/// three-in-a-row count over: nothing is written until three calls in a row succeed.
#[test]
fn a_key_that_works_then_fails_again_starts_the_count_over() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world
        .iam
        .propagation_pattern(vec![true, true, false, true, false]);
    let (outcome, steps) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    let new_id = new_key_of(&outcome);
    let verify_calls: Vec<bool> = world
        .iam
        .calls()
        .into_iter()
        .filter(|c| c.action == Action::GetCallerIdentity && c.key_id == new_id)
        .map(|c| c.ok)
        .collect();
    assert_eq!(
        verify_calls,
        vec![true, true, false, true, false, true, true, true],
        "two successes, a failure, one, a failure, then three in a row"
    );
    assert_eq!(steps.iter().filter(|s| **s == Step::WaitForIam).count(), 2);
}

#[test]
fn a_key_that_never_works_is_deleted_and_the_files_stay_untouched() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    world.iam.propagation_delay(u32::MAX);
    let start = world.clock_now();
    let options = ExecOptions {
        verify_timeout: Duration::from_secs(20),
        ..ExecOptions::default()
    };
    let (outcome, _) = rotate(&world, &plan, &options, &Cancel::default());
    match &outcome {
        KeyOutcome::Failed {
            step: Step::Verify,
            failure: Failure::VerifyTimeout { waited, last },
            cleanup: Cleanup::NewKeyDeleted(_),
            ..
        } => {
            assert_eq!(*waited, Duration::from_secs(20));
            assert_eq!(
                last.as_ref().map(|e| e.kind),
                Some(ErrorKind::InvalidClientTokenId)
            );
        }
        other => panic!("expected a verify timeout, got {other:?}"),
    }
    assert!(world.clock.elapsed_since(start) >= Duration::from_secs(20));
    assert_eq!(world.credentials_text(), before);
    assert_eq!(world.iam.keys(&world.user).len(), 1);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert!(world.journal().readable().is_empty());
}

#[test]
fn a_failed_save_deletes_the_new_key_and_keeps_the_old_file() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    let files = world.files();
    // Replace the credentials file by a directory after it was read: the save must fail.
    let saved_copy = world.dir.path().join("saved");
    std::fs::rename(&world.paths.credentials, &saved_copy).unwrap();
    std::fs::create_dir(&world.paths.credentials).unwrap();
    let journal = world.journal();
    let (outcome, _) = execute(
        &world,
        &files,
        &plan,
        &ExecOptions::default(),
        &Cancel::default(),
        None,
        &Destination::Holders,
    );
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                step: Step::Persist,
                cleanup: Cleanup::NewKeyDeleted(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(world.iam.keys(&world.user).len(), 1);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert!(journal.readable().is_empty());
    std::fs::remove_dir(&world.paths.credentials).unwrap();
    assert_eq!(std::fs::read_to_string(&saved_copy).unwrap(), before);
}

#[test]
fn a_retire_that_keeps_failing_is_partial_and_recover_finishes_it() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::UpdateAccessKey,
        Fault::always(ErrorKind::AccessDenied),
    );
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    assert!(matches!(outcome, KeyOutcome::Partial { .. }), "{outcome:?}");
    assert!(
        world.credentials_text().contains(&new_id),
        "the new key is saved"
    );
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    let pending = world.journal().readable();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].stage, Stage::Persisted);

    world.iam.clear_faults();
    let recovered = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(recovered, Recovered::Finished { .. }),
        "{recovered:?}"
    );
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert!(world.journal().readable().is_empty());
}

#[test]
fn retire_waits_for_iam_to_accept_the_new_key() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::UpdateAccessKey,
        Fault::once(ErrorKind::InvalidClientTokenId).times(2),
    );
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert_eq!(world.iam.count(Action::UpdateAccessKey), 3);
}

#[test]
fn a_cancelled_run_changes_nothing() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    let cancel = Cancel::default();
    cancel.set();
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &cancel);
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                failure: Failure::Interrupted,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(world.credentials_text(), before);
    assert_eq!(world.iam.keys(&world.user).len(), 1);
    assert_eq!(world.iam.count(Action::CreateAccessKey), 0);
}

#[test]
fn an_unwritable_journal_stops_before_any_change() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    std::fs::write(
        world.journal().dir(),
        b"a file where the journal directory should be",
    )
    .unwrap();
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                step: Step::Journal,
                failure: Failure::Journal(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(world.iam.count(Action::CreateAccessKey), 0);
}

#[test]
fn a_key_shared_by_profiles_in_both_files_is_rotated_once_and_written_everywhere() {
    let world = World::new(
        "[dev]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n\n[dev2]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\naws_session_token = stale\n",
        "[profile cfg]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\nregion = eu-west-1\n",
    );
    let plan = world.plan(PlanOptions::default());
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    let files = world.files();
    let holders = files.borrow().holder_names(&new_id);
    assert_eq!(
        holders,
        vec!["dev".to_string(), "dev2".to_string(), "cfg".to_string()]
    );
    assert!(files.borrow().profiles_with_key(&world.old_id).is_empty());
    assert!(
        !world.credentials_text().contains("aws_session_token"),
        "the stale token is dropped"
    );
    assert_eq!(world.iam.count(Action::CreateAccessKey), 1);
}

/// A journal left at a given stage, as a killed process would leave it.
fn interrupted_at(world: &World, stage: Stage) -> Option<String> {
    let plan = world.plan(PlanOptions::default());
    // Run the real engine, then rewind what a kill would have prevented.
    match stage {
        Stage::Intent => {
            // Killed while CreateAccessKey was in flight: the key exists, its answer was lost.
            world.iam.fail(
                Action::CreateAccessKey,
                Fault::once(ErrorKind::Network).after_effect(),
            );
            world
                .iam
                .fail(Action::ListAccessKeys, Fault::once(ErrorKind::AccessDenied));
            let (outcome, _) = rotate(world, &plan, &ExecOptions::default(), &Cancel::default());
            assert!(
                matches!(
                    outcome,
                    KeyOutcome::Failed {
                        cleanup: Cleanup::Unresolved { .. },
                        ..
                    }
                ),
                "{outcome:?}"
            );
            world.iam.clear_faults();
            None
        }
        Stage::Persisted => {
            world.iam.fail(
                Action::UpdateAccessKey,
                Fault::always(ErrorKind::Throttling),
            );
            let (outcome, _) = rotate(world, &plan, &ExecOptions::default(), &Cancel::default());
            world.iam.clear_faults();
            Some(new_key_of(&outcome))
        }
        Stage::Created | Stage::Verified => {
            // Killed after CreateAccessKey was recorded, before the files were written.
            world.iam.fail(
                Action::UpdateAccessKey,
                Fault::always(ErrorKind::Throttling),
            );
            let (outcome, _) = rotate(world, &plan, &ExecOptions::default(), &Cancel::default());
            world.iam.clear_faults();
            let new_id = new_key_of(&outcome);
            // Put the old file back and rewind the journal's stage.
            let text = world.credentials_text();
            let restored = text.replace(&new_id, &world.old_id);
            let journal = world.journal();
            let mut j = journal.readable().remove(0);
            let new_secret = j.new_secret.clone().unwrap();
            std::fs::write(
                &world.paths.credentials,
                restored.replace(new_secret.expose(), world.old_secret.expose()),
            )
            .unwrap();
            j.stage = stage;
            journal.write(&j).unwrap();
            Some(new_id)
        }
    }
}

#[test]
fn recover_from_intent_deletes_the_key_whose_answer_was_lost() {
    let world = World::simple();
    interrupted_at(&world, Stage::Intent);
    assert_eq!(world.iam.keys(&world.user).len(), 2, "an orphan key exists");
    let recovered = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(&recovered, Recovered::Undone { deleted } if deleted.len() == 1),
        "{recovered:?}"
    );
    assert_eq!(world.iam.keys(&world.user).len(), 1);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
}

#[test]
fn recover_from_created_finishes_the_rotation() {
    let world = World::simple();
    let new_id = interrupted_at(&world, Stage::Created).unwrap();
    assert!(world.credentials_text().contains(&world.old_id));
    let recovered = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(recovered, Recovered::Finished { .. }),
        "{recovered:?}"
    );
    assert!(world.credentials_text().contains(&new_id));
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert!(world.journal().readable().is_empty());
}

#[test]
fn recover_undo_from_created_deletes_the_new_key() {
    let world = World::simple();
    let new_id = interrupted_at(&world, Stage::Created).unwrap();
    let recovered = recover(&world, Mode::Undo).unwrap();
    assert!(
        matches!(&recovered, Recovered::Undone { deleted } if deleted == &vec![new_id.clone()]),
        "{recovered:?}"
    );
    assert!(world.credentials_text().contains(&world.old_id));
    assert_eq!(world.key_status(&new_id), None);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
}

#[test]
fn recover_undo_from_persisted_puts_the_old_key_back() {
    let world = World::simple();
    let new_id = interrupted_at(&world, Stage::Persisted).unwrap();
    assert!(world.credentials_text().contains(&new_id));
    let recovered = recover(&world, Mode::Undo).unwrap();
    assert!(
        matches!(recovered, Recovered::Undone { .. }),
        "{recovered:?}"
    );
    let text = world.credentials_text();
    assert!(text.contains(&world.old_id) && text.contains(world.old_secret.expose()));
    assert_eq!(world.key_status(&new_id), None);
}

#[test]
fn undo_is_refused_once_the_old_key_is_retired() {
    let world = World::simple();
    interrupted_at(&world, Stage::Persisted).unwrap();
    let as_old = world.iam.connector().connect(&world.target());
    block_on(crate::aws::Iam::update_access_key(
        &as_old,
        &world.user,
        &world.old_id,
        KeyStatus::Inactive,
    ))
    .unwrap();
    // The old key is inactive, so it cannot even sign the ListAccessKeys that would show it
    // Inactive: IAM (unlike moto) refuses it as an unknown token. (Signed by a session or an
    // administrator, the same journal is refused as `CannotUndo`: see the printed cases.)
    let err = recover(&world, Mode::Undo).unwrap_err();
    assert!(
        matches!(&err, RecoverError::Aws { error, .. } if error.kind == ErrorKind::InvalidClientTokenId),
        "{err:?}"
    );
    assert_eq!(world.journal().readable().len(), 1, "the journal is kept");
}

#[test]
fn the_journal_holds_the_new_secret_while_the_files_do_not() {
    let world = World::simple();
    let new_id = interrupted_at(&world, Stage::Created).unwrap();
    let j = world.journal().readable().remove(0);
    assert_eq!(j.new_key_id.as_deref(), Some(new_id.as_str()));
    assert!(j.new_secret.is_some());
    assert!(!world.credentials_text().contains(&new_id));
}

#[test]
fn with_mfa_required_the_iam_calls_go_through_the_session_and_the_new_key_verifies_itself() {
    let world = World::simple();
    world
        .iam
        .add_mfa_device("alice", "arn:aws:iam::123456789012:mfa/alice");
    world.iam.require_mfa("alice");
    world.iam.set_mfa_code("123456");
    let as_old = world.iam.connector().connect(&world.target());
    let session = block_on(crate::aws::Iam::session_token(
        &as_old,
        "arn:aws:iam::123456789012:mfa/alice",
        &Secret::new("123456"),
        3600,
    ))
    .unwrap();
    assert!(session.access_key_id.starts_with("ASIA"));
    let plan = world.plan(PlanOptions::default());

    // Without the session the account refuses the key change: nothing happens.
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    match &outcome {
        KeyOutcome::Failed {
            step: Step::Create,
            failure: Failure::Aws { error, .. },
            ..
        } => {
            assert_eq!(error.kind, ErrorKind::AccessDenied);
            assert!(error.mentions_mfa() || error.is_explicit_deny());
        }
        other => panic!("expected an MFA refusal, got {other:?}"),
    }

    // With it, one session serves create and retire; the new key verifies with its own key.
    let (outcome, _) = execute(
        &world,
        &world.files(),
        &plan,
        &ExecOptions::default(),
        &Cancel::default(),
        Some(&session),
        &Destination::Holders,
    );
    let new_id = new_key_of(&outcome);
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    let calls = world.iam.calls();
    let create = calls
        .iter()
        .rev()
        .find(|c| c.action == Action::CreateAccessKey)
        .unwrap();
    assert_eq!(create.key_id, session.access_key_id);
    assert!(create.mfa_session);
    let retire = calls
        .iter()
        .find(|c| c.action == Action::UpdateAccessKey)
        .unwrap();
    assert_eq!(
        retire.key_id, session.access_key_id,
        "the old key is retired with the session"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.action == Action::GetCallerIdentity && c.key_id == new_id)
    );
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
}

#[test]
fn verification_matches_the_user_by_account_and_name_not_the_whole_arn() {
    // An administrator's plan may know the user only by name; IAM answers with the user's
    // path in the ARN. Same account and name: the same user.
    let world = World::simple();
    let mut plan = world.plan(PlanOptions::default());
    plan.arn = "arn:aws:iam::123456789012:user/team/ops/alice".into();
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");

    // Another account's user of the same name is someone else: refused, key deleted.
    let world = World::simple();
    let mut plan = world.plan(PlanOptions::default());
    plan.account = "999999999999".into();
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                step: Step::Verify,
                failure: Failure::WrongIdentity { .. },
                cleanup: Cleanup::NewKeyDeleted(_),
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[test]
fn a_key_with_an_unfinished_rotation_is_not_rotated_again() {
    let world = World::simple();
    let plan = world.plan(PlanOptions::default());
    let new_id = interrupted_at(&world, Stage::Created).unwrap();
    let before = world.journal().readable();
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                step: Step::Journal,
                failure: Failure::Journal(super::journal::JournalError::Pending { .. }),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        world.journal().readable(),
        before,
        "the pending record is kept"
    );
    assert_eq!(
        world.key_status(&new_id),
        Some(KeyStatus::Active),
        "its key is left for recover"
    );
}

/// `--auth-profile admin --user-name alice --output env`: an administrator's keys make the
/// IAM calls, and the new key goes nowhere but the run's output.
fn rotate_printed(world: &World, plan: &KeyPlan) -> (KeyOutcome, Credentials) {
    world.iam.add_user("admin");
    world.iam.grant_admin("admin");
    let (id, secret) = world
        .iam
        .add_key("admin", world.clock_now(), KeyStatus::Active);
    let admin = Credentials::long_term(id, secret);
    // A printed rotation is one of a key that no local file holds (`--user-name`).
    let elsewhere = crate::profiles::FilePaths {
        credentials: world.paths.credentials.with_file_name("no-credentials"),
        config: world.paths.config.with_file_name("no-config"),
    };
    let files = RefCell::new(ProfileFiles::load(&elsewhere).unwrap());
    let (outcome, _) = execute(
        world,
        &files,
        plan,
        &ExecOptions::default(),
        &Cancel::default(),
        Some(&admin),
        &Destination::Printed,
    );
    (outcome, admin)
}

/// A printed-only rotation whose old key could not be retired (UpdateAccessKey kept failing):
/// a partial outcome, its journal kept. The faults are cleared again; returns the new key and
/// the administrator's credentials.
fn printed_but_not_retired(world: &World) -> (String, Credentials) {
    let plan = world.plan(PlanOptions::default());
    world.iam.fail(
        Action::UpdateAccessKey,
        Fault::always(ErrorKind::ServiceUnavailable),
    );
    let (outcome, admin) = rotate_printed(world, &plan);
    assert!(matches!(outcome, KeyOutcome::Partial { .. }), "{outcome:?}");
    world.iam.clear_faults();
    (new_key_of(&outcome), admin)
}

#[test]
fn a_printed_key_keeps_its_journal_until_it_is_printed_and_recover_hands_it_back() {
    let world = World::simple();
    let before = world.credentials_text();
    let plan = world.plan(PlanOptions::default());
    let (outcome, admin) = rotate_printed(&world, &plan);
    let KeyOutcome::Rotated {
        new_key_id,
        new_secret,
        ..
    } = &outcome
    else {
        panic!("expected a rotation, got {outcome:?}");
    };
    assert_eq!(world.credentials_text(), before, "no file is written");
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    // Killed before the output was written: the journal is the only copy of the new key.
    let pending = world.journal().readable();
    assert_eq!(pending.len(), 1, "the journal outlives the rotation");
    assert_eq!(pending[0].new_secret.as_ref(), Some(new_secret));
    assert!(!pending[0].printed);

    // The old key is retired, so recovery cannot undo: it hands the key back to be printed
    // and keeps the journal until it has been.
    match recover_as(&world, Mode::Finish, Some(&admin)).unwrap() {
        Recovered::Unprinted {
            new_key_id: id,
            new_secret: secret,
        } => {
            assert_eq!(&id, new_key_id);
            assert_eq!(&secret, new_secret);
        }
        other => panic!("expected the key to print, got {other:?}"),
    }
    assert!(
        matches!(
            recover_as(&world, Mode::Undo, Some(&admin)),
            Ok(Recovered::Unprinted { .. })
        ),
        "--undo cannot delete the only working key either"
    );
    assert_eq!(world.key_status(new_key_id), Some(KeyStatus::Active));
    assert_eq!(world.journal().readable().len(), 1);

    world.journal().mark_printed(&world.old_id, true).unwrap();
    assert!(world.journal().readable().is_empty());
    assert_eq!(world.key_status(new_key_id), Some(KeyStatus::Active));
}

#[test]
fn an_unprinted_key_is_undone_while_the_old_key_is_active() {
    let world = World::simple();
    let (new_id, admin) = printed_but_not_retired(&world);
    // Killed before printing: the new key reached no one and the old key still works.
    let recovered = recover_as(&world, Mode::Finish, Some(&admin)).unwrap();
    match recovered {
        Recovered::Undone { deleted } => assert_eq!(deleted, vec![new_id.clone()]),
        other => panic!("expected an undo, got {other:?}"),
    }
    assert_eq!(world.key_status(&new_id), None);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert!(world.journal().readable().is_empty());
}

#[test]
fn a_printed_partial_rotation_is_finished_by_recover() {
    let world = World::simple();
    let (new_id, admin) = printed_but_not_retired(&world);
    // The run printed the new key: the user holds it now, so it must not be deleted.
    world.journal().mark_printed(&world.old_id, false).unwrap();
    let pending = world.journal().readable();
    assert!(pending[0].printed);
    let recovered = recover_as(&world, Mode::Finish, Some(&admin)).unwrap();
    assert!(
        matches!(&recovered, Recovered::Finished { new_key_id, .. } if *new_key_id == new_id),
        "{recovered:?}"
    );
    assert_eq!(world.key_status(&new_id), Some(KeyStatus::Active));
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert!(world.journal().readable().is_empty());
}

/// Issue 10, defect 3: an `intent` journal left by an old run must not delete a key that
/// another machine made long after (outside the create call's window), nor one that another
/// journal owns. It is listed and left alone; the journal is finished (nothing was made).
#[test]
fn an_old_intent_journal_never_deletes_a_key_made_later_elsewhere() {
    let world = World::simple();
    interrupted_at(&world, Stage::Intent);
    // The lost key of that run was cleaned up by hand; a month later CI makes a key.
    for k in world.iam.keys(&world.user) {
        if k.id != world.old_id {
            let admin = world.iam.connector().connect(&world.target());
            block_on(crate::aws::Iam::delete_access_key(
                &admin,
                &world.user,
                &k.id,
            ))
            .unwrap();
        }
    }
    world.clock.advance(Duration::from_secs(30 * 86_400));
    let (ci_key, _) = world
        .iam
        .add_key(&world.user, world.clock_now(), KeyStatus::Active);
    let recovered = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(&recovered, Recovered::Undone { deleted } if deleted.is_empty()),
        "{recovered:?}"
    );
    assert_eq!(world.key_status(&ci_key), Some(KeyStatus::Active));
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert!(world.journal().readable().is_empty());
}

/// Issue 10, defect 3: when the new key is known, undo deletes exactly that key, and never
/// another unknown key of the user (another machine's, made meanwhile).
#[test]
fn undo_deletes_exactly_the_new_key() {
    let world = World::new(
        "[dev]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n",
        "",
    );
    let new_id = interrupted_at(&world, Stage::Created).unwrap();
    // Someone turns the rotation's way around: deletes nothing, but IAM now lists a key
    // that no one here knows. (Two keys is IAM's limit, so make room by hand first.)
    let admin = world.iam.connector().connect(&world.target());
    block_on(crate::aws::Iam::delete_access_key(
        &admin,
        &world.user,
        &new_id,
    ))
    .unwrap();
    let (other, _) = world
        .iam
        .add_key(&world.user, world.clock_now(), KeyStatus::Active);
    let recovered = recover(&world, Mode::Undo).unwrap();
    assert!(
        matches!(&recovered, Recovered::Undone { deleted } if deleted.is_empty()),
        "{recovered:?}"
    );
    assert_eq!(world.key_status(&other), Some(KeyStatus::Active));
}

/// Issue 10, defect 3: a key that fits the window but that another journal owns is not
/// this rotation's.
#[test]
fn a_key_of_another_journal_is_never_taken_for_a_lost_one() {
    let world = World::simple();
    interrupted_at(&world, Stage::Intent);
    let lost: Vec<String> = world
        .iam
        .keys(&world.user)
        .into_iter()
        .map(|k| k.id)
        .filter(|id| *id != world.old_id)
        .collect();
    assert_eq!(lost.len(), 1);
    let mut other = world.journal().readable().remove(0);
    other.old_key_id = "AKIAOTHERROTATION000".into();
    other.new_key_id = Some(lost[0].clone());
    world.journal().write(&other).unwrap();
    let recovered = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(&recovered, Recovered::Undone { deleted } if deleted.is_empty()),
        "{recovered:?}"
    );
    assert_eq!(world.key_status(&lost[0]), Some(KeyStatus::Active));
}

/// Issue 10, defect 1: the profile that held the old key was removed (or the files are not
/// the ones the rotation worked on): the new key would reach no one, so recovery keeps the
/// old key Active and the journal, and says why.
#[test]
fn recovery_never_retires_the_old_key_when_the_new_one_would_reach_no_one() {
    let world = World::simple();
    let new_id = interrupted_at(&world, Stage::Verified).unwrap();
    std::fs::write(&world.paths.credentials, "[somebody-else]\nregion = x\n").unwrap();
    let err = recover(&world, Mode::Finish).unwrap_err();
    match &err {
        RecoverError::PlacesChanged {
            profiles,
            paths,
            undo,
        } => {
            assert_eq!(profiles, &vec!["dev".to_string()]);
            assert!(paths.contains(&world.paths.credentials), "{paths:?}");
            assert!(!undo, "refused while finishing, not undoing");
        }
        other => panic!("expected PlacesChanged, got {other:?}"),
    }
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert_eq!(world.key_status(&new_id), Some(KeyStatus::Active));
    assert_eq!(world.journal().readable().len(), 1, "the journal is kept");
    // Undo is refused too: with the new key deleted, no file would hold a working key, and
    // the journal (the last copy of the old secret) would go (found by the simulation).
    let err = recover(&world, Mode::Undo).unwrap_err();
    assert!(
        matches!(&err, RecoverError::PlacesChanged { undo: true, .. }),
        "{err:?}"
    );
    assert_eq!(world.key_status(&new_id), Some(KeyStatus::Active));
    assert_eq!(world.journal().readable().len(), 1, "the journal is kept");
    // With the profile back, the rotation finishes.
    std::fs::write(
        &world.paths.credentials,
        format!(
            "[dev]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            world.old_id,
            world.old_secret.expose()
        ),
    )
    .unwrap();
    let finished = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(finished, Recovered::Finished { .. }),
        "{finished:?}"
    );
    assert!(world.credentials_text().contains(&new_id));
}

/// Issue 10, defect 4: a section the SDKs ignore but the AWS CLI reads (`[profile dev]` in
/// the credentials file) still holds the old key after the save: it is not retired; the run
/// is partial and the journal kept.
#[test]
fn a_line_still_naming_the_old_key_stops_the_retirement() {
    let world = World::new(
        "[dev]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n\
         [profile dev]\naws_access_key_id = {ID}\naws_secret_access_key = {SECRET}\n",
        "",
    );
    let plan = world.plan(PlanOptions::default());
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let KeyOutcome::Partial {
        failure: Failure::StillHeld(places),
        ..
    } = &outcome
    else {
        panic!("expected a partial rotation, got {outcome:?}");
    };
    assert_eq!(places.len(), 1, "{places:?}");
    let header = world
        .credentials_text()
        .lines()
        .position(|l| l == "[profile dev]")
        .unwrap();
    assert_eq!(places[0].line, header + 2, "the line under the header");
    assert_eq!(places[0].section.as_deref(), Some("profile dev"));
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert_eq!(world.journal().readable().len(), 1);
    // Recovery keeps refusing while the line is there...
    let err = recover(&world, Mode::Finish).unwrap_err();
    assert!(matches!(err, RecoverError::StillHeld(_)), "{err:?}");
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    // ...and finishes once it is gone.
    let text = world.credentials_text();
    let cut = text.find("[profile dev]").unwrap();
    std::fs::write(&world.paths.credentials, &text[..cut]).unwrap();
    let finished = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(finished, Recovered::Finished { .. }),
        "{finished:?}"
    );
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
}

/// The Inactive key that `--delete-inactive` would delete was turned back on meanwhile: it is
/// an Active key the run did not create, so it is left alone and nothing changes.
#[test]
fn an_inactive_key_turned_back_on_meanwhile_is_not_deleted() {
    let world = World::simple();
    let (second, _) = world.iam.add_key(
        &world.user,
        world.clock_now() - jiff::SignedDuration::from_hours(24),
        KeyStatus::Inactive,
    );
    let plan = world.plan(PlanOptions {
        delete_inactive: true,
        ..PlanOptions::default()
    });
    assert_eq!(plan.delete_first.as_deref(), Some(second.as_str()));
    let admin = world.iam.connector().connect(&world.target());
    block_on(crate::aws::Iam::update_access_key(
        &admin,
        &world.user,
        &second,
        KeyStatus::Active,
    ))
    .unwrap();
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(
        matches!(
            &outcome,
            KeyOutcome::Failed {
                failure: Failure::InactiveKeyChanged { .. },
                cleanup: Cleanup::NothingCreated,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(world.key_status(&second), Some(KeyStatus::Active));
    assert_eq!(world.iam.count(Action::CreateAccessKey), 0);
}

/// A deactivated old key is noted, with the time, in the record of retired keys in the state
/// directory (for `prune` and `status`); a deleted one is not.
#[test]
fn a_deactivated_key_is_recorded_in_the_state_directory() {
    for delete_old in [false, true] {
        let world = World::simple();
        let state = world.dir.path().join("state");
        let plan = world.plan(PlanOptions {
            delete_old,
            ..Default::default()
        });
        let connector = FakeConnector::new(&world.iam);
        let journal = world.journal().with_index(Some(&state));
        let files = world.files();
        let progress = |_: &str, _: Step| {};
        let engine = Engine {
            connector: &connector,
            clock: &world.clock,
            files: &files,
            journal: &journal,
            options: &ExecOptions::default(),
            cancel: &Cancel::default(),
            progress: &progress,
            gates: &world.gates,
        };
        let target = world.target();
        let holders = vec!["dev".to_string()];
        let outcome = block_on(engine.execute(Job {
            plan: &plan,
            target: &target,
            holders: &holders,
            session: None,
            mfa_serial: None,
            destination: &Destination::Holders,
            auth_profile: None,
            gates: &[],
        }));
        assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
        let record = crate::rotation::retired::RetiredStore::new(&state)
            .list()
            .unwrap();
        if delete_old {
            assert!(record.is_empty(), "{record:?}");
        } else {
            assert_eq!(record.len(), 1);
            assert_eq!(record[0].access_key_id, world.old_id);
            assert_eq!(record[0].user, "alice");
            assert_eq!(record[0].retired, crate::time::Clock::now(&world.clock));
        }
    }
}
// ---- Hooks and env files (gates) ----

fn hook(command: &str) -> Gate {
    Gate::Hook {
        command: command.into(),
        format: HookFormat::Json,
        profile: None,
    }
}

/// A world whose rotation has two hooks, `a` and `b`; `on_run` records whether the old key
/// was Active and the files held the new key each time a hook ran.
/// (old key Active, new key in the files) at each hook run.
type Seen = std::rc::Rc<RefCell<Vec<(bool, bool)>>>;

fn gated_world() -> (World, Seen) {
    let mut world = World::simple();
    world.gate_list = vec![hook("a"), hook("b")];
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let (iam, paths, old, record) = (
        world.iam.clone(),
        world.paths.clone(),
        world.old_id.clone(),
        seen.clone(),
    );
    *world.gates.on_run.borrow_mut() = Some(Box::new(move |_, d| {
        let active = iam
            .keys("alice")
            .iter()
            .any(|k| k.id == old && k.status == KeyStatus::Active);
        let in_files = std::fs::read_to_string(&paths.credentials)
            .unwrap()
            .contains(&d.access_key_id);
        record.borrow_mut().push((active, in_files));
    }));
    (world, seen)
}

#[test]
fn gates_run_after_the_files_and_before_the_old_key_is_retired() {
    let (world, seen) = gated_world();
    let plan = world.plan(PlanOptions::default());
    let (outcome, steps) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    assert!(matches!(outcome, KeyOutcome::Rotated { .. }), "{outcome:?}");
    assert_eq!(
        steps,
        vec![
            Step::Journal,
            Step::Create,
            Step::Verify,
            Step::Verified,
            Step::Verified,
            Step::Persist,
            Step::Gates,
            Step::Retire,
            Step::Done
        ]
    );
    // Each hook ran once, with the new key, while the old key was Active and the files
    // already held the new one.
    assert_eq!(world.gates.labels_run(), ["a", "b"]);
    assert!(
        world
            .gates
            .runs
            .borrow()
            .iter()
            .all(|(_, id, _)| *id == new_id)
    );
    assert_eq!(*seen.borrow(), [(true, true), (true, true)]);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert!(world.journal().readable().is_empty());
}

#[test]
fn a_failing_gate_keeps_the_old_key_active_and_recover_runs_only_the_gates_not_passed() {
    let (world, _) = gated_world();
    world.gates.fail(
        "b",
        vec![GateResult::Exited {
            code: Some(7),
            signal: None,
        }],
    );
    let plan = world.plan(PlanOptions::default());
    let (outcome, steps) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    match &outcome {
        KeyOutcome::Partial {
            failure: failure @ Failure::Gates(failed),
            ..
        } => {
            assert_eq!(failed.len(), 1);
            let text = failure.to_string();
            assert!(text.contains("hook `b` exited with status 7"), "{text}");
            assert!(text.contains("iam-keys recover"), "{text}");
        }
        other => panic!("expected a partial rotation, got {other:?}"),
    }
    assert!(!steps.contains(&Step::Retire));
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    // The journal is ready for recovery: persisted, `a` passed, `b` not.
    let journals = world.journal().readable();
    assert_eq!(journals.len(), 1);
    assert_eq!(journals[0].stage, Stage::Persisted);
    let passed: Vec<bool> = journals[0].gates.iter().map(|g| g.passed).collect();
    assert_eq!(passed, [true, false]);
    assert_eq!(journals[0].version, super::journal::VERSION);
    // It holds the new secret once, as before hooks existed (the gates record no secret).
    let text = std::fs::read_to_string(world.journal().path_for(&world.old_id)).unwrap();
    let secret = match &outcome {
        KeyOutcome::Partial { new_secret, .. } => new_secret.expose().to_string(),
        _ => unreachable!(),
    };
    assert_eq!(text.matches(&secret).count(), 1);

    // Recovery runs only `b`, then retires.
    world.gates.runs.borrow_mut().clear();
    let recovered = recover(&world, Mode::Finish).unwrap();
    assert!(
        matches!(recovered, Recovered::Finished { .. }),
        "{recovered:?}"
    );
    assert_eq!(world.gates.labels_run(), ["b"]);
    assert_eq!(world.gates.runs.borrow()[0].1, new_id);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
    assert!(world.journal().readable().is_empty());
}

#[test]
fn a_gate_that_still_fails_on_recovery_keeps_the_journal_and_the_old_key() {
    let (world, _) = gated_world();
    let hang = GateResult::TimedOut {
        after: Duration::from_secs(60),
    };
    world.gates.fail("a", vec![hang.clone(), hang]);
    let plan = world.plan(PlanOptions::default());
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Partial { .. }), "{outcome:?}");
    world.gates.runs.borrow_mut().clear();
    match recover(&world, Mode::Finish) {
        Err(e @ RecoverError::Gates(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("hook `a` did not finish within 60s"),
                "{text}"
            );
        }
        other => panic!("expected the gate to fail again, got {other:?}"),
    }
    assert_eq!(world.gates.labels_run(), ["a"]);
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    let journals = world.journal().readable();
    let passed: Vec<bool> = journals[0].gates.iter().map(|g| g.passed).collect();
    assert_eq!(passed, [false, true]);
    // Third time lucky.
    assert!(matches!(
        recover(&world, Mode::Finish),
        Ok(Recovered::Finished { .. })
    ));
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Inactive));
}

#[test]
fn undo_is_refused_once_a_gate_took_the_new_key() {
    let (world, _) = gated_world();
    world
        .gates
        .fail("b", vec![GateResult::Error("boom".into())]);
    let plan = world.plan(PlanOptions::default());
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    let new_id = new_key_of(&outcome);
    match recover(&world, Mode::Undo) {
        Err(e @ RecoverError::CannotUndo(_)) => {
            let text = e.to_string();
            assert!(text.contains("hook `a` already took the new key"), "{text}");
        }
        other => panic!("expected undo to be refused, got {other:?}"),
    }
    // Nothing changed: both keys Active, the journal kept.
    assert_eq!(world.key_status(&world.old_id), Some(KeyStatus::Active));
    assert_eq!(world.key_status(&new_id), Some(KeyStatus::Active));
    assert_eq!(world.journal().readable().len(), 1);
}

#[test]
fn a_rotation_without_gates_writes_a_version_2_journal() {
    let world = World::simple();
    let store = world.journal();
    let plan = world.plan(PlanOptions::default());
    // Fail the retire so the journal stays to be read.
    world.iam.fail(
        Action::UpdateAccessKey,
        Fault::always(ErrorKind::AccessDenied),
    );
    let (outcome, _) = rotate(&world, &plan, &ExecOptions::default(), &Cancel::default());
    assert!(matches!(outcome, KeyOutcome::Partial { .. }), "{outcome:?}");
    let journals = store.readable();
    assert_eq!(journals[0].version, 2);
    let text = std::fs::read_to_string(store.path_for(&world.old_id)).unwrap();
    assert!(!text.contains("gates"), "{text}");
}
