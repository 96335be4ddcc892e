//! `iam-keys prune` against moto: it deletes exactly the Inactive keys that iam-keys retired
//! at least `--older-than` ago and that were not used since, never an Active key, a key a
//! profile line names, a key turned back on and used, or (without `--unrecorded`) a key
//! deactivated by hand; `--dry-run` lists exactly what the real run then deletes. And
//! `status` says when a retired key may be pruned.

use crate::support::cmd::Sandbox;
use crate::support::moto::moto;
use serde_json::Value;

fn block(name: &str, id: &str, secret: &str) -> String {
    format!("[{name}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
}

fn mask(id: &str) -> String {
    format!("{}…{}", &id[..4], &id[id.len() - 4..])
}

/// (masked key, action) of every key a prune report lists, sorted.
fn actions(doc: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["access_key_id"].as_str().unwrap().to_string(),
                k["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn reason_of<'a>(doc: &'a Value, id: &str) -> &'a str {
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["access_key_id"] == mask(id).as_str())
        .unwrap_or_else(|| panic!("{} not listed: {doc}", mask(id)))["reason"]
        .as_str()
        .unwrap()
}

#[test]
fn prune_deletes_only_keys_retired_here_long_enough_ago_and_unused_since() {
    let m = moto();
    let users: Vec<String> = ["pr-rot", "pr-used", "pr-hand", "pr-held"]
        .iter()
        .map(|p| m.unique(p))
        .collect();
    let mut creds = String::new();
    let mut keys = Vec::new();
    for (i, user) in users.iter().enumerate() {
        m.create_user(user);
        let (id, secret) = m.create_key(user);
        creds.push_str(&block(&format!("p{i}"), &id, &secret));
        keys.push((id, secret));
    }
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&creds);
    // pr-rot and pr-used: rotated by iam-keys (recorded). pr-hand: a second key deactivated
    // by hand (no record). pr-held: rotated, but a stray section still names the old key.
    for profile in ["p0", "p1", "p3"] {
        sandbox
            .iam_keys(&["rotate", "--profile", profile, "--yes"])
            .assert_code(0);
    }
    let (hand, _) = m.create_key(&users[2]);
    m.set_key_status(&users[2], &hand, "Inactive");
    let held_old = &keys[3].0;
    let mut text = sandbox.read_credentials();
    text.push_str(&format!("[stray]\naws_access_key_id = {held_old}\n"));
    sandbox.write_credentials(&text);
    // pr-used's old key is used after its retirement (moto accepts Inactive keys).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(m.key_works_as(&keys[1].0, &keys[1].1, &users[1]));

    // status: the retired key's line says when it was retired and when it may go.
    let status = sandbox.iam_keys(&["status", "--profile", "p0"]);
    status.assert_code(0);
    assert!(
        status.stdout.contains("retired by iam-keys on ")
            && status.stdout.contains(", prune after "),
        "{}",
        status.stdout
    );
    let doc = sandbox
        .iam_keys(&["status", "--profile", "p0", "--output", "json"])
        .json();
    let other = &doc["profiles"][0]["key"]["other_keys"][0];
    assert_eq!(other["access_key_id"], mask(&keys[0].0).as_str(), "{doc}");
    assert!(other["retired_by_iam_keys"].is_string(), "{doc}");
    assert!(other["prune_after"].is_string(), "{doc}");

    // Default --older-than 7d: nothing is old enough.
    let run = sandbox.iam_keys(&["prune", "--all", "--dry-run", "--output", "json"]);
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["summary"]["planned"], 0, "{doc}");
    assert!(reason_of(&doc, &keys[0].0).contains("prune after"), "{doc}");

    // --older-than 0s: only pr-rot's old key.
    let dry = sandbox.iam_keys(&[
        "prune",
        "--all",
        "--older-than",
        "0s",
        "--dry-run",
        "--output",
        "json",
    ]);
    dry.assert_code(0);
    let dry = dry.json();
    assert_eq!(
        actions(&dry),
        {
            let mut v = vec![
                (mask(&keys[0].0), "delete".to_string()),
                (mask(&keys[1].0), "keep".to_string()),
                (mask(&hand), "keep".to_string()),
                (mask(held_old), "keep".to_string()),
            ];
            v.sort();
            v
        },
        "{dry}"
    );
    assert!(
        reason_of(&dry, &keys[1].0).contains("after iam-keys retired it"),
        "{dry}"
    );
    assert!(reason_of(&dry, &hand).contains("--unrecorded"), "{dry}");
    assert!(reason_of(&dry, held_old).contains("line"), "{dry}");
    // Nothing changed by the dry run.
    assert_eq!(m.list_keys(&users[0]).len(), 2);

    // Without --yes and without a terminal: refused, nothing deleted.
    sandbox
        .iam_keys(&["prune", "--all", "--older-than", "0s"])
        .assert_code(2)
        .assert_stderr_contains("--yes");
    assert_eq!(m.list_keys(&users[0]).len(), 2);

    let real = sandbox.iam_keys(&[
        "prune",
        "--all",
        "--older-than",
        "0s",
        "--yes",
        "--output",
        "json",
    ]);
    real.assert_code(0);
    let real = real.json();
    assert_eq!(real["summary"]["deleted"], 1, "{real}");
    let deleted: Vec<_> = actions(&real)
        .into_iter()
        .filter(|(_, a)| a == "deleted")
        .map(|(k, _)| k)
        .collect();
    let planned: Vec<_> = actions(&dry)
        .into_iter()
        .filter(|(_, a)| a == "delete")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        deleted, planned,
        "the real run deletes what the dry run listed"
    );
    let left: Vec<String> = m.list_keys(&users[0]).into_iter().map(|(k, _)| k).collect();
    assert!(!left.contains(&keys[0].0), "{left:?}");
    assert_eq!(left.len(), 1);
    for (i, user) in users.iter().enumerate().skip(1) {
        assert_eq!(m.list_keys(user).len(), 2, "user {i} keeps both keys");
    }
    // The deleted key left the record; the status line is gone with it.
    let record =
        std::fs::read_to_string(sandbox.path(".local/state/iam-keys/retired.json")).unwrap();
    assert!(!record.contains(&keys[0].0));
    assert!(record.contains(&keys[1].0));
    real_run_with_unrecorded(&sandbox, &users[2], &hand);
}

/// `--unrecorded` judges a key deactivated by hand from its creation or last use.
fn real_run_with_unrecorded(sandbox: &Sandbox, user: &str, hand: &str) {
    let m = moto();
    let run = sandbox.iam_keys(&[
        "prune",
        "--profile",
        "p2",
        "--older-than",
        "0s",
        "--unrecorded",
        "--yes",
    ]);
    run.assert_code(0);
    assert!(run.stdout.contains("1 deleted"), "{}", run.stdout);
    let left: Vec<String> = m.list_keys(user).into_iter().map(|(k, _)| k).collect();
    assert!(!left.contains(&hand.to_string()), "{left:?}");
    assert_eq!(left.len(), 1);
}

#[test]
fn rotate_prune_deletes_the_earlier_retired_key_to_make_room() {
    let m = moto();
    let user = m.unique("pr-rotprune");
    m.create_user(&user);
    let (id, secret) = m.create_key(&user);
    let sandbox = Sandbox::new();
    sandbox.write_credentials(&block("default", &id, &secret));
    sandbox.iam_keys(&["rotate", "--yes"]).assert_code(0);
    // The second rotation finds the first one's retired key in the second slot: without
    // --prune (or --delete-inactive) it is refused; with --prune it goes when old enough.
    sandbox.iam_keys(&["rotate", "--yes"]).assert_code(1);
    let young = sandbox.iam_keys(&["rotate", "--yes", "--prune"]);
    young.assert_code(1);
    assert!(young.output().contains("prune after"), "{}", young.output());
    assert_eq!(m.list_keys(&user).len(), 2);
    let run = sandbox.iam_keys(&["rotate", "--yes", "--prune", "--prune-older-than", "0s"]);
    run.assert_code(0);
    let keys = m.list_keys(&user);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        !keys.iter().any(|(k, _)| *k == id),
        "the first key was pruned"
    );
}
