//! Pure planning: from what AWS said about a key (see [`crate::inventory::KeyFacts`]) and the
//! options, decide whether the key is rotated, not due, or refused, and how.
//!
//! Must not: do I/O. Inputs in, a [`Decision`] out; a dry run prints it as it is.
//! ([`uncovered_places`] works on the files as loaded in memory.)

use crate::aws::{AccessKeyMeta, KeyStatus, LastUsed};
use crate::inventory::KeyFacts;
use jiff::Timestamp;
use std::time::Duration;

/// The setting lines, in either file and whatever their section, that still hold `key_id`
/// once every profile holding it is rewritten: places the rotation could not update (sections
/// the SDKs ignore but the AWS CLI reads). A key with any is not rotated. Computed on the
/// files in memory; writes nothing.
pub fn uncovered_places(
    files: &crate::profiles::ProfileFiles,
    key_id: &str,
) -> Result<Vec<crate::profiles::scan::Mention>, crate::profiles::ProfileError> {
    use crate::profiles::{FileKind, KeyEdit, scan};
    let edited = files.with_edits(&[KeyEdit::Replace {
        old_key_id: key_id.to_string(),
        new_key_id: "AKIAIAMKEYSPLACEHOLD".to_string(),
        new_secret: crate::secret::Secret::new("placeholder"),
    }])?;
    let mut left = Vec::new();
    for (kind, path) in [
        (FileKind::Credentials, &files.paths().credentials),
        (FileKind::Config, &files.paths().config),
    ] {
        for (line, section) in scan::mentions_in_text(&edited.text(kind), key_id) {
            left.push(scan::Mention {
                file: kind,
                path: path.clone(),
                line,
                section,
            });
        }
    }
    Ok(left)
}

/// What happens to the old key once the new one works.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retire {
    /// UpdateAccessKey to Inactive (the default, as AWS advises: it can be turned back on).
    Deactivate,
    /// DeleteAccessKey (`--delete`).
    Delete,
}

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Rotate only keys at least this old.
    pub older_than: Option<Duration>,
    /// Delete the old key instead of deactivating it.
    pub delete_old: bool,
    /// Delete an Inactive second key to make room.
    pub delete_inactive: bool,
}

/// The plan for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPlan {
    pub user: String,
    pub account: String,
    pub arn: String,
    pub old_key_id: String,
    pub old_created: Option<Timestamp>,
    /// An Inactive second key deleted first to make room (`--delete-inactive`).
    pub delete_first: Option<String>,
    pub retire: Retire,
    /// Every key id the user had when planned: a key that appears later and is in no file
    /// is one this run created.
    pub known_keys: Vec<String>,
}

/// Why a key is not rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The user has another Active key: AWS allows two keys, and an Active key may be in use
    /// somewhere, so it is never touched.
    TwoActiveKeys {
        user: String,
        this: AccessKeyMeta,
        other: AccessKeyMeta,
        other_held_by: Vec<String>,
        other_last_used: Option<LastUsed>,
    },
    /// The user has an Inactive second key; `--delete-inactive` deletes it to make room.
    InactiveSecondKey {
        user: String,
        other: AccessKeyMeta,
        other_last_used: Option<LastUsed>,
    },
    /// The key in the profile is not among the user's keys, or is not Active.
    KeyNotActive {
        user: String,
        status: Option<KeyStatus>,
    },
}

/// What to do with one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Rotate(KeyPlan),
    NotDue { age_days: i64 },
    Refuse(Refusal),
}

/// Whether a key made at `created` is due for rotation at `now`: at least `older_than` old.
/// A key of unknown age is never due.
pub fn is_due(created: Option<Timestamp>, older_than: Duration, now: Timestamp) -> bool {
    created.is_some_and(|c| now.as_second() - c.as_second() >= older_than.as_secs() as i64)
}

/// Decide for the key `key_id`, whose facts AWS gave; `held_by` says which local profiles
/// hold each of the user's other keys.
pub fn decide(
    facts: &KeyFacts,
    key_id: &str,
    held_by: &dyn Fn(&str) -> Vec<String>,
    options: &PlanOptions,
    now: Timestamp,
) -> Decision {
    let user = facts.user.clone();
    let Some(this) = facts.key(key_id) else {
        return Decision::Refuse(Refusal::KeyNotActive { user, status: None });
    };
    if this.status != KeyStatus::Active {
        return Decision::Refuse(Refusal::KeyNotActive {
            user,
            status: Some(this.status.clone()),
        });
    }
    if let (Some(threshold), Some(created)) = (options.older_than, this.created)
        && !is_due(Some(created), threshold, now)
    {
        return Decision::NotDue {
            age_days: crate::time::age_days(now, created),
        };
    }
    let others = facts.others(key_id);
    let mut delete_first = None;
    // IAM allows two keys. With one other key there is no room unless it goes first.
    if let Some(other) = others.iter().find(|k| k.status == KeyStatus::Active) {
        return Decision::Refuse(Refusal::TwoActiveKeys {
            user,
            this: this.clone(),
            other: (*other).clone(),
            other_held_by: held_by(&other.id),
            other_last_used: facts.last_used.get(&other.id).cloned(),
        });
    }
    if let Some(other) = others.first() {
        if !options.delete_inactive {
            return Decision::Refuse(Refusal::InactiveSecondKey {
                user,
                other: (*other).clone(),
                other_last_used: facts.last_used.get(&other.id).cloned(),
            });
        }
        delete_first = Some(other.id.clone());
    }
    Decision::Rotate(KeyPlan {
        user,
        account: facts.identity.account.clone(),
        arn: facts.identity.arn.clone(),
        old_key_id: key_id.to_string(),
        old_created: this.created,
        delete_first,
        retire: if options.delete_old {
            Retire::Delete
        } else {
            Retire::Deactivate
        },
        known_keys: facts.keys.iter().map(|k| k.id.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::CallerIdentity;
    use std::collections::BTreeMap;

    const NOW: &str = "2026-11-22T00:00:00Z";

    fn key(id: &str, status: KeyStatus, days_old: i64) -> AccessKeyMeta {
        let now: Timestamp = NOW.parse().unwrap();
        AccessKeyMeta {
            id: id.into(),
            status,
            created: Some(now - jiff::SignedDuration::from_hours(24 * days_old)),
        }
    }

    fn facts(keys: Vec<AccessKeyMeta>) -> KeyFacts {
        KeyFacts {
            identity: CallerIdentity {
                account: "123456789012".into(),
                arn: "arn:aws:iam::123456789012:user/alice".into(),
                user_id: "AIDA".into(),
            },
            user: "alice".into(),
            keys,
            last_used: BTreeMap::new(),
        }
    }

    fn decide_with(keys: Vec<AccessKeyMeta>, options: PlanOptions) -> Decision {
        decide(
            &facts(keys),
            "AKIAOLD0000000000000",
            &|_| vec![],
            &options,
            NOW.parse().unwrap(),
        )
    }

    #[test]
    fn a_lone_key_is_rotated_and_deactivated_by_default() {
        let d = decide_with(
            vec![key("AKIAOLD0000000000000", KeyStatus::Active, 100)],
            PlanOptions::default(),
        );
        let Decision::Rotate(plan) = d else {
            panic!("expected a plan, got {d:?}")
        };
        assert_eq!(plan.retire, Retire::Deactivate);
        assert_eq!(plan.delete_first, None);
        assert_eq!(plan.known_keys, vec!["AKIAOLD0000000000000".to_string()]);
        assert_eq!(plan.user, "alice");
    }

    #[test]
    fn delete_option_deletes_the_old_key() {
        let d = decide_with(
            vec![key("AKIAOLD0000000000000", KeyStatus::Active, 1)],
            PlanOptions {
                delete_old: true,
                ..Default::default()
            },
        );
        assert!(
            matches!(
                d,
                Decision::Rotate(KeyPlan {
                    retire: Retire::Delete,
                    ..
                })
            ),
            "{d:?}"
        );
    }

    #[test]
    fn a_fresh_key_is_not_due() {
        let options = PlanOptions {
            older_than: Some(Duration::from_secs(90 * 86_400)),
            ..Default::default()
        };
        let d = decide_with(
            vec![key("AKIAOLD0000000000000", KeyStatus::Active, 10)],
            options.clone(),
        );
        assert_eq!(d, Decision::NotDue { age_days: 10 });
        let d = decide_with(
            vec![key("AKIAOLD0000000000000", KeyStatus::Active, 90)],
            options,
        );
        assert!(
            matches!(d, Decision::Rotate(_)),
            "a key exactly 90 days old is due: {d:?}"
        );
    }

    #[test]
    fn a_second_active_key_is_never_touched() {
        let d = decide_with(
            vec![
                key("AKIAOLD0000000000000", KeyStatus::Active, 100),
                key("AKIAOTHER00000000000", KeyStatus::Active, 5),
            ],
            PlanOptions {
                delete_inactive: true,
                ..Default::default()
            },
        );
        let Decision::Refuse(refusal) = &d else {
            panic!("expected a refusal, got {d:?}")
        };
        let Refusal::TwoActiveKeys {
            user,
            this,
            other,
            other_held_by,
            other_last_used,
        } = refusal
        else {
            panic!("expected two Active keys, got {refusal:?}")
        };
        assert_eq!(user, "alice");
        assert_eq!(this.id, "AKIAOLD0000000000000");
        assert_eq!(other.id, "AKIAOTHER00000000000");
        assert_eq!(other.status, KeyStatus::Active);
        assert!(other_held_by.is_empty(), "{other_held_by:?}");
        assert_eq!(other_last_used, &None);
    }

    #[test]
    fn an_inactive_second_key_needs_the_flag_and_is_then_deleted_first() {
        let keys = vec![
            key("AKIAOLD0000000000000", KeyStatus::Active, 100),
            key("AKIAOTHER00000000000", KeyStatus::Inactive, 400),
        ];
        let d = decide_with(keys.clone(), PlanOptions::default());
        assert!(
            matches!(d, Decision::Refuse(Refusal::InactiveSecondKey { .. })),
            "{d:?}"
        );
        let d = decide_with(
            keys,
            PlanOptions {
                delete_inactive: true,
                ..Default::default()
            },
        );
        let Decision::Rotate(plan) = d else {
            panic!("expected a plan, got {d:?}")
        };
        assert_eq!(plan.delete_first.as_deref(), Some("AKIAOTHER00000000000"));
    }

    #[test]
    fn an_inactive_or_unknown_profile_key_is_refused() {
        let d = decide_with(
            vec![key("AKIAOLD0000000000000", KeyStatus::Inactive, 100)],
            PlanOptions::default(),
        );
        assert!(matches!(
            d,
            Decision::Refuse(Refusal::KeyNotActive {
                status: Some(KeyStatus::Inactive),
                ..
            })
        ));
        let d = decide_with(
            vec![key("AKIAOTHER00000000000", KeyStatus::Active, 1)],
            PlanOptions::default(),
        );
        assert!(matches!(
            d,
            Decision::Refuse(Refusal::KeyNotActive { status: None, .. })
        ));
    }
}
