//! Running `iam-keys rotate` on a schedule: the job's files for each platform's scheduler
//! (a systemd user service and timer, a crontab line, a launchd LaunchAgent plist, a Task
//! Scheduler task XML), generated from one [`JobSpec`] as plain text; installing, removing
//! and inspecting them through the [`system::System`] seam (the `systemctl`, `crontab`,
//! `launchctl` and `schtasks` calls), and the job's run log ([`log`]).
//!
//! The job runs once a day at `--at` (the scheduler catches up a run missed while the
//! machine was off or asleep) and calls `rotate --older-than EVERY --yes --scheduled`, so
//! each key is rotated once per `--every`. It names this binary by its absolute path and
//! the credentials file, config file and state directory explicitly, so nothing depends on
//! `PATH` or on a login shell's environment.
//!
//! Must not: call AWS, or run any program except through [`system::System`].

pub mod log;
pub mod system;

use std::fmt::Write as _;
use std::path::PathBuf;

/// The name of the job everywhere: unit names, plist label, task name, crontab marker.
pub const NAME: &str = "iam-keys";
pub const LAUNCHD_LABEL: &str = "io.github.iam-keys.rotate";
pub const TASK_NAME: &str = "iam-keys rotate";
/// The marker at the end of our crontab line (and the comment above it).
pub const CRON_MARKER: &str = "# iam-keys schedule";

/// Which scheduler holds the job.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// A systemd user timer (Linux)
    Systemd,
    /// A line in the user's crontab (Linux and other Unix without systemd)
    Cron,
    /// A LaunchAgent (macOS)
    Launchd,
    /// A Task Scheduler task (Windows)
    TaskScheduler,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Systemd => "systemd user timer",
            Backend::Cron => "crontab line",
            Backend::Launchd => "launchd LaunchAgent",
            Backend::TaskScheduler => "Task Scheduler task",
        }
    }
}

/// Which profiles the job rotates.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JobProfiles {
    All,
    Named(Vec<String>),
}

/// Everything the job's files say.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// This binary, absolute.
    pub binary: PathBuf,
    /// `--every` as typed (`30d`): passed to `rotate --older-than`.
    pub every: String,
    /// Local time of the daily run.
    pub hour: u8,
    pub minute: u8,
    pub profiles: JobProfiles,
    pub credentials_file: PathBuf,
    pub config_file: PathBuf,
    pub state_dir: PathBuf,
    /// `--mfa-command` for profiles that need an MFA code (otherwise they are skipped).
    pub mfa_command: Option<String>,
}

impl JobSpec {
    /// The job's arguments after the binary.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "rotate",
            "--older-than",
            &self.every,
            "--yes",
            "--scheduled",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match &self.profiles {
            JobProfiles::All => args.push("--all".into()),
            JobProfiles::Named(names) => {
                for name in names {
                    args.push("--profile".into());
                    args.push(name.clone());
                }
            }
        }
        if let Some(command) = &self.mfa_command {
            args.push("--mfa-command".into());
            args.push(command.clone());
        }
        args
    }

    /// The environment the job sets (Unix schedulers).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                self.credentials_file.display().to_string(),
            ),
            ("AWS_CONFIG_FILE", self.config_file.display().to_string()),
            ("IAM_KEYS_STATE_DIR", self.state_dir.display().to_string()),
        ]
    }

    fn description(&self) -> String {
        format!(
            "iam-keys: rotate AWS access keys older than {} ({})",
            self.every,
            match &self.profiles {
                JobProfiles::All => "every profile".to_string(),
                JobProfiles::Named(n) => format!("profile {}", n.join(", ")),
            }
        )
    }
}

/// One file a backend writes: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFile {
    pub path: PathBuf,
    pub text: String,
}

/// systemd: a word of `ExecStart=` or an `Environment=` assignment, double-quoted; `\` and
/// `"` escaped, `%` (specifiers) doubled, and `$` doubled so no variable is expanded.
pub fn systemd_quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The systemd user service that runs the job once.
pub fn systemd_service(spec: &JobSpec) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Written by `iam-keys schedule install`; remove with `iam-keys schedule uninstall`."
    );
    let _ = writeln!(s, "[Unit]");
    let _ = writeln!(s, "Description={}", spec.description());
    let _ = writeln!(s, "Wants=network-online.target");
    let _ = writeln!(s, "After=network-online.target");
    let _ = writeln!(s);
    let _ = writeln!(s, "[Service]");
    let _ = writeln!(s, "Type=oneshot");
    for (k, v) in spec.env() {
        let _ = writeln!(s, "Environment={}", systemd_quote(&format!("{k}={v}")));
    }
    let mut exec = systemd_quote(&spec.binary.display().to_string());
    for a in spec.args() {
        exec.push(' ');
        exec.push_str(&systemd_quote(&a));
    }
    let _ = writeln!(s, "ExecStart={exec}");
    s
}

/// The systemd user timer: daily at the time, catching up a missed run, with up to an hour
/// of random delay so a team's machines do not all call IAM at once.
pub fn systemd_timer(spec: &JobSpec) -> String {
    format!(
        "# Written by `iam-keys schedule install`; remove with `iam-keys schedule uninstall`.\n\
         [Unit]\n\
         Description=Daily run of {NAME}.service\n\
         \n\
         [Timer]\n\
         OnCalendar=*-*-* {:02}:{:02}:00\n\
         Persistent=true\n\
         RandomizedDelaySec=1h\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        spec.hour, spec.minute
    )
}

/// A word for `sh` (cron runs the line with `/bin/sh`): single-quoted, `'` as `'\''`, and
/// `%` escaped (cron turns a bare `%` into a newline).
pub fn sh_quote(word: &str) -> String {
    let quoted = format!("'{}'", word.replace('\'', r"'\''"));
    quoted.replace('%', r"\%")
}

/// The crontab entry: a comment line and the job line, both carrying [`CRON_MARKER`].
pub fn cron_lines(spec: &JobSpec) -> String {
    let mut line = format!("{} {} * * * ", spec.minute, spec.hour);
    for (k, v) in spec.env() {
        let _ = write!(line, "{k}={} ", sh_quote(&v));
    }
    line.push_str(&sh_quote(&spec.binary.display().to_string()));
    for a in spec.args() {
        line.push(' ');
        line.push_str(&sh_quote(&a));
    }
    format!(
        "{CRON_MARKER}: {} (remove with `iam-keys schedule uninstall`)\n{line} {CRON_MARKER}\n",
        spec.description()
    )
}

/// Remove our lines from a crontab's text (each line carrying the marker).
pub fn cron_without_ours(crontab: &str) -> String {
    crontab
        .lines()
        .filter(|l| !l.contains(CRON_MARKER))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The LaunchAgent: the job's argv and environment, daily at the time. launchd runs a
/// calendar job missed while the Mac slept when it wakes.
pub fn launchd_plist(spec: &JobSpec) -> String {
    let mut s = String::new();
    s.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    let _ = writeln!(s, "\t<key>Label</key>\n\t<string>{LAUNCHD_LABEL}</string>");
    s.push_str("\t<key>ProgramArguments</key>\n\t<array>\n");
    let _ = writeln!(
        s,
        "\t\t<string>{}</string>",
        xml_escape(&spec.binary.display().to_string())
    );
    for a in spec.args() {
        let _ = writeln!(s, "\t\t<string>{}</string>", xml_escape(&a));
    }
    s.push_str("\t</array>\n\t<key>EnvironmentVariables</key>\n\t<dict>\n");
    for (k, v) in spec.env() {
        let _ = writeln!(
            s,
            "\t\t<key>{k}</key>\n\t\t<string>{}</string>",
            xml_escape(&v)
        );
    }
    s.push_str("\t</dict>\n");
    let _ = writeln!(
        s,
        "\t<key>StartCalendarInterval</key>\n\t<dict>\n\t\t<key>Hour</key>\n\t\t<integer>{}</integer>\n\t\t<key>Minute</key>\n\t\t<integer>{}</integer>\n\t</dict>",
        spec.hour, spec.minute
    );
    s.push_str("\t<key>RunAtLoad</key>\n\t<false/>\n\t<key>ProcessType</key>\n\t<string>Background</string>\n");
    let out = spec.state_dir.join("launchd.log");
    let _ = writeln!(
        s,
        "\t<key>StandardOutPath</key>\n\t<string>{0}</string>\n\t<key>StandardErrorPath</key>\n\t<string>{0}</string>",
        xml_escape(&out.display().to_string())
    );
    s.push_str("</dict>\n</plist>\n");
    s
}

/// A word of a Windows command line, quoted the way `CommandLineToArgvW` (and Rust's
/// runtime) reads it back.
pub fn windows_quote(word: &str) -> String {
    if !word.is_empty() && !word.contains([' ', '\t', '"']) {
        return word.to_string();
    }
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in word.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.push_str(&"\\".repeat(backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            c => {
                out.push_str(&"\\".repeat(backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.push_str(&"\\".repeat(backslashes * 2));
    out.push('"');
    out
}

/// The Task Scheduler task: daily at the time, `StartWhenAvailable` (a run missed while
/// the PC was off runs when it is next on), one hour of random delay, as the logged-on user
/// without elevation. Task Scheduler has no environment setting, so the files are passed
/// as `--credentials-file` and `--config-file`; the state directory is the default
/// (`%LOCALAPPDATA%\iam-keys`). Written UTF-16 by the installer, as `schtasks /XML` wants.
pub fn task_xml(spec: &JobSpec) -> String {
    let mut args = spec.args();
    args.push("--credentials-file".into());
    args.push(spec.credentials_file.display().to_string());
    args.push("--config-file".into());
    args.push(spec.config_file.display().to_string());
    let arguments = args
        .iter()
        .map(|a| windows_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n\
<Task version=\"1.2\" xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\">\n\
  <RegistrationInfo>\n\
    <Description>{description}</Description>\n\
    <URI>\\{TASK_NAME}</URI>\n\
  </RegistrationInfo>\n\
  <Triggers>\n\
    <CalendarTrigger>\n\
      <StartBoundary>2026-01-01T{hour:02}:{minute:02}:00</StartBoundary>\n\
      <RandomDelay>PT1H</RandomDelay>\n\
      <ScheduleByDay>\n\
        <DaysInterval>1</DaysInterval>\n\
      </ScheduleByDay>\n\
    </CalendarTrigger>\n\
  </Triggers>\n\
  <Principals>\n\
    <Principal id=\"Author\">\n\
      <LogonType>InteractiveToken</LogonType>\n\
      <RunLevel>LeastPrivilege</RunLevel>\n\
    </Principal>\n\
  </Principals>\n\
  <Settings>\n\
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n\
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n\
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n\
    <StartWhenAvailable>true</StartWhenAvailable>\n\
    <RunOnlyIfNetworkAvailable>true</RunOnlyIfNetworkAvailable>\n\
    <ExecutionTimeLimit>PT1H</ExecutionTimeLimit>\n\
    <Enabled>true</Enabled>\n\
  </Settings>\n\
  <Actions Context=\"Author\">\n\
    <Exec>\n\
      <Command>{command}</Command>\n\
      <Arguments>{arguments}</Arguments>\n\
    </Exec>\n\
  </Actions>\n\
</Task>\n",
        description = xml_escape(&spec.description()),
        hour = spec.hour,
        minute = spec.minute,
        command = xml_escape(&spec.binary.display().to_string()),
        arguments = xml_escape(&arguments),
    )
}

/// `HH:MM` for `--at`.
pub fn parse_at(text: &str) -> Result<(u8, u8), String> {
    let bad = || format!("`{text}` is not a time of day: use HH:MM, like 09:30 or 17:05");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let hour: u8 = h.parse().map_err(|_| bad())?;
    let minute: u8 = m.parse().map_err(|_| bad())?;
    if hour > 23 || minute > 59 || m.len() != 2 {
        return Err(bad());
    }
    Ok((hour, minute))
}

/// The next daily run at `hour:minute` local time after `now` (before any random delay).
pub fn next_run(now: jiff::Zoned, hour: u8, minute: u8) -> Option<jiff::Zoned> {
    let today = now
        .with()
        .hour(hour as i8)
        .minute(minute as i8)
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .ok()?;
    if today > now {
        Some(today)
    } else {
        today.checked_add(jiff::Span::new().days(1)).ok()
    }
}

#[cfg(test)]
mod tests;
