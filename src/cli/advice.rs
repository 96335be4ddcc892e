//! AWS refusals in words a user can act on: what the error means for this profile and key,
//! and what to do next. Never a bare "service error".

use crate::aws::{AccessKeyMeta, Action, AwsError, ErrorKind, Signer};
use crate::rotation::plan::Refusal;
use crate::secret::mask_key_id;
use jiff::Timestamp;

/// Who was calling, for the message.
pub struct Context<'a> {
    /// The profiles holding the key (or the profile used for the calls).
    pub profiles: &'a [String],
    pub key_id: &'a str,
    /// The region the calls went to: its partition goes into the ARNs the advice shows.
    pub region: &'a str,
    /// Whose credentials signed: the old key, the new key, or an MFA session.
    pub signer: Signer,
}

/// One sentence or two: what happened and what to do.
pub fn explain(e: &AwsError, cx: &Context<'_>) -> String {
    let key = mask_key_id(cx.key_id);
    let mfa_arn = format!(
        "arn:{}:iam::ACCOUNT:mfa/NAME",
        crate::settings::partition_for_region(cx.region)
    );
    let profile = match cx.profiles {
        [] => "the profile".to_string(),
        [one] => format!("profile `{one}`"),
        many => format!("profiles `{}`", many.join("`, `")),
    };
    let aws_says = match (&e.code, &e.message) {
        (Some(c), Some(m)) => format!(" (AWS: {c}: {m})"),
        (Some(c), None) => format!(" (AWS: {c})"),
        (None, Some(m)) => format!(" (AWS: {m})"),
        (None, None) => String::new(),
    };
    let what = match e.kind {
        ErrorKind::InvalidClientTokenId | ErrorKind::AuthFailure if cx.signer == Signer::OldKey => {
            format!(
                "AWS does not accept key {key} from {profile}: it was deleted or deactivated, or the key id is mistyped. \
             Put a working key in the profile (for example with `aws configure --profile NAME`) and run again"
            )
        }
        ErrorKind::InvalidClientTokenId | ErrorKind::AuthFailure if cx.signer == Signer::NewKey => {
            format!(
                "the new key is not accepted by AWS yet (IAM propagates new keys with a delay); {profile} keeps key {key}"
            )
        }
        ErrorKind::InvalidClientTokenId | ErrorKind::AuthFailure => format!(
            "the MFA session signed for with key {key} of {profile} was not accepted by AWS for {}; \
             run again and enter a fresh code",
            e.action
        ),
        ErrorKind::SignatureDoesNotMatch => format!(
            "the secret in {profile} does not belong to key {key}: check aws_secret_access_key (a copy-paste slip?) \
             and run again"
        ),
        ErrorKind::ExpiredToken => format!(
            "the session token used for {profile} has expired: remove the stale aws_session_token or sign in again"
        ),
        ErrorKind::AccessDenied if e.mentions_mfa() => format!(
            "{} was denied because this account requires MFA: add `mfa_serial = {mfa_arn}` to \
             {profile} or pass --mfa-serial ARN (or --mfa to pick the device)",
            e.action
        ),
        ErrorKind::AccessDenied
            if e.is_explicit_deny()
                && cx.signer != Signer::MfaSession
                && matches!(
                    e.action,
                    Action::CreateAccessKey | Action::UpdateAccessKey | Action::DeleteAccessKey
                ) =>
        {
            format!(
                "{} was denied for key {key} by an explicit Deny. Accounts that require MFA for key changes deny \
                 it this way: add `mfa_serial = {mfa_arn}` to {profile} or pass --mfa-serial ARN \
                 (or --mfa); otherwise an administrator must allow it",
                e.action
            )
        }
        ErrorKind::AccessDenied if e.is_explicit_deny() => format!(
            "{} was denied for key {key} by an explicit Deny in a policy; an administrator must allow it \
             (`iam-keys policy` prints the policy rotation needs)",
            e.action
        ),
        ErrorKind::AccessDenied => format!(
            "the user of key {key} may not call {}: ask an administrator to attach the policy printed by \
             `iam-keys policy`",
            e.action
        ),
        ErrorKind::LimitExceeded if e.action == Action::CreateAccessKey => format!(
            "the user of key {key} ({profile}) already has two access keys (the IAM limit); deactivate or \
             delete the other one, or pass --delete-inactive when it is Inactive"
        ),
        ErrorKind::LimitExceeded => format!(
            "AWS refused {} for key {key} of {profile}: a limit was exceeded",
            e.action
        ),
        ErrorKind::NoSuchEntity => format!(
            "{} found no such user or key: the key or its user was deleted meanwhile (key {key})",
            e.action
        ),
        ErrorKind::Throttling => {
            format!(
                "AWS kept throttling {} for key {key} of {profile} after retries; wait a minute and run again",
                e.action
            )
        }
        ErrorKind::ServiceUnavailable => {
            format!(
                "AWS answered {} for key {key} of {profile} with a server error after retries; run again later",
                e.action
            )
        }
        ErrorKind::Network => format!(
            "no answer from {} for {} (key {key} of {profile}) after retries: check the network, \
             HTTPS_PROXY/NO_PROXY, and any endpoint_url",
            e.endpoint.as_deref().unwrap_or("the AWS endpoint"),
            e.action
        ),
        ErrorKind::Timeout => format!(
            "{} timed out at {} (key {key} of {profile}) after retries: check the network and run again",
            e.action,
            e.endpoint.as_deref().unwrap_or("the AWS endpoint")
        ),
        ErrorKind::Other => format!("{} failed for key {key} of {profile}", e.action),
    };
    format!("{what}{aws_says}")
}

/// Why a key is not rotated, naming both keys and how to proceed.
pub fn refusal(refusal: &Refusal, now: Timestamp) -> String {
    let age = |k: &AccessKeyMeta| {
        k.created
            .map(|c| format!("{} days old", crate::time::age_days(now, c)))
            .unwrap_or_else(|| "age unknown".into())
    };
    match refusal {
        Refusal::TwoActiveKeys {
            user,
            this,
            other,
            other_held_by,
            other_last_used,
        } => format!(
            "user {user} already has two Active access keys: {} (this one, {}) and {} ({}, last used {}, {}). \
             AWS allows two keys per user and iam-keys never touches an Active key you did not name. \
             If {} is no longer used, deactivate it (`aws iam update-access-key --user-name {user} \
             --access-key-id {} --status Inactive`) and run again with --delete-inactive; if it is in use, \
             rotate the profile that holds it instead",
            mask_key_id(&this.id),
            age(this),
            mask_key_id(&other.id),
            age(other),
            super::words::last_used_text(other_last_used.as_ref()),
            if other_held_by.is_empty() {
                "held by no profile here: another machine?".to_string()
            } else {
                format!("held by profile {}", other_held_by.join(", "))
            },
            mask_key_id(&other.id),
            other.id,
        ),
        Refusal::InactiveSecondKey {
            user,
            other,
            other_last_used,
        } => format!(
            "user {user} already has two access keys; the other one, {}, is {} ({}, last used {}). \
             Run again with --delete-inactive to delete it and make room for the new key",
            mask_key_id(&other.id),
            other.status,
            age(other),
            super::words::last_used_text(other_last_used.as_ref()),
        ),
        Refusal::KeyNotActive {
            user,
            status: Some(status),
        } => format!(
            "the key is {status} in IAM (user {user}); activate it or put an Active key in the profile first"
        ),
        Refusal::KeyNotActive { user, status: None } => {
            format!("the key is not among the access keys of user {user}; check the profile")
        }
    }
}

/// Why a key is not rotated when lines the edit would not rewrite also hold it.
pub fn uncovered(places: &[crate::profiles::scan::Mention]) -> String {
    format!(
        "{} also hold{} this key, in a section the AWS SDKs ignore but the AWS CLI reads (a name with a space, or \
         `[profile NAME]` in the credentials file); iam-keys does not rotate a key it cannot replace everywhere. \
         Rename the section (`[NAME]` in the credentials file) or remove the line, then run again; nothing was changed",
        places
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if places.len() == 1 { "s" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(signer: Signer) -> (Vec<String>, Signer) {
        (vec!["dev".to_string()], signer)
    }

    fn say(e: AwsError, signer: Signer) -> String {
        say_in("us-east-1", e, signer)
    }

    fn say_in(region: &str, e: AwsError, signer: Signer) -> String {
        let (profiles, signer) = cx(signer);
        explain(
            &e,
            &Context {
                profiles: &profiles,
                key_id: "AKIAIOSFODNN7EXAMPLE",
                region,
                signer,
            },
        )
    }

    #[test]
    fn each_refusal_names_the_profile_or_key_and_what_to_do() {
        let cases = [
            (AwsError::new(Action::GetCallerIdentity, ErrorKind::InvalidClientTokenId), "mistyped"),
            (AwsError::new(Action::GetCallerIdentity, ErrorKind::AuthFailure).with_status(403), "deleted"),
            (AwsError::new(Action::GetCallerIdentity, ErrorKind::SignatureDoesNotMatch), "aws_secret_access_key"),
            (AwsError::new(Action::ListAccessKeys, ErrorKind::ExpiredToken), "session token"),
            (AwsError::new(Action::CreateAccessKey, ErrorKind::LimitExceeded), "--delete-inactive"),
            (AwsError::new(Action::ListAccessKeys, ErrorKind::AccessDenied), "iam-keys policy"),
            (AwsError::new(Action::ListAccessKeys, ErrorKind::Throttling), "wait a minute"),
            (
                AwsError::new(Action::ListAccessKeys, ErrorKind::Network).with_endpoint("http://127.0.0.1:9"),
                "http://127.0.0.1:9",
            ),
            (
                AwsError::new(Action::CreateAccessKey, ErrorKind::AccessDenied).with_message(
                    "User: arn:aws:iam::1:user/a is not authorized to perform: iam:CreateAccessKey with an explicit \
                     deny in an identity-based policy because aws:MultiFactorAuthPresent is false",
                ),
                "--mfa-serial",
            ),
        ];
        for (error, expected) in cases {
            let text = say(error.clone(), Signer::OldKey);
            assert!(text.contains(expected), "{:?}: {text}", error.kind);
            assert!(!text.contains("service error"), "{text}");
            let names_who = text.contains("AKIA…MPLE")
                || text.contains("`dev`")
                || text.contains(error.action.as_str());
            assert!(names_who, "{text}");
        }
    }

    #[test]
    fn an_explicit_deny_of_a_key_change_without_mfa_suggests_mfa() {
        let e = AwsError::new(Action::CreateAccessKey, ErrorKind::AccessDenied).with_message(
            "User: arn:aws:iam::1:user/a is not authorized to perform: iam:CreateAccessKey on resource: \
             arn:aws:iam::1:user/a with an explicit deny in an identity-based policy",
        );
        assert!(say(e.clone(), Signer::OldKey).contains("--mfa-serial"));
        assert!(!say(e, Signer::MfaSession).contains("--mfa-serial"));
    }

    #[test]
    fn the_mfa_advice_shows_an_arn_of_the_profiles_partition() {
        let e = AwsError::new(Action::CreateAccessKey, ErrorKind::AccessDenied)
            .with_message("... because aws:MultiFactorAuthPresent is false");
        for (region, arn) in [
            ("us-east-1", "`mfa_serial = arn:aws:iam::ACCOUNT:mfa/NAME`"),
            (
                "cn-north-1",
                "`mfa_serial = arn:aws-cn:iam::ACCOUNT:mfa/NAME`",
            ),
            (
                "us-gov-west-1",
                "`mfa_serial = arn:aws-us-gov:iam::ACCOUNT:mfa/NAME`",
            ),
        ] {
            let text = say_in(region, e.clone(), Signer::OldKey);
            assert!(text.contains(arn), "{region}: {text}");
        }
    }

    #[test]
    fn aws_code_and_message_are_kept() {
        let e = AwsError::new(Action::DeleteAccessKey, ErrorKind::NoSuchEntity)
            .with_code("NoSuchEntity")
            .with_message("The Access Key with id X cannot be found");
        let text = say(e, Signer::NewKey);
        assert!(
            text.ends_with("(AWS: NoSuchEntity: The Access Key with id X cannot be found)"),
            "{text}"
        );
    }

    #[test]
    fn a_refusal_names_both_keys_their_ages_and_where_the_other_is() {
        use crate::aws::KeyStatus;
        let now: Timestamp = "2026-11-22T00:00:00Z".parse().unwrap();
        let key = |id: &str, status: KeyStatus, days: i64| AccessKeyMeta {
            id: id.into(),
            status,
            created: Some(now - jiff::SignedDuration::from_hours(24 * days)),
        };
        let two = Refusal::TwoActiveKeys {
            user: "alice".into(),
            this: key("AKIAOLD0000000000000", KeyStatus::Active, 100),
            other: key("AKIAOTHER00000000000", KeyStatus::Active, 5),
            other_held_by: vec![],
            other_last_used: None,
        };
        let text = refusal(&two, now);
        assert!(
            text.contains("AKIA…0000")
                && text.contains("100 days old")
                && text.contains("5 days old"),
            "{text}"
        );
        assert!(text.contains("another machine?"), "{text}");
        assert!(text.contains("--delete-inactive"), "{text}");
        let Refusal::TwoActiveKeys {
            user, this, other, ..
        } = two
        else {
            unreachable!()
        };
        let held = Refusal::TwoActiveKeys {
            user,
            this,
            other,
            other_held_by: vec!["ci".into()],
            other_last_used: None,
        };
        assert!(refusal(&held, now).contains("held by profile ci"));
        let inactive = Refusal::InactiveSecondKey {
            user: "alice".into(),
            other: key("AKIAOTHER00000000000", KeyStatus::Inactive, 400),
            other_last_used: None,
        };
        let text = refusal(&inactive, now);
        assert!(
            text.contains("Inactive") && text.contains("400 days old"),
            "{text}"
        );
        let missing = Refusal::KeyNotActive {
            user: "alice".into(),
            status: None,
        };
        assert!(refusal(&missing, now).contains("not among the access keys of user alice"));
    }
}
