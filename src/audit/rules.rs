//! The rules, one function of the facts and `now`:
//!
//! | finding | rule |
//! | --- | --- |
//! | `ROTATE` | Active, and created more than `max_age` ago |
//! | `UNUSED` | Active, and last used more than `max_unused` ago |
//! | `NEVER_USED` | Active, never used, and created more than `max_unused` ago |
//! | `TWO_ACTIVE` | Active, and the user's other key is Active too |
//! | `INACTIVE` | Inactive, and neither created nor used in the last `max_inactive` |
//! | `NO_SELF_SERVICE` | Active, and the user has neither the iam-keys group nor inline policy |
//! | `EXEMPT` | the user's exemption tag is in force (the rule findings are kept in `exempted`) |
//! | `OK` | none of the above |
//!
//! IAM does not record when a key was deactivated. The later of its creation and its last
//! use is the latest time it is known to have been Active, so `INACTIVE` counts from there:
//! a key may have been Inactive for less time than that (never more).
//! A key whose last use is unknown (an error, or a source that does not say) gets no
//! `UNUSED`/`NEVER_USED` finding; one with no creation date gets no age finding.

use super::{Exemption, Finding, KeyFacts, Row, SelfService, UserFacts, cis};
use crate::aws::KeyStatus;
use jiff::Timestamp;
use std::time::Duration;

/// The limits of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub max_age: Duration,
    pub max_unused: Duration,
    pub max_inactive: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        let days = |d: u64| Duration::from_secs(d * 86_400);
        Thresholds {
            max_age: days(90),
            max_unused: days(45),
            max_inactive: days(30),
        }
    }
}

/// Longer ago than `limit`, strictly.
fn older(now: Timestamp, then: Timestamp, limit: Duration) -> bool {
    let elapsed = now.as_second() - then.as_second();
    elapsed > 0 && elapsed as u64 > limit.as_secs()
}

/// The rule findings of one key (no exemption, no `OK`).
fn key_findings(
    key: &KeyFacts,
    user: &UserFacts,
    limits: &Thresholds,
    now: Timestamp,
) -> Vec<Finding> {
    let mut out = Vec::new();
    match key.status {
        KeyStatus::Active => {
            if let Some(created) = key.created
                && older(now, created, limits.max_age)
            {
                out.push(Finding::Rotate);
            }
            if let Some(used) = &key.last_used {
                match used.date {
                    Some(date) if older(now, date, limits.max_unused) => out.push(Finding::Unused),
                    Some(_) => {}
                    None => {
                        if let Some(created) = key.created
                            && older(now, created, limits.max_unused)
                        {
                            out.push(Finding::NeverUsed);
                        }
                    }
                }
            }
            let active = user
                .keys
                .iter()
                .filter(|k| k.status == KeyStatus::Active)
                .count();
            if active >= 2 {
                out.push(Finding::TwoActive);
            }
            if user.self_service == SelfService::Missing {
                out.push(Finding::NoSelfService);
            }
        }
        KeyStatus::Inactive => {
            let used = key.last_used.as_ref().and_then(|u| u.date);
            let latest_active = match (key.created, used) {
                (Some(c), Some(u)) => Some(c.max(u)),
                (c, u) => c.or(u),
            };
            if let Some(t) = latest_active
                && older(now, t, limits.max_inactive)
            {
                out.push(Finding::Inactive);
            }
        }
        KeyStatus::Other(_) => {}
    }
    out.sort();
    out
}

/// One row per key of every user, in the users' order and slot order.
pub fn evaluate(users: &[UserFacts], limits: &Thresholds, now: Timestamp) -> Vec<Row> {
    let mut rows = Vec::new();
    for user in users {
        let exemption = user
            .exempt_tag
            .as_deref()
            .map(|value| Exemption::parse(value, now));
        let in_force = exemption.as_ref().is_some_and(Exemption::in_force);
        let mut keys: Vec<&KeyFacts> = user.keys.iter().collect();
        keys.sort_by_key(|k| k.slot);
        for key in keys {
            let rule = key_findings(key, user, limits, now);
            let (findings, exempted) = if in_force {
                (vec![Finding::Exempt], rule)
            } else if rule.is_empty() {
                (vec![Finding::Ok], Vec::new())
            } else {
                (rule, Vec::new())
            };
            let mut benchmarks: Vec<&'static str> = findings
                .iter()
                .chain(&exempted)
                .flat_map(|f| cis::items(*f).iter().copied())
                .collect();
            benchmarks.sort_unstable();
            benchmarks.dedup();
            rows.push(Row {
                account: user.account.clone(),
                user: user.user.clone(),
                arn: user.arn.clone(),
                key: key.clone(),
                age_days: key
                    .created
                    .map(|c| (now.as_second() - c.as_second()).max(0) / 86_400),
                findings,
                exempted,
                exemption: exemption.clone(),
                benchmarks,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::test_time::{days_ago, now};
    use crate::aws::LastUsed;

    fn used(d: i64) -> Option<LastUsed> {
        Some(LastUsed {
            date: Some(days_ago(d)),
            service: Some("s3".into()),
            region: Some("us-east-1".into()),
        })
    }

    fn never() -> Option<LastUsed> {
        Some(LastUsed::default())
    }

    fn key(slot: u8, status: KeyStatus, age: i64, last_used: Option<LastUsed>) -> KeyFacts {
        KeyFacts {
            id: Some(format!("AKIAEXAMPLE0000000{slot}")),
            slot,
            status,
            created: Some(days_ago(age)),
            last_used,
        }
    }

    fn user(keys: Vec<KeyFacts>) -> UserFacts {
        UserFacts {
            account: "123456789012".into(),
            user: "alice".into(),
            arn: "arn:aws:iam::123456789012:user/alice".into(),
            exempt_tag: None,
            self_service: SelfService::Group,
            keys,
        }
    }

    fn findings_of(u: UserFacts) -> Vec<Vec<Finding>> {
        evaluate(&[u], &Thresholds::default(), now())
            .into_iter()
            .map(|r| r.findings)
            .collect()
    }

    #[test]
    fn a_young_used_active_key_is_ok_and_has_no_benchmark() {
        let rows = evaluate(
            &[user(vec![key(1, KeyStatus::Active, 10, used(1))])],
            &Thresholds::default(),
            now(),
        );
        assert_eq!(rows[0].findings, vec![Finding::Ok]);
        assert_eq!(rows[0].finding(), Finding::Ok);
        assert!(rows[0].benchmarks.is_empty());
        assert_eq!(rows[0].age_days, Some(10));
    }

    #[test]
    fn rotate_is_strictly_older_than_max_age() {
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Active, 90, used(1))])),
            vec![vec![Finding::Ok]]
        );
        let rows = evaluate(
            &[user(vec![key(1, KeyStatus::Active, 91, used(1))])],
            &Thresholds::default(),
            now(),
        );
        assert_eq!(rows[0].findings, vec![Finding::Rotate]);
        assert_eq!(rows[0].benchmarks, vec![cis::ROTATED_90_DAYS]);
    }

    #[test]
    fn unused_needs_a_last_use_older_than_max_unused() {
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Active, 60, used(46))])),
            vec![vec![Finding::Unused]]
        );
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Active, 60, used(44))])),
            vec![vec![Finding::Ok]]
        );
    }

    #[test]
    fn never_used_counts_from_creation_and_spares_new_keys() {
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Active, 46, never())])),
            vec![vec![Finding::NeverUsed]]
        );
        // A key made yesterday and not used yet is not a finding.
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Active, 1, never())])),
            vec![vec![Finding::Ok]]
        );
        // Unknown last use: no usage finding at all.
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Active, 100, None)])),
            vec![vec![Finding::Rotate]]
        );
        // Old and never used: both, the benchmark items of both.
        let rows = evaluate(
            &[user(vec![key(1, KeyStatus::Active, 200, never())])],
            &Thresholds::default(),
            now(),
        );
        assert_eq!(rows[0].findings, vec![Finding::Rotate, Finding::NeverUsed]);
        assert_eq!(
            rows[0].benchmarks,
            vec![cis::UNUSED_45_DAYS, cis::ROTATED_90_DAYS]
        );
    }

    #[test]
    fn two_active_keys_mark_both_and_an_inactive_second_key_does_not() {
        assert_eq!(
            findings_of(user(vec![
                key(1, KeyStatus::Active, 10, used(1)),
                key(2, KeyStatus::Active, 5, used(1)),
            ])),
            vec![vec![Finding::TwoActive], vec![Finding::TwoActive]]
        );
        assert_eq!(
            findings_of(user(vec![
                key(1, KeyStatus::Inactive, 10, used(9)),
                key(2, KeyStatus::Active, 5, used(1)),
            ])),
            vec![vec![Finding::Ok], vec![Finding::Ok]]
        );
    }

    #[test]
    fn inactive_counts_from_the_later_of_creation_and_last_use() {
        // Created long ago, used 10 days ago: deactivated at most 10 days ago.
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Inactive, 400, used(10))])),
            vec![vec![Finding::Ok]]
        );
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Inactive, 400, used(31))])),
            vec![vec![Finding::Inactive]]
        );
        assert_eq!(
            findings_of(user(vec![key(1, KeyStatus::Inactive, 31, never())])),
            vec![vec![Finding::Inactive]]
        );
        // An Inactive key is never ROTATE, UNUSED or NO_SELF_SERVICE.
        let mut u = user(vec![key(1, KeyStatus::Inactive, 400, never())]);
        u.self_service = SelfService::Missing;
        assert_eq!(findings_of(u), vec![vec![Finding::Inactive]]);
    }

    #[test]
    fn no_self_service_marks_active_keys_only() {
        let mut u = user(vec![
            key(1, KeyStatus::Inactive, 5, used(1)),
            key(2, KeyStatus::Active, 5, used(1)),
        ]);
        u.self_service = SelfService::Missing;
        assert_eq!(
            findings_of(u),
            vec![vec![Finding::Ok], vec![Finding::NoSelfService]]
        );
    }

    #[test]
    fn a_valid_exemption_hides_findings_and_an_expired_one_does_not() {
        let mut u = user(vec![key(1, KeyStatus::Active, 200, used(100))]);
        u.exempt_tag = Some("legacy batch job until=2027-01-31".into());
        let rows = evaluate(std::slice::from_ref(&u), &Thresholds::default(), now());
        assert_eq!(rows[0].findings, vec![Finding::Exempt]);
        assert_eq!(rows[0].exempted, vec![Finding::Rotate, Finding::Unused]);
        assert!(rows[0].exemption.as_ref().unwrap().in_force());
        // Still mapped, so a reader sees what the exemption covers.
        assert_eq!(rows[0].benchmarks.len(), 2);

        u.exempt_tag = Some("legacy batch job until=2026-11-30".into());
        let rows = evaluate(&[u], &Thresholds::default(), now());
        assert_eq!(rows[0].findings, vec![Finding::Rotate, Finding::Unused]);
        assert!(rows[0].exempted.is_empty());
        assert!(matches!(rows[0].exemption, Some(Exemption::Expired { .. })));
    }

    #[test]
    fn a_valid_exemption_marks_even_a_clean_key_exempt() {
        let mut u = user(vec![key(1, KeyStatus::Active, 1, used(1))]);
        u.exempt_tag = Some("service account".into());
        assert_eq!(findings_of(u), vec![vec![Finding::Exempt]]);
    }

    #[test]
    fn rows_follow_slot_order_and_thresholds_are_honoured() {
        let u = user(vec![
            key(2, KeyStatus::Active, 5, used(1)),
            key(1, KeyStatus::Inactive, 20, used(15)),
        ]);
        let limits = Thresholds {
            max_age: Duration::from_secs(86_400),
            max_unused: Duration::from_secs(86_400),
            max_inactive: Duration::from_secs(86_400),
        };
        let rows = evaluate(&[u], &limits, now());
        assert_eq!(rows[0].key.slot, 1);
        assert_eq!(rows[0].findings, vec![Finding::Inactive]);
        assert_eq!(rows[1].findings, vec![Finding::Rotate]);
    }

    #[test]
    fn finding_names_round_trip_and_the_default_fail_on_excludes_ok_and_exempt() {
        for f in Finding::ALL {
            assert_eq!(Finding::parse(f.as_str()), Some(f));
        }
        assert_eq!(Finding::parse("two-active"), Some(Finding::TwoActive));
        assert_eq!(Finding::parse("ROTTEN"), None);
        let d = Finding::default_fail_on();
        assert!(!d.contains(&Finding::Ok) && !d.contains(&Finding::Exempt));
        assert_eq!(d.len(), 6);
    }
}
