//! `iam-keys status`: for each selected profile, what it is and, for static keys, what AWS
//! knows about the key: owner, status, age, last use, and the user's other keys.

use super::advice::{self, Signer};
use super::duration::DurationArg;
use super::render::{self, ErrorJson, LastUsedJson};
use super::ui::Ui;
use crate::aws::Connector;
use crate::error::{Error, Outcome};
use crate::inventory::{self, InspectError, KeyFacts, KeyGroup};
use crate::profiles::{FileKind, ProfileFiles};
use crate::secret::mask_key_id;
use crate::settings::Settings;
use clap::Args;
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Mark keys older than this as due (90d, 12w, 36h); any due key makes the exit code 1
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<DurationArg>,
    #[command(flatten)]
    pub limit: super::limit::LimitArgs,
}

/// The JSON document of `status --output json` (field names are stable; see the README).
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub older_than_days: Option<f64>,
    pub profiles: Vec<ProfileStatus>,
    pub summary: Summary,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub profiles: usize,
    pub keys: usize,
    pub due: usize,
    pub errors: usize,
}

#[derive(Debug, Serialize)]
pub struct ProfileStatus {
    pub profile: String,
    /// Whether either file has this profile.
    pub found: bool,
    /// `static-key`, `static-key-with-session-token`, `session-credentials`, `role`,
    /// `web-identity`, `sso`, `credential-process`, `incomplete`, `none`.
    pub kind: Option<&'static str>,
    /// Where the profile's own key lives: `credentials`, `config`, `both`.
    pub key_location: Option<&'static str>,
    pub rotatable: bool,
    /// Why the profile itself is not rotated.
    pub skip_reason: Option<String>,
    /// For a role profile: the profile whose key it uses.
    pub depends_on: Option<String>,
    pub mfa_serial: Option<String>,
    pub region: String,
    /// The key this profile holds or depends on.
    pub key: Option<KeyStatus>,
    pub error: Option<ErrorJson>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyStatus {
    /// Masked: `AKIA…WXYZ`.
    pub access_key_id: String,
    pub user: String,
    pub account: String,
    pub arn: String,
    pub status: String,
    pub created: Option<String>,
    pub age_days: Option<i64>,
    pub due: Option<bool>,
    pub last_used: LastUsedJson,
    /// Other local profiles holding the same key.
    pub shared_with: Vec<String>,
    pub other_keys: Vec<OtherKey>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OtherKey {
    pub access_key_id: String,
    pub status: String,
    pub created: Option<String>,
    pub age_days: Option<i64>,
    pub last_used: LastUsedJson,
    /// Local profiles holding it; empty means no profile on this machine ("another machine?").
    pub held_by: Vec<String>,
}

fn location(files: &[FileKind]) -> Option<&'static str> {
    match (
        files.contains(&FileKind::Credentials),
        files.contains(&FileKind::Config),
    ) {
        (true, true) => Some("both"),
        (true, false) => Some("credentials"),
        (false, true) => Some("config"),
        (false, false) => None,
    }
}

pub fn run(args: &StatusArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if settings.output == super::OutputFormat::Env {
        return Err(Error::Usage(
            "--output env is for `rotate`; status prints text or json".into(),
        ));
    }
    let files = ProfileFiles::load(&settings.paths)?;
    for warning in files.warnings() {
        ui.warn(&warning.to_string());
    }
    if let Some(w) = settings.ambient_key_warning() {
        ui.warn(&w);
    }
    let names = settings.selected_names(&files);
    let inventory = inventory::build(&files, settings, &names);
    let sdk = super::sdk_connector(settings, &files)?;
    let connector = crate::aws::limiter::LimitedConnector::new(&sdk, args.limit.limiter());
    let results = super::block_on(inspect_all(
        &connector,
        &inventory.groups,
        super::limit::MAX_TASKS,
    ));
    let report = build_report(args, &files, &inventory, &results, Timestamp::now());
    let text = match settings.output {
        super::OutputFormat::Json => {
            serde_json::to_string_pretty(&report).expect("serialisable") + "\n"
        }
        _ => render_text(&report, args),
    };
    ui.out(&text)?;
    if report.profiles.is_empty() {
        ui.note(&format!(
            "no profiles in {} or {}",
            settings.paths.credentials.display(),
            settings.paths.config.display()
        ));
    }
    Ok(if report.summary.due > 0 || report.summary.errors > 0 {
        Outcome::Attention
    } else {
        Outcome::Success
    })
}

type Inspected = Result<KeyFacts, InspectError>;

async fn inspect_all<C: Connector>(
    connector: &C,
    groups: &[KeyGroup],
    concurrency: usize,
) -> Vec<Option<Inspected>> {
    futures_util::stream::iter(groups.iter().map(|group| async move {
        if group.problem.is_some() {
            return None;
        }
        let client = connector.connect(&group.target);
        Some(inventory::inspect(&client, &group.key_id).await)
    }))
    .buffered(concurrency.max(1))
    .collect()
    .await
}

fn build_report(
    args: &StatusArgs,
    files: &ProfileFiles,
    inventory: &inventory::Inventory,
    results: &[Option<Inspected>],
    now: Timestamp,
) -> StatusReport {
    let threshold = args
        .older_than
        .as_ref()
        .map(|d| d.duration.as_secs() as i64);
    let mut due = 0;
    let mut errors = 0;
    let mut counted: Vec<&str> = Vec::new();
    let mut profiles = Vec::new();
    for entry in &inventory.entries {
        let key_profile = if entry.kind.as_ref().is_some_and(|k| k.rotatable()) {
            Some(entry.name.as_str())
        } else {
            entry.depends_on.as_deref()
        };
        let key_id = key_profile
            .and_then(|p| files.profile(p))
            .and_then(|p| p.get("aws_access_key_id").map(str::to_string));
        let group_index = key_id
            .as_deref()
            .and_then(|id| inventory.groups.iter().position(|g| g.key_id == id));
        let mut key = None;
        let mut error = entry
            .chain_error
            .as_ref()
            .map(|e| ErrorJson::other("SourceProfile", e.clone()));
        if let Some(i) = group_index {
            let group = &inventory.groups[i];
            let first_time = !counted.contains(&group.key_id.as_str());
            if first_time {
                counted.push(&group.key_id);
            }
            match (&group.problem, &results[i]) {
                (Some(problem), _) => error = Some(ErrorJson::other("Conflict", problem.clone())),
                (None, Some(Ok(facts))) => {
                    let status = key_status(group, facts, files, threshold, now);
                    if status.due == Some(true) && first_time {
                        due += 1;
                    }
                    key = Some(status);
                }
                (None, Some(Err(InspectError::Aws(e)))) => {
                    let cx = advice::Context {
                        profiles: &group.holders,
                        key_id: &group.key_id,
                        region: &group.target.region,
                        signer: Signer::OldKey,
                    };
                    error = Some(ErrorJson::from_aws(e, advice::explain(e, &cx)));
                }
                (None, Some(Err(e @ InspectError::NotAnIamUser { .. }))) => {
                    error = Some(ErrorJson::other("NotAnIamUser", e.to_string()))
                }
                (None, Some(Err(e @ InspectError::OtherUser { .. }))) => {
                    error = Some(ErrorJson::other("OtherUser", e.to_string()))
                }
                (None, None) => {}
            }
            if error.is_some() && first_time {
                errors += 1;
            }
        }
        profiles.push(ProfileStatus {
            profile: entry.name.clone(),
            found: entry.kind.is_some(),
            kind: entry.kind.as_ref().map(|k| k.label()),
            key_location: location(&entry.key_files),
            rotatable: entry.kind.as_ref().is_some_and(|k| k.rotatable()),
            skip_reason: entry.skip_reason(),
            depends_on: entry.depends_on.clone(),
            mfa_serial: entry.mfa_serial.clone(),
            region: entry.region.clone(),
            key,
            error,
        });
    }
    StatusReport {
        older_than_days: args.older_than.as_ref().map(DurationArg::days),
        summary: Summary {
            profiles: profiles.len(),
            keys: counted.len(),
            due,
            errors,
        },
        profiles,
    }
}

fn key_status(
    group: &KeyGroup,
    facts: &KeyFacts,
    files: &ProfileFiles,
    threshold: Option<i64>,
    now: Timestamp,
) -> KeyStatus {
    let this = facts.key(&group.key_id);
    let created = this.and_then(|k| k.created);
    let last_used = facts
        .last_used
        .get(&group.key_id)
        .map(LastUsedJson::from)
        .unwrap_or_default();
    let other_keys = facts
        .others(&group.key_id)
        .into_iter()
        .map(|k| OtherKey {
            access_key_id: mask_key_id(&k.id),
            status: k.status.to_string(),
            created: k.created.map(render::rfc3339),
            age_days: k.created.map(|c| render::age_days(now, c)),
            last_used: facts
                .last_used
                .get(&k.id)
                .map(LastUsedJson::from)
                .unwrap_or_default(),
            held_by: files
                .profiles_with_key(&k.id)
                .into_iter()
                .map(|h| h.profile)
                .collect(),
        })
        .collect();
    KeyStatus {
        access_key_id: mask_key_id(&group.key_id),
        user: facts.user.clone(),
        account: facts.identity.account.clone(),
        arn: facts.identity.arn.clone(),
        status: this
            .map(|k| k.status.to_string())
            .unwrap_or_else(|| "unknown".into()),
        created: created.map(render::rfc3339),
        age_days: created.map(|c| render::age_days(now, c)),
        due: threshold.map(|t| created.is_some_and(|c| now.as_second() - c.as_second() >= t)),
        last_used,
        shared_with: group.holders.clone(),
        other_keys,
    }
}

fn render_text(report: &StatusReport, args: &StatusArgs) -> String {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut seen_other_keys: Vec<String> = Vec::new();
    for p in &report.profiles {
        let kind = match (p.kind, p.key_location) {
            (Some(k), Some(l)) => format!("{k} ({l})"),
            (Some(k), None) => k.to_string(),
            (None, _) => "missing".to_string(),
        };
        let mfa = if p.mfa_serial.is_some() { " [MFA]" } else { "" };
        match (&p.key, &p.error) {
            (Some(k), _) => {
                let age = k
                    .age_days
                    .map(|d| format!("{d}d"))
                    .unwrap_or_else(|| "?".into());
                let due = match k.due {
                    Some(true) => " DUE",
                    _ => "",
                };
                let owner = format!("{}@{}", k.user, k.account);
                let via = p
                    .depends_on
                    .as_ref()
                    .map(|d| format!(" (via {d})"))
                    .unwrap_or_default();
                let used = match &k.last_used.date {
                    None => "never".to_string(),
                    Some(d) => {
                        let day = &d[..10];
                        match (&k.last_used.service, &k.last_used.region) {
                            (Some(s), Some(r)) => format!("{day} {s} {r}"),
                            _ => day.to_string(),
                        }
                    }
                };
                rows.push(vec![
                    p.profile.clone(),
                    kind,
                    format!("{}{via}", k.access_key_id),
                    format!("{}{due}{mfa}", k.status),
                    age,
                    used,
                    owner,
                ]);
                for other in &k.other_keys {
                    if seen_other_keys.contains(&other.access_key_id) {
                        continue;
                    }
                    seen_other_keys.push(other.access_key_id.clone());
                    let note = format!(
                        "{}: {}'s other key {} is {}, {} days old, last used {}; {}",
                        k.shared_with.join(", "),
                        k.user,
                        other.access_key_id,
                        other.status,
                        other
                            .age_days
                            .map(|d| d.to_string())
                            .unwrap_or_else(|| "?".into()),
                        other
                            .last_used
                            .date
                            .as_deref()
                            .map(|d| &d[..10])
                            .unwrap_or("never"),
                        if other.held_by.is_empty() {
                            "held by no profile here (another machine?)".to_string()
                        } else {
                            format!("held by profile {}", other.held_by.join(", "))
                        }
                    );
                    notes.push(note);
                }
            }
            (None, Some(e)) => {
                rows.push(vec![
                    p.profile.clone(),
                    kind,
                    "-".into(),
                    "ERROR".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                notes.push(format!("{}: {}", p.profile, e.message));
            }
            (None, None) => {
                let why = p
                    .depends_on
                    .as_ref()
                    .map(|d| format!("uses the key of profile {d}"))
                    .or_else(|| p.skip_reason.clone())
                    .unwrap_or_default();
                rows.push(vec![
                    p.profile.clone(),
                    kind,
                    "-".into(),
                    format!("not rotated{mfa}"),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                notes.push(format!("{}: {why}", p.profile));
            }
        }
    }
    let mut out = render::table(
        &[
            "PROFILE",
            "KIND",
            "KEY",
            "STATUS",
            "AGE",
            "LAST USED",
            "USER",
        ],
        &rows,
    );
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&format!("  {n}\n"));
        }
    }
    let s = &report.summary;
    let due = match &args.older_than {
        Some(d) => format!(", {} due (older than {})", s.due, d.text),
        None => String::new(),
    };
    out.push_str(&format!(
        "\n{} profile{}, {} key{}{due}, {} error{}\n",
        s.profiles,
        if s.profiles == 1 { "" } else { "s" },
        s.keys,
        if s.keys == 1 { "" } else { "s" },
        s.errors,
        if s.errors == 1 { "" } else { "s" }
    ));
    out
}
