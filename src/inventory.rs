//! What the selected profiles are and which access keys they hold: profiles grouped by key
//! id (profiles that share a key are asked about once), role profiles followed along their
//! `source_profile` chain to the key they depend on, and the read-only AWS facts about each
//! key (owner, the user's keys, last use).
//!
//! Must not: change anything, in AWS or on disk. Both `status` and `rotate` start here.

use crate::aws::{
    AccessKeyMeta, AwsError, CallerIdentity, Credentials, Iam, LastUsed, Principal, Target,
};
use crate::profiles::{FileKind, ProfileFiles, ProfileKind};
use crate::secret::{Secret, mask_key_id};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One selected profile, as the files describe it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    /// `None` when no file has this profile.
    pub kind: Option<ProfileKind>,
    /// The long-term key id this profile holds itself.
    pub key_id: Option<String>,
    /// Where that key lives.
    pub key_files: Vec<FileKind>,
    /// For a role profile: the profile at the end of its `source_profile` chain whose key it uses.
    pub depends_on: Option<String>,
    /// Why the chain could not be followed (a loop, a missing profile).
    pub chain_error: Option<ChainError>,
    pub mfa_serial: Option<String>,
    pub region: String,
}

impl Entry {
    /// Why this profile is not rotated itself, if it is not.
    pub fn skip_reason(&self) -> Option<String> {
        match &self.kind {
            None => Some("no such profile in the credentials or config file".to_string()),
            Some(kind) => kind.not_rotatable_reason(),
        }
    }
}

/// One access key held by local profiles: the unit of inspection and rotation.
#[derive(Clone, Debug)]
pub struct KeyGroup {
    pub key_id: String,
    pub secret: Secret,
    /// Every local profile that holds this key (selected or not: all are updated together).
    pub holders: Vec<String>,
    /// The selected profiles that led here (directly or through a role chain).
    pub selected_via: Vec<String>,
    /// Where to call AWS (the first holder's region and endpoints).
    pub target: Target,
    /// An MFA device named by a holder (`mfa_serial`), for IAM calls that need MFA.
    pub mfa_serial: Option<String>,
    /// A reason this key cannot be handled (holders disagree on its secret).
    pub problem: Option<GroupProblem>,
    /// Where the new key goes: the holders, or (an administrator rotating another user's
    /// key that no local profile holds) one named profile, or only the `--output env` lines.
    pub destination: Destination,
}

/// Where a rotation writes the new key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Destination {
    /// Every profile holding the old key (the usual case).
    #[default]
    Holders,
    /// One named profile, created if missing (`--auth-profile` and `--user-name`, when no
    /// local profile holds the user's key).
    Profile(String),
    /// Nowhere: printed at the end of the run (`--output env`). The journal outlives the
    /// rotation until the output is written; one left behind unprinted is undone while the
    /// old key is Active, and printed by `recover --output env` once it is not.
    Printed,
}

/// The selected profiles and the keys behind them.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub entries: Vec<Entry>,
    pub groups: Vec<KeyGroup>,
}

const MAX_CHAIN: usize = 16;

/// Why a role profile's `source_profile` chain could not be followed to a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("profile `{0}` does not exist")]
    Missing(String),
    #[error("profile `{0}` has neither a key nor a source_profile")]
    NoKey(String),
    #[error("profile `{0}` names itself as source_profile but has no key")]
    SelfWithoutKey(String),
    #[error("source_profile loop: {}", .0.join(" → "))]
    Loop(Vec<String>),
    #[error("source_profile chain longer than {0} profiles")]
    TooLong(usize),
    #[error("source_profile `{0}` does not exist")]
    MissingSource(String),
}

/// Why a key group cannot be rotated or checked as the files (or the caller) stand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupProblem {
    #[error(
        "profiles {} hold key {} with different secrets; make them agree (one of them is out of date) and run again",
        holders.join(", "),
        mask_key_id(key_id)
    )]
    SecretsDiffer {
        holders: Vec<String>,
        key_id: String,
    },
    /// The caller refused the group and said why (`--user-name` with `--auth-profile`).
    #[error("{0}")]
    Refused(String),
}

/// Follow `source_profile` from a role profile to the profile whose static key it uses.
fn chain_end(files: &ProfileFiles, start: &str) -> Result<String, ChainError> {
    let mut seen = vec![start.to_string()];
    let mut current = start.to_string();
    loop {
        let profile = files
            .profile(&current)
            .ok_or_else(|| ChainError::Missing(current.clone()))?;
        let next = match profile.get("source_profile") {
            Some(next) => next.to_string(),
            None if current != start && profile.get("aws_access_key_id").is_some() => {
                return Ok(current);
            }
            None => {
                return Err(ChainError::NoKey(current));
            }
        };
        if next == current {
            // `source_profile` naming itself: the role is assumed with this profile's own key.
            return if profile.get("aws_access_key_id").is_some() {
                Ok(current)
            } else {
                Err(ChainError::SelfWithoutKey(current))
            };
        }
        if seen.contains(&next) {
            seen.push(next);
            return Err(ChainError::Loop(seen));
        }
        if seen.len() >= MAX_CHAIN {
            return Err(ChainError::TooLong(MAX_CHAIN));
        }
        let next_profile = files
            .profile(&next)
            .ok_or_else(|| ChainError::MissingSource(next.clone()))?;
        if next_profile.get("role_arn").is_none() && next_profile.get("aws_access_key_id").is_some()
        {
            return Ok(next);
        }
        seen.push(next.clone());
        current = next;
    }
}

/// Describe the selected profiles and group the keys they hold.
pub fn build(files: &ProfileFiles, settings: &Settings, names: &[String]) -> Inventory {
    let mut inventory = Inventory::default();
    for name in names {
        let profile = files.profile(name);
        let kind = profile.as_ref().map(|p| p.kind());
        let (depends_on, chain_error) = match &kind {
            Some(ProfileKind::Role { .. }) => match chain_end(files, name) {
                Ok(end) => (Some(end), None),
                Err(e) => (None, Some(e)),
            },
            _ => (None, None),
        };
        let entry = Entry {
            name: name.clone(),
            key_id: profile
                .as_ref()
                .and_then(|p| p.get("aws_access_key_id"))
                .map(str::to_string),
            key_files: profile.as_ref().map(|p| p.key_files()).unwrap_or_default(),
            mfa_serial: profile
                .as_ref()
                .and_then(|p| p.get("mfa_serial"))
                .map(str::to_string),
            region: settings.region_for(profile.as_ref()),
            kind,
            depends_on,
            chain_error,
        };
        let key_profile = match (&entry.kind, &entry.depends_on) {
            (Some(k), _) if k.rotatable() => Some(name.clone()),
            (_, Some(end)) => Some(end.clone()),
            _ => None,
        };
        if let Some(holder_name) = key_profile {
            add_to_group(&mut inventory.groups, files, settings, &holder_name, name);
        }
        inventory.entries.push(entry);
    }
    inventory
}

fn add_to_group(
    groups: &mut Vec<KeyGroup>,
    files: &ProfileFiles,
    settings: &Settings,
    holder: &str,
    via: &str,
) {
    let Some(profile) = files.profile(holder) else {
        return;
    };
    let (Some(key_id), Some(secret)) = (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) else {
        return;
    };
    if let Some(group) = groups.iter_mut().find(|g| g.key_id == key_id) {
        if !group.selected_via.iter().any(|v| v == via) {
            group.selected_via.push(via.to_string());
        }
        return;
    }
    let holders = files.holder_names(key_id);
    let secrets_differ = holders.iter().any(|h| {
        files
            .profile(h)
            .and_then(|p| p.get("aws_secret_access_key").map(|s| s != secret))
            .unwrap_or(false)
    });
    let problem = secrets_differ.then(|| GroupProblem::SecretsDiffer {
        holders: holders.clone(),
        key_id: key_id.to_string(),
    });
    let mfa_serial = holders.iter().find_map(|h| {
        files
            .profile(h)
            .and_then(|p| p.get("mfa_serial").map(str::to_string))
    });
    let credentials = Credentials::long_term(key_id, Secret::new(secret));
    groups.push(KeyGroup {
        key_id: key_id.to_string(),
        secret: Secret::new(secret),
        holders,
        selected_via: vec![via.to_string()],
        target: settings.target(Some(&profile), files, credentials),
        mfa_serial,
        problem,
        destination: Destination::Holders,
    });
}

/// What AWS says about one key and its user.
#[derive(Clone, Debug)]
pub struct KeyFacts {
    pub identity: CallerIdentity,
    pub user: String,
    /// All of the user's access keys, this one included.
    pub keys: Vec<AccessKeyMeta>,
    /// Last use of each of the user's keys that could be read.
    pub last_used: BTreeMap<String, LastUsed>,
}

impl KeyFacts {
    pub fn key(&self, id: &str) -> Option<&AccessKeyMeta> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn others(&self, id: &str) -> Vec<&AccessKeyMeta> {
        self.keys.iter().filter(|k| k.id != id).collect()
    }
}

/// Why a key could not be inspected.
#[derive(Clone, Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "the key belongs to {what} ({arn}), not to an IAM user; only IAM users' access keys can be rotated"
    )]
    NotAnIamUser { arn: String, what: &'static str },
    #[error("key {key_id} belongs to IAM user {owner}, not to {expected} (--user-name)")]
    OtherUser {
        key_id: String,
        owner: String,
        expected: String,
    },
}

/// Who owns the key (GetCallerIdentity, signed with it) and must be an IAM user.
pub async fn identify<C: Iam>(client: &C) -> Result<(CallerIdentity, String), InspectError> {
    let identity = client.caller_identity().await?;
    let what = match identity.principal() {
        Principal::User(name) => return Ok((identity, name)),
        Principal::Root => "the account root user",
        Principal::AssumedRole(_) => "an assumed role",
        Principal::FederatedUser(_) => "a federated user",
        Principal::Other(_) => "something other than an IAM user",
    };
    Err(InspectError::NotAnIamUser {
        arn: identity.arn.clone(),
        what,
    })
}

/// Whose last use [`inspect_as`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastUse {
    /// Every key of the user, the inspected one first (`status`, `prune`).
    EveryKey,
    /// Only the user's other keys: a rotation shows and decides nothing by the last use of
    /// the key it replaces, so it saves that call.
    OtherKeys,
}

/// One round of read-only calls for a key: its last use (first, so that these calls are
/// not what it reports), identity, the user's keys, and the last use of the others. A
/// last-use lookup that is refused is left out, not fatal.
pub async fn inspect<C: Iam>(client: &C, key_id: &str) -> Result<KeyFacts, InspectError> {
    inspect_as(client, client, key_id, None, LastUse::EveryKey).await
}

/// [`inspect`] with the IAM calls made by `iam` (another profile's credentials, or an MFA
/// session) while the key's owner is found with the key itself (`own`); with `user`, the owner
/// must be that IAM user; `last_use` says whose last use is read.
pub async fn inspect_as<C: Iam>(
    own: &C,
    iam: &C,
    key_id: &str,
    user: Option<&str>,
    last_use: LastUse,
) -> Result<KeyFacts, InspectError> {
    let client = iam;
    let mut last_used = BTreeMap::new();
    if last_use == LastUse::EveryKey {
        match client.access_key_last_used(key_id).await {
            Ok(used) => {
                last_used.insert(key_id.to_string(), used);
            }
            Err(e) if e.kind.is_auth_failure() => return Err(e.into()),
            Err(e) => {
                tracing::debug!(key = %crate::secret::mask_key_id(key_id), error = %e, "last use not available")
            }
        }
    }
    let (identity, owner) = identify(own).await?;
    if let Some(expected) = user
        && expected != owner
    {
        return Err(InspectError::OtherUser {
            key_id: crate::secret::mask_key_id(key_id),
            owner,
            expected: expected.to_string(),
        });
    }
    let user = owner;
    let keys = client.list_access_keys(&user).await?;
    for key in keys.iter().filter(|k| k.id != key_id) {
        match client.access_key_last_used(&key.id).await {
            Ok(used) => {
                last_used.insert(key.id.clone(), used);
            }
            Err(e) => {
                tracing::debug!(key = %crate::secret::mask_key_id(&key.id), error = %e, "last use not available")
            }
        }
    }
    Ok(KeyFacts {
        identity,
        user,
        keys,
        last_used,
    })
}

/// The facts about IAM user `user` when no local profile holds one of its keys (an
/// administrator rotating another user's key with `--auth-profile` and `--user-name`): all
/// calls are made by `iam`; the user's ARN is built from the caller's partition and account.
pub async fn inspect_user<C: Iam>(iam: &C, user: &str) -> Result<KeyFacts, InspectError> {
    let caller = iam.caller_identity().await?;
    let keys = iam.list_access_keys(user).await?;
    let mut last_used = BTreeMap::new();
    for key in &keys {
        match iam.access_key_last_used(&key.id).await {
            Ok(used) => {
                last_used.insert(key.id.clone(), used);
            }
            Err(e) => {
                tracing::debug!(key = %crate::secret::mask_key_id(&key.id), error = %e, "last use not available")
            }
        }
    }
    let identity = CallerIdentity {
        arn: format!(
            "arn:{}:iam::{}:user/{user}",
            caller.partition(),
            caller.account
        ),
        account: caller.account,
        user_id: String::new(),
    };
    Ok(KeyFacts {
        identity,
        user: user.to_string(),
        keys,
        last_used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::partition_for_region;

    #[test]
    fn govcloud_and_china_profiles_get_their_region_and_endpoints_with_no_flags() {
        let settings = Settings::for_tests(&["gov", "china", "plain"]);
        let files = ProfileFiles::from_texts(
            &settings.paths,
            "[gov]\naws_access_key_id = AKIAGOV0000000000001\naws_secret_access_key = s1\n\
             [china]\naws_access_key_id = AKIACHN0000000000001\naws_secret_access_key = s2\n\
             [plain]\naws_access_key_id = AKIAPLN0000000000001\naws_secret_access_key = s3\n",
            "[profile gov]\nregion = us-gov-west-1\n[profile china]\nregion = cn-north-1\n",
        )
        .unwrap();
        let names = settings.selected_names(&files);
        let inventory = build(&files, &settings, &names);
        let target = |key: &str| {
            inventory
                .groups
                .iter()
                .find(|g| g.key_id == key)
                .map(|g| g.target.clone())
                .unwrap()
        };
        let cases = [
            (
                "AKIAGOV0000000000001",
                "us-gov-west-1",
                "aws-us-gov",
                "https://iam.us-gov.amazonaws.com",
                "https://sts.us-gov-west-1.amazonaws.com",
            ),
            (
                "AKIACHN0000000000001",
                "cn-north-1",
                "aws-cn",
                "https://iam.cn-north-1.amazonaws.com.cn",
                "https://sts.cn-north-1.amazonaws.com.cn",
            ),
            (
                "AKIAPLN0000000000001",
                "us-east-1",
                "aws",
                "https://iam.amazonaws.com",
                "https://sts.us-east-1.amazonaws.com",
            ),
        ];
        for (key, region, partition, iam, sts) in cases {
            let t = target(key);
            assert_eq!(t.region, region, "{key}");
            assert_eq!(partition_for_region(&t.region), partition);
            assert_eq!((&t.iam_endpoint, &t.sts_endpoint), (&None, &None));
            let endpoints = crate::aws::sdk::Endpoints::for_target(&t);
            assert_eq!(endpoints.iam.trim_end_matches('/'), iam, "{key}");
            assert_eq!(endpoints.sts.trim_end_matches('/'), sts, "{key}");
        }
        let entry = |name: &str| {
            inventory
                .entries
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.region.clone())
                .unwrap()
        };
        assert_eq!(entry("gov"), "us-gov-west-1");
        assert_eq!(entry("china"), "cn-north-1");
    }
}
