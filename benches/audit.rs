//! Audit figures, release build: `cargo bench --bench audit`.
//!
//! Against a local moto (its own, started by the harness, auth on), through the recording
//! proxy to count AWS calls: `IAM_KEYS_AUDIT_USERS` users (default 1,000) with two Active keys
//! each, audited with `--source api` at `--concurrency` 4 and 16, with
//! `--source credential-report`, and with `--source api` while the proxy answers `Throttling`
//! to one GetAccessKeyLastUsed call in ten (the limiter waits and sends them again).
//!
//! Figures, not assertions: timing checks do not belong in tests.

#[allow(unused_imports)]
#[path = "../tests/it/support/mod.rs"]
mod support;

use futures_util::StreamExt;
use std::time::{Duration, Instant};
use support::{FaultProxy, Rule, Sandbox, moto};

fn main() {
    let users: usize = std::env::var("IAM_KEYS_AUDIT_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let m = moto();
    let admin = m.admin_iam().clone();
    let t = Instant::now();
    let prefix = m.unique("bench-audit");
    m.block_on(async {
        futures_util::stream::iter(0..users)
            .map(|i| {
                let admin = admin.clone();
                let name = format!("{prefix}-{i}");
                async move {
                    admin
                        .create_user()
                        .user_name(&name)
                        .send()
                        .await
                        .expect("CreateUser");
                    for _ in 0..2 {
                        admin
                            .create_access_key()
                            .user_name(&name)
                            .send()
                            .await
                            .expect("CreateAccessKey");
                    }
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await
    });
    println!(
        "setup: {users} users x 2 keys in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (id, secret) = m.admin_credentials();
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[auditor]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"
    ));
    let proxy = FaultProxy::start(&m.endpoint);
    println!(
        "\naudit of {users} users x 2 keys against moto on 127.0.0.1 (release build)\n  {:<44} {:>8} {:>8} {:>10} {:>10}",
        "run", "wall", "calls", "calls/key", "throttled"
    );
    let audit = |label: &str, args: &[&str], throttle: bool| {
        proxy.clear_rules();
        proxy.clear_requests();
        let mut rules = Vec::new();
        if throttle {
            for i in 0..(2 * users as u32 / 10) {
                rules.push(
                    proxy.add_rule(Rule::throttle("GetAccessKeyLastUsed").skip(i * 10).times(1)),
                );
            }
        }
        let mut argv = vec!["audit", "--profile", "auditor", "--output", "json"];
        argv.extend_from_slice(args);
        let t = Instant::now();
        let run = sandbox
            .cmd(&argv)
            .endpoint(&proxy.endpoint)
            .timeout(Duration::from_secs(1800))
            .run();
        let wall = t.elapsed();
        assert!(
            run.status == 0 || run.status == 1,
            "{label}: exit {}\n{}",
            run.status,
            run.stderr
        );
        let doc = run.json();
        let keys = doc["summary"]["keys"].as_u64().unwrap_or(1).max(1) as f64;
        let calls = proxy.requests().len();
        let throttled: u32 = rules.iter().map(|r| proxy.fired(*r)).sum();
        println!(
            "  {label:<44} {:>6.1} s {calls:>8} {:>10.2} {throttled:>10}",
            wall.as_secs_f64(),
            calls as f64 / keys
        );
    };
    audit(
        "--source api --concurrency 4",
        &["--source", "api", "--concurrency", "4"],
        false,
    );
    audit(
        "--source api --concurrency 16 (default)",
        &["--source", "api"],
        false,
    );
    audit(
        "--source credential-report",
        &["--source", "credential-report"],
        false,
    );
    audit(
        "--source api, 1 in 10 last-use calls Throttling",
        &["--source", "api"],
        true,
    );
}
