// Over 500 lines: the limiter and the decorators that put every call of both traits behind it.
//! One adaptive bound on the AWS calls in flight, shared by every call of a run, and the
//! decorators that put it in front of any [`Iam`] ([`Limited`], [`LimitedConnector`]) or
//! [`AccountIam`] client.
//!
//! **What is bounded.** Calls in flight, not rotations: a rotation that waits (verification
//! backoff, IAM propagation, a throttling backoff) holds no permit, so any number of keys can
//! wait at once while the calls themselves stay within the bound.
//!
//! **Order.** Permits go first come, first served, except to CreateAccessKey: it starts a
//! rotation's changes, and waits behind every call already waiting, so rotations under way
//! finish before more begin (see `Limiter::acquire`).
//!
//! **How the bound adapts (AIMD).** It starts at [`LimiterOptions::start`] and grows while
//! calls succeed: by one per success until IAM first throttles (slow start), then by one per
//! window of as many successes as the bound (additive increase), never above
//! [`LimiterOptions::cap`] (`--concurrency`). A `Throttling` answer halves it (never below
//! one); the calls that were already in flight when it halved do not halve it again.
//!
//! **The pace.** Calls in flight are not calls per second, and IAM's limits are: once a
//! service throttles, its calls are also paced, at a rate learned from the answers (see
//! [`pace`]). There is one pace for the run, kept by the calls of every service that has
//! throttled: services refused alike may share one budget (a proxy's, an account's), and
//! separate paces would each hand their slack to the other and overshoot it together. A
//! service that has never throttled (STS, while only IAM is busy) is not slowed. A call
//! waiting for its turn holds its permit; a run that is never throttled is never paced.
//!
//! **Throttling.** A throttled call (except CreateAccessKey, below) gives its permit back,
//! waits a jittered exponential
//! backoff ([`LimiterOptions::backoff_initial`] doubling to [`LimiterOptions::backoff_max`],
//! half fixed, half random) and is sent again, for as long as its attempts and backoffs
//! stay within [`LimiterOptions::throttle_budget`] (a wait for its turn, behind other calls
//! or at the pace, is not counted: that is not IAM refusing it); then it fails with IAM's
//! `Throttling` error, saying how long it was tried. A `Throttling` refusal made
//! nothing, so every action, even one that is not [safe to retry](Action::retry_safe), may
//! be sent again after it; CreateAccessKey nonetheless gets one attempt here
//! ([`Limiter::call_once`]), because the rotation records in its journal, before each
//! attempt, the window in which that attempt can take effect, and sends it again itself
//! (`rotation::exec`). No other failure is ever re-sent here: the SDK's standard retries
//! (5xx, timeouts, connection errors) follow [`Action::retry_safe`], and the SDK is told not to
//! retry `Throttling` itself (see `sdk::NoThrottlingRetries`), so no call waits on the SDK's
//! backoff while it holds a permit.
//!
//! Must not: print, read the environment, or re-send a call after a failure other than
//! `Throttling`.

use super::account::{
    AccountAction, AccountIam, CredentialReport, IamUser, ManagedPolicy, OrgAccount, PolicyVersion,
    ReportState,
};
use super::{
    AccessKeyMeta, Action, AwsError, CallerIdentity, Connector, Credentials, ErrorKind, Iam,
    KeyStatus, LastUsed, MfaDevice, NewAccessKey, Target,
};
use crate::secret::Secret;
use crate::time::{Clock, RealClock};
use jiff::Timestamp;
use pace::Pace;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

mod pace;

/// The services a call may go to: a service that has never throttled in a run is not paced.
const SERVICES: usize = 3;

/// Which service answers `action`: IAM (0), STS (1) or Organizations (2).
fn service(action: Action) -> usize {
    use super::account::AccountAction as A;
    match action {
        Action::GetCallerIdentity | Action::GetSessionToken | Action::Account(A::AssumeRole) => 1,
        Action::Account(A::ListAccounts) => 2,
        _ => 0,
    }
}

/// Whether `action` starts a rotation's changes: such calls wait behind the calls of
/// rotations under way ([`Limiter::acquire`]).
fn starts_work(action: Action) -> bool {
    action == Action::CreateAccessKey
}

/// The default `--concurrency`: the most AWS calls in flight at once. See the README
/// ("Many keys at once") for the measurement behind it.
pub const DEFAULT_CAP: u16 = 16;

/// The tunables of a [`Limiter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimiterOptions {
    /// Calls in flight at the start (at most `cap`).
    pub start: usize,
    /// The most calls in flight, ever (`--concurrency`).
    pub cap: usize,
    /// How long one call is sent again while IAM answers `Throttling`: its attempts and the
    /// backoffs between them, not its waits for a turn.
    pub throttle_budget: Duration,
    /// The first wait after a `Throttling` answer.
    pub backoff_initial: Duration,
    /// The longest wait between two attempts of a throttled call.
    pub backoff_max: Duration,
}

impl LimiterOptions {
    /// The defaults, with `cap` calls in flight at most.
    pub fn with_cap(cap: usize) -> LimiterOptions {
        let cap = cap.max(1);
        LimiterOptions {
            // Optimistic: IAM's first `Throttling` halves it soon enough, and a lower start
            // only delays the first round of calls (measured in `cargo bench --bench end_to_end`).
            start: cap,
            cap,
            throttle_budget: Duration::from_secs(120),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
        }
    }
}

impl Default for LimiterOptions {
    fn default() -> Self {
        LimiterOptions::with_cap(DEFAULT_CAP as usize)
    }
}

/// What a limiter saw, for tests, logs and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Attempts sent (a throttled call sent three times counts three).
    pub attempts: usize,
    /// `Throttling` answers.
    pub throttled: usize,
    /// Calls that failed because the throttle budget ran out.
    pub gave_up: usize,
    /// The bound now.
    pub limit: usize,
    /// The lowest and highest the bound has been.
    pub min_limit: usize,
    pub max_limit: usize,
    /// The most calls that were in flight at once.
    pub max_in_flight: usize,
}

struct State {
    limit: usize,
    in_flight: usize,
    /// Permits that are out and must not come back (the bound fell below them).
    debt: usize,
    /// Successes since the bound last grew.
    window: usize,
    /// Bumped on every decrease: a throttled call from an older generation does not decrease
    /// the bound again.
    generation: u64,
    /// Whether IAM has throttled yet (slow start until it does).
    throttled_once: bool,
    rng: u64,
    /// The pace of the calls to the services that have throttled (see [`pace`]).
    pace: Pace,
    /// Which services have throttled in this run: their calls keep the pace.
    paced: [bool; SERVICES],
    stats: LimiterStats,
}

/// The shared, adaptive bound on AWS calls in flight. Single-threaded (`Rc`), like the runtime.
pub struct Limiter<K: Clock = RealClock> {
    clock: K,
    options: LimiterOptions,
    semaphore: Semaphore,
    /// The queue of paced calls: first come, first sent.
    turn: Mutex<()>,
    /// The way in for calls that start a rotation's changes (CreateAccessKey): one at a time
    /// waits for a permit, so every other call already waiting goes first (see
    /// [`Limiter::acquire`]).
    starting: Semaphore,
    state: RefCell<State>,
}

/// A permit: the right to have one call in flight. Given back on drop (also when the call's
/// future is dropped half-way, by Ctrl-C for instance).
struct Permit<'a, K: Clock> {
    limiter: &'a Limiter<K>,
    generation: u64,
    /// The service called, and when the call was sent.
    service: usize,
    sent: Timestamp,
    released: Cell<bool>,
}

impl<K: Clock> Drop for Permit<'_, K> {
    fn drop(&mut self) {
        if !self.released.replace(true) {
            self.limiter.release();
        }
    }
}

impl Limiter<RealClock> {
    /// A limiter on the real clock.
    pub fn new(options: LimiterOptions) -> Rc<Limiter<RealClock>> {
        Rc::new(Limiter::with_clock(RealClock, options))
    }
}

impl<K: Clock> Limiter<K> {
    pub fn with_clock(clock: K, options: LimiterOptions) -> Limiter<K> {
        let cap = options.cap.max(1);
        let start = options.start.clamp(1, cap);
        let seed = clock.now().as_nanosecond() as u64 | 1;
        Limiter {
            clock,
            semaphore: Semaphore::new(start),
            turn: Mutex::new(()),
            starting: Semaphore::new(1),
            state: RefCell::new(State {
                limit: start,
                in_flight: 0,
                debt: 0,
                window: 0,
                generation: 0,
                throttled_once: false,
                rng: seed,
                pace: Pace::default(),
                paced: [false; SERVICES],
                stats: LimiterStats {
                    limit: start,
                    min_limit: start,
                    max_limit: start,
                    ..LimiterStats::default()
                },
            }),
            options: LimiterOptions {
                cap,
                start,
                ..options
            },
        }
    }

    pub fn options(&self) -> &LimiterOptions {
        &self.options
    }

    pub fn stats(&self) -> LimiterStats {
        self.state.borrow().stats.clone()
    }

    /// A permit for `action`, and, once its service has throttled in this run, its turn at
    /// the pace.
    ///
    /// Permits go first come, first served, with one exception: a call that starts a
    /// rotation's changes ([`starts_work`]) queues for a permit only when no other such call
    /// does, so it waits behind every call that was already waiting, the verifications and
    /// retirements of rotations under way among them. Many keys at once then finish one by
    /// one as they go rather than all together at the end, and the last verification window
    /// opens sooner (`cargo bench --bench end_to_end`, 50 profiles).
    async fn acquire(&self, action: Action) -> Permit<'_, K> {
        let service = service(action);
        let closed = "the limiter's semaphores are never closed";
        let starting = if starts_work(action) {
            Some(self.starting.acquire().await.expect(closed))
        } else {
            None
        };
        self.semaphore.acquire().await.expect(closed).forget();
        drop(starting);
        let mut permit = {
            let mut s = self.state.borrow_mut();
            s.in_flight += 1;
            s.stats.attempts += 1;
            s.stats.max_in_flight = s.stats.max_in_flight.max(s.in_flight);
            Permit {
                limiter: self,
                generation: s.generation,
                service,
                sent: self.clock.now(),
                released: Cell::new(false),
            }
        };
        if self.state.borrow().paced[service] {
            let _turn = self.turn.lock().await;
            loop {
                // Asked again after each sleep: a refusal meanwhile slows the pace at once.
                let wait = self.state.borrow().pace.wait(self.clock.now());
                if wait.is_zero() {
                    break;
                }
                self.clock.sleep(wait).await;
            }
            permit.sent = self.clock.now();
            self.state.borrow_mut().pace.sent(permit.sent);
        }
        permit
    }

    fn release(&self) {
        let mut s = self.state.borrow_mut();
        s.in_flight -= 1;
        if s.debt > 0 {
            s.debt -= 1;
        } else {
            self.semaphore.add_permits(1);
        }
    }

    fn on_success(&self) {
        let mut s = self.state.borrow_mut();
        s.pace.succeeded(self.clock.now());
        s.window += 1;
        let grow = if s.throttled_once {
            s.window >= s.limit
        } else {
            true
        };
        if grow && s.limit < self.options.cap {
            s.limit += 1;
            s.window = 0;
            s.stats.limit = s.limit;
            s.stats.max_limit = s.stats.max_limit.max(s.limit);
            if s.debt > 0 {
                s.debt -= 1;
            } else {
                self.semaphore.add_permits(1);
            }
        } else if grow {
            s.window = 0;
        }
    }

    fn on_throttle(&self, generation: u64, service: usize, sent: Timestamp) {
        let mut s = self.state.borrow_mut();
        s.stats.throttled += 1;
        s.throttled_once = true;
        s.paced[service] = true;
        let in_flight = s.in_flight;
        if let Some(rate) = s.pace.throttled(sent, self.clock.now(), in_flight) {
            tracing::debug!(rate, "throttled: calls paced at this many a second");
        }
        if generation != s.generation {
            return;
        }
        s.generation += 1;
        s.window = 0;
        let next = (s.limit / 2).max(1);
        let drop_by = s.limit - next;
        s.limit = next;
        s.stats.limit = next;
        s.stats.min_limit = s.stats.min_limit.min(next);
        let forgotten = self.semaphore.forget_permits(drop_by);
        s.debt += drop_by - forgotten;
    }

    /// The wait before attempt `attempt + 1` of a throttled call: half of
    /// `initial * 2^attempt` (capped), plus a random part up to the other half.
    fn backoff(&self, attempt: u32) -> Duration {
        let o = &self.options;
        let step = o
            .backoff_initial
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(o.backoff_max);
        let mut s = self.state.borrow_mut();
        // xorshift64: jitter needs no cryptographic randomness.
        let mut x = s.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.rng = x;
        let half = step / 2;
        let random = (half.as_nanos() as u64).checked_mul(x % 1024).unwrap_or(0) / 1024;
        half + Duration::from_nanos(random)
    }

    /// One attempt under the bound, never sent again: `Throttling` still lowers the bound,
    /// and is returned to the caller. `before` runs once the attempt has its turn (its permit,
    /// and its turn at the pace), right before it is sent; if `before` fails, nothing is sent
    /// and its error is returned.
    pub async fn call_once<T, E, Fut>(
        &self,
        action: Action,
        before: impl AsyncFnOnce() -> Result<(), E>,
        call: Fut,
    ) -> Result<Result<T, AwsError>, E>
    where
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let permit = self.acquire(action).await;
        before().await?;
        let result = call.await;
        let (generation, service, sent) = (permit.generation, permit.service, permit.sent);
        drop(permit);
        match &result {
            Ok(_) => self.on_success(),
            Err(e) if e.kind == ErrorKind::Throttling => {
                self.on_throttle(generation, service, sent)
            }
            Err(_) => {}
        }
        Ok(result)
    }

    /// Make one call under the bound: `call` is invoked once per attempt. Attempts are sent
    /// again only after `Throttling`, while the throttle budget lasts.
    pub async fn call<T, F, Fut>(&self, action: Action, call: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        self.call_noting(action, None, call).await
    }

    /// [`Limiter::call`], noting in `sent` when each attempt was sent.
    async fn call_noting<T, F, Fut>(
        &self,
        action: Action,
        sent: Option<&Cell<Option<Timestamp>>>,
        mut call: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        // The time spent throttled: the attempts, from their sending to their refusal, and
        // the backoffs between them. A wait for a turn (many calls ahead, a slow pace) is not
        // IAM refusing this call, and does not count against the throttle budget.
        let mut spent = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            let permit = self.acquire(action).await;
            if let Some(noted) = sent {
                noted.set(Some(permit.sent));
            }
            let result = call().await;
            let (generation, service, sent) = (permit.generation, permit.service, permit.sent);
            drop(permit);
            match result {
                Err(error) if error.kind == ErrorKind::Throttling => {
                    self.on_throttle(generation, service, sent);
                    spent += self.clock.now().duration_since(sent).unsigned_abs();
                    let wait = self.backoff(attempt);
                    attempt += 1;
                    if spent + wait > self.options.throttle_budget {
                        self.state.borrow_mut().stats.gave_up += 1;
                        return Err(gave_up(error, attempt, spent));
                    }
                    tracing::debug!(
                        action = action.as_str(),
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "throttled; waiting without a permit"
                    );
                    self.clock.sleep(wait).await;
                    spent += wait;
                }
                Ok(value) => {
                    self.on_success();
                    return Ok(value);
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// The throttling error of the last attempt, saying how long the call was tried.
fn gave_up(mut error: AwsError, attempts: u32, spent: Duration) -> AwsError {
    let said = error
        .message
        .take()
        .unwrap_or_else(|| "Rate exceeded".into());
    error.message = Some(format!(
        "{said}; still throttled after {attempts} attempts over {}s: IAM is busy with other \
         calls in this account; try again later or lower --concurrency",
        spent.as_secs()
    ));
    error
}

/// An [`Iam`] or [`AccountIam`] client whose every call goes through a shared [`Limiter`].
pub struct Limited<I, K: Clock = RealClock> {
    inner: I,
    limiter: Rc<Limiter<K>>,
    /// When its last call was sent (after its turn), CreateAccessKey aside.
    sent: Cell<Option<Timestamp>>,
}

impl<I, K: Clock> Limited<I, K> {
    pub fn new(inner: I, limiter: Rc<Limiter<K>>) -> Self {
        Limited {
            inner,
            limiter,
            sent: Cell::new(None),
        }
    }

    pub fn inner(&self) -> &I {
        &self.inner
    }
}

/// A [`Connector`] whose clients share one [`Limiter`].
pub struct LimitedConnector<'a, C, K: Clock = RealClock> {
    inner: &'a C,
    limiter: Rc<Limiter<K>>,
}

impl<'a, C, K: Clock> LimitedConnector<'a, C, K> {
    pub fn new(inner: &'a C, limiter: Rc<Limiter<K>>) -> Self {
        LimitedConnector { inner, limiter }
    }

    pub fn limiter(&self) -> &Rc<Limiter<K>> {
        &self.limiter
    }

    pub fn inner(&self) -> &'a C {
        self.inner
    }
}

impl<C: Connector, K: Clock> Connector for LimitedConnector<'_, C, K> {
    type Client = Limited<C::Client, K>;
    fn connect(&self, target: &Target) -> Self::Client {
        Limited::new(self.inner.connect(target), self.limiter.clone())
    }
}

impl<I: Iam, K: Clock> Iam for Limited<I, K> {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::GetCallerIdentity, Some(&self.sent), || {
                i.caller_identity()
            })
            .await
    }
    fn last_sent_at(&self) -> Option<Timestamp> {
        self.sent.get()
    }
    async fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::ListAccessKeys, Some(&self.sent), || {
                i.list_access_keys(user)
            })
            .await
    }
    async fn create_access_key(&self, user: &str) -> Result<NewAccessKey, AwsError> {
        let nothing = async || Ok::<(), std::convert::Infallible>(());
        match self.create_access_key_recorded(user, nothing).await {
            Ok(result) => result,
            Err(never) => match never {},
        }
    }
    async fn create_access_key_recorded<E>(
        &self,
        user: &str,
        record: impl AsyncFnOnce() -> Result<(), E>,
    ) -> Result<Result<NewAccessKey, AwsError>, E> {
        // Once: the rotation sends it again after `Throttling`, recording the next attempt's
        // window first (see the module doc).
        self.limiter
            .call_once(
                Action::CreateAccessKey,
                record,
                self.inner.create_access_key(user),
            )
            .await
    }
    async fn update_access_key(
        &self,
        user: &str,
        key_id: &str,
        status: KeyStatus,
    ) -> Result<(), AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::UpdateAccessKey, Some(&self.sent), || {
                i.update_access_key(user, key_id, status.clone())
            })
            .await
    }
    async fn delete_access_key(&self, user: &str, key_id: &str) -> Result<(), AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::DeleteAccessKey, Some(&self.sent), || {
                i.delete_access_key(user, key_id)
            })
            .await
    }
    async fn access_key_last_used(&self, key_id: &str) -> Result<LastUsed, AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::GetAccessKeyLastUsed, Some(&self.sent), || {
                i.access_key_last_used(key_id)
            })
            .await
    }
    async fn list_mfa_devices(&self, user: &str) -> Result<Vec<MfaDevice>, AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::ListMFADevices, Some(&self.sent), || {
                i.list_mfa_devices(user)
            })
            .await
    }
    async fn session_token(
        &self,
        mfa_serial: &str,
        code: &Secret,
        duration_seconds: i32,
    ) -> Result<Credentials, AwsError> {
        let i = &self.inner;
        self.limiter
            .call_noting(Action::GetSessionToken, Some(&self.sent), || {
                i.session_token(mfa_serial, code, duration_seconds)
            })
            .await
    }
}

macro_rules! limited_account {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $out:ty => $action:expr ;)*) => {
        impl<A: AccountIam, K: Clock> AccountIam for Limited<A, K> {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$out, AwsError> {
                    let i = &self.inner;
                    self.limiter.call($action, || i.$name($($arg),*)).await
                }
            )*
        }
    };
}

limited_account! {
    caller_identity() -> CallerIdentity => Action::GetCallerIdentity;
    list_users() -> Vec<IamUser> => Action::Account(AccountAction::ListUsers);
    list_user_tags(user: &str) -> Vec<(String, String)> => Action::Account(AccountAction::ListUserTags);
    list_user_keys(user: &str) -> Vec<AccessKeyMeta> => Action::ListAccessKeys;
    key_last_used(key_id: &str) -> LastUsed => Action::GetAccessKeyLastUsed;
    list_groups_for_user(user: &str) -> Vec<String> => Action::Account(AccountAction::ListGroupsForUser);
    list_user_policies(user: &str) -> Vec<String> => Action::Account(AccountAction::ListUserPolicies);
    get_user_policy(user: &str, name: &str) -> Option<String> => Action::Account(AccountAction::GetUserPolicy);
    put_user_policy(user: &str, name: &str, document: &str) -> () => Action::Account(AccountAction::PutUserPolicy);
    generate_credential_report() -> ReportState => Action::Account(AccountAction::GenerateCredentialReport);
    get_credential_report() -> Option<CredentialReport> => Action::Account(AccountAction::GetCredentialReport);
    get_policy(arn: &str) -> Option<ManagedPolicy> => Action::Account(AccountAction::GetPolicy);
    create_policy(name: &str, document: &str, description: &str) -> ManagedPolicy => Action::Account(AccountAction::CreatePolicy);
    list_policy_versions(arn: &str) -> Vec<PolicyVersion> => Action::Account(AccountAction::ListPolicyVersions);
    get_policy_version(arn: &str, version: &str) -> String => Action::Account(AccountAction::GetPolicyVersion);
    create_policy_version(arn: &str, document: &str) -> String => Action::Account(AccountAction::CreatePolicyVersion);
    delete_policy_version(arn: &str, version: &str) -> () => Action::Account(AccountAction::DeletePolicyVersion);
    get_group(name: &str) -> Option<String> => Action::Account(AccountAction::GetGroup);
    create_group(name: &str) -> String => Action::Account(AccountAction::CreateGroup);
    list_attached_group_policies(group: &str) -> Vec<String> => Action::Account(AccountAction::ListAttachedGroupPolicies);
    attach_group_policy(group: &str, policy_arn: &str) -> () => Action::Account(AccountAction::AttachGroupPolicy);
    add_user_to_group(group: &str, user: &str) -> () => Action::Account(AccountAction::AddUserToGroup);
    list_accounts() -> Vec<OrgAccount> => Action::Account(AccountAction::ListAccounts);
    assume_role(role_arn: &str, session_name: &str) -> Credentials => Action::Account(AccountAction::AssumeRole);
}

#[cfg(test)]
mod tests;
