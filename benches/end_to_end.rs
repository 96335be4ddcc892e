//! End-to-end figures, release build: `cargo bench --bench end_to_end`.
//!
//! - startup: `iam-keys --version` and `iam-keys policy`, median of 51 runs;
//! - rotation against a local moto (through the recording proxy, to count AWS calls):
//!   1, 10 and 50 profiles of distinct users, wall time and calls per rotated key;
//! - the classic flow teams script today, with the AWS CLI, one profile after another:
//!   get-caller-identity, list-access-keys, create-access-key, two `configure set`,
//!   delete-access-key; for 1 and 10 profiles, on the same moto.
//!
//! Figures, not assertions: timing checks do not belong in tests.

#[allow(unused_imports)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{FaultProxy, Sandbox, moto};

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

fn profiles(n: usize, prefix: &str) -> (Sandbox, Vec<(String, String, String)>) {
    let m = moto();
    let sandbox = Sandbox::new();
    let mut text = String::new();
    let mut users = Vec::new();
    for i in 0..n {
        let user = m.unique(prefix);
        m.create_user(&user);
        let (id, secret) = m.create_key(&user);
        text.push_str(&format!(
            "[p{i}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n"
        ));
        users.push((format!("p{i}"), user, id));
    }
    sandbox.write_credentials(&text);
    (sandbox, users)
}

fn main() {
    let m = moto();
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

    let proxy = FaultProxy::start(&m.endpoint);
    println!("\nrotation against moto on 127.0.0.1 (release build, --concurrency 4)");
    println!(
        "  {:>8}  {:>10}  {:>12}  {:>16}",
        "profiles", "wall", "per key", "AWS calls / key"
    );
    for n in [1usize, 10, 50] {
        let (sandbox, _) = profiles(n, "bench-rot");
        proxy.clear_requests();
        let t = Instant::now();
        sandbox
            .cmd(&["rotate", "--all", "--yes"])
            .endpoint(&proxy.endpoint)
            .timeout(Duration::from_secs(600))
            .run()
            .assert_code(0);
        let wall = t.elapsed();
        let calls = proxy.requests().len() as f64 / n as f64;
        println!(
            "  {n:>8}  {:>8.2} s  {:>10.3} s  {calls:>16.1}",
            wall.as_secs_f64(),
            wall.as_secs_f64() / n as f64
        );
    }

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
        let calls = proxy.requests().len() as f64 / n as f64;
        println!(
            "  {n:>8}  {:>8.2} s  {:>10.3} s  {calls:>16.1}",
            wall.as_secs_f64(),
            wall.as_secs_f64() / n as f64
        );
    }
}
