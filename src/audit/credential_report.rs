//! The IAM credential report (CSV, one line per user) read into [`UserFacts`].
//!
//! Columns are found by their header name, so added or reordered columns do not matter.
//! What a report may say instead of a value, all read as "not known": `N/A` (no such key,
//! never used), `not_supported` and `no_information` (AWS uses both for data it does not
//! have). The `<root_account>` line, when present, is skipped: root keys are not IAM user keys.
//! There are no key ids, only slots: `access_key_1_*` is slot 1, `access_key_2_*` slot 2.
//! A slot whose `last_rotated` is `N/A` holds no key. `access_key_N_active` is `true` for an
//! Active key; any other value with a key present is read as Inactive.

use super::{KeyFacts, SelfService, UserFacts};
use crate::aws::{KeyStatus, LastUsed};
use jiff::Timestamp;

/// Why a report could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the credential report has no header line")]
    Empty,
    #[error("the credential report has no `{0}` column")]
    MissingColumn(&'static str),
    #[error("line {line} of the credential report has {found} fields, the header has {expected}")]
    FieldCount {
        line: usize,
        found: usize,
        expected: usize,
    },
    #[error("line {line} of the credential report has an unterminated quoted field")]
    Unterminated { line: usize },
}

/// RFC 4180 records: fields split on commas, double-quoted fields may hold commas, quotes
/// (doubled) and line breaks. Lines end in CRLF or LF.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, ReportError> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line = 1;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                line += 1;
                any = false;
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(ReportError::Unterminated { line });
    }
    if any {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Per slot: the active, last rotated, last used date, region and service columns.
const SLOT_COLUMNS: [(u8, [&str; 5]); 2] = [
    (
        1,
        [
            "access_key_1_active",
            "access_key_1_last_rotated",
            "access_key_1_last_used_date",
            "access_key_1_last_used_region",
            "access_key_1_last_used_service",
        ],
    ),
    (
        2,
        [
            "access_key_2_active",
            "access_key_2_last_rotated",
            "access_key_2_last_used_date",
            "access_key_2_last_used_region",
            "access_key_2_last_used_service",
        ],
    ),
];

fn known(value: &str) -> Option<&str> {
    match value.trim() {
        "" | "N/A" | "not_supported" | "no_information" => None,
        v => Some(v),
    }
}

fn time(value: &str) -> Option<Timestamp> {
    known(value).and_then(|v| v.parse().ok())
}

/// The users and keys of a report, for `account`. Users with no key are left out.
pub fn read(csv: &str, account: &str) -> Result<Vec<UserFacts>, ReportError> {
    let records = parse_csv(csv)?;
    let mut records = records.into_iter().enumerate();
    let Some((_, header)) = records.next() else {
        return Err(ReportError::Empty);
    };
    let column = |name: &'static str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or(ReportError::MissingColumn(name))
    };
    let user_col = column("user")?;
    let arn_col = column("arn")?;
    let mut slots = Vec::new();
    for (slot, names) in SLOT_COLUMNS {
        slots.push((
            slot,
            column(names[0])?,
            column(names[1])?,
            column(names[2])?,
            column(names[3])?,
            column(names[4])?,
        ));
    }
    let mut users = Vec::new();
    for (index, record) in records {
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        if record.len() != header.len() {
            return Err(ReportError::FieldCount {
                line: index + 1,
                found: record.len(),
                expected: header.len(),
            });
        }
        let name = record[user_col].trim();
        if name == "<root_account>" {
            continue;
        }
        let mut keys = Vec::new();
        for &(slot, active, rotated, used_date, used_region, used_service) in &slots {
            let Some(created) = known(&record[rotated]) else {
                continue;
            };
            let used_date = &record[used_date];
            let last_used = if known(used_date).is_none() && used_date.trim() != "N/A" {
                // `no_information` or `not_supported`: the report does not know.
                None
            } else {
                Some(LastUsed {
                    date: time(used_date),
                    service: known(&record[used_service]).map(str::to_string),
                    region: known(&record[used_region]).map(str::to_string),
                })
            };
            keys.push(KeyFacts {
                id: None,
                slot,
                status: if record[active].trim() == "true" {
                    KeyStatus::Active
                } else {
                    KeyStatus::Inactive
                },
                created: created.parse().ok(),
                last_used,
            });
        }
        if keys.is_empty() {
            continue;
        }
        users.push(UserFacts {
            account: account.to_string(),
            user: name.to_string(),
            arn: record[arn_col].trim().to_string(),
            exempt_tag: None,
            self_service: SelfService::NotChecked,
            keys,
        });
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    #[test]
    fn a_real_shaped_report_gives_slots_status_and_last_use() {
        let csv = format!(
            "{HEADER}\n\
<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,true,2020-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
alice,arn:aws:iam::123456789012:user/alice,2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2024-02-01T10:00:00+00:00,2026-11-30T08:00:00+00:00,us-east-1,s3,false,2024-03-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n\
bob,arn:aws:iam::123456789012:user/bob,2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
carol,arn:aws:iam::123456789012:user/carol,2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2024-02-01T10:00:00+00:00,2026-11-30T08:00:00+00:00,not_supported,not_supported,true,2025-01-01T00:00:00+00:00,no_information,N/A,N/A,false,N/A,false,N/A\n"
        );
        let users = read(&csv, "123456789012").unwrap();
        let names: Vec<&str> = users.iter().map(|u| u.user.as_str()).collect();
        assert_eq!(
            names,
            ["alice", "carol"],
            "root and key-less bob are left out"
        );
        let alice = &users[0];
        assert_eq!(alice.keys.len(), 2);
        assert_eq!(alice.keys[0].status, KeyStatus::Active);
        assert_eq!(alice.keys[0].id, None);
        let used = alice.keys[0].last_used.as_ref().unwrap();
        assert_eq!(used.service.as_deref(), Some("s3"));
        assert!(used.date.is_some());
        assert_eq!(alice.keys[1].status, KeyStatus::Inactive);
        assert_eq!(
            alice.keys[1].last_used,
            Some(LastUsed::default()),
            "N/A is never used"
        );
        let carol = &users[1];
        let used = carol.keys[0].last_used.as_ref().unwrap();
        assert_eq!(
            (used.service.as_deref(), used.region.as_deref()),
            (None, None)
        );
        assert_eq!(carol.keys[1].last_used, None, "no_information is unknown");
    }

    #[test]
    fn quoting_crlf_and_bad_shapes() {
        assert_eq!(
            parse_csv("a,\"b,c\",\"d\"\"e\"\r\nf,,g").unwrap(),
            vec![vec!["a", "b,c", "d\"e"], vec!["f", "", "g"]]
        );
        assert_eq!(
            parse_csv("a,\"b"),
            Err(ReportError::Unterminated { line: 1 })
        );
        assert_eq!(read("", "1"), Err(ReportError::Empty));
        assert_eq!(
            read("user,arn\nx,y\n", "1"),
            Err(ReportError::MissingColumn("access_key_1_active"))
        );
        let short = format!("{HEADER}\nalice,arn\n");
        assert!(matches!(
            read(&short, "1"),
            Err(ReportError::FieldCount { line: 2, .. })
        ));
    }
}
