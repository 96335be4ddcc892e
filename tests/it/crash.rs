//! The crash matrix (issue 6): for every step boundary of the rotation protocol, in three
//! scenarios, `iam-keys rotate` is killed with SIGKILL while the fault proxy holds the call
//! at that boundary; the invariants of [`crate::invariants`] are checked on what it left;
//! then, in one copy of the case, `iam-keys recover --yes` and, in another, a plain second
//! `iam-keys rotate` (the same command line) must converge.
//!
//! | boundary | how the process is stopped there | journal stage left |
//! | --- | --- | --- |
//! | before making room | DeleteAccessKey (the Inactive spare) held before it reaches moto | intent |
//! | after making room | DeleteAccessKey forwarded, its answer held (the spare is gone) | intent |
//! | before CreateAccessKey | CreateAccessKey held before moto | intent |
//! | after CreateAccessKey | CreateAccessKey forwarded, its answer held: the key exists, its secret is lost | intent |
//! | during verification | the 2nd GetCallerIdentity signed by a key other than the old one, held | created |
//! | between the two files | no AWS call separates the credentials save from the config save: the test takes a write lease on the config file (while CreateAccessKey is held, after the files were read) so the process waits re-opening it right after renaming the new credentials file into place; the test waits for the new credentials file, kills, and puts the original config bytes back | verified |
//! | after both files are saved | the retire call (UpdateAccessKey, or DeleteAccessKey with `--delete`) held before moto | persisted |
//! | during a hook | the run has `--hook ./crash-hook.sh`; the hook says it has started, then sleeps (it returns at once when run again); the test kills iam-keys | persisted |
//! | after retiring | the retire call forwarded, its answer held: the old key is retired, the journal not yet removed | persisted |
//!
//! Scenarios: one profile (old key deactivated); a key shared by two profiles in the
//! credentials file and one in the config file, rotated with `--all --delete`; a user with
//! an Inactive second key, rotated with `--delete-inactive`.
//!
//! What convergence means, and the exit codes, per what the journal held:
//! - a journal at stage `intent` (no new key recorded): there is nothing to finish. `recover`
//!   undoes it (deletes a key created by the lost CreateAccessKey answer), exit 0, the old key
//!   is back as it was (a spare deleted to make room stays deleted). A second `rotate` does
//!   the same first, then rotates normally: exit 0, new key everywhere.
//! - a journal with a new key: `recover` finishes it (exit 0): the new key in every
//!   profile, the old one Inactive (or deleted with `--delete`), the user has exactly those.
//!   A second `rotate` finishes it too, then plans the same profiles again: with one profile
//!   and the default retire, the user now has the new key and the Inactive old one, so the
//!   next rotation is refused with the `--delete-inactive` advice: **exit 1**, and the state is
//!   the converged one. With `--delete` (the old key gone) or with `--delete-inactive` (the
//!   Inactive old key deleted to make room) the second run rotates once more: exit 0, a newer
//!   key everywhere, one Active key, any other Inactive.

use crate::invariants::{self, Case, Retired};
use crate::support::cmd::{Run, Sandbox};
use crate::support::mask;
use crate::support::moto::moto;
use crate::support::proxy::{FaultProxy, KeyMatch, Rule};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    OneProfile,
    SharedBothFiles,
    InactiveSpare,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    BeforeMakeRoom,
    AfterMakeRoom,
    BeforeCreate,
    AfterCreate,
    DuringVerify,
    BetweenFiles,
    AfterSave,
    DuringHook,
    AfterRetire,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Converger {
    Recover,
    Rotate,
}

#[derive(Clone, Copy, Debug)]
struct Item {
    scenario: Scenario,
    boundary: Boundary,
    converger: Converger,
}

const HOLD_WAIT: Duration = Duration::from_secs(60);

fn block(header: &str, id: &str, secret: &str) -> String {
    format!("[{header}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

impl Scenario {
    fn args(self) -> Vec<&'static str> {
        match self {
            Scenario::OneProfile => vec!["rotate", "--yes"],
            Scenario::SharedBothFiles => vec!["rotate", "--all", "--yes", "--delete"],
            Scenario::InactiveSpare => vec!["rotate", "--yes", "--delete-inactive"],
        }
    }

    fn retire_action(self) -> &'static str {
        match self {
            Scenario::SharedBothFiles => "DeleteAccessKey",
            _ => "UpdateAccessKey",
        }
    }

    fn retired(self) -> Retired {
        match self {
            Scenario::SharedBothFiles => Retired::Deleted,
            _ => Retired::Inactive,
        }
    }

    fn boundaries(self) -> Vec<Boundary> {
        use Boundary::*;
        match self {
            Scenario::OneProfile => vec![
                BeforeCreate,
                AfterCreate,
                DuringVerify,
                AfterSave,
                DuringHook,
                AfterRetire,
            ],
            Scenario::SharedBothFiles => vec![
                BeforeCreate,
                AfterCreate,
                DuringVerify,
                BetweenFiles,
                AfterSave,
                DuringHook,
                AfterRetire,
            ],
            Scenario::InactiveSpare => vec![
                BeforeMakeRoom,
                AfterMakeRoom,
                BeforeCreate,
                AfterCreate,
                DuringVerify,
                AfterSave,
                DuringHook,
                AfterRetire,
            ],
        }
    }

    /// A user, its key(s) and the files, in `sandbox`.
    fn setup<'a>(self, sandbox: &'a Sandbox, name: String) -> Case<'a> {
        let m = moto();
        let user = m.unique("crash");
        m.create_user(&user);
        let (old_id, old_secret) = m.create_key(&user);
        let mut others = Vec::new();
        let profiles: Vec<String> = match self {
            Scenario::OneProfile | Scenario::InactiveSpare => {
                sandbox.write_credentials(&format!(
                    "# managed by hand\n{}",
                    block("default", &old_id, &old_secret)
                ));
                sandbox.write_config("[default]\nregion = us-east-1\n");
                if self == Scenario::InactiveSpare {
                    let (spare, _) = m.create_key(&user);
                    m.set_key_status(&user, &spare, "Inactive");
                    others.push((spare, "Inactive".to_string()));
                }
                vec!["default".into()]
            }
            Scenario::SharedBothFiles => {
                sandbox.write_credentials(&format!(
                    "{}\n{}",
                    block("a", &old_id, &old_secret),
                    block("b", &old_id, &old_secret)
                ));
                sandbox.write_config(&format!(
                    "[profile a]\nregion = us-east-1\n\n{}region = eu-west-1\n",
                    block("profile c", &old_id, &old_secret)
                ));
                vec!["a".into(), "b".into(), "c".into()]
            }
        };
        Case {
            name,
            sandbox,
            user,
            old_id,
            old_secret,
            profiles,
            others,
            extra_secrets: Vec::new(),
        }
    }
}

/// The hook of the `DuringHook` boundary, run from the sandbox's HOME (the working directory
/// of every run): the first time it says it has started and sleeps for a minute (the test
/// kills iam-keys meanwhile); every later run returns 0 at once.
const CRASH_HOOK: &str = "./crash-hook.sh";

fn write_crash_hook(sandbox: &Sandbox) {
    use std::os::unix::fs::PermissionsExt;
    let path = sandbox.home().join(CRASH_HOOK);
    std::fs::write(
        &path,
        "#!/bin/sh\ncat >/dev/null\necho run >> hook-runs\nif [ ! -e hook-started ]; then touch hook-started; sleep 60; fi\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Boundary {
    /// The command line of a run at this boundary.
    fn args(self, scenario: Scenario) -> Vec<&'static str> {
        let mut args = scenario.args();
        if self == Boundary::DuringHook {
            args.extend(["--hook", CRASH_HOOK]);
        }
        args
    }

    fn rule(self, scenario: Scenario, old: &str) -> Option<Rule> {
        Some(match self {
            Boundary::BeforeMakeRoom => Rule::hold_before("DeleteAccessKey"),
            Boundary::AfterMakeRoom => Rule::hold_after("DeleteAccessKey"),
            Boundary::BeforeCreate => Rule::hold_before("CreateAccessKey"),
            Boundary::AfterCreate => Rule::hold_after("CreateAccessKey"),
            Boundary::DuringVerify => Rule::hold_before("GetCallerIdentity")
                .key(KeyMatch::IsNot(old.to_string()))
                .skip(1),
            Boundary::BetweenFiles => Rule::hold_before("CreateAccessKey").times(1),
            Boundary::AfterSave => Rule::hold_before(scenario.retire_action()),
            Boundary::DuringHook => return None,
            Boundary::AfterRetire => Rule::hold_after(scenario.retire_action()),
        })
    }

    fn stage(self) -> &'static str {
        match self {
            Boundary::DuringVerify => "created",
            Boundary::BetweenFiles => "verified",
            Boundary::AfterSave | Boundary::DuringHook | Boundary::AfterRetire => "persisted",
            _ => "intent",
        }
    }

    fn has_new_key(self) -> bool {
        self.stage() != "intent"
    }
}

/// A write lease on a file, held by this test process until dropped: another process that
/// opens the file gets `EWOULDBLOCK` (iam-keys retries) until the lease is released or the
/// kernel breaks it (`/proc/sys/fs/lease-break-time`, 45 s by default).
struct Lease(std::fs::File);

impl Lease {
    fn take(path: &std::path::Path) -> Lease {
        use std::os::fd::AsRawFd;
        // The kernel tells the holder with SIGIO, which would end this test process.
        // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
        unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
        let file = std::fs::File::open(path).expect("open the file to lease");
        // SAFETY: a valid open file descriptor.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
        assert_eq!(
            rc,
            0,
            "a write lease on {} is not possible here ({}): the crash matrix needs file leases",
            path.display(),
            std::io::Error::last_os_error()
        );
        Lease(file)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open file descriptor.
        unsafe { libc::fcntl(self.0.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    }
}

/// Start the rotation, stop it at the boundary, SIGKILL it. Returns the killed run.
fn kill_at(item: &Item, case: &Case, proxy: &FaultProxy) -> Run {
    let sandbox = case.sandbox;
    if let Some(rule) = item.boundary.rule(item.scenario, &case.old_id) {
        proxy.add_rule(rule);
    }
    let mut args = item.boundary.args(item.scenario);
    args.push("-vvv");
    let mut child = sandbox
        .cmd(&args)
        .env("RUST_LOG", "trace")
        .endpoint(&proxy.endpoint)
        .start();
    let held = if item.boundary == Boundary::DuringHook {
        let deadline = Instant::now() + HOLD_WAIT;
        while !sandbox.home().join("hook-started").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        sandbox.home().join("hook-started").exists()
    } else {
        proxy.wait_held(1, HOLD_WAIT)
    };
    if !held {
        child.kill();
        panic!(
            "{}: nothing was held within {HOLD_WAIT:?}\n{}",
            case.name,
            child.finish()
        );
    }
    // The files were read; a write lease on the config file makes the process wait when it
    // re-opens it for its save, right after the credentials file was renamed into place.
    // (A FIFO did this before; a FIFO is now refused at once.)
    let _lease = (item.boundary == Boundary::BetweenFiles).then(|| Lease::take(&sandbox.config));
    if item.boundary == Boundary::BetweenFiles {
        proxy.release_all();
        let deadline = Instant::now() + HOLD_WAIT;
        while sandbox.read_credentials().contains(&case.old_id) {
            if Instant::now() >= deadline {
                child.kill();
                panic!(
                    "{}: the credentials file was not saved within {HOLD_WAIT:?}\n{}",
                    case.name,
                    child.finish()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    child.kill();
    let run = child.finish();
    assert_eq!(
        run.status, -9,
        "{}: the process ended before it was killed\n{run}",
        case.name
    );
    run
}

fn run_case(item: &Item) -> String {
    let name = format!(
        "{:?} / {:?} / {:?}",
        item.scenario, item.boundary, item.converger
    );
    let sandbox = Sandbox::new();
    let case = item.scenario.setup(&sandbox, name.clone());
    write_crash_hook(&sandbox);
    let config_before = sandbox.read_config();
    let iam_before = invariants::iam_keys_of(&case.user);
    let proxy = FaultProxy::start(&moto().endpoint);
    let killed = kill_at(item, &case, &proxy);
    // What was held is dropped, not forwarded (a request held before moto never lands);
    // the proxy stays, without rules: the journal recorded its address as the endpoint
    // (AWS_ENDPOINT_URL), and recovery calls where the rotation called.
    proxy.clear_rules();
    proxy.discard_held();
    if item.boundary == Boundary::BetweenFiles {
        std::fs::remove_file(&sandbox.config).unwrap();
        sandbox.write_config(&config_before);
    }

    // After the kill.
    let after_kill = invariants::check(&case, &[&killed], item.boundary >= Boundary::BetweenFiles);
    assert_eq!(
        after_kill.stages,
        vec![item.boundary.stage().to_string()],
        "{name}: the journal left"
    );
    let holds_new = after_kill
        .held
        .values()
        .filter(|k| **k != case.old_id)
        .count();
    match item.boundary {
        Boundary::BetweenFiles => assert_eq!(
            holds_new, 2,
            "{name}: the credentials file's two profiles hold the new key, the config's not yet"
        ),
        Boundary::AfterSave | Boundary::DuringHook | Boundary::AfterRetire => assert_eq!(
            holds_new,
            case.profiles.len(),
            "{name}: every profile holds the new key"
        ),
        _ => assert_eq!(holds_new, 0, "{name}: the files are untouched"),
    }
    if item.boundary == Boundary::AfterCreate {
        assert!(
            after_kill
                .iam
                .iter()
                .any(|(k, _)| !iam_before.iter().any(|(b, _)| b == k)),
            "{name}: the lost CreateAccessKey answer left a key in IAM"
        );
    }
    if item.boundary == Boundary::AfterRetire && item.scenario.retired() == Retired::Inactive {
        assert!(
            after_kill
                .iam
                .contains(&(case.old_id.clone(), "Inactive".to_string())),
            "{name}: the old key was retired before the kill"
        );
    }
    let spare_gone =
        item.scenario == Scenario::InactiveSpare && item.boundary >= Boundary::AfterMakeRoom;

    // Converge.
    let (summary, _last) = match item.converger {
        Converger::Recover => {
            let run = sandbox
                .cmd(&["recover", "--yes", "-vvv"])
                .env("RUST_LOG", "trace")
                .endpoint(&proxy.endpoint)
                .run();
            run.assert_code(0);
            if item.boundary.has_new_key() {
                run.assert_stdout_contains("finished");
                let runs = [&killed, &run];
                invariants::converged(&case, &runs, item.scenario.retired());
                ("recover → 0, finished".to_string(), run)
            } else {
                run.assert_stdout_contains("undone");
                let want: Vec<(String, String)> = iam_before
                    .iter()
                    .filter(|(id, _)| !(spare_gone && case.others.iter().any(|(o, _)| o == id)))
                    .cloned()
                    .collect();
                invariants::restored(&case, &[&killed, &run], &want, true);
                ("recover → 0, undone".to_string(), run)
            }
        }
        Converger::Rotate => {
            let mut args = item.boundary.args(item.scenario);
            args.push("-vvv");
            let run = sandbox
                .cmd(&args)
                .env("RUST_LOG", "trace")
                .endpoint(&proxy.endpoint)
                .run();
            run.assert_stderr_contains("found an interrupted rotation");
            let runs = [&killed, &run];
            if !item.boundary.has_new_key() {
                run.assert_code(0);
                run.assert_stderr_contains("undone");
                invariants::converged(&case, &runs, item.scenario.retired());
                ("rotate → 0, undone then rotated".to_string(), run)
            } else {
                run.assert_stderr_contains("finished");
                match item.scenario {
                    Scenario::OneProfile => {
                        run.assert_code(1);
                        run.assert_stdout_contains("--delete-inactive");
                        invariants::converged(&case, &runs, Retired::Inactive);
                        (
                            "rotate → 1, finished, next rotation refused (2 keys)".to_string(),
                            run,
                        )
                    }
                    Scenario::SharedBothFiles => {
                        run.assert_code(0);
                        run.assert_stdout_contains("1 rotated");
                        invariants::converged(&case, &runs, Retired::Deleted);
                        ("rotate → 0, finished, rotated again".to_string(), run)
                    }
                    Scenario::InactiveSpare => {
                        run.assert_code(0);
                        run.assert_stdout_contains("1 rotated");
                        invariants::converged(&case, &runs, Retired::Loose);
                        ("rotate → 0, finished, rotated again".to_string(), run)
                    }
                }
            }
        }
    };
    if item.boundary == Boundary::DuringHook {
        // Killed mid-hook, before its pass was recorded: the convergence ran it again (and a
        // second rotation once more).
        let runs = std::fs::read_to_string(sandbox.home().join("hook-runs"))
            .unwrap()
            .lines()
            .count();
        let want = match (item.converger, item.scenario) {
            (Converger::Recover, _) | (Converger::Rotate, Scenario::OneProfile) => 2,
            (Converger::Rotate, _) => 3,
        };
        assert_eq!(runs, want, "{name}: how many times the hook ran");
    }
    format!(
        "| {:?} | {:?} | {} | {} | {} | {} |",
        item.scenario,
        item.boundary,
        item.boundary.stage(),
        after_kill
            .iam
            .iter()
            .map(|(k, s)| format!(
                "{}{}",
                if *k == case.old_id {
                    "old "
                } else if case.others.iter().any(|(o, _)| o == k) {
                    "spare "
                } else {
                    "new "
                },
                s
            ))
            .collect::<Vec<_>>()
            .join(", "),
        holds_new,
        summary,
    )
    .replace(&mask(&case.old_id), "old")
}

fn matrix(scenario: Scenario) {
    let mut items = Vec::new();
    for boundary in scenario.boundaries() {
        for converger in [Converger::Recover, Converger::Rotate] {
            items.push(Item {
                scenario,
                boundary,
                converger,
            });
        }
    }
    let rows = invariants::run_parallel(
        &items,
        3,
        |i| format!("{:?} / {:?} / {:?}", i.scenario, i.boundary, i.converger),
        run_case,
    );
    eprintln!(
        "| scenario | killed at | journal stage | IAM after the kill | profiles on the new key | converged by |\n|---|---|---|---|---|---|\n{}",
        rows.join("\n")
    );
}

#[test]
fn crash_matrix_one_profile() {
    matrix(Scenario::OneProfile);
}

#[test]
fn crash_matrix_key_shared_by_profiles_in_both_files() {
    matrix(Scenario::SharedBothFiles);
}

#[test]
fn crash_matrix_inactive_second_key_with_delete_inactive() {
    matrix(Scenario::InactiveSpare);
}
