//! End-to-end figures, release build: `cargo bench --bench end_to_end`.
//!
//! - startup: `iam-keys --version` and `iam-keys policy`, median of 51 runs;
//! - rotation against a local moto (no proxy between; calls counted in moto's request log):
//!   1, 10 and 50 profiles of distinct users, median of 3 runs, wall time and calls per
//!   rotated key, each run paired with the protocol's floor on the same moto (the same calls
//!   from a bare SDK client, see `protocol_floor`); 50 by `--concurrency` (how the default
//!   was chosen);
//! - the goals of issue 12, as ratios to the goal and to the AWS CLI flow of the same run:
//!   10 and 50 profiles, the 3 s propagation drill with 10 keys, 100 profiles with the proxy
//!   throttling above 20 calls a second, `status --all` on 1,000 profiles sharing 50 keys
//!   (calls counted at the proxy);
//! - the classic flow teams script today, with the AWS CLI, one profile after another:
//!   get-caller-identity, list-access-keys, create-access-key, two `configure set`,
//!   delete-access-key; for 1 and 10 profiles, on the same moto.
//!
//! Figures, not assertions: timing checks do not belong in tests.
//!
//! `cargo bench --bench end_to_end -- NAME...` runs only the named parts: `startup`,
//! `rotate`, `concurrency`, `drill`, `throttled`, `status`, `cli`.

#[allow(unused_imports)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use iam_keys::aws::limiter::DEFAULT_CAP;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{FaultProxy, Rule, Sandbox, moto};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Spawns the binary directly and waits for it: the harness's runner polls for the exit every
/// 10 ms, which is fine for tests and too coarse for a process that lives a millisecond.
fn startup(sandbox: &Sandbox, args: &[&str]) -> Duration {
    let mut cmd = sandbox.cmd(args).command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let runs: Vec<Duration> = (0..51)
        .map(|_| {
            let t = Instant::now();
            let status = cmd.status().expect("run iam-keys");
            let elapsed = t.elapsed();
            assert!(status.success(), "iam-keys {args:?}: {status}");
            elapsed
        })
        .collect();
    median(runs)
}

/// One run of a rotation row: iam-keys' wall time and AWS calls, and the protocol's floor.
struct Paired {
    wall: Duration,
    calls: usize,
    floor: Duration,
}

/// How many times each rotation row runs (its median is reported): one run moves by a
/// tenth of a second with the load on the machine.
const REPEATS: usize = 3;

fn profiles(n: usize, prefix: &str) -> (Sandbox, Vec<(String, String, String)>) {
    support::moto::distinct_profiles(n, prefix)
}

/// Spawns `program` with no arguments 51 times: the median, the floor of any process start.
fn spawn_floor(program: &str) -> Option<Duration> {
    let mut cmd = std::process::Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let runs: Option<Vec<Duration>> = (0..51)
        .map(|_| {
            let t = Instant::now();
            let status = cmd.status().ok()?;
            status.success().then(|| t.elapsed())
        })
        .collect();
    runs.map(median)
}

fn main() {
    // `cargo bench` passes `--bench`; any other word names a part to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let part = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let m = moto();
    if part("startup") {
        let quiet = Sandbox::new();
        println!("startup (median of 51 runs, including process spawn)");
        println!(
            "  iam-keys --version  {:>8.2} ms",
            startup(&quiet, &["--version"]).as_secs_f64() * 1e3
        );
        println!(
            "  iam-keys policy     {:>8.2} ms",
            startup(&quiet, &["policy"]).as_secs_f64() * 1e3
        );
        if let Some(floor) = spawn_floor("true") {
            println!(
                "  true (any process)  {:>8.2} ms",
                floor.as_secs_f64() * 1e3
            );
        }
    }

    let proxy = FaultProxy::start(&m.endpoint);
    let mut walls = std::collections::BTreeMap::new();
    if part("rotate") {
        println!(
            "\nrotation against moto on 127.0.0.1, no proxy (release build, defaults; \
             median of {REPEATS} runs)"
        );
        println!(
            "  floor: the same calls, spacing and cap from a bare SDK client, each run paired \
             with one of iam-keys (see `protocol_floor`)"
        );
        println!(
            "  {:>8}  {:>10}  {:>12}  {:>16}  {:>10}  every run (iam-keys | floor)",
            "profiles", "wall", "per key", "AWS calls / key", "floor"
        );
        for n in [1usize, 10, 50] {
            let runs: Vec<Paired> = (0..REPEATS)
                .map(|_| {
                    let (wall, calls) = rotate_all(n, "bench-rot", &[]);
                    let floor = protocol_floor(n);
                    Paired { wall, calls, floor }
                })
                .collect();
            let wall = median(runs.iter().map(|r| r.wall).collect());
            let floor = median(runs.iter().map(|r| r.floor).collect());
            let calls = runs.iter().map(|r| r.calls).sum::<usize>() as f64 / (REPEATS * n) as f64;
            walls.insert(n, (wall, floor));
            let every = |f: fn(&Paired) -> Duration| {
                runs.iter()
                    .map(|r| format!("{:.2}", f(r).as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            println!(
                "  {n:>8}  {:>8.2} s  {:>10.3} s  {calls:>16.1}  {:>8.2} s  {} | {} s",
                wall.as_secs_f64(),
                wall.as_secs_f64() / n as f64,
                floor.as_secs_f64(),
                every(|r| r.wall),
                every(|r| r.floor)
            );
        }
    }

    // The propagation drill: every new key is refused for 3 s after its first use.
    let drill = part("drill").then(|| {
        let (sandbox, users) = profiles(10, "bench-drill");
        let known: Vec<String> = users.iter().map(|(_, _, id)| id.clone()).collect();
        let rule = proxy.add_rule(Rule::unpropagated_for(&known, Duration::from_secs(3)));
        proxy.clear_requests();
        let t = Instant::now();
        sandbox
            .cmd(&["rotate", "--all", "--yes"])
            .endpoint(&proxy.endpoint)
            .timeout(Duration::from_secs(600))
            .run()
            .assert_code(0);
        let wall = t.elapsed();
        assert!(proxy.fired(rule) >= 10, "the drill refused every new key");
        proxy.clear_rules();
        wall
    });

    // A throttled account: calls beyond 20 a second are refused with Throttling.
    let throttled = part("throttled").then(|| {
        let (sandbox, _) = profiles(100, "bench-thr");
        let rule = proxy.add_rule(Rule::throttle_above("*", 20));
        proxy.clear_requests();
        let t = Instant::now();
        sandbox
            .cmd(&["rotate", "--all", "--yes"])
            .endpoint(&proxy.endpoint)
            .timeout(Duration::from_secs(900))
            .run()
            .assert_code(0);
        let wall = t.elapsed();
        let refused = proxy.fired(rule) as usize;
        let ok = proxy.requests().len() - refused;
        proxy.clear_rules();
        (wall, ok, refused)
    });

    // status --all on 1,000 profiles sharing 50 keys: calls at the proxy per distinct key,
    // against one profile's round.
    let status = part("status").then(|| {
        let mut keys = Vec::new();
        for _ in 0..50 {
            let user = m.unique("bench-status");
            m.create_user(&user);
            keys.push(m.create_key(&user));
        }
        let one = Sandbox::new();
        one.write_credentials(&format!(
            "[solo]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            keys[0].0, keys[0].1
        ));
        proxy.clear_requests();
        one.cmd(&["status", "--all"])
            .endpoint(&proxy.endpoint)
            .run()
            .assert_code(0);
        let round = proxy.requests().len();
        let sandbox = Sandbox::new();
        let mut text = String::new();
        for i in 0..1000 {
            let (id, secret) = &keys[i % 50];
            text.push_str(&format!(
                "[p{i}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n"
            ));
        }
        sandbox.write_credentials(&text);
        proxy.clear_requests();
        let t = Instant::now();
        sandbox
            .cmd(&["status", "--all"])
            .endpoint(&proxy.endpoint)
            .timeout(Duration::from_secs(600))
            .run()
            .assert_code(0);
        (t.elapsed(), proxy.requests().len(), round)
    });

    // After the goal rows: each run adds users to moto, and moto slows down as they grow.
    if part("concurrency") {
        println!(
            "\n50 profiles by --concurrency (the cap on calls in flight; default {DEFAULT_CAP})"
        );
        for cap in [4u16, 8, 16, 32, 64] {
            let cap_text = cap.to_string();
            let (wall, _) = rotate_all(50, "bench-cap", &["--concurrency", &cap_text]);
            println!("  --concurrency {cap:>3}  {:>8.2} s", wall.as_secs_f64());
        }
    }

    let mut cli_walls = std::collections::BTreeMap::new();
    if part("cli") {
        println!("\nclassic AWS CLI flow, one profile after another (same moto)");
        println!(
            "  {:>8}  {:>10}  {:>12}  {:>16}",
            "profiles", "wall", "per key", "AWS calls / key"
        );
        for n in [1usize, 10] {
            let (sandbox, users) = profiles(n, "bench-cli");
            proxy.clear_requests();
            let t = Instant::now();
            for (profile, user, old) in &users {
                let aws = |args: &[&str]| {
                    sandbox
                        .aws(args)
                        .arg("--region")
                        .arg("us-east-1")
                        .endpoint(&proxy.endpoint)
                        .run()
                };
                aws(&["sts", "get-caller-identity", "--profile", profile]).assert_code(0);
                aws(&[
                    "iam",
                    "list-access-keys",
                    "--user-name",
                    user,
                    "--profile",
                    profile,
                ])
                .assert_code(0);
                let created = aws(&[
                    "iam",
                    "create-access-key",
                    "--user-name",
                    user,
                    "--profile",
                    profile,
                    "--output",
                    "json",
                ]);
                created.assert_code(0);
                let doc = created.json();
                let id = doc["AccessKey"]["AccessKeyId"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let secret = doc["AccessKey"]["SecretAccessKey"]
                    .as_str()
                    .unwrap()
                    .to_string();
                // The classic scripts pass the secret on the command line, as here.
                aws(&[
                    "configure",
                    "set",
                    "aws_access_key_id",
                    &id,
                    "--profile",
                    profile,
                ])
                .assert_code(0);
                aws(&[
                    "configure",
                    "set",
                    "aws_secret_access_key",
                    &secret,
                    "--profile",
                    profile,
                ])
                .assert_code(0);
                aws(&[
                    "iam",
                    "delete-access-key",
                    "--user-name",
                    user,
                    "--access-key-id",
                    old,
                    "--profile",
                    profile,
                ])
                .assert_code(0);
            }
            let wall = t.elapsed();
            cli_walls.insert(n, wall);
            let calls = proxy.requests().len() as f64 / n as f64;
            println!(
                "  {n:>8}  {:>8.2} s  {:>10.3} s  {calls:>16.1}",
                wall.as_secs_f64(),
                wall.as_secs_f64() / n as f64
            );
        }
    }

    // The goals of issue 12, from this run. One verification window: three calls sent 0.5 s
    // apart (ExecOptions::default).
    let window = 1.0;
    let secs = |d: Duration| d.as_secs_f64();
    println!("\ngoals (issue 12), this run; ratio = measured / goal, <= 1.00 meets it");
    println!(
        "  {:<58} {:>9} {:>9} {:>7} {:>12}",
        "", "measured", "goal", "ratio", "AWS CLI flow"
    );
    let row = |what: &str, measured: f64, goal: f64, cli: Option<f64>| {
        println!(
            "  {what:<58} {measured:>7.2} s {goal:>7.2} s {:>7.2} {}",
            measured / goal,
            cli.map(|c| format!("{c:>7.2} s ({:.1}x faster)", c / measured))
                .unwrap_or_default()
        );
    };
    if let Some((ten, _)) = walls.get(&10) {
        row(
            "10 profiles, distinct users (one window + 0.3 s)",
            secs(*ten),
            window + 0.3,
            cli_walls.get(&10).map(|d| secs(*d)),
        );
    }
    if let Some((fifty, _)) = walls.get(&50) {
        row("50 profiles", secs(*fifty), 2.5, None);
    }
    if let Some(drill) = drill {
        row("3 s propagation drill, 10 keys", secs(drill), 4.5, None);
    }
    if let Some((throttled, ok_calls, refused)) = throttled {
        row(
            &format!("100 profiles, Throttling above 20/s ({ok_calls} calls, {refused} refused)"),
            secs(throttled),
            1.3 * ok_calls as f64 / 20.0,
            None,
        );
    }
    for (n, (wall, floor)) in walls.iter().filter(|(n, _)| **n > 1) {
        println!(
            "  {:<58} {:>7.2} s  iam-keys takes {:.2}x the floor",
            format!("{n} profiles: the protocol's floor on this moto"),
            secs(*floor),
            secs(*wall) / secs(*floor)
        );
    }
    if let Some((status_wall, status_calls, round)) = status {
        println!(
            "  {:<58} {:>7.2} s  {status_calls} calls = {:.2} rounds of {round} per key (goal: 1.00)",
            "status --all, 1,000 profiles sharing 50 keys",
            secs(status_wall),
            status_calls as f64 / (50 * round) as f64
        );
    }
}

/// Rotates `n` fresh profiles of distinct users against moto itself (no proxy between: its
/// hop costs a connection and a thread per call, as moto closes every connection): (wall
/// time, AWS calls, counted in moto's request log). The binary is waited for directly, as in
/// [`startup`]: the harness's runner would add up to its 10 ms poll to the wall time.
fn rotate_all(n: usize, prefix: &str, extra: &[&str]) -> (Duration, usize) {
    let m = moto();
    let (sandbox, _) = profiles(n, prefix);
    let mut args = vec!["rotate", "--all", "--yes"];
    args.extend_from_slice(extra);
    let mut cmd = sandbox.cmd(&args).endpoint(&m.endpoint).command();
    cmd.stdin(Stdio::null());
    let before = requests_logged(m);
    let t = Instant::now();
    let out = cmd.output().expect("run iam-keys");
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "iam-keys {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // moto's wrapper copies its log lines as they come; give the last ones a moment.
    std::thread::sleep(Duration::from_millis(300));
    (wall, requests_logged(m) - before)
}

/// The requests moto has answered so far: one line each in its log.
fn requests_logged(m: &support::moto::Moto) -> usize {
    std::fs::read_to_string(&m.log)
        .expect("read moto's log")
        .lines()
        .filter(|l| l.contains("\"POST / HTTP/1.1\""))
        .count()
}

/// The protocol's floor on this moto, for `n` keys of distinct users: the seven calls a
/// rotation makes per key (GetCallerIdentity and ListAccessKeys with the old key,
/// CreateAccessKey, three GetCallerIdentity with the new key sent 0.5 s apart, UpdateAccessKey
/// to Inactive), at most [`DEFAULT_CAP`] in flight (a create behind every call already
/// waiting), made straight from this process with the
/// SDK on one thread, as iam-keys makes them: no files, no journal, no plan, and no
/// wait between one key's preflight and another's. The time is from the first call to the
/// last answer (iam-keys' wall time also holds its process start).
fn protocol_floor(n: usize) -> Duration {
    use support::moto::{iam_client, sts_client};
    let m = moto();
    let keys: Vec<(String, String, String)> = (0..n)
        .map(|_| {
            let user = m.unique("bench-floor");
            m.create_user(&user);
            let (id, secret) = m.create_key(&user);
            (user, id, secret)
        })
        .collect();
    let endpoint = m.endpoint.as_str();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let slots = tokio::sync::Semaphore::new(DEFAULT_CAP as usize);
    let slots = &slots;
    // Creates queue for a slot one at a time, behind every call already waiting, as
    // iam-keys' limiter has them.
    let creates = tokio::sync::Semaphore::new(1);
    let creates = &creates;
    let one = |user: String, id: String, secret: String| async move {
        let slot = || async { slots.acquire().await.expect("never closed") };
        let sts = sts_client(endpoint, &id, &secret, None);
        let iam = iam_client(endpoint, &id, &secret, None);
        {
            let _slot = slot().await;
            sts.get_caller_identity()
                .send()
                .await
                .expect("GetCallerIdentity");
        }
        {
            let _slot = slot().await;
            iam.list_access_keys()
                .user_name(&user)
                .send()
                .await
                .expect("ListAccessKeys");
        }
        let created = {
            let lane = creates.acquire().await.expect("never closed");
            let _slot = slot().await;
            drop(lane);
            iam.create_access_key()
                .user_name(&user)
                .send()
                .await
                .expect("CreateAccessKey")
        };
        let new = created.access_key().expect("a new key");
        let (new_id, new_secret) = (new.access_key_id(), new.secret_access_key());
        let sts_new = sts_client(endpoint, new_id, new_secret, None);
        let mut sent: Option<tokio::time::Instant> = None;
        for _ in 0..3 {
            if let Some(at) = sent {
                tokio::time::sleep_until(at + Duration::from_millis(500)).await;
            }
            let _slot = slot().await;
            sent = Some(tokio::time::Instant::now());
            sts_new
                .get_caller_identity()
                .send()
                .await
                .expect("GetCallerIdentity with the new key");
        }
        let iam_new = iam_client(endpoint, new_id, new_secret, None);
        let _slot = slot().await;
        iam_new
            .update_access_key()
            .user_name(&user)
            .access_key_id(&id)
            .status(aws_sdk_iam::types::StatusType::Inactive)
            .send()
            .await
            .expect("UpdateAccessKey");
    };
    runtime.block_on(async {
        let t = Instant::now();
        futures_util::future::join_all(
            keys.into_iter()
                .map(|(user, id, secret)| one(user, id, secret)),
        )
        .await;
        t.elapsed()
    })
}
