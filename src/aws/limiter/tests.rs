//! Tests of [`super`] (limiter.rs): the fake IAM and the fake clock, no real waiting.

use super::*;
use crate::aws::fake::{FakeIam, Fault};
use crate::time::FakeClock;
use jiff::Timestamp;

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn throttled() -> AwsError {
    AwsError {
        action: Action::GetCallerIdentity,
        kind: ErrorKind::Throttling,
        code: Some("Throttling".into()),
        message: Some("Rate exceeded".into()),
        http_status: Some(400),
        endpoint: None,
    }
}

fn identity() -> CallerIdentity {
    CallerIdentity {
        account: "123456789012".into(),
        arn: "arn:aws:iam::123456789012:user/alice".into(),
        user_id: "AIDA".into(),
    }
}

/// An IAM that takes a few scheduler turns per call and answers `Throttling` when more
/// than `allowed` calls are in flight (an account's limit, as concurrency).
struct Busy {
    allowed: usize,
    in_flight: Cell<usize>,
    most: Cell<usize>,
    sent: Cell<usize>,
}

impl Busy {
    fn new(allowed: usize) -> Busy {
        Busy {
            allowed,
            in_flight: Cell::new(0),
            most: Cell::new(0),
            sent: Cell::new(0),
        }
    }
}

impl Iam for Busy {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        self.sent.set(self.sent.get() + 1);
        self.in_flight.set(self.in_flight.get() + 1);
        self.most.set(self.most.get().max(self.in_flight.get()));
        let over = self.in_flight.get() > self.allowed;
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.set(self.in_flight.get() - 1);
        if over {
            Err(throttled())
        } else {
            Ok(identity())
        }
    }
    async fn list_access_keys(&self, _: &str) -> Result<Vec<AccessKeyMeta>, AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
    async fn create_access_key(&self, _: &str) -> Result<NewAccessKey, AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
    async fn update_access_key(&self, _: &str, _: &str, _: KeyStatus) -> Result<(), AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
    async fn delete_access_key(&self, _: &str, _: &str) -> Result<(), AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
    async fn access_key_last_used(&self, _: &str) -> Result<LastUsed, AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
    async fn list_mfa_devices(&self, _: &str) -> Result<Vec<MfaDevice>, AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
    async fn session_token(&self, _: &str, _: &Secret, _: i32) -> Result<Credentials, AwsError> {
        unreachable!("the limiter tests send only GetCallerIdentity")
    }
}

fn fake_clock() -> FakeClock {
    FakeClock::new(Timestamp::from_second(1_800_000_000).unwrap())
}

fn options(cap: usize) -> LimiterOptions {
    LimiterOptions {
        start: 2,
        ..LimiterOptions::with_cap(cap)
    }
}

/// `n` calls at once through one limiter; how many succeeded.
async fn storm<K: Clock>(client: &Limited<Busy, K>, n: usize) -> usize {
    let calls = (0..n).map(|_| client.caller_identity());
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .filter(Result::is_ok)
        .count()
}

#[test]
fn the_bound_grows_to_the_cap_while_calls_succeed_and_never_passes_it() {
    let limiter = Rc::new(Limiter::with_clock(fake_clock(), options(8)));
    let client = Limited::new(Busy::new(usize::MAX), limiter.clone());
    assert_eq!(block_on(storm(&client, 200)), 200);
    let stats = limiter.stats();
    assert_eq!(stats.max_limit, 8, "{stats:?}");
    assert_eq!(
        client.inner().most.get(),
        8,
        "never more than the cap in flight"
    );
    assert_eq!(stats.max_in_flight, 8);
    assert_eq!(stats.throttled, 0);
    assert_eq!(stats.attempts, 200);
}

#[test]
fn throttling_halves_the_bound_and_no_call_fails() {
    let clock = fake_clock();
    let limiter = Rc::new(Limiter::with_clock(clock.clone(), options(32)));
    let client = Limited::new(Busy::new(3), limiter.clone());
    assert_eq!(block_on(storm(&client, 300)), 300, "every call succeeds");
    let stats = limiter.stats();
    assert!(stats.throttled > 0, "IAM did throttle: {stats:?}");
    assert_eq!(stats.gave_up, 0);
    assert!(
        stats.limit <= 6,
        "the bound came down near the account's limit: {stats:?}"
    );
    assert!(stats.min_limit <= 3, "{stats:?}");
    assert!(stats.max_limit < 32, "it never reached the cap: {stats:?}");
    assert_eq!(client.inner().sent.get(), stats.attempts);
    // The waits were backoffs on the clock, never longer than a call's budget.
    assert!(clock.elapsed_since(Timestamp::from_second(1_800_000_000).unwrap()) > Duration::ZERO);
}

#[test]
fn a_call_throttled_past_its_budget_fails_saying_how_long_it_was_tried() {
    let clock = fake_clock();
    let start = clock.now();
    let limiter = Rc::new(Limiter::with_clock(
        clock.clone(),
        LimiterOptions {
            throttle_budget: Duration::from_secs(10),
            ..options(4)
        },
    ));
    let client = Limited::new(Busy::new(0), limiter.clone());
    let error = block_on(client.caller_identity()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Throttling);
    assert_eq!(error.action, Action::GetCallerIdentity);
    let text = error.to_string();
    assert!(text.contains("still throttled after"), "{text}");
    assert!(text.contains("--concurrency"), "{text}");
    let stats = limiter.stats();
    // Its attempts and backoffs took at most the budget; the turns at the pace (one call a
    // second once refused) come on top.
    let turns = Duration::from_secs(stats.attempts as u64);
    assert!(clock.elapsed_since(start) <= Duration::from_secs(10) + turns);
    assert!(
        clock.elapsed_since(start) >= Duration::from_secs(4),
        "it kept trying"
    );
    assert_eq!(stats.gave_up, 1);
    assert!(stats.attempts >= 4, "{stats:?}");
    assert_eq!(stats.limit, 1);
}

#[test]
fn the_backoff_doubles_with_jitter_up_to_its_cap() {
    let limiter = Limiter::with_clock(fake_clock(), LimiterOptions::with_cap(4));
    for attempt in 0..12 {
        let step = Duration::from_millis(100)
            .saturating_mul(1 << attempt)
            .min(Duration::from_secs(2));
        let wait = limiter.backoff(attempt);
        assert!(
            wait >= step / 2 && wait <= step,
            "attempt {attempt}: {wait:?}"
        );
    }
}

#[test]
fn only_a_throttled_read_or_idempotent_write_is_sent_again_here() {
    let iam = FakeIam::new();
    iam.add_user("alice");
    let (old, _) = iam.add_key("alice", iam.now(), KeyStatus::Active);
    let limiter = Rc::new(Limiter::with_clock(fake_clock(), options(4)));
    let fake = iam.connector();
    let connector = LimitedConnector::new(&fake, limiter.clone());
    let client = connector.connect(&iam.target(&old));

    iam.fail(Action::CreateAccessKey, Fault::once(ErrorKind::Throttling));
    let e = block_on(client.create_access_key("alice")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Throttling, "the rotation sends it again");
    assert_eq!(limiter.stats().attempts, 1);
    assert_eq!(limiter.stats().throttled, 1, "it lowered the bound");
    assert!(block_on(client.create_access_key("alice")).is_ok());
    assert_eq!(iam.user_keys("alice").len(), 2, "one key made");
    iam.fail(Action::ListAccessKeys, Fault::once(ErrorKind::Throttling));
    assert!(block_on(client.list_access_keys("alice")).is_ok());
    assert_eq!(
        limiter.stats().attempts,
        4,
        "a read is sent again after Throttling"
    );

    iam.fail(
        Action::DeleteAccessKey,
        Fault::once(ErrorKind::ServiceUnavailable),
    );
    let e = block_on(client.delete_access_key("alice", &old)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable);
    assert_eq!(limiter.stats().attempts, 5, "not sent again by the limiter");
}

/// A call backing off after `Throttling` holds no permit: with one permit, another call
/// goes through while the first one waits.
#[test]
fn waiting_holds_no_permit() {
    struct OnceThrottled(Cell<bool>);
    let limiter = Limiter::new(LimiterOptions {
        start: 1,
        backoff_initial: Duration::from_millis(400),
        ..LimiterOptions::with_cap(1)
    });
    let order = RefCell::new(Vec::new());
    let first = OnceThrottled(Cell::new(true));
    block_on(async {
        let a = limiter.call(Action::GetCallerIdentity, || async {
            if first.0.replace(false) {
                Err(throttled())
            } else {
                order.borrow_mut().push("a");
                Ok(())
            }
        });
        let b = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            limiter
                .call(Action::GetCallerIdentity, || async {
                    order.borrow_mut().push("b");
                    Ok(())
                })
                .await
        };
        let (a, b) = tokio::join!(a, b);
        a.unwrap();
        b.unwrap();
    });
    assert_eq!(*order.borrow(), ["b", "a"]);
}

/// A CreateAccessKey starts a rotation's changes: it queues for a permit only when no other
/// create does, so the verifications and retirements that ask meanwhile go before the next
/// create (first come, first served would send both creates first). Creates keep their order.
#[test]
fn a_create_waits_behind_the_calls_of_rotations_under_way() {
    let limiter = Limiter::with_clock(fake_clock(), LimiterOptions::with_cap(1));
    let order = RefCell::new(Vec::new());
    let call = |name: &'static str, action: Action| {
        let (limiter, order) = (&limiter, &order);
        async move {
            let answer = limiter
                .call_once(action, async || Ok::<(), ()>(()), async {
                    order.borrow_mut().push(name);
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    Ok::<(), AwsError>(())
                })
                .await;
            assert!(matches!(answer, Ok(Ok(()))), "{name}");
        }
    };
    block_on(async {
        // Asked in this order; "busy" holds the only permit while the others ask.
        tokio::join!(
            call("busy", Action::GetCallerIdentity),
            call("create 1", Action::CreateAccessKey),
            call("create 2", Action::CreateAccessKey),
            call("verify", Action::GetCallerIdentity),
            call("retire", Action::UpdateAccessKey),
            call("create 3", Action::CreateAccessKey),
        )
    });
    assert_eq!(
        *order.borrow(),
        [
            "busy", "create 1", "verify", "retire", "create 2", "create 3"
        ]
    );
    assert_eq!(limiter.state.borrow().in_flight, 0);
}

/// A call abandoned half-way (Ctrl-C drops its future) gives its permit back.
#[test]
fn a_dropped_call_gives_its_permit_back() {
    let limiter = Limiter::new(LimiterOptions::with_cap(1));
    block_on(async {
        let stuck = limiter.call(Action::GetCallerIdentity, || {
            std::future::pending::<Result<(), AwsError>>()
        });
        let timed_out = tokio::time::timeout(Duration::from_millis(10), stuck).await;
        assert!(timed_out.is_err());
        let next = tokio::time::timeout(
            Duration::from_secs(5),
            limiter.call(Action::GetCallerIdentity, || async { Ok(()) }),
        )
        .await;
        assert!(matches!(next, Ok(Ok(()))));
    });
    assert_eq!(limiter.state.borrow().in_flight, 0);
}

/// A CreateAccessKey waits for its turn as long as it takes, and records its window only
/// then: `record` runs once the call has its permit, right before it is sent, so the window
/// on disk starts after the wait, and nothing is sent when `record` fails.
#[test]
fn a_create_records_its_window_when_its_turn_comes_and_only_then_is_sent() {
    let clock = fake_clock();
    let limiter = Limiter::with_clock(clock.clone(), LimiterOptions::with_cap(1));
    let sent = Cell::new(0);
    let recorded = Cell::new(None);
    let create = || async {
        sent.set(sent.get() + 1);
        Ok(())
    };
    let start = clock.now();
    block_on(async {
        // The only permit is held for 90 s by another call.
        let busy = limiter.call(Action::GetCallerIdentity, || async {
            clock.sleep(Duration::from_secs(90)).await;
            Ok::<(), AwsError>(())
        });
        let record = async || {
            recorded.set(Some(clock.now()));
            assert_eq!(sent.get(), 0, "recorded before it is sent");
            Ok::<(), &str>(())
        };
        let waiting = limiter.call_once(Action::CreateAccessKey, record, create());
        let (busy, created) = tokio::join!(busy, waiting);
        busy.unwrap();
        created.unwrap().unwrap();
    });
    assert_eq!(sent.get(), 1, "sent once, however long it waited");
    assert_eq!(
        recorded
            .get()
            .map(|t| t.duration_since(start).unsigned_abs()),
        Some(Duration::from_secs(90)),
        "its window starts when its turn came"
    );

    // A record that fails: the call is not sent, and the permit is free again.
    let refused =
        block_on(limiter.call_once(Action::CreateAccessKey, async || Err("disk full"), create()));
    assert_eq!(refused.unwrap_err(), "disk full");
    assert_eq!(sent.get(), 1, "not sent");
    block_on(limiter.call(Action::GetCallerIdentity, || async {
        Ok::<(), AwsError>(())
    }))
    .unwrap();
}

/// The throttle budget counts the time a call is refused (its attempts and backoffs), not
/// its waits for a turn: a call that waited longer than the whole budget for its first turn
/// is still sent again after a `Throttling` answer.
#[test]
fn waiting_for_the_first_turn_does_not_spend_the_throttle_budget() {
    let clock = fake_clock();
    let options = LimiterOptions {
        throttle_budget: Duration::from_secs(10),
        ..LimiterOptions::with_cap(1)
    };
    let limiter = Limiter::with_clock(clock.clone(), options);
    let attempts = Cell::new(0);
    block_on(async {
        // The only permit is held for 60 s, a second at a time.
        let busy = limiter.call(Action::GetCallerIdentity, || async {
            for _ in 0..60 {
                clock.sleep(Duration::from_secs(1)).await;
                tokio::task::yield_now().await;
            }
            Ok::<(), AwsError>(())
        });
        let waiting = limiter.call(Action::ListAccessKeys, || async {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 {
                Err(throttled())
            } else {
                Ok(())
            }
        });
        let (busy, waiting) = tokio::join!(busy, waiting);
        busy.unwrap();
        waiting.unwrap();
    });
    assert_eq!(attempts.get(), 2, "sent again after its Throttling");
}

/// A limited client says when its last GetCallerIdentity left the limiter, not when it was
/// asked for: the verification spaces its calls by that moment.
#[test]
fn a_limited_client_says_when_its_identity_call_was_sent() {
    let clock = fake_clock();
    let limiter = Rc::new(Limiter::with_clock(
        clock.clone(),
        LimiterOptions::with_cap(4),
    ));
    let client = Limited::new(Busy::new(4), limiter.clone());
    assert_eq!(client.last_sent_at(), None);
    block_on(async {
        // STS refuses once, with nothing else going on: paced at one call a second.
        let refused = limiter
            .call_once(
                Action::GetCallerIdentity,
                async || Ok::<(), ()>(()),
                async { Err::<(), _>(throttled()) },
            )
            .await;
        assert_eq!(refused.unwrap().unwrap_err().kind, ErrorKind::Throttling);
        let asked = clock.now();
        client.caller_identity().await.unwrap();
        assert_eq!(client.last_sent_at(), Some(asked), "the first goes at once");
        client.caller_identity().await.unwrap();
        let second = client.last_sent_at().unwrap();
        // Asked at once, sent at the pace: one a second, which the first success raised to
        // 1.05 (see `pace`).
        assert_eq!(
            second.duration_since(asked).unsigned_abs(),
            Duration::from_secs_f64(1.0 / 1.05)
        );
    });
}
