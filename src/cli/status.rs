//! `iam-keys status`: for each selected profile, what it is and, for static keys, what AWS
//! knows about the key: owner, status, age, last use, and the user's other keys.

use super::duration::DurationArg;
use super::render;
use super::render::status::{Inspected, build_report, render_text};
use super::ui::Ui;
use crate::aws::Connector;
use crate::error::{Error, Outcome};
use crate::inventory::{self, KeyGroup};
use crate::settings::Settings;
use clap::Args;
use futures_util::StreamExt;
use jiff::Timestamp;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Mark keys older than this as due (90d, 12w, 36h); any due key makes the exit code 1
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<DurationArg>,
    #[command(flatten)]
    pub limit: super::limit::LimitArgs,
}

pub fn run(args: &StatusArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if settings.output == super::OutputFormat::Env {
        return Err(Error::Usage(
            "--output env is for `rotate`; status prints text or json".into(),
        ));
    }
    let files = crate::cli::wiring::load_files(settings, ui)?;
    if let Some(w) = settings.ambient_key_warning() {
        ui.warn(&w);
    }
    let names = settings.selected_names(&files);
    let inventory = inventory::build(&files, settings, &names);
    let sdk = super::sdk_connector(settings, &files)?;
    let connector = crate::aws::limiter::LimitedConnector::new(&sdk, args.limit.limiter());
    let results = crate::time::block_on(inspect_all(
        &connector,
        &inventory.groups,
        super::limit::MAX_TASKS,
    ));
    let retired = settings
        .state_dir
        .as_deref()
        .map(|d| crate::rotation::retired::RetiredStore::new(d).list())
        .transpose()
        .unwrap_or_else(|e| {
            ui.warn(&e.to_string());
            None
        })
        .unwrap_or_default();
    let report = build_report(
        args.older_than.as_ref(),
        &files,
        &inventory,
        &results,
        &retired,
        Timestamp::now(),
    );
    let text = match settings.output {
        super::OutputFormat::Json => render::json(&report),
        _ => render_text(&report, args.older_than.as_ref()),
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
