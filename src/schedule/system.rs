// Over 500 lines: install, status and uninstall for four schedulers, through the one `System` seam.
//! Installing, removing and finding the job: files written atomically, and the scheduler's
//! own commands (`systemctl --user`, `crontab`, `launchctl`, `schtasks`) run through the
//! [`System`] seam, which tests replace with a recorder.
//!
//! Must not: run a program any other way, or touch anything but the job's own files and
//! our own crontab lines.

use super::{Backend, JobFile, JobSpec};
use std::path::{Path, PathBuf};

/// What a program printed and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The seam for the scheduler's commands.
pub trait System {
    /// Run `program` with `args` (never through a shell), `stdin` on its standard input.
    /// An error when it cannot be started (not installed: `NotFound`).
    fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output>;
}

/// The real thing: `std::process::Command`, found on `PATH`.
pub struct RealSystem;

impl System for RealSystem {
    fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> std::io::Result<Output> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(text) = stdin
            && let Some(mut pipe) = child.stdin.take()
        {
            pipe.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Where the job's files go, resolved from the environment by the caller.
#[derive(Clone, Debug)]
pub struct Places {
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config` (systemd user units).
    pub config_home: PathBuf,
    pub state_dir: PathBuf,
    /// The user id, for `launchctl … gui/UID`.
    pub uid: Option<u32>,
}

impl Places {
    pub fn systemd_dir(&self) -> PathBuf {
        self.config_home.join("systemd/user")
    }
    pub fn service(&self) -> PathBuf {
        self.systemd_dir().join(format!("{}.service", super::NAME))
    }
    pub fn timer(&self) -> PathBuf {
        self.systemd_dir().join(format!("{}.timer", super::NAME))
    }
    pub fn plist(&self) -> PathBuf {
        self.home
            .join("Library/LaunchAgents")
            .join(format!("{}.plist", super::LAUNCHD_LABEL))
    }
    pub fn task_xml(&self) -> PathBuf {
        self.state_dir.join("iam-keys-task.xml")
    }
    /// The installed job's spec, kept for `schedule status`.
    pub fn spec_file(&self) -> PathBuf {
        self.state_dir.join("schedule.json")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` could not be run ({source}); is {program} installed?")]
    Missing {
        command: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "no scheduler found: neither a systemd user manager (`systemctl --user`) nor `crontab` answers. \
         Install cron, or log in with systemd, or pass --backend"
    )]
    NoScheduler,
}

/// One step of an install or uninstall, for the user (and the dry run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Write(JobFile),
    Remove(PathBuf),
    Run(Vec<String>),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Write(file) => write!(f, "write {}", file.path.display()),
            Action::Remove(path) => write!(f, "remove {}", path.display()),
            Action::Run(argv) => write!(f, "run `{}`", argv.join(" ")),
        }
    }
}

fn command_text(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run a command; a failure to start or a non-zero exit is an error.
fn run_checked(
    sys: &dyn System,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Output, ScheduleError> {
    let command = command_text(program, args);
    let out = sys
        .run(program, args, stdin)
        .map_err(|source| ScheduleError::Missing {
            command: command.clone(),
            program: program.to_string(),
            source,
        })?;
    if !out.success() {
        return Err(ScheduleError::Failed {
            command,
            status: out
                .code
                .map(|c| format!("exit status {c}"))
                .unwrap_or_else(|| "killed".into()),
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out)
}

/// The scheduler this platform has: Linux prefers a running systemd user manager, else cron.
pub fn detect(sys: &dyn System) -> Result<Backend, ScheduleError> {
    if cfg!(windows) {
        return Ok(Backend::TaskScheduler);
    }
    if cfg!(target_os = "macos") {
        return Ok(Backend::Launchd);
    }
    if sys
        .run("systemctl", &["--user", "show-environment"], None)
        .is_ok_and(|o| o.success())
    {
        return Ok(Backend::Systemd);
    }
    match sys.run("crontab", &["-l"], None) {
        Ok(_) => Ok(Backend::Cron),
        Err(_) => Err(ScheduleError::NoScheduler),
    }
}

/// The files a backend writes for a spec.
pub fn files_for(backend: Backend, spec: &JobSpec, places: &Places) -> Vec<JobFile> {
    match backend {
        Backend::Systemd => vec![
            JobFile {
                path: places.service(),
                text: super::systemd_service(spec),
            },
            JobFile {
                path: places.timer(),
                text: super::systemd_timer(spec),
            },
        ],
        Backend::Cron => Vec::new(),
        Backend::Launchd => vec![JobFile {
            path: places.plist(),
            text: super::launchd_plist(spec),
        }],
        Backend::TaskScheduler => vec![JobFile {
            path: places.task_xml(),
            text: super::task_xml(spec),
        }],
    }
}

/// A scheduler command that loads the job once its files are written: its words, and whether
/// it may fail (unloading an earlier install that is not there).
struct LoadCommand {
    argv: Vec<String>,
    may_fail: bool,
}

/// The commands that load the job into `backend`'s scheduler, in order. Cron has none: its
/// table is rewritten whole (see [`install`]).
fn load_commands(backend: Backend, places: &Places) -> Vec<LoadCommand> {
    let command = |may_fail: bool, v: &[&str]| LoadCommand {
        argv: v.iter().map(|s| s.to_string()).collect(),
        may_fail,
    };
    match backend {
        Backend::Systemd => vec![
            command(false, &["systemctl", "--user", "daemon-reload"]),
            command(
                false,
                &[
                    "systemctl",
                    "--user",
                    "enable",
                    "--now",
                    &format!("{}.timer", super::NAME),
                ],
            ),
        ],
        Backend::Cron => Vec::new(),
        Backend::Launchd => {
            let domain = format!("gui/{}", places.uid.unwrap_or(0));
            vec![
                // An earlier install is unloaded first; none loaded is fine.
                command(
                    true,
                    &[
                        "launchctl",
                        "bootout",
                        &format!("{domain}/{}", super::LAUNCHD_LABEL),
                    ],
                ),
                command(
                    false,
                    &[
                        "launchctl",
                        "bootstrap",
                        &domain,
                        &places.plist().display().to_string(),
                    ],
                ),
            ]
        }
        Backend::TaskScheduler => vec![command(
            false,
            &[
                "schtasks",
                "/Create",
                "/TN",
                super::TASK_NAME,
                "/XML",
                &places.task_xml().display().to_string(),
                "/F",
            ],
        )],
    }
}

/// The steps of an install, in order (nothing is done here).
pub fn install_plan(backend: Backend, spec: &JobSpec, places: &Places) -> Vec<Action> {
    let mut steps: Vec<Action> = files_for(backend, spec, places)
        .into_iter()
        .map(Action::Write)
        .collect();
    if backend == Backend::Cron {
        steps.push(Action::Run(vec!["crontab".into(), "-l".into()]));
        steps.push(Action::Write(JobFile {
            path: PathBuf::from("crontab"),
            text: super::cron_lines(spec),
        }));
        steps.push(Action::Run(vec!["crontab".into(), "-".into()]));
    }
    steps.extend(
        load_commands(backend, places)
            .into_iter()
            .map(|c| Action::Run(c.argv)),
    );
    steps
}

/// Write a file atomically (temporary file in the same directory, fsync, rename), creating
/// its directory. Task XML goes as UTF-16 LE with a byte order mark.
fn write_file(file: &JobFile) -> Result<(), ScheduleError> {
    use std::io::Write;
    let err = |source| ScheduleError::Write {
        path: file.path.clone(),
        source,
    };
    let dir = file.path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let bytes: Vec<u8> = if file.path.extension().is_some_and(|e| e == "xml") {
        let mut b = vec![0xFF, 0xFE];
        for unit in file.text.encode_utf16() {
            b.extend_from_slice(&unit.to_le_bytes());
        }
        b
    } else {
        file.text.clone().into_bytes()
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".iam-keys-tmp.")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(&bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(err)?;
    }
    tmp.persist(&file.path).map_err(|e| err(e.error))?;
    Ok(())
}

fn remove_file(path: &Path) -> Result<bool, ScheduleError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(ScheduleError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The crontab's text now (empty when the user has none).
fn crontab_now(sys: &dyn System) -> Result<String, ScheduleError> {
    let out = sys
        .run("crontab", &["-l"], None)
        .map_err(|source| ScheduleError::Missing {
            command: "crontab -l".into(),
            program: "crontab".into(),
            source,
        })?;
    // `crontab -l` exits 1 with "no crontab for USER" when there is none.
    Ok(if out.success() {
        out.stdout
    } else {
        String::new()
    })
}

/// Install the job: write its files, then tell the scheduler. Replaces an earlier install
/// of the same backend. Returns what was done.
pub fn install(
    sys: &dyn System,
    backend: Backend,
    spec: &JobSpec,
    places: &Places,
) -> Result<Vec<Action>, ScheduleError> {
    let mut done = Vec::new();
    for file in files_for(backend, spec, places) {
        write_file(&file)?;
        done.push(Action::Write(file));
    }
    let mut run = |program: &str, args: &[&str], stdin: Option<&str>| {
        let out = run_checked(sys, program, args, stdin);
        done.push(Action::Run(
            std::iter::once(program)
                .chain(args.iter().copied())
                .map(str::to_string)
                .collect(),
        ));
        out
    };
    if backend == Backend::Cron {
        let now = crontab_now(sys)?;
        let mut text = super::cron_without_ours(&now);
        text.push_str(&super::cron_lines(spec));
        run("crontab", &["-"], Some(&text))?;
    }
    for command in load_commands(backend, places) {
        let args: Vec<&str> = command.argv[1..].iter().map(String::as_str).collect();
        if command.may_fail {
            let _ = sys.run(&command.argv[0], &args, None);
        } else {
            run(&command.argv[0], &args, None)?;
        }
    }
    Ok(done)
}

/// Remove the job from every scheduler of this platform that has it; safe to run when
/// nothing is installed (returns no actions).
pub fn uninstall(
    sys: &dyn System,
    backends: &[Backend],
    places: &Places,
) -> Result<Vec<Action>, ScheduleError> {
    let mut done = Vec::new();
    for backend in backends {
        match backend {
            Backend::Systemd => {
                if places.timer().exists() || places.service().exists() {
                    let unit = format!("{}.timer", super::NAME);
                    // Not loaded (no user manager now) is fine: the files go anyway.
                    let _ = sys.run("systemctl", &["--user", "disable", "--now", &unit], None);
                    done.push(Action::Run(
                        ["systemctl", "--user", "disable", "--now", &unit]
                            .map(String::from)
                            .to_vec(),
                    ));
                    for path in [places.timer(), places.service()] {
                        if remove_file(&path)? {
                            done.push(Action::Remove(path));
                        }
                    }
                    let _ = sys.run("systemctl", &["--user", "daemon-reload"], None);
                }
            }
            Backend::Cron => {
                let Ok(now) = crontab_now(sys) else { continue };
                if now.contains(super::CRON_MARKER) {
                    run_checked(
                        sys,
                        "crontab",
                        &["-"],
                        Some(&super::cron_without_ours(&now)),
                    )?;
                    done.push(Action::Run(vec!["crontab".into(), "-".into()]));
                }
            }
            Backend::Launchd => {
                if places.plist().exists() {
                    let target =
                        format!("gui/{}/{}", places.uid.unwrap_or(0), super::LAUNCHD_LABEL);
                    let _ = sys.run("launchctl", &["bootout", &target], None);
                    done.push(Action::Run(vec![
                        "launchctl".into(),
                        "bootout".into(),
                        target,
                    ]));
                    if remove_file(&places.plist())? {
                        done.push(Action::Remove(places.plist()));
                    }
                }
            }
            Backend::TaskScheduler => {
                let query = sys.run("schtasks", &["/Query", "/TN", super::TASK_NAME], None);
                if query.is_ok_and(|o| o.success()) {
                    run_checked(
                        sys,
                        "schtasks",
                        &["/Delete", "/TN", super::TASK_NAME, "/F"],
                        None,
                    )?;
                    done.push(Action::Run(
                        ["schtasks", "/Delete", "/TN", super::TASK_NAME, "/F"]
                            .map(String::from)
                            .to_vec(),
                    ));
                }
                if remove_file(&places.task_xml())? {
                    done.push(Action::Remove(places.task_xml()));
                }
            }
        }
    }
    if remove_file(&places.spec_file())? {
        done.push(Action::Remove(places.spec_file()));
    }
    Ok(done)
}

/// Whether a backend has the job now.
pub fn installed(sys: &dyn System, backend: Backend, places: &Places) -> bool {
    match backend {
        Backend::Systemd => places.timer().exists() && places.service().exists(),
        Backend::Cron => crontab_now(sys).is_ok_and(|t| t.contains(super::CRON_MARKER)),
        Backend::Launchd => places.plist().exists(),
        Backend::TaskScheduler => sys
            .run("schtasks", &["/Query", "/TN", super::TASK_NAME], None)
            .is_ok_and(|o| o.success()),
    }
}

/// The schedulers this platform may hold the job in.
pub fn platform_backends() -> &'static [Backend] {
    if cfg!(windows) {
        &[Backend::TaskScheduler]
    } else if cfg!(target_os = "macos") {
        &[Backend::Launchd, Backend::Cron]
    } else {
        &[Backend::Systemd, Backend::Cron]
    }
}
