//! Which Inactive keys may be deleted for good (`iam-keys prune`, `rotate --prune`), as plain
//! values, and the deletion itself through [`Iam`].
//!
//! A key is deleted only when all of these hold:
//! - it is Inactive now, and still Inactive in a fresh list right before the delete (IAM has
//!   no conditional delete; someone may have turned it back on);
//! - no line of the credentials or config file names it, in any section;
//! - no recovery journal names it (an interrupted rotation may need it back);
//! - it was retired at least `older_than` ago: by the record iam-keys keeps when it retires a
//!   key ([`super::retired`]); a key with no record (retired on another machine, or by hand)
//!   is kept unless `unrecorded` is set, and then it counts from the later of its CreateDate
//!   and its last use, like the audit's `INACTIVE` rule (the latest time it is known to have
//!   been Active);
//! - it has not been used since it was retired (GetAccessKeyLastUsed): a key used after
//!   its retirement was turned back on meanwhile and someone relies on it.
//!
//! Must not: print, read the environment, or delete anything [`decide`] did not allow.

use crate::aws::{AccessKeyMeta, AwsError, ErrorKind, Iam, KeyStatus};
use jiff::Timestamp;
use std::time::Duration;

/// What is known about one of a user's keys.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub key_id: String,
    pub status: KeyStatus,
    pub created: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    /// Whether the last use could be read (a refused GetAccessKeyLastUsed: not deleted).
    pub last_used_known: bool,
    /// When iam-keys retired it, from the record on this machine.
    pub retired: Option<Timestamp>,
    /// Where a profile file names it (`file line N`), if anywhere.
    pub held_at: Vec<String>,
    /// A recovery journal names it.
    pub in_journal: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct PruneOptions {
    pub older_than: Duration,
    /// Judge a key with no record by the later of its CreateDate and last use.
    pub unrecorded: bool,
}

/// Why a key is kept, or that it may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Delete it; `since` is the retirement time it was judged by.
    Delete {
        since: Timestamp,
        recorded: bool,
    },
    Keep(Keep),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    Active,
    OtherStatus(String),
    HeldLocally(Vec<String>),
    InJournal,
    LastUseUnknown,
    UsedSinceRetired {
        used: Timestamp,
        retired: Timestamp,
    },
    TooRecent {
        since: Timestamp,
        after: Timestamp,
        recorded: bool,
    },
    NoRecord,
}

/// The decision for one key: pure.
pub fn decide(c: &Candidate, now: Timestamp, options: &PruneOptions) -> Verdict {
    let keep = Verdict::Keep;
    match &c.status {
        KeyStatus::Inactive => {}
        KeyStatus::Active => return keep(Keep::Active),
        KeyStatus::Other(s) => return keep(Keep::OtherStatus(s.clone())),
    }
    if !c.held_at.is_empty() {
        return keep(Keep::HeldLocally(c.held_at.clone()));
    }
    if c.in_journal {
        return keep(Keep::InJournal);
    }
    if !c.last_used_known {
        return keep(Keep::LastUseUnknown);
    }
    let (since, recorded) = match c.retired {
        Some(retired) => {
            if let Some(used) = c.last_used
                && used > retired
            {
                return keep(Keep::UsedSinceRetired { used, retired });
            }
            (retired, true)
        }
        None if options.unrecorded => {
            match c.created.into_iter().chain(c.last_used).max() {
                Some(t) => (t, false),
                // Neither date is known: nothing to count from.
                None => return keep(Keep::NoRecord),
            }
        }
        None => return keep(Keep::NoRecord),
    };
    let after = since
        .checked_add(crate::time::signed(options.older_than))
        .unwrap_or(Timestamp::MAX);
    if now < after {
        return keep(Keep::TooRecent {
            since,
            after,
            recorded,
        });
    }
    Verdict::Delete { since, recorded }
}

/// How long after its retirement `prune` deletes a key unless told otherwise (`--older-than`).
pub const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(7 * 86_400);

/// When a retired key may be pruned (for `status`).
pub fn prune_after(retired: Timestamp, older_than: Duration) -> Timestamp {
    retired
        .checked_add(crate::time::signed(older_than))
        .unwrap_or(Timestamp::MAX)
}

/// How a delete ended.
#[derive(Debug)]
pub enum Deleted {
    Done,
    /// It was no longer Inactive (or no longer there) in the fresh list: left alone.
    Changed(Option<KeyStatus>),
    Failed(AwsError),
}

/// Delete one key the decision allowed: list once more right before, delete only if it is
/// still Inactive. Already gone (NoSuchEntity) counts as done.
pub async fn delete<C: Iam>(iam: &C, user: &str, key_id: &str) -> Deleted {
    let keys: Vec<AccessKeyMeta> = match iam.list_access_keys(user).await {
        Ok(keys) => keys,
        Err(e) => return Deleted::Failed(e),
    };
    match keys.into_iter().find(|k| k.id == key_id).map(|k| k.status) {
        Some(KeyStatus::Inactive) => {}
        None => return Deleted::Done,
        other => return Deleted::Changed(other),
    }
    match iam.delete_access_key(user, key_id).await {
        Ok(()) => Deleted::Done,
        Err(e) if e.kind == ErrorKind::NoSuchEntity => Deleted::Done,
        Err(e) => Deleted::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Connector;
    use crate::aws::fake::FakeIam;

    const DAY: i64 = 86_400;

    fn t(day: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + day * DAY).unwrap()
    }

    fn inactive(retired: Option<i64>, used: Option<i64>) -> Candidate {
        Candidate {
            key_id: "AKIAOLD".into(),
            status: KeyStatus::Inactive,
            created: Some(t(0)),
            last_used: used.map(t),
            last_used_known: true,
            retired: retired.map(t),
            held_at: vec![],
            in_journal: false,
        }
    }

    const WEEK: PruneOptions = PruneOptions {
        older_than: Duration::from_secs(7 * DAY as u64),
        unrecorded: false,
    };

    #[test]
    fn a_key_retired_by_iam_keys_a_week_ago_and_unused_since_is_deleted() {
        assert_eq!(
            decide(&inactive(Some(10), Some(9)), t(17), &WEEK),
            Verdict::Delete {
                since: t(10),
                recorded: true
            }
        );
        assert!(matches!(
            decide(&inactive(Some(10), Some(9)), t(16), &WEEK),
            Verdict::Keep(Keep::TooRecent { after, .. }) if after == t(17)
        ));
    }

    #[test]
    fn active_held_journaled_or_unknown_keys_are_never_deleted() {
        let mut c = inactive(Some(1), None);
        c.status = KeyStatus::Active;
        assert_eq!(decide(&c, t(99), &WEEK), Verdict::Keep(Keep::Active));
        c.status = KeyStatus::Other("Expired".into());
        assert!(matches!(
            decide(&c, t(99), &WEEK),
            Verdict::Keep(Keep::OtherStatus(_))
        ));
        let mut c = inactive(Some(1), None);
        c.held_at = vec!["credentials line 3".into()];
        assert!(matches!(
            decide(&c, t(99), &WEEK),
            Verdict::Keep(Keep::HeldLocally(_))
        ));
        let mut c = inactive(Some(1), None);
        c.in_journal = true;
        assert_eq!(decide(&c, t(99), &WEEK), Verdict::Keep(Keep::InJournal));
        let mut c = inactive(Some(1), None);
        c.last_used_known = false;
        assert_eq!(
            decide(&c, t(99), &WEEK),
            Verdict::Keep(Keep::LastUseUnknown)
        );
    }

    /// Re-activated and used after iam-keys retired it (then deactivated again by someone):
    /// the use after the retirement keeps it.
    #[test]
    fn a_key_used_after_its_retirement_is_kept() {
        assert_eq!(
            decide(&inactive(Some(10), Some(12)), t(99), &WEEK),
            Verdict::Keep(Keep::UsedSinceRetired {
                used: t(12),
                retired: t(10)
            })
        );
    }

    /// Retired on another machine or by hand: kept, unless asked; then counted from the later
    /// of its creation and its last use.
    #[test]
    fn a_key_without_a_record_needs_unrecorded_and_counts_from_its_last_use() {
        assert_eq!(
            decide(&inactive(None, Some(20)), t(99), &WEEK),
            Verdict::Keep(Keep::NoRecord)
        );
        let opts = PruneOptions {
            unrecorded: true,
            ..WEEK
        };
        assert_eq!(
            decide(&inactive(None, Some(20)), t(27), &opts),
            Verdict::Delete {
                since: t(20),
                recorded: false
            }
        );
        assert!(matches!(
            decide(&inactive(None, Some(20)), t(26), &opts),
            Verdict::Keep(Keep::TooRecent {
                recorded: false,
                ..
            })
        ));
        // Never used: from its creation.
        assert!(matches!(
            decide(&inactive(None, None), t(7), &opts),
            Verdict::Delete { since, .. } if since == t(0)
        ));
    }

    #[tokio::test]
    async fn delete_checks_the_status_once_more_right_before() {
        let iam = FakeIam::new();
        iam.add_user("alice");
        let (active, _) = iam.add_key("alice", t(0), KeyStatus::Active);
        let (old, _) = iam.add_key("alice", t(1), KeyStatus::Inactive);
        let client = iam.connector().connect(&iam.target(&active));
        // Turned back on after the decision: left alone.
        client
            .update_access_key("alice", &old, KeyStatus::Active)
            .await
            .unwrap();
        assert!(matches!(
            delete(&client, "alice", &old).await,
            Deleted::Changed(Some(KeyStatus::Active))
        ));
        assert_eq!(iam.user_keys("alice").len(), 2);
        client
            .update_access_key("alice", &old, KeyStatus::Inactive)
            .await
            .unwrap();
        assert!(matches!(
            delete(&client, "alice", &old).await,
            Deleted::Done
        ));
        assert_eq!(iam.user_keys("alice"), vec![active.clone()]);
        // Already gone: done.
        assert!(matches!(
            delete(&client, "alice", &old).await,
            Deleted::Done
        ));
    }
}
