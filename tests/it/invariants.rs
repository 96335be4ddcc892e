//! The promise of `iam-keys`, as checks every test of the crash, fault and file matrices
//! (issue 6) runs after each kill, fault or file trick:
//!
//! 1. both files parse, for the AWS CLI (botocore, from the test venv) and for the Rust SDK
//!    (aws-config's profile provider), and the two read the same key id and secret for every
//!    rotated profile;
//! 2. every rotated profile holds a key that authenticates as the user (moto's
//!    GetCallerIdentity) and is `Active` (moto's ListAccessKeys: moto accepts Inactive keys,
//!    so status is asserted through the listing, not through a rejection); and no setting
//!    line of either file, whatever its section, names a key of the user that is not Active
//!    (botocore reads sections the SDKs ignore);
//! 3. every Active key of the user that no file holds and that the user did not already have is
//!    in a recovery journal with its secret (and that secret works), or, when the process died
//!    while CreateAccessKey was in flight (the answer, and so the secret, never reached the
//!    tool), a journal at stage `intent` for that user exists and does not list the key among
//!    the keys known when it was written: exactly what `recover` uses to find and delete it;
//! 4. the journal directory is not readable by group or others (0700) and each journal and
//!    each backup is 0600;
//! 5. no secret (old, new, any session token, whatever is in the files and journals) appears
//!    in the stdout or stderr of any command run so far, and nothing shaped like a secret
//!    access key (40 characters of its alphabet) does either.
//!
//! Then [`converged`] (the rotation finished: one new key everywhere, the old one retired,
//! no journal, no orphaned key) and [`restored`] (the rotation was undone: the old key
//! everywhere, IAM as before, no journal).
//!
//! Messages never print a secret: key ids are masked, secrets are named by where they are.

use crate::profiles_compat::{Seen, botocore_reads, sdk_reads};
use crate::support::cmd::{Run, Sandbox};
use crate::support::mask;
use crate::support::moto::moto;
use iam_keys::profiles::FilePaths;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One rotation under test: the user, the key the files held before, and who holds it.
#[derive(Clone)]
pub struct Case<'a> {
    pub name: String,
    pub sandbox: &'a Sandbox,
    pub user: String,
    pub old_id: String,
    pub old_secret: String,
    /// Every profile that holds the old key (in either file): all are rotated together.
    pub profiles: Vec<String>,
    /// The user's other keys before the run (an Inactive spare, say): (id, status).
    pub others: Vec<(String, String)>,
    /// Other secret values that must never be printed (session tokens in the files, say).
    pub extra_secrets: Vec<String>,
}

impl std::fmt::Debug for Case<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("old", &mask(&self.old_id))
            .finish_non_exhaustive()
    }
}

/// What the checks saw.
#[derive(Debug, Default)]
pub struct Observed {
    /// profile -> key id (as both readers agree).
    pub held: BTreeMap<String, String>,
    /// The user's keys in IAM: (id, status), sorted.
    pub iam: Vec<(String, String)>,
    /// Journal stages found (`intent`, `created`, ...), one per journal file.
    pub stages: Vec<String>,
    /// Key ids recorded as new in a journal.
    pub journal_new_keys: Vec<String>,
    /// Every secret value seen in the files and journals, with the old one.
    pub secrets: Secrets,
}

/// Secret values collected from the files and journals; `Debug` prints only how many.
#[derive(Default, Clone)]
pub struct Secrets(pub BTreeSet<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

pub fn paths(sandbox: &Sandbox) -> FilePaths {
    FilePaths {
        credentials: sandbox.credentials.clone(),
        config: sandbox.config.clone(),
    }
}

/// The journal directory of a sandbox's credentials file (beside the path as given).
pub fn journal_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox
        .credentials
        .parent()
        .expect("the credentials file has a directory")
        .join(".iam-keys")
}

/// The journal files left (`journal-*.json`).
pub fn journal_files(sandbox: &Sandbox) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(journal_dir(sandbox)) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("journal-") && n.ends_with(".json"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The user's keys, sorted.
pub fn iam_keys_of(user: &str) -> Vec<(String, String)> {
    let mut keys = moto().list_keys(user);
    keys.sort();
    keys
}

fn masked(keys: &[(String, String)]) -> Vec<(String, String)> {
    keys.iter().map(|(k, s)| (mask(k), s.clone())).collect()
}

/// Both readers, for the case's profiles. Botocore runs only when `botocore` is true (it
/// costs a Python start; callers skip it when the files are byte for byte as before, which
/// botocore read fine then).
fn read_profiles(case: &Case, botocore: bool) -> BTreeMap<String, Seen> {
    let paths = paths(case.sandbox);
    let names: Vec<&str> = case.profiles.iter().map(String::as_str).collect();
    let sdk = sdk_reads(&paths, &names);
    if botocore {
        let cli = botocore_reads(case.sandbox.home(), &paths, &names);
        for p in &names {
            let (a, b) = (&sdk[*p], &cli[*p]);
            assert_eq!(
                a.key, b.key,
                "{}: profile {p}: the SDK and the AWS CLI read different key ids",
                case.name
            );
            assert!(
                a.secret == b.secret,
                "{}: profile {p}: the SDK and the AWS CLI read different secrets",
                case.name
            );
            assert!(
                a.token == b.token,
                "{}: profile {p}: the SDK and the AWS CLI read different session tokens",
                case.name
            );
        }
    }
    sdk
}

/// Checks 1 to 5 (see the module doc). `runs`: every command run so far in this case.
/// `files_changed`: whether the file bytes may differ from what botocore already read.
pub fn check(case: &Case, runs: &[&Run], files_changed: bool) -> Observed {
    let m = moto();
    let name = &case.name;
    let seen = read_profiles(case, files_changed);
    let iam = iam_keys_of(&case.user);
    let mut obs = Observed {
        iam: iam.clone(),
        ..Observed::default()
    };
    obs.secrets.0.insert(case.old_secret.clone());
    obs.secrets.0.extend(case.extra_secrets.iter().cloned());

    // 2b: no setting line of either file, in any section (botocore reads sections the SDKs
    // ignore), names a key of the user that is no longer Active.
    for path in [&case.sandbox.credentials, &case.sandbox.config] {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let Some((_, value)) = line.split_once('=') else {
                continue;
            };
            if line.trim_start().starts_with(['#', ';']) {
                continue;
            }
            if let Some((id, status)) = iam.iter().find(|(k, _)| value.contains(k.as_str())) {
                assert_eq!(
                    status,
                    "Active",
                    "{name}: {} line {} names {}, which is {status}",
                    path.display(),
                    n + 1,
                    mask(id)
                );
            }
        }
    }

    // 1 + 2: every profile holds a working, Active key.
    for p in &case.profiles {
        let s = &seen[p];
        let id = s
            .key
            .clone()
            .unwrap_or_else(|| panic!("{name}: profile {p} has no key id"));
        let secret = s
            .secret
            .clone()
            .unwrap_or_else(|| panic!("{name}: profile {p} has no secret"));
        assert!(
            s.token.is_none(),
            "{name}: profile {p} still has a session token beside its key"
        );
        let status = iam.iter().find(|(k, _)| *k == id).map(|(_, s)| s.as_str());
        assert_eq!(
            status,
            Some("Active"),
            "{name}: profile {p} holds {} which is not Active in IAM (keys: {:?})",
            mask(&id),
            masked(&iam)
        );
        let want = format!(
            "arn:aws:iam::{}:user/{}",
            crate::support::moto::ACCOUNT_ID,
            case.user
        );
        // A refusal is a refusal every time; an answer lost to a loaded machine is not, so
        // it is asked again (three times at most) before the key counts as not working.
        let mut answer = m.whoami(&id, &secret);
        for _ in 0..2 {
            if answer.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
            answer = m.whoami(&id, &secret);
        }
        match answer {
            Ok(arn) if arn == want => {}
            answer => panic!(
                "{name}: profile {p} holds {} which does not authenticate as {} (GetCallerIdentity: {answer:?})",
                mask(&id),
                case.user
            ),
        }
        obs.secrets.0.insert(secret);
        obs.held.insert(p.clone(), id);
    }

    // 4: the journal directory and files are private; read them.
    let dir = journal_dir(case.sandbox);
    let journals = journal_files(case.sandbox);
    let mut docs = Vec::new();
    if dir.exists() {
        let dm = mode(&dir);
        assert_eq!(
            dm & 0o077,
            0,
            "{name}: the journal directory is mode {dm:o}"
        );
    }
    for j in &journals {
        assert_eq!(mode(j), 0o600, "{name}: {} is not 0600", j.display());
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(j).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {} is not JSON: {e}", j.display()));
        for field in ["old_secret", "new_secret"] {
            if let Some(s) = doc[field].as_str() {
                obs.secrets.0.insert(s.to_string());
            }
        }
        obs.stages
            .push(doc["stage"].as_str().unwrap_or_default().to_string());
        if let Some(id) = doc["new_key_id"].as_str() {
            obs.journal_new_keys.push(id.to_string());
        }
        docs.push(doc);
    }
    for f in [&case.sandbox.credentials, &case.sandbox.config] {
        let Ok(real) = std::fs::canonicalize(f) else {
            continue;
        };
        let mut bak = real.clone().into_os_string();
        bak.push(".iam-keys.bak");
        let bak = PathBuf::from(bak);
        if bak.exists() {
            assert_eq!(mode(&bak), 0o600, "{name}: {} is not 0600", bak.display());
        }
    }

    // 3: a key nobody holds and the user did not have is accounted for by a journal.
    let held: BTreeSet<&String> = obs.held.values().collect();
    for (id, status) in &iam {
        // An Inactive key is one the tool retired (it creates keys Active and sets nothing
        // else Inactive): a former key of these profiles, not an orphan.
        if *id == case.old_id
            || held.contains(id)
            || status == "Inactive"
            || case.others.iter().any(|(o, _)| o == id)
        {
            continue;
        }
        let recorded = docs.iter().find(|d| d["new_key_id"].as_str() == Some(id));
        match recorded {
            Some(d) => {
                let secret = d["new_secret"].as_str().unwrap_or_else(|| {
                    panic!("{name}: the journal has {} but no secret", mask(id))
                });
                assert!(
                    m.key_works_as(id, secret, &case.user),
                    "{name}: the journal's secret for {} does not work",
                    mask(id)
                );
            }
            None => {
                let recognisable = docs.iter().any(|d| {
                    d["stage"] == "intent"
                        && d["user"] == case.user.as_str()
                        && !d["known_keys"]
                            .as_array()
                            .is_some_and(|k| k.iter().any(|k| k == id.as_str()))
                });
                assert!(
                    recognisable,
                    "{name}: {} is in IAM, in no file and in no journal: an orphaned key (keys {:?}, stages {:?})",
                    mask(id),
                    masked(&iam),
                    obs.stages
                );
            }
        }
    }

    // 5: no secret in any output.
    assert_no_secrets(name, runs, &obs.secrets);
    obs
}

/// No known secret and nothing secret-shaped in any stream of `runs`.
pub fn assert_no_secrets(name: &str, runs: &[&Run], secrets: &Secrets) {
    for run in runs {
        for secret in &secrets.0 {
            run.assert_no_secret(secret);
        }
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                crate::support::redact_secrets(text) == *text,
                "{name}: something shaped like a secret access key is in the {stream} of `{}`",
                run.label
            );
        }
    }
}

/// A profile section holding a key, as the tests write them.
pub fn block(header: &str, id: &str, secret: &str) -> String {
    format!("[{header}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

impl<'a> Case<'a> {
    /// A new moto user (named after `prefix`) with one key, held by `profiles` (the caller
    /// writes the files).
    pub fn new_user(sandbox: &'a Sandbox, prefix: &str, name: &str, profiles: &[&str]) -> Case<'a> {
        let m = moto();
        let user = m.unique(prefix);
        m.create_user(&user);
        let (old_id, old_secret) = m.create_key(&user);
        Case {
            name: name.to_string(),
            sandbox,
            user,
            old_id,
            old_secret,
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            others: Vec::new(),
            extra_secrets: Vec::new(),
        }
    }

    /// IAM as it was: only the old key, Active.
    pub fn old_only(&self) -> Vec<(String, String)> {
        vec![(self.old_id.clone(), "Active".to_string())]
    }
}

/// How a finished rotation must look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retired {
    /// The old key is Inactive (the default).
    Inactive,
    /// The old key is gone (`--delete`).
    Deleted,
    /// Any of the two, and other Inactive keys may exist (a second rotation ran after the
    /// journal'd one was finished): one Active key, held everywhere, the rest Inactive.
    Loose,
}

/// The rotation finished: every profile holds the same new key, which works and is the
/// user's only Active key; the old key is retired; no journal is left; nothing else is in
/// IAM. Returns the new key id.
pub fn converged(case: &Case, runs: &[&Run], retired: Retired) -> String {
    let obs = check(case, runs, true);
    let name = &case.name;
    let keys: BTreeSet<&String> = obs.held.values().collect();
    assert_eq!(
        keys.len(),
        1,
        "{name}: the profiles hold different keys: {:?}",
        obs.held.values().map(|k| mask(k)).collect::<Vec<_>>()
    );
    let new = (*keys.iter().next().unwrap()).clone();
    assert_ne!(
        new, case.old_id,
        "{name}: the profiles still hold the old key"
    );
    assert!(
        journal_files(case.sandbox).is_empty(),
        "{name}: a journal is left: stages {:?}",
        obs.stages
    );
    let mut want = match retired {
        Retired::Inactive => vec![
            (case.old_id.clone(), "Inactive".to_string()),
            (new.clone(), "Active".to_string()),
        ],
        Retired::Deleted => vec![(new.clone(), "Active".to_string())],
        Retired::Loose => {
            for (id, status) in &obs.iam {
                if *id != new {
                    assert_eq!(
                        status,
                        "Inactive",
                        "{name}: {} is {status} but no profile holds it (keys {:?})",
                        mask(id),
                        masked(&obs.iam)
                    );
                }
            }
            assert!(
                obs.iam.len() <= 2,
                "{name}: more than two keys: {:?}",
                masked(&obs.iam)
            );
            return new;
        }
    };
    want.sort();
    assert_eq!(
        masked(&obs.iam),
        masked(&want),
        "{name}: the user has not exactly the new key and the retired old one"
    );
    new
}

/// The rotation was undone (or never started): every profile holds the old key, the user
/// has exactly `want` in IAM, no journal is left.
pub fn restored(case: &Case, runs: &[&Run], want: &[(String, String)], files_changed: bool) {
    let obs = check(case, runs, files_changed);
    let name = &case.name;
    for (p, id) in &obs.held {
        assert_eq!(
            id,
            &case.old_id,
            "{name}: profile {p} holds {} instead of the old key",
            mask(id)
        );
    }
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(
        masked(&obs.iam),
        masked(&want),
        "{name}: IAM is not as it was"
    );
    assert!(
        journal_files(case.sandbox).is_empty(),
        "{name}: a journal is left: stages {:?}",
        obs.stages
    );
}

/// Run `f` over `items` on `threads` threads; panics (after all finished) listing every
/// item that failed, with its panic message.
pub fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    label: impl Fn(&T) -> String + Sync,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<R, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)))
                        .map_err(|p| {
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panic".into())
                        });
                    results.lock().unwrap().push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("--- {} ---\n{e}", label(&items[*i])))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        items.len(),
        failures.join("\n")
    );
    results
        .into_iter()
        .map(|(_, r)| r.expect("checked"))
        .collect()
}

/// A moto user with one Active key: (user, key id, secret).
pub fn setup_user(prefix: &str) -> (String, String, String) {
    let m = moto();
    let user = m.unique(prefix);
    m.create_user(&user);
    let (id, secret) = m.create_key(&user);
    (user, id, secret)
}

/// A sandbox whose credentials file has `[default]` with this key.
pub fn sandbox_with(id: &str, secret: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    sandbox
}

/// The key id and secret of `[default]` in the credentials file now.
pub fn current_key(sandbox: &Sandbox) -> (String, String) {
    let text = sandbox.read_credentials();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in the credentials file"))
    };
    (value("aws_access_key_id"), value("aws_secret_access_key"))
}

/// The status of a key in IAM (moto), or `gone`.
pub fn status_of(user: &str, id: &str) -> String {
    moto()
        .list_keys(user)
        .into_iter()
        .find(|(k, _)| k == id)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "gone".into())
}
