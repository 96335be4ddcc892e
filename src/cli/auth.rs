//! `--auth-profile NAME` and `--user-name NAME`: the IAM calls made with another profile's
//! credentials (an administrator, or a session another tool wrote), and an administrator
//! rotating another user's key. Which key that is, and where its new key goes, is decided
//! here: a local profile holding one of the user's keys is updated as usual; otherwise the
//! user's single Active key is rotated and the new key goes to the profile named by
//! `--profile` (created if missing) or only to the `--output env` lines.
//!
//! Must not: print a secret or a code; call AWS for anything but reads.

use super::OutputFormat;
use super::advice;
use super::mfa::{MfaArgs, Sessions};
use super::ui::Ui;
use crate::aws::Signer;
use crate::aws::{Connector, Credentials, Iam, KeyStatus, Target};
use crate::error::Error;
use crate::inventory::{self, KeyGroup};
use crate::inventory::{Destination, GroupProblem};
use crate::profiles::ProfileFiles;
use crate::secret::{Secret, mask_key_id};
use crate::settings::Settings;
use std::cell::RefCell;

/// The profile whose credentials make the IAM calls.
#[derive(Clone, Debug)]
pub struct AuthProfile {
    pub name: String,
    pub target: Target,
    pub mfa_serial: Option<String>,
}

impl AuthProfile {
    /// The one selected profile (`--profile NAME`) whose credentials sign every call of a
    /// command (`audit`, `policy --apply`); `not_one` says so when the selection is not one.
    pub fn selected(
        files: &ProfileFiles,
        settings: &Settings,
        not_one: &str,
    ) -> Result<Self, Error> {
        let names = settings.selected_names(files);
        let [name] = names.as_slice() else {
            return Err(Error::Usage(not_one.into()));
        };
        if files.profile(name).is_none() {
            return Err(Error::Usage(format!(
                "profile `{name}` is in neither {} nor {}: name one that holds credentials with --profile",
                settings.paths.credentials.display(),
                settings.paths.config.display()
            )));
        }
        AuthProfile::load(name, files, settings)
    }

    /// Static credentials from the files: a key and secret, with a session token when another
    /// tool wrote a session there.
    pub fn load(name: &str, files: &ProfileFiles, settings: &Settings) -> Result<Self, Error> {
        let profile = files.profile(name).ok_or_else(|| {
            Error::Usage(format!(
                "--auth-profile {name}: no such profile in {} or {}",
                settings.paths.credentials.display(),
                settings.paths.config.display()
            ))
        })?;
        let (Some(id), Some(secret)) = (
            profile.get("aws_access_key_id"),
            profile.get("aws_secret_access_key"),
        ) else {
            return Err(Error::Usage(format!(
                "--auth-profile {name}: the profile has no static credentials (aws_access_key_id and \
                 aws_secret_access_key, plus aws_session_token for a session). SSO, role and \
                 credential_process profiles cannot be used as they are: write their session into a \
                 profile first (for example with `aws configure export-credentials`)"
            )));
        };
        let token = profile
            .get("aws_session_token")
            .or_else(|| profile.get("aws_security_token"));
        let credentials = Credentials {
            access_key_id: id.to_string(),
            secret_access_key: Secret::new(secret),
            session_token: token.map(Secret::new),
        };
        Ok(AuthProfile {
            name: name.to_string(),
            target: settings.target(Some(&profile), files, credentials),
            mfa_serial: profile.get("mfa_serial").map(str::to_string),
        })
    }

    pub fn key_id(&self) -> &str {
        &self.target.credentials.access_key_id
    }

    /// Message context for a refusal of this profile's own credentials.
    pub fn explain(&self, e: &crate::aws::AwsError, signer: Signer) -> String {
        let profiles = [self.name.clone()];
        advice::explain(
            e,
            &advice::Context {
                profiles: &profiles,
                key_id: self.key_id(),
                region: &self.target.region,
                signer,
            },
        )
    }
}

/// The credentials for the IAM calls, and the MFA device used for them: the auth profile's
/// own (a session as written by another tool is used as it is), or an MFA session signed for
/// with its key when it names `mfa_serial` (or `--mfa-serial`, `--mfa`). A dry run asks for no
/// code unless MFA was asked for explicitly.
pub async fn credentials<C: Connector>(
    auth: &AuthProfile,
    mfa: &MfaArgs,
    dry_run: bool,
    ui: &Ui,
    connector: &C,
    sessions: &mut Sessions,
) -> Result<(Credentials, Option<String>), String> {
    let own = auth.target.credentials.clone();
    if own.session_token.is_some() {
        return Ok((own, None));
    }
    let serial = mfa.mfa_serial.clone().or_else(|| auth.mfa_serial.clone());
    let (session, serial) = super::mfa::session_for(
        &auth.target,
        serial,
        mfa.mfa,
        dry_run,
        mfa,
        connector,
        ui,
        sessions,
    )
    .await
    .map_err(|e| e.explain(|e| auth.explain(e, Signer::OldKey)))?;
    Ok((session.unwrap_or(own), serial))
}

/// The keys to rotate for `--user-name USER`. A local profile holding one of the user's keys
/// is rotated as usual (every holder updated). Otherwise the user's single Active key is
/// rotated and its new key goes to the one `--profile`, or only to `--output env`.
/// Refusals come back as groups with a `problem`, so they are reported like any failure.
pub async fn user_groups<C: Connector>(
    auth: &AuthProfile,
    iam: &Credentials,
    user: &str,
    files: &RefCell<ProfileFiles>,
    settings: &Settings,
    selected: &[KeyGroup],
    connector: &C,
) -> Vec<KeyGroup> {
    let client = connector.connect(&auth.target.with_credentials(iam.clone()));
    let placeholder = |problem: String| KeyGroup {
        key_id: String::new(),
        secret: Secret::new(""),
        holders: vec![],
        selected_via: vec![],
        target: auth.target.clone(),
        mfa_serial: None,
        problem: Some(GroupProblem::Refused(problem)),
        destination: Destination::Holders,
    };
    let keys = match client.list_access_keys(user).await {
        Ok(keys) => keys,
        Err(e) => {
            let signer = Signer::of(
                iam.session_token.is_some() && auth.target.credentials != *iam,
                Signer::OldKey,
            );
            return vec![placeholder(format!(
                "cannot list the access keys of user {user} with --auth-profile {}: {}",
                auth.name,
                auth.explain(&e, signer)
            ))];
        }
    };
    let files = files.borrow();
    let names = settings.selected_names(&files);
    // A selected profile holding a key that is not the user's is never overwritten.
    let mut groups: Vec<KeyGroup> = Vec::new();
    for g in selected {
        if !keys.iter().any(|k| k.id == g.key_id) {
            let mut refused = g.clone();
            refused.problem = Some(GroupProblem::Refused(format!(
                "profile {} holds key {}, which is not a key of user {user}; it is left alone \
                 (name a profile that holds {user}'s key, or a new profile name)",
                g.holders.join(", "),
                mask_key_id(&g.key_id)
            )));
            groups.push(refused);
        }
    }
    let held: Vec<&crate::aws::AccessKeyMeta> = keys
        .iter()
        .filter(|k| !files.profiles_with_key(&k.id).is_empty())
        .collect();
    if !held.is_empty() {
        for k in held {
            let holder = files.profiles_with_key(&k.id)[0].profile.clone();
            let inv = inventory::build(&files, settings, &[holder]);
            groups.extend(inv.groups);
        }
        return groups;
    }
    if !groups.is_empty() {
        return groups;
    }
    let active: Vec<_> = keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .collect();
    let key_id = match active.as_slice() {
        [one] => one.id.clone(),
        [] => {
            return vec![placeholder(format!(
                "user {user} has no Active access key to rotate"
            ))];
        }
        several => {
            return vec![placeholder(format!(
                "user {user} has two Active access keys ({}) and no profile here holds either, so \
                 iam-keys cannot tell which one to rotate; deactivate the one no longer in use \
                 (`aws iam update-access-key --user-name {user} --access-key-id ID --status Inactive`), \
                 or put the key to rotate in a profile and name it with --profile",
                several
                    .iter()
                    .map(|k| mask_key_id(&k.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))];
        }
    };
    let destination = if settings.explicit_profiles && names.len() == 1 {
        Destination::Profile(names[0].clone())
    } else if settings.output == OutputFormat::Env && !settings.explicit_profiles {
        Destination::Printed
    } else {
        return vec![placeholder(format!(
            "no profile here holds a key of user {user}: name the one profile to write the new key \
             to with --profile NAME (created if missing), or print it with --output env"
        ))];
    };
    let profile = match &destination {
        Destination::Profile(name) => files.profile(name),
        _ => None,
    }
    .or_else(|| files.profile(&auth.name));
    let target = settings.target(
        profile.as_ref(),
        &files,
        Credentials::long_term(key_id.clone(), Secret::new("")),
    );
    let holders = match &destination {
        Destination::Profile(name) => vec![name.clone()],
        _ => vec![],
    };
    vec![KeyGroup {
        key_id,
        secret: Secret::new(""),
        selected_via: holders.clone(),
        holders,
        target,
        mfa_serial: None,
        problem: None,
        destination,
    }]
}
