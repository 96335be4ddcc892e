//! `iam-keys schedule install|status|uninstall`, and the scheduled job's wrapper
//! (`rotate --scheduled`): it runs the rotation as a child process with a JSON report,
//! writes the run log in the state directory, and prints only when something happened.

use super::OutputFormat;
use super::duration::DurationArg;
use super::ui::Ui;
use crate::error::{Error, Outcome};
use crate::schedule::log::{self, LastRun};
use crate::schedule::system::{self, Places, RealSystem, System};
use crate::schedule::{Backend, JobProfiles, JobSpec};
use crate::settings::{Selection, Settings};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use std::path::PathBuf;

/// Set in the environment of the rotation a scheduled job runs as its child.
pub const CHILD_ENV: &str = "IAM_KEYS_SCHEDULED_CHILD";

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    pub action: ScheduleAction,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleAction {
    /// Install a daily job that rotates the selected profiles' keys once they are older than --every
    Install(InstallArgs),
    /// What is installed, the last run and its outcome, and the next run
    Status,
    /// Remove the job (nothing installed is fine)
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Rotate each key once it is this old (the job runs daily and passes it as rotate --older-than)
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub every: DurationArg,
    /// Local time of the daily run (HH:MM); systemd and Task Scheduler add up to an hour of random delay
    #[arg(long, value_name = "HH:MM", default_value = "10:00", value_parser = parse_at)]
    pub at: (u8, u8),
    /// The scheduler (default: a systemd user timer on Linux when systemd runs, else cron;
    /// launchd on macOS; Task Scheduler on Windows)
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// A command that prints the MFA code, for profiles that need one (otherwise the job skips them)
    #[arg(long, value_name = "COMMAND")]
    pub mfa_command: Option<String>,
    /// Print the files it would write and the commands it would run; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_at(text: &str) -> Result<(u8, u8), String> {
    crate::schedule::parse_at(text)
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// Print what it would remove; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &ScheduleArgs, settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    run_with(args, settings, ui, &RealSystem)
}

fn places(settings: &Settings) -> Result<Places, Error> {
    let lookup = |name: &str| settings.env.get(name).map(str::to_string);
    let home = crate::profiles::home_dir(&lookup)
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::Usage("no home directory is known (HOME is not set): set HOME".into())
        })?;
    let state_dir = settings.state_dir.clone().ok_or_else(|| {
        Error::Usage("no state directory is known: set IAM_KEYS_STATE_DIR or HOME".into())
    })?;
    let config_home = settings
        .env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home.join(".config"));
    #[cfg(unix)]
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = Some(unsafe { libc::getuid() });
    #[cfg(not(unix))]
    let uid = None;
    Ok(Places {
        home,
        config_home,
        state_dir: absolute(&state_dir),
        uid,
    })
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn schedule_error(e: system::ScheduleError) -> Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Error::Usage(text)
}

/// [`run`] with the scheduler commands going through `sys` (tests).
pub fn run_with(
    args: &ScheduleArgs,
    settings: &Settings,
    ui: &Ui,
    sys: &dyn System,
) -> Result<Outcome, Error> {
    let places = places(settings)?;
    match &args.action {
        ScheduleAction::Install(a) => install(a, settings, ui, sys, &places),
        ScheduleAction::Uninstall(a) => uninstall(a, ui, sys, &places),
        ScheduleAction::Status => status(settings, ui, sys, &places),
    }
}

fn install(
    args: &InstallArgs,
    settings: &Settings,
    ui: &Ui,
    sys: &dyn System,
    places: &Places,
) -> Result<Outcome, Error> {
    if cfg!(windows) && settings.env.get("IAM_KEYS_STATE_DIR").is_some() {
        return Err(Error::Usage(
            "IAM_KEYS_STATE_DIR is set, but a Task Scheduler task has no environment: the job would use \
             %LOCALAPPDATA%\\iam-keys. Unset it to install the job"
                .into(),
        ));
    }
    let binary = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::Usage(format!("cannot tell where this iam-keys binary is: {e}")))?;
    let spec = JobSpec {
        binary,
        every: args.every.text.clone(),
        hour: args.at.0,
        minute: args.at.1,
        profiles: match &settings.selection {
            Selection::All => JobProfiles::All,
            Selection::Named(names) => JobProfiles::Named(names.clone()),
        },
        credentials_file: absolute(&settings.paths.credentials),
        config_file: absolute(&settings.paths.config),
        state_dir: places.state_dir.clone(),
        mfa_command: args.mfa_command.clone(),
    };
    let backend = match args.backend {
        Some(b) => b,
        None => system::detect(sys).map_err(schedule_error)?,
    };
    if args.dry_run {
        let mut out = format!("would install a {}:\n", backend.label());
        for action in system::install_plan(backend, &spec, places) {
            match action {
                system::Action::Write(file) if backend == Backend::Cron => {
                    out.push_str(&format!("add to the crontab:\n{}", file.text));
                }
                system::Action::Write(file) => {
                    out.push_str(&format!("--- {} ---\n{}", file.path.display(), file.text));
                }
                other => out.push_str(&format!("{other}\n")),
            }
        }
        out.push_str("(dry run: nothing was changed)\n");
        ui.out(&out)?;
        return Ok(Outcome::Success);
    }
    // Moving to another scheduler: the old job goes first, so only one runs.
    let others: Vec<Backend> = system::platform_backends()
        .iter()
        .copied()
        .filter(|b| *b != backend && system::installed(sys, *b, places))
        .collect();
    for action in system::uninstall(sys, &others, places).map_err(schedule_error)? {
        ui.note(&action.to_string());
    }
    let done = system::install(sys, backend, &spec, places).map_err(schedule_error)?;
    crate::rotation::journal::write_private_file(
        &places.state_dir,
        &places.spec_file(),
        &serde_json::to_vec_pretty(&(backend, &spec)).expect("serialisable"),
    )?;
    let mut out = String::new();
    for action in &done {
        out.push_str(&format!("{action}\n"));
    }
    out.push_str(&format!(
        "installed a {}: daily at {:02}:{:02}, `{}`\nlog: {}\n",
        backend.label(),
        spec.hour,
        spec.minute,
        job_line(&spec),
        log::log_path(&places.state_dir).display()
    ));
    ui.out(&out)?;
    Ok(Outcome::Success)
}

fn job_line(spec: &JobSpec) -> String {
    std::iter::once(spec.binary.display().to_string())
        .chain(spec.args())
        .collect::<Vec<_>>()
        .join(" ")
}

fn uninstall(
    args: &UninstallArgs,
    ui: &Ui,
    sys: &dyn System,
    places: &Places,
) -> Result<Outcome, Error> {
    let backends = system::platform_backends();
    if args.dry_run {
        let found: Vec<&Backend> = backends
            .iter()
            .filter(|b| system::installed(sys, **b, places))
            .collect();
        let text = if found.is_empty() {
            "nothing installed\n".to_string()
        } else {
            found
                .iter()
                .map(|b| format!("would remove the {}\n", b.label()))
                .collect()
        };
        ui.out(&text)?;
        return Ok(Outcome::Success);
    }
    let done = system::uninstall(sys, backends, places).map_err(schedule_error)?;
    let mut out: String = done.iter().map(|a| format!("{a}\n")).collect();
    if done.is_empty() {
        out.push_str("nothing installed\n");
    } else {
        out.push_str("the scheduled job is removed\n");
    }
    ui.out(&out)?;
    Ok(Outcome::Success)
}

#[derive(serde::Serialize)]
struct StatusJson {
    installed: Vec<Backend>,
    spec: Option<JobSpec>,
    command: Option<String>,
    next_run: Option<String>,
    last_run: Option<LastRun>,
    log: PathBuf,
}

fn status(
    settings: &Settings,
    ui: &Ui,
    sys: &dyn System,
    places: &Places,
) -> Result<Outcome, Error> {
    let installed: Vec<Backend> = system::platform_backends()
        .iter()
        .copied()
        .filter(|b| system::installed(sys, *b, places))
        .collect();
    let spec: Option<(Backend, JobSpec)> = std::fs::read(places.spec_file())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let next = spec
        .as_ref()
        .filter(|_| !installed.is_empty())
        .and_then(|(_, s)| crate::schedule::next_run(jiff::Zoned::now(), s.hour, s.minute));
    let last = log::read_last(&places.state_dir);
    let doc = StatusJson {
        installed: installed.clone(),
        command: spec.as_ref().map(|(_, s)| job_line(s)),
        spec: spec.as_ref().map(|(_, s)| s.clone()),
        next_run: next
            .as_ref()
            .map(|z| z.strftime("%Y-%m-%d %H:%M %:z").to_string()),
        last_run: last.clone(),
        log: log::log_path(&places.state_dir),
    };
    if settings.output == OutputFormat::Json {
        ui.out(&(serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"))?;
    } else {
        let mut out = String::new();
        if installed.is_empty() {
            out.push_str("installed: nothing (run `iam-keys schedule install`)\n");
        } else {
            let names: Vec<&str> = installed.iter().map(|b| b.label()).collect();
            out.push_str(&format!("installed: {}\n", names.join(", ")));
        }
        if let Some(command) = &doc.command {
            out.push_str(&format!("job: {command}\n"));
        }
        if let (Some((backend, s)), Some(next)) = (&spec, &doc.next_run) {
            let delay = match backend {
                Backend::Systemd | Backend::TaskScheduler => {
                    " (plus up to an hour of random delay)"
                }
                _ => "",
            };
            out.push_str(&format!(
                "runs: daily at {:02}:{:02}; next {next}{delay}\n",
                s.hour, s.minute
            ));
        }
        match &last {
            Some(l) => out.push_str(&format!(
                "last run: {}, exit {}: {}{}\n",
                l.started,
                l.exit_code,
                l.outcome,
                if l.mfa_skipped.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; skipped (needs an MFA code): {}",
                        l.mfa_skipped.join(", ")
                    )
                }
            )),
            None => out.push_str("last run: none yet\n"),
        }
        out.push_str(&format!("log: {}\n", doc.log.display()));
        ui.out(&out)?;
    }
    Ok(match &last {
        Some(l) if l.exit_code != 0 => Outcome::Attention,
        _ => Outcome::Success,
    })
}

/// `rotate --scheduled`: run the rotation as a child (same arguments, JSON report, stdin
/// closed), log what happened in the state directory, and print only when a key was
/// rotated, something failed, or a profile was skipped for want of an MFA code.
pub fn run_job(settings: &Settings, ui: &Ui) -> Result<Outcome, Error> {
    if settings.output != OutputFormat::Text {
        return Err(Error::Usage(
            "rotate --scheduled writes its own log and report: leave out --output".into(),
        ));
    }
    let state_dir = settings.state_dir.clone().ok_or_else(|| {
        Error::Usage(
            "rotate --scheduled needs a state directory for its log: set IAM_KEYS_STATE_DIR".into(),
        )
    })?;
    let started = Timestamp::now();
    let exe = std::env::current_exe()
        .map_err(|e| Error::Usage(format!("cannot tell where this iam-keys binary is: {e}")))?;
    let child = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .args(["--output", "json"])
        .env(CHILD_ENV, "1")
        .stdin(std::process::Stdio::null())
        .output();
    let finished = Timestamp::now();
    let (code, stdout, stderr) = match child {
        Ok(out) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => (
            -1,
            String::new(),
            format!("could not start {}: {e}", exe.display()),
        ),
    };
    let report: Option<serde_json::Value> = serde_json::from_str(&stdout).ok();
    let count = |field: &str| {
        report
            .as_ref()
            .and_then(|r| r["summary"][field].as_u64())
            .unwrap_or(0) as usize
    };
    let (rotated, failed, partial) = (count("rotated"), count("failed"), count("partial"));
    let mut lines = vec![format!(
        "run: exit {code}, {rotated} rotated, {} not due, {} skipped, {failed} failed, {partial} partial",
        count("not_due"),
        count("skipped")
    )];
    let mut mfa_skipped = Vec::new();
    let mut noteworthy = Vec::new();
    if let Some(r) = &report {
        for key in r["keys"].as_array().into_iter().flatten() {
            let result = key["result"].as_str().unwrap_or("?");
            if result == "not-due" {
                continue;
            }
            let profiles: Vec<&str> = key["profiles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str())
                .collect();
            let mut line = format!(
                "{result} {} (profiles {})",
                key["access_key_id"].as_str().unwrap_or("?"),
                profiles.join(", ")
            );
            if let Some(new) = key["new_access_key_id"].as_str() {
                line.push_str(&format!(" -> {new}"));
            }
            if let Some(message) = key["error"]["message"].as_str() {
                line.push_str(&format!(": {message}"));
            }
            noteworthy.push(line.clone());
            lines.push(line);
        }
        for skipped in r["skipped"].as_array().into_iter().flatten() {
            let profile = skipped["profile"].as_str().unwrap_or("?");
            let reason = skipped["reason"].as_str().unwrap_or("");
            let line = format!("skipped {profile}: {reason}");
            if reason.contains("MFA code") {
                mfa_skipped.push(profile.to_string());
                noteworthy.push(line.clone());
            }
            lines.push(line);
        }
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        lines.push(format!("stderr: {line}"));
    }
    let outcome = match code {
        0 if rotated > 0 => "rotated",
        0 => "nothing due",
        3 => "partial",
        -1 => "failed to start",
        _ => "attention",
    };
    if let Err(e) = log::append(&state_dir, started, &lines) {
        ui.warn(&format!(
            "cannot write the job's log {}: {e}",
            log::log_path(&state_dir).display()
        ));
    }
    let last = LastRun {
        started: crate::time::rfc3339(started),
        finished: crate::time::rfc3339(finished),
        exit_code: code,
        outcome: outcome.to_string(),
        rotated,
        failed,
        partial,
        mfa_skipped,
    };
    if let Err(e) = log::write_last(&state_dir, &last) {
        ui.warn(&format!("cannot record the job's last run: {e}"));
    }
    // Quiet when nothing happened: cron mails and journals only what matters.
    if code != 0 || !noteworthy.is_empty() {
        let mut out: String = lines.iter().map(|l| format!("{l}\n")).collect();
        out.push_str(&format!("log: {}\n", log::log_path(&state_dir).display()));
        ui.out(&out)?;
    }
    Ok(match code {
        0 => Outcome::Success,
        3 => Outcome::Partial,
        2 => {
            return Err(Error::Usage(format!(
                "the scheduled rotation stopped with an error; see {}",
                log::log_path(&state_dir).display()
            )));
        }
        _ => Outcome::Attention,
    })
}
