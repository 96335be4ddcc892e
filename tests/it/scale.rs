//! Many keys at once (issue 12): the limiter on AWS calls in flight, against moto through the
//! fault proxy. Small numbers, bounded time: the figures at scale are in
//! `cargo bench --bench end_to_end`.

use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use crate::support::proxy::{FaultProxy, Rule};
use std::time::{Duration, Instant};

/// `n` profiles of distinct users, each with one key: (sandbox, [(user, old key id)]).
fn distinct(n: usize, prefix: &str) -> (Sandbox, Vec<(String, String)>) {
    let (sandbox, profiles) = crate::support::moto::distinct_profiles(n, prefix);
    let users = profiles
        .into_iter()
        .map(|(_, user, id)| (user, id))
        .collect();
    (sandbox, users)
}

/// Every user has its old key Inactive and one new Active key, named in the file.
#[track_caller]
fn assert_all_rotated(sandbox: &Sandbox, users: &[(String, String)]) {
    let text = sandbox.read_credentials();
    for (user, old) in users {
        let keys = moto().list_keys(user);
        assert_eq!(keys.len(), 2, "{user}: {keys:?}");
        assert!(
            keys.contains(&(old.clone(), "Inactive".into())),
            "{user}: {keys:?}"
        );
        let new = keys.iter().find(|(id, _)| id != old).unwrap();
        assert_eq!(new.1, "Active");
        assert!(text.contains(&new.0), "{user}'s new key is in the file");
        assert!(
            !text.contains(old.as_str()),
            "{user}'s old key is gone from the file"
        );
    }
}

/// IAM throttles the account (the proxy refuses calls beyond 15 a second): the limiter
/// shrinks, throttled calls wait and are sent again, and nothing fails. Once refused, the
/// calls are paced near the rate the proxy allows: a refusal is the exception, not the
/// answer to most calls (before the pace, a run like this had about as many refusals as
/// calls let through).
#[test]
fn a_throttled_account_slows_the_run_down_and_nothing_fails() {
    let (sandbox, users) = distinct(12, "scale-throttle");
    let proxy = FaultProxy::start(&moto().endpoint);
    let rule = proxy.add_rule(Rule::throttle_above("*", 15));
    let run = sandbox
        .cmd(&["rotate", "--all", "--yes", "-v"])
        .endpoint(&proxy.endpoint)
        .timeout(Duration::from_secs(120))
        .run();
    run.assert_code(0);
    let refused = proxy.fired(rule) as usize;
    let let_through = proxy.requests().len() - refused;
    assert!(refused > 0, "IAM did throttle");
    assert!(
        refused * 3 <= let_through,
        "{refused} refused for {let_through} let through: the calls were not paced"
    );
    run.assert_stdout_contains("12 rotated, 0 not due, 0 skipped, 0 failed, 0 partial");
    assert!(
        !run.output().contains("Throttling"),
        "no throttling surfaced: {run}"
    );
    assert_all_rotated(&sandbox, &users);
    // The SDK does not retry Throttling behind the limiter's back: every refusal was answered
    // by the limiter's own wait, so no CreateAccessKey was sent more than once after
    // succeeding (each user has exactly two keys, checked above).
}

/// The calls of one rotation, in order (a budget the timing goals depend on): who owns the
/// key and the user's keys, with the old key; the create; three verification calls with the
/// new key; the retire. No GetAccessKeyLastUsed: nothing in a rotation depends on the last
/// use of the key it replaces.
#[test]
fn a_rotation_makes_seven_calls_in_order() {
    let (sandbox, users) = distinct(1, "scale-calls");
    let (user, old) = &users[0];
    let proxy = FaultProxy::start(&moto().endpoint);
    sandbox
        .cmd(&["rotate", "--all", "--yes"])
        .endpoint(&proxy.endpoint)
        .run()
        .assert_code(0);
    let new = moto()
        .list_keys(user)
        .into_iter()
        .find(|(id, _)| id != old)
        .map(|(id, _)| id)
        .expect("a new key");
    let calls: Vec<(String, &str)> = proxy
        .requests()
        .iter()
        .map(|r| {
            let signer = match r.key_id.as_deref() {
                Some(k) if k == old.as_str() => "old",
                Some(k) if k == new.as_str() => "new",
                _ => "other",
            };
            (r.action.clone(), signer)
        })
        .collect();
    let want: Vec<(String, &str)> = [
        ("GetCallerIdentity", "old"),
        ("ListAccessKeys", "old"),
        ("CreateAccessKey", "old"),
        ("GetCallerIdentity", "new"),
        ("GetCallerIdentity", "new"),
        ("GetCallerIdentity", "new"),
        ("UpdateAccessKey", "new"),
    ]
    .into_iter()
    .map(|(a, s)| (a.to_string(), s))
    .collect();
    assert_eq!(calls, want);
}

/// `--concurrency` is the cap on calls in flight: with slow answers and many keys, the proxy
/// never sees more than that many requests open at once, and sees that many.
#[test]
fn calls_in_flight_never_pass_concurrency() {
    let (sandbox, users) = distinct(8, "scale-cap");
    let proxy = FaultProxy::start(&moto().endpoint);
    proxy.add_rule(Rule::delay("*", Duration::from_millis(60)));
    sandbox
        .cmd(&["rotate", "--all", "--yes", "--concurrency", "3"])
        .endpoint(&proxy.endpoint)
        .timeout(Duration::from_secs(120))
        .run()
        .assert_code(0);
    assert!(proxy.max_in_flight() <= 3, "{}", proxy.max_in_flight());
    assert_eq!(proxy.max_in_flight(), 3, "the cap is reached");
    assert_all_rotated(&sandbox, &users);
}

/// A rotation waiting for its new key (three answers 0.5 s apart) holds no slot: six keys
/// with one call in flight at a time still take about one verification window, not six.
#[test]
fn waiting_for_a_new_key_holds_no_slot() {
    let (sandbox, users) = distinct(6, "scale-wait");
    let started = Instant::now();
    sandbox
        .cmd(&["rotate", "--all", "--yes", "--concurrency", "1"])
        .endpoint(&moto().endpoint)
        .timeout(Duration::from_secs(120))
        .run()
        .assert_code(0);
    let wall = started.elapsed();
    // Six verification windows in a row would be at least 6 s.
    assert!(wall < Duration::from_secs(4), "took {wall:?}");
    assert_all_rotated(&sandbox, &users);
}

/// `status --all` on many profiles sharing few keys makes one round of calls per distinct
/// key, whatever the number of profiles.
#[test]
fn status_makes_one_round_of_calls_per_distinct_key() {
    let m = moto();
    let proxy = FaultProxy::start(&m.endpoint);
    let mut keys = Vec::new();
    for _ in 0..4 {
        let user = m.unique("scale-status");
        m.create_user(&user);
        keys.push(m.create_key(&user));
    }
    let one = Sandbox::new();
    one.write_credentials(&format!(
        "[solo]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        keys[0].0, keys[0].1
    ));
    one.cmd(&["status", "--all"])
        .endpoint(&proxy.endpoint)
        .run()
        .assert_code(0);
    let round = proxy.requests().len();
    assert!(round >= 2, "a round is a few calls: {round}");
    proxy.clear_requests();

    let sandbox = Sandbox::new();
    let mut text = String::new();
    for i in 0..40 {
        let (id, secret) = &keys[i % 4];
        text.push_str(&format!(
            "[p{i}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n\n"
        ));
    }
    sandbox.write_credentials(&text);
    sandbox
        .cmd(&["status", "--all", "--output", "json"])
        .endpoint(&proxy.endpoint)
        .run()
        .assert_code(0);
    let requests = proxy.requests();
    assert_eq!(requests.len(), 4 * round, "one round per distinct key");
    for (id, _) in &keys {
        let signed = requests
            .iter()
            .filter(|r| r.key_id.as_deref() == Some(id.as_str()))
            .count();
        assert_eq!(signed, round, "each key signs one round");
    }
}

/// A call throttled longer than `--throttle-timeout` fails, saying so, and changes nothing.
#[test]
fn throttled_past_the_timeout_fails_saying_how_long_it_tried() {
    let (sandbox, users) = distinct(1, "scale-giveup");
    let before = sandbox.read_credentials();
    let proxy = FaultProxy::start(&moto().endpoint);
    proxy.add_rule(Rule::throttle("ListAccessKeys").forever());
    let started = Instant::now();
    let run = sandbox
        .cmd(&["rotate", "--all", "--yes", "--throttle-timeout", "2s"])
        .endpoint(&proxy.endpoint)
        .timeout(Duration::from_secs(60))
        .run();
    run.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(20));
    run.assert_output_contains("still throttled after");
    run.assert_output_contains("--concurrency");
    assert!(proxy.count("ListAccessKeys") >= 3, "it kept trying");
    assert_eq!(sandbox.read_credentials(), before);
    assert_eq!(moto().list_keys(&users[0].0).len(), 1);
}

/// Many keys against a slow limit (the proxy refuses calls beyond 2 a second): every rotation
/// finishes, however long its calls wait for their turn (a wait for a turn spends no budget),
/// and most calls are let through: the pace comes down from the first refusal's estimate (the
/// last second's successes and the calls in flight, here far above 2) within seconds and then
/// grows by a twentieth a second.
#[test]
fn many_keys_at_a_slow_limit_all_rotate() {
    let (sandbox, users) = distinct(10, "scale-slow");
    let proxy = FaultProxy::start(&moto().endpoint);
    let rule = proxy.add_rule(Rule::throttle_above("*", 2));
    let run = sandbox
        .cmd(&["rotate", "--all", "--yes"])
        .endpoint(&proxy.endpoint)
        .timeout(Duration::from_secs(300))
        .run();
    run.assert_code(0);
    run.assert_stdout_contains("10 rotated, 0 not due, 0 skipped, 0 failed, 0 partial");
    let refused = proxy.fired(rule) as usize;
    let let_through = proxy.requests().len() - refused;
    assert!(refused > 0, "IAM did throttle");
    assert!(
        refused < let_through,
        "{refused} refused for {let_through} let through"
    );
    assert_all_rotated(&sandbox, &users);
}
