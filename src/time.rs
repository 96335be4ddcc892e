//! Time: the real clock, a fake one for tests, bounded exponential backoff, the Ctrl-C flag
//! that every wait honours, and the two ways a timestamp is written (RFC 3339, whole days of
//! age). Nothing else in the crate reads the time.
//!
//! Must not: depend on any other module of the crate.

use jiff::Timestamp;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// A timestamp as RFC 3339 in UTC, whole seconds (the journal's form).
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whole days from `then` to `now` (never negative).
pub fn age_days(now: Timestamp, then: Timestamp) -> i64 {
    (now.as_second() - then.as_second()).max(0) / 86_400
}

/// A `std` duration as a signed one, saturating (for arithmetic on timestamps).
pub fn signed(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)
}

/// Run a future on a single-threaded runtime: the work is a few HTTP calls per key, run
/// concurrently but never in parallel, so file edits need no locking between tasks. Every
/// command and every unit test that needs a runtime uses this one.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded tokio runtime can always be built")
        .block_on(future)
}

/// Now, and waiting.
#[allow(async_fn_in_trait)]
pub trait Clock {
    fn now(&self) -> Timestamp;
    async fn sleep(&self, duration: Duration);
}

/// The system clock and tokio's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await
    }
}

/// A clock that moves only when slept on: tests run the whole protocol in no real time.
#[derive(Clone)]
pub struct FakeClock {
    now: Rc<Cell<Timestamp>>,
    #[allow(clippy::type_complexity)]
    on_advance: Rc<dyn Fn(Duration)>,
}

impl FakeClock {
    pub fn new(start: Timestamp) -> FakeClock {
        FakeClock {
            now: Rc::new(Cell::new(start)),
            on_advance: Rc::new(|_| {}),
        }
    }

    /// Also call `f` whenever time moves (to keep a fake AWS in step).
    pub fn with_hook(start: Timestamp, f: impl Fn(Duration) + 'static) -> FakeClock {
        FakeClock {
            now: Rc::new(Cell::new(start)),
            on_advance: Rc::new(f),
        }
    }

    pub fn advance(&self, d: Duration) {
        let next =
            self.now.get() + jiff::SignedDuration::try_from(d).expect("a test duration fits");
        self.now.set(next);
        (self.on_advance)(d);
    }

    /// Total time slept so far since `start`.
    pub fn elapsed_since(&self, start: Timestamp) -> Duration {
        self.now.get().duration_since(start).unsigned_abs()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        self.now.get()
    }
    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

/// Set when the user pressed Ctrl-C: the rotation finishes or undoes the step it is in.
/// Waits in progress wake up at once.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    flag: Rc<Cell<bool>>,
    notify: Rc<tokio::sync::Notify>,
}

impl Cancel {
    pub fn set(&self) {
        self.flag.set(true);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Resolves once [`Cancel::set`] has been called.
    pub async fn cancelled(&self) {
        while !self.is_set() {
            self.notify.notified().await;
        }
    }

    /// Sleep on `clock`, but wake early when cancelled.
    pub async fn sleep<C: Clock>(&self, clock: &C, duration: Duration) {
        tokio::select! {
            _ = clock.sleep(duration) => {}
            _ = self.cancelled() => {}
        }
    }
}

/// Bounded exponential backoff: waits of `initial`, doubling up to `max_step`, until the
/// total time since the start would pass `budget`.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max_step: Duration,
    deadline: Timestamp,
}

impl Backoff {
    pub fn new(now: Timestamp, initial: Duration, max_step: Duration, budget: Duration) -> Backoff {
        let deadline =
            now + jiff::SignedDuration::try_from(budget).unwrap_or(jiff::SignedDuration::MAX);
        Backoff {
            next: initial,
            max_step,
            deadline,
        }
    }

    /// Wait before the next attempt; `false` (without waiting) when the budget is spent or
    /// the user cancelled.
    pub async fn wait<C: Clock>(&mut self, clock: &C, cancel: &Cancel) -> bool {
        let now = clock.now();
        if cancel.is_set() || now >= self.deadline {
            return false;
        }
        let left = self.deadline.duration_since(now).unsigned_abs();
        let step = self.next.min(left);
        cancel.sleep(clock, step).await;
        self.next = (self.next * 2).min(self.max_step);
        !cancel.is_set()
    }

    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.deadline
    }

    /// Move the end of the budget `by` later (time that must not count against it).
    pub fn extend(&mut self, by: Duration) {
        self.deadline = self
            .deadline
            .checked_add(signed(by))
            .unwrap_or(Timestamp::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_whole_days_and_never_negative() {
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        assert_eq!(age_days(now, "2026-11-20T12:00:01Z".parse().unwrap()), 1);
        assert_eq!(age_days(now, "2026-08-24T12:00:00Z".parse().unwrap()), 90);
        assert_eq!(age_days(now, "2026-11-23T00:00:00Z".parse().unwrap()), 0);
    }

    #[test]
    fn backoff_doubles_up_to_the_step_cap_and_stops_at_the_budget() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = FakeClock::new(start);
        let cancel = Cancel::default();
        let mut b = Backoff::new(
            start,
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(60),
        );
        let mut waits = Vec::new();
        let mut last = start;
        while block_on(b.wait(&clock, &cancel)) {
            waits.push(clock.now().duration_since(last).as_secs());
            last = clock.now();
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8, 8, 8, 8, 5]);
        assert_eq!(clock.elapsed_since(start), Duration::from_secs(60));
    }

    #[test]
    fn a_cancelled_backoff_does_not_wait() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = FakeClock::new(start);
        let cancel = Cancel::default();
        cancel.set();
        let mut b = Backoff::new(
            start,
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(60),
        );
        assert!(!block_on(b.wait(&clock, &cancel)));
        assert_eq!(clock.now(), start);
    }
}
