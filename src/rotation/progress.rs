//! Where each key's rotation is, as plain values for a display: the engine reports [`Step`]s
//! one by one; [`Tracker`] folds them into a [`Stage`] per key (`Verify { ok: 2, of: 3 }`)
//! and counts keys by stage for a summary.
//!
//! Must not: print, hold text meant for people, or know about terminals.

use super::Step;
use std::collections::BTreeMap;

/// Where one key's rotation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Journal,
    MakeRoom,
    Create,
    /// Calls with the new key: `ok` in a row of the `of` needed.
    Verify {
        ok: u32,
        of: u32,
    },
    /// IAM has not accepted the new key yet; backing off.
    WaitForIam,
    Persist,
    /// Hooks and env files getting the new key.
    Gates,
    Retire,
    Done,
}

impl Stage {
    /// The stage after `step`, from `self`.
    pub fn next(self, step: Step, of: u32) -> Stage {
        match step {
            Step::Journal => Stage::Journal,
            Step::MakeRoom => Stage::MakeRoom,
            Step::Create => Stage::Create,
            Step::Verify => Stage::Verify { ok: 0, of },
            Step::Verified => match self {
                Stage::Verify { ok, of } => Stage::Verify {
                    ok: (ok + 1).min(of),
                    of,
                },
                _ => Stage::Verify { ok: 1, of },
            },
            Step::WaitForIam => Stage::WaitForIam,
            Step::Persist => Stage::Persist,
            Step::Gates => Stage::Gates,
            Step::Retire => Stage::Retire,
            Step::Done => Stage::Done,
        }
    }
}

/// Counts of keys by stage, for a summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Keys expected in all (0 when not told).
    pub total: usize,
    /// Keys that reported anything.
    pub started: usize,
    pub done: usize,
    /// Keys calling with or waiting for their new key.
    pub verifying: usize,
    pub waiting: usize,
}

/// Every key's stage, from the engine's steps.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    verify_successes: u32,
    total: usize,
    keys: BTreeMap<String, Stage>,
}

impl Tracker {
    /// `verify_successes`: the calls in a row a new key needs (`ExecOptions`).
    pub fn new(verify_successes: u32) -> Tracker {
        Tracker {
            verify_successes,
            ..Tracker::default()
        }
    }

    /// How many keys will report (for a bar's length).
    pub fn expect(&mut self, total: usize) {
        self.total = total;
    }

    /// Record `step` for `key`; its stage now.
    pub fn step(&mut self, key: &str, step: Step) -> Stage {
        let of = self.verify_successes;
        let stage = match self.keys.get(key) {
            Some(prev) => prev.next(step, of),
            None => Stage::Journal.next(step, of),
        };
        self.keys.insert(key.to_string(), stage);
        stage
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            total: self.total.max(self.keys.len()),
            started: self.keys.len(),
            ..Counts::default()
        };
        for stage in self.keys.values() {
            match stage {
                Stage::Done => c.done += 1,
                Stage::Verify { .. } => c.verifying += 1,
                Stage::WaitForIam => c.waiting += 1,
                _ => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_counts_successes_in_a_row_and_a_rejection_starts_again() {
        let mut t = Tracker::new(3);
        assert_eq!(t.step("K", Step::Journal), Stage::Journal);
        assert_eq!(t.step("K", Step::Create), Stage::Create);
        assert_eq!(t.step("K", Step::Verify), Stage::Verify { ok: 0, of: 3 });
        assert_eq!(t.step("K", Step::Verified), Stage::Verify { ok: 1, of: 3 });
        assert_eq!(t.step("K", Step::WaitForIam), Stage::WaitForIam);
        assert_eq!(t.step("K", Step::Verified), Stage::Verify { ok: 1, of: 3 });
        assert_eq!(t.step("K", Step::Verified), Stage::Verify { ok: 2, of: 3 });
        assert_eq!(t.step("K", Step::Persist), Stage::Persist);
        assert_eq!(t.step("K", Step::Done), Stage::Done);
    }

    #[test]
    fn counts_keys_by_stage() {
        let mut t = Tracker::new(3);
        t.expect(4);
        t.step("A", Step::Done);
        t.step("B", Step::Verify);
        t.step("C", Step::WaitForIam);
        assert_eq!(
            t.counts(),
            Counts {
                total: 4,
                started: 3,
                done: 1,
                verifying: 1,
                waiting: 1
            }
        );
    }
}
