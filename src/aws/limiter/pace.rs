//! The pace of calls once a service has throttled: at most `rate` calls a second, spaced
//! evenly, the rate learned from the answers.
//!
//! **Why a rate as well as the bound on calls in flight.** IAM's limits are calls per second
//! per account. A bound on calls in flight allows `bound / latency` calls a second: with
//! answers in 10 ms even one call in flight is 100 a second, so after a `Throttling` the bound
//! alone cannot bring the run down to the account's rate, and most calls are refused and wait
//! (measured before this pace existed: 2,260 refusals for 800 calls let through, against a
//! limit of 20 a second).
//!
//! **How the rate adapts (additive increase, multiplicative decrease, on the rate).**
//! - Until the service first throttles there is no pace at all: a run that IAM never slows
//!   down is never slowed down here.
//! - The first `Throttling` answer sets the rate to [`DECREASE`] × what the service let
//!   through just before it refused: the calls that succeeded in the last second and those
//!   still unanswered. Each later refusal multiplies the rate by [`DECREASE`] (never below
//!   [`MIN_RATE`]), except that of a call sent less than a second after the last decrease:
//!   a limit over a second still counts the calls sent before it, and a token bucket needs
//!   that long to fill again, so such a refusal says nothing new.
//! - Each success adds [`GROWTH`] (0.05 calls a second), so the rate grows by a twentieth of
//!   itself every second, probing for room until the next refusal: from `DECREASE × L` back
//!   to `L` in about four seconds at any limit `L`. (A growth of one call a second every
//!   second, as TCP Reno grows its window, is a twentieth at 20 calls a second but doubles
//!   a pace of one a second within a second: against a limit of 2 a second it was refused
//!   about as often as it was let through.)
//! - Calls are spaced `1 / rate` apart, one after another in the order they asked, with no
//!   burst: a limit measured over any window of a second is respected as well as one
//!   measured as a token bucket.
//!
//! Against a service that allows `L` calls a second this settles into a saw-tooth between
//! `DECREASE × L` and a little over `L`: about 0.9 × `L` on average, with one refusal per
//! tooth instead of one per call.

use jiff::{SignedDuration, Timestamp};
use std::collections::VecDeque;
use std::time::Duration;

/// What a refusal leaves of the rate the service let through.
pub(super) const DECREASE: f64 = 0.8;
/// The slowest pace: one call a second.
pub(super) const MIN_RATE: f64 = 1.0;
/// What each success adds to the rate (calls a second): at the pace, `rate` successes a
/// second, so the rate grows by a twentieth of itself every second, whatever the limit.
const GROWTH: f64 = 0.05;
/// The window over which successes are counted to measure what the service lets through.
const WINDOW: SignedDuration = SignedDuration::from_secs(1);

/// The pace. Pure state: the caller brings the time.
#[derive(Debug, Default)]
pub(super) struct Pace {
    /// Calls a second; `None` until the service first throttles (no pace).
    rate: Option<f64>,
    /// When the last paced call was sent.
    last_sent: Option<Timestamp>,
    /// When the calls of the last [`WINDOW`] succeeded.
    successes: VecDeque<Timestamp>,
    /// When the rate was last decreased.
    last_decrease: Option<Timestamp>,
}

impl Pace {
    /// The rate now, if a service has throttled.
    #[cfg(test)]
    pub(super) fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// How long a call must still wait at `now` before it may be sent.
    pub(super) fn wait(&self, now: Timestamp) -> Duration {
        match (self.rate, self.last_sent) {
            (Some(rate), Some(last)) => {
                let next = last + SignedDuration::from_secs_f64(1.0 / rate);
                if next > now {
                    next.duration_since(now).unsigned_abs()
                } else {
                    Duration::ZERO
                }
            }
            _ => Duration::ZERO,
        }
    }

    /// A call is sent at `now` (after [`Pace::wait`] said zero).
    pub(super) fn sent(&mut self, now: Timestamp) {
        if self.rate.is_some() {
            self.last_sent = Some(now);
        }
    }

    /// A call succeeded at `now`.
    pub(super) fn succeeded(&mut self, now: Timestamp) {
        self.successes.push_back(now);
        self.forget_before(now);
        if let Some(rate) = &mut self.rate {
            *rate += GROWTH;
        }
    }

    /// A call sent at `sent` was refused with `Throttling` at `now`, while `in_flight` other
    /// calls to the service were still unanswered. Returns the new rate when this refusal
    /// lowered it.
    pub(super) fn throttled(
        &mut self,
        sent: Timestamp,
        now: Timestamp,
        in_flight: usize,
    ) -> Option<f64> {
        if self.last_decrease.is_some_and(|at| sent < at + WINDOW) {
            return None;
        }
        let rate = match self.rate {
            // Paced already: the pace was too fast.
            Some(rate) => DECREASE * rate,
            // The first refusal: what the service let through in the last second, counting
            // the calls it has taken and not yet answered.
            None => {
                self.forget_before(now);
                DECREASE * (self.successes.len() + in_flight) as f64
            }
        }
        .max(MIN_RATE);
        self.rate = Some(rate);
        self.last_decrease = Some(now);
        Some(rate)
    }

    fn forget_before(&mut self, now: Timestamp) {
        while self.successes.front().is_some_and(|t| now - WINDOW >= *t) {
            self.successes.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::UNIX_EPOCH + SignedDuration::from_millis(ms)
    }

    #[test]
    fn nothing_is_paced_before_the_service_throttles() {
        let mut pace = Pace::default();
        for ms in 0..100 {
            assert_eq!(pace.wait(at(ms)), Duration::ZERO);
            pace.sent(at(ms));
            pace.succeeded(at(ms));
        }
        assert_eq!(pace.rate(), None);
    }

    #[test]
    fn the_first_refusal_paces_calls_at_a_share_of_what_the_last_second_let_through() {
        let mut pace = Pace::default();
        // 15 successes in the last second, 5 more before it (forgotten), 5 unanswered.
        for ms in (0..5)
            .map(|i| i * 10)
            .chain((0..15).map(|i| 1_100 + i * 50))
        {
            pace.succeeded(at(ms));
        }
        assert_eq!(pace.throttled(at(1_950), at(1_960), 5), Some(16.0));
        // The next call waits 1/16 s after the last one sent.
        pace.sent(at(2_000));
        assert_eq!(pace.wait(at(2_000)), Duration::from_micros(62_500));
        assert_eq!(pace.wait(at(2_030)), Duration::from_micros(32_500));
        assert_eq!(pace.wait(at(2_063)), Duration::ZERO);
    }

    #[test]
    fn later_refusals_slow_the_pace_unless_it_was_lowered_less_than_a_second_before() {
        let mut pace = Pace::default();
        for i in 0..10 {
            pace.succeeded(at(500 + i * 50));
        }
        assert_eq!(pace.throttled(at(990), at(1_000), 0), Some(8.0));
        // The service still counts the calls of the second before the decrease.
        assert_eq!(
            pace.throttled(at(995), at(1_010), 9),
            None,
            "sent before it"
        );
        assert_eq!(
            pace.throttled(at(1_900), at(1_910), 0),
            None,
            "within a second"
        );
        assert_eq!(pace.rate(), Some(8.0));
        // A second later: the pace falls by the same share, whatever the last second's
        // traffic was (a quiet second says nothing about the limit).
        let rate = pace.throttled(at(2_000), at(2_010), 0).unwrap();
        assert!((rate - 6.4).abs() < 1e-9, "{rate}");
        for i in 1..=15 {
            pace.throttled(at(2_000 + i * 1_100), at(2_010 + i * 1_100), 0);
        }
        assert_eq!(pace.rate(), Some(MIN_RATE), "never below one a second");
    }

    #[test]
    fn successes_raise_the_rate_by_a_twentieth_each_second() {
        let mut pace = Pace::default();
        for i in 0..10 {
            pace.succeeded(at(i * 100));
        }
        pace.throttled(at(950), at(960), 0);
        assert_eq!(pace.rate(), Some(8.0));
        // One second of calls at the pace: eight successes, 8 x 0.05 = +0.4, a twentieth.
        let mut now = at(1_000);
        for _ in 0..8 {
            now += SignedDuration::from_nanos(pace.wait(now).as_nanos() as i64);
            pace.sent(now);
            pace.succeeded(now);
        }
        let rate = pace.rate().unwrap();
        assert!((8.39..8.41).contains(&rate), "{rate}");
        assert!(now < at(2_000), "within the second");
    }

    /// Always more calls waiting than a service that allows `limit` calls in any second lets
    /// through (the test proxy's rule): after the first refusal the pace keeps the run near
    /// the limit, with one refusal now and then instead of one per call, at every limit.
    #[test]
    fn against_a_limit_per_second_it_settles_near_the_limit_with_few_refusals() {
        for limit in [2, 5, 20, 50] {
            let (per_second, ok, refused) = against(limit);
            let limit = limit as f64;
            assert!(per_second <= limit, "limit {limit}: {per_second}");
            assert!(
                per_second >= 0.75 * limit,
                "limit {limit}: {per_second} a second"
            );
            // The same share of refusals at every limit: the rate grows by a share of itself.
            assert!(
                refused * 3 <= ok,
                "limit {limit}: {refused} refused for {ok} let through"
            );
            if limit >= 5.0 {
                assert!(
                    refused * 10 <= ok,
                    "limit {limit}: {refused} refused for {ok} let through"
                );
            }
        }
    }

    /// One minute against a service that allows `limit` calls in any second: (calls let
    /// through a second, let through, refused).
    fn against(limit: usize) -> (f64, usize, usize) {
        let mut pace = Pace::default();
        let mut admitted: VecDeque<Timestamp> = VecDeque::new();
        let (mut ok, mut refused) = (0usize, 0usize);
        let mut now = at(0);
        let end = at(60_000);
        while now < end {
            now += SignedDuration::from_nanos(pace.wait(now).as_nanos() as i64);
            pace.sent(now);
            while admitted.front().is_some_and(|t| now - WINDOW >= *t) {
                admitted.pop_front();
            }
            // Answers take 5 ms.
            let answered = now + SignedDuration::from_millis(5);
            if admitted.len() < limit {
                admitted.push_back(now);
                ok += 1;
                pace.succeeded(answered);
            } else {
                refused += 1;
                pace.throttled(now, answered, 0);
            }
            // With no pace yet, the callers send one call every millisecond.
            if pace.rate().is_none() {
                now += SignedDuration::from_millis(1);
            }
        }
        let per_second = ok as f64 / 60.0;
        (per_second, ok, refused)
    }
}
