//! The fault matrix (issue 6): every AWS call `iam-keys rotate` makes × every fault kind ×
//! the attempt counts that matter (once: a retry should absorb it; forever: the retry budget
//! is spent), through the fault proxy, one user and sandbox per case, cases in parallel.
//!
//! For each case: the invariants of [`crate::invariants`] hold; the exit code and the
//! message fit what happened (0 and "1 rotated" when a retry absorbed the fault; 1, "1
//! failed" and the files byte for byte as before, the user with only the old key, when it
//! failed before the files were written; 3 and "rotated, but the old key … is still active"
//! when retiring failed, and then `recover` finishes it); nothing is retried forever (every
//! run ends within its deadline, and the faulted call was attempted a bounded number of
//! times, reported in the table). Every run is at `-vvv` with `RUST_LOG=trace` and no secret
//! may appear in its output.
//!
//! Two fault kinds forward the call to moto first and then lose the answer (a 500, or a
//! dropped connection): the call took effect and the client cannot know. They apply to the
//! calls that change IAM (CreateAccessKey, UpdateAccessKey, DeleteAccessKey); CreateAccessKey
//! is never re-sent blindly, the others are safe to retry (see `aws::Action::retry_safe`).
//!
//! The call rows: GetCallerIdentity is split by signer, since it is both a preflight call
//! (the old key) and the verification call (the new key); DeleteAccessKey is the retire call
//! of `rotate --delete` (its make-room use is in the crash matrix). There is no
//! GetAccessKeyLastUsed row: rotating a user's only key reads no last use (see
//! `scale::a_rotation_makes_seven_calls_in_order`).

use crate::invariants::{self, Case, Retired};
use crate::support::cmd::{Run, Sandbox};
use crate::support::moto::moto;
use crate::support::proxy::{Fault, FaultProxy, KeyMatch, Rule};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    /// Preflight, signed with the old key.
    GetCallerIdentityOld,
    ListAccessKeys,
    CreateAccessKey,
    /// Verification, signed with the new key.
    GetCallerIdentityNew,
    /// Retire (default).
    UpdateAccessKey,
    /// Retire with `--delete`.
    DeleteAccessKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    E500,
    E503,
    Throttling,
    InvalidClientTokenId,
    Forbidden403NoCode,
    Reset,
    Delay,
    /// Forwarded to moto (it takes effect), then the answer is a 500 (issue 10).
    E500AfterEffect,
    /// Forwarded to moto (it takes effect), then the connection drops (issue 10).
    ResetAfterEffect,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    Once,
    Forever,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Exit 0: rotated, the fault absorbed by a retry.
    Rotated,
    /// Exit 1: failed before the files were written; nothing changed.
    Unchanged,
    /// Exit 3: the new key is in the files, the old one still Active; `recover` finishes.
    Partial,
    /// Exit 3: the new key is in the files and the old one is retired in IAM, but no answer
    /// said so; `recover` finishes (its retire call finds the key retired).
    PartialRetired,
}

const CALLS: [Call; 6] = [
    Call::GetCallerIdentityOld,
    Call::ListAccessKeys,
    Call::CreateAccessKey,
    Call::GetCallerIdentityNew,
    Call::UpdateAccessKey,
    Call::DeleteAccessKey,
];

const KINDS: [Kind; 9] = [
    Kind::E500,
    Kind::E503,
    Kind::Throttling,
    Kind::InvalidClientTokenId,
    Kind::Forbidden403NoCode,
    Kind::Reset,
    Kind::Delay,
    Kind::E500AfterEffect,
    Kind::ResetAfterEffect,
];

/// The longest one case's rotation may take (it is killed and the case fails after).
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// More attempts than this at one call is "retrying forever".
const MAX_ATTEMPTS: u32 = 40;

impl Call {
    fn action(self) -> &'static str {
        match self {
            Call::GetCallerIdentityOld | Call::GetCallerIdentityNew => "GetCallerIdentity",
            Call::ListAccessKeys => "ListAccessKeys",
            Call::CreateAccessKey => "CreateAccessKey",
            Call::UpdateAccessKey => "UpdateAccessKey",
            Call::DeleteAccessKey => "DeleteAccessKey",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Call::GetCallerIdentityOld => "GetCallerIdentity (old key, preflight)",
            Call::GetCallerIdentityNew => "GetCallerIdentity (new key, verify)",
            Call::DeleteAccessKey => "DeleteAccessKey (retire, --delete)",
            Call::UpdateAccessKey => "UpdateAccessKey (retire)",
            other => other.action(),
        }
    }

    fn keys(self, old: &str) -> KeyMatch {
        match self {
            Call::GetCallerIdentityOld => KeyMatch::Is(old.to_string()),
            Call::GetCallerIdentityNew => KeyMatch::IsNot(old.to_string()),
            _ => KeyMatch::Any,
        }
    }
}

impl Kind {
    fn rule(self, action: &str) -> Rule {
        match self {
            Kind::E500 => Rule::error(action, 500, "InternalFailure", "internal error"),
            Kind::E503 => Rule::error(action, 503, "ServiceUnavailable", "unavailable"),
            Kind::Throttling => Rule::throttle(action),
            Kind::InvalidClientTokenId => Rule::error(
                action,
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
            Kind::Forbidden403NoCode => Rule::error(
                action,
                403,
                None,
                "The security token included in the request is invalid.",
            ),
            Kind::Reset => Rule::reset(action),
            Kind::Delay => Rule::delay(action, Duration::from_millis(700)),
            Kind::E500AfterEffect => Rule::after_effect(
                action,
                Fault::Error {
                    status: 500,
                    code: Some("InternalFailure".into()),
                    message: "internal error".into(),
                },
            ),
            Kind::ResetAfterEffect => Rule::after_effect(action, Fault::Reset),
        }
    }

    fn transient(self) -> bool {
        matches!(
            self,
            Kind::E500
                | Kind::E503
                | Kind::Throttling
                | Kind::Reset
                | Kind::E500AfterEffect
                | Kind::ResetAfterEffect
        )
    }

    /// The call takes effect before the fault: only meaningful for the calls that change IAM.
    fn after_effect(self) -> bool {
        matches!(self, Kind::E500AfterEffect | Kind::ResetAfterEffect)
    }

    fn label(self) -> &'static str {
        match self {
            Kind::E500 => "500 InternalFailure",
            Kind::E503 => "503 ServiceUnavailable",
            Kind::Throttling => "400 Throttling",
            Kind::InvalidClientTokenId => "403 InvalidClientTokenId",
            Kind::Forbidden403NoCode => "403, no code",
            Kind::Reset => "connection reset",
            Kind::Delay => "delay 700 ms",
            Kind::E500AfterEffect => "forwarded, then 500",
            Kind::ResetAfterEffect => "forwarded, then reset",
        }
    }
}

/// What the protocol promises for this fault.
fn expected(call: Call, kind: Kind, count: Count) -> Want {
    // CreateAccessKey is never re-sent after a failure that may have taken effect (a 5xx, a
    // dropped connection): the key it may have made is looked for and deleted, and the
    // rotation fails. Only a refusal that made nothing (Throttling) is sent again.
    if call == Call::CreateAccessKey && kind != Kind::Throttling && kind != Kind::Delay {
        return Want::Unchanged;
    }
    if kind == Kind::Delay || (kind.transient() && count == Count::Once) {
        // Delays are within the attempt timeout; the SDK retries transient errors.
        return Want::Rotated;
    }
    match call {
        Call::GetCallerIdentityOld | Call::ListAccessKeys | Call::CreateAccessKey => {
            Want::Unchanged
        }
        // Verification waits for the new key (auth failures are propagation) within the
        // verify timeout; then the new key is deleted.
        Call::GetCallerIdentityNew if count == Count::Once => Want::Rotated,
        Call::GetCallerIdentityNew => Want::Unchanged,
        // Retiring is retried within the verify timeout; then it is a partial rotation.
        Call::UpdateAccessKey | Call::DeleteAccessKey if count == Count::Once => Want::Rotated,
        Call::UpdateAccessKey | Call::DeleteAccessKey if kind.after_effect() => {
            Want::PartialRetired
        }
        Call::UpdateAccessKey | Call::DeleteAccessKey => Want::Partial,
    }
}

#[derive(Clone, Copy, Debug)]
struct Item {
    call: Call,
    kind: Kind,
    count: Count,
}

fn run_case(item: &Item) -> String {
    let m = moto();
    let name = format!("{:?} × {:?} × {:?}", item.call, item.kind, item.count);
    let want = expected(item.call, item.kind, item.count);
    let user = m.unique("fault");
    m.create_user(&user);
    let (old_id, old_secret) = m.create_key(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&format!(
        "[default]\naws_access_key_id = {old_id}\naws_secret_access_key = {old_secret}\n"
    ));
    sandbox.write_config("[default]\nregion = us-east-1\n");
    let before = (sandbox.read_credentials(), sandbox.read_config());
    let case = Case {
        name: name.clone(),
        sandbox: &sandbox,
        user: user.clone(),
        old_id: old_id.clone(),
        old_secret: old_secret.clone(),
        profiles: vec!["default".into()],
        others: Vec::new(),
        extra_secrets: Vec::new(),
    };

    let proxy = FaultProxy::start(&m.endpoint);
    let rule = item
        .kind
        .rule(item.call.action())
        .key(item.call.keys(&old_id));
    let rule = match item.count {
        Count::Once => rule.times(1),
        Count::Forever => rule.forever(),
    };
    let id = proxy.add_rule(rule);
    let delete = item.call == Call::DeleteAccessKey;
    let mut args = vec![
        "rotate",
        "--yes",
        "--verify-timeout",
        "3s",
        "--throttle-timeout",
        "5s",
        "-vvv",
    ];
    if delete {
        args.push("--delete");
    }
    let started = Instant::now();
    let run = sandbox
        .cmd(&args)
        .env("RUST_LOG", "trace")
        .endpoint(&proxy.endpoint)
        .timeout(RUN_DEADLINE)
        .run();
    let elapsed = started.elapsed();
    let fired = proxy.fired(id);
    let attempts = proxy.count(item.call.action());
    assert!(fired >= 1, "{name}: the fault never fired\n{run}");
    assert!(
        fired <= MAX_ATTEMPTS,
        "{name}: the faulted call was attempted {fired} times\n{run}"
    );
    let retired = if delete {
        Retired::Deleted
    } else {
        Retired::Inactive
    };
    let mut runs: Vec<Run> = vec![run.clone()];
    let observed = match want {
        Want::Rotated => {
            run.assert_code(0).assert_stdout_contains("1 rotated");
            invariants::converged(&case, &[&run], retired);
            "0, rotated".to_string()
        }
        Want::Unchanged => {
            run.assert_code(1).assert_stdout_contains("1 failed");
            match item.call {
                Call::CreateAccessKey => {
                    run.assert_stdout_contains("creating the new key failed");
                }
                Call::GetCallerIdentityNew => {
                    run.assert_stdout_contains("verifying the new key failed")
                        .assert_stdout_contains("was deleted again, files unchanged");
                }
                _ => {}
            }
            assert!(
                (sandbox.read_credentials(), sandbox.read_config()) == before,
                "{name}: the files changed"
            );
            invariants::restored(
                &case,
                &[&run],
                &[(old_id.clone(), "Active".to_string())],
                false,
            );
            "1, nothing changed".to_string()
        }
        Want::PartialRetired => {
            run.assert_code(3)
                .assert_stdout_contains("rotated, but the old key")
                .assert_stdout_contains("iam-keys recover");
            let obs = invariants::check(&case, &[&run], true);
            assert_eq!(obs.stages, vec!["persisted".to_string()], "{name}");
            assert!(
                !obs.iam.contains(&(old_id.clone(), "Active".to_string())),
                "{name}: the old key was retired, though no answer said so"
            );
            proxy.clear_rules();
            let recovered = sandbox
                .cmd(&["recover", "--yes", "-vvv"])
                .env("RUST_LOG", "trace")
                .endpoint(&proxy.endpoint)
                .timeout(RUN_DEADLINE)
                .run();
            recovered.assert_code(0).assert_stdout_contains("finished");
            runs.push(recovered);
            let refs: Vec<&Run> = runs.iter().collect();
            invariants::converged(&case, &refs, retired);
            "3, partial (old key retired); recover → 0".to_string()
        }
        Want::Partial => {
            run.assert_code(3)
                .assert_stdout_contains("rotated, but the old key")
                .assert_stdout_contains("iam-keys recover");
            let obs = invariants::check(&case, &[&run], true);
            assert_eq!(obs.stages, vec!["persisted".to_string()], "{name}");
            assert!(
                obs.held["default"] != old_id,
                "{name}: the files hold the new key"
            );
            assert!(
                obs.iam.contains(&(old_id.clone(), "Active".to_string())),
                "{name}: the old key is still Active"
            );
            proxy.clear_rules();
            let recovered = sandbox
                .cmd(&["recover", "--yes", "-vvv"])
                .env("RUST_LOG", "trace")
                .endpoint(&proxy.endpoint)
                .timeout(RUN_DEADLINE)
                .run();
            recovered.assert_code(0).assert_stdout_contains("finished");
            runs.push(recovered);
            let refs: Vec<&Run> = runs.iter().collect();
            invariants::converged(&case, &refs, retired);
            "3, partial; recover → 0".to_string()
        }
    };
    assert!(elapsed < RUN_DEADLINE, "{name}: took {elapsed:?}\n{run}");
    format!(
        "| {} | {} | {:?} | {:?} | {} | {fired} | {attempts} | {:.1} s |",
        item.call.label(),
        item.kind.label(),
        item.count,
        want,
        observed,
        elapsed.as_secs_f64()
    )
}

#[test]
fn fault_matrix() {
    let mut items = Vec::new();
    for call in CALLS {
        for kind in KINDS {
            let mutating = matches!(
                call,
                Call::CreateAccessKey | Call::UpdateAccessKey | Call::DeleteAccessKey
            );
            if kind.after_effect() && !mutating {
                continue;
            }
            for count in [Count::Once, Count::Forever] {
                items.push(Item { call, kind, count });
            }
        }
    }
    let started = Instant::now();
    let rows = invariants::run_parallel(
        &items,
        8,
        |i| format!("{:?} × {:?} × {:?}", i.call, i.kind, i.count),
        run_case,
    );
    eprintln!(
        "| call | fault | times | expected | observed (exit, state) | injected | requests of that action | wall |\n|---|---|---|---|---|---|---|---|\n{}\n{} cases in {:.0} s",
        rows.join("\n"),
        rows.len(),
        started.elapsed().as_secs_f64()
    );
}
