//! Parse and render throughput of the profile document model on a credentials file with
//! 10,000 profiles, and the time of a Replace edit (plan in memory; apply with an atomic
//! save to a temporary directory). Plain `std::time::Instant`, median of several runs.
//!
//! Run: `cargo bench --bench profiles`

use iam_keys::profiles::document::Document;
use iam_keys::profiles::{FilePaths, KeyEdit, ProfileFiles, SaveOptions};
use iam_keys::secret::Secret;
use std::hint::black_box;
use std::time::{Duration, Instant};

const PROFILES: usize = 10_000;
const RUNS: usize = 9;
const SHARED_KEY: &str = "AKIASHAREDSHAREDSHA1";

/// A credentials file with `n` profiles in assorted styles; every 100th holds SHARED_KEY.
fn generate(n: usize) -> String {
    let mut s = String::with_capacity(n * 150);
    s.push_str("# generated for the benchmark\n");
    for i in 0..n {
        let key = if i % 100 == 0 {
            SHARED_KEY.to_string()
        } else {
            format!("AKIA{i:016}")
        };
        match i % 4 {
            0 => s.push_str(&format!(
                "[profile-{i}]\naws_access_key_id = {key}\naws_secret_access_key = secret/{i:036}\n\n"
            )),
            1 => s.push_str(&format!(
                "[profile-{i}]\r\nAWS_ACCESS_KEY_ID\t=\t{key} # note\r\naws_secret_access_key={i:040}\r\nregion = us-east-1\r\n"
            )),
            2 => s.push_str(&format!(
                "; comment {i}\n[profile-{i}]\naws_access_key_id = {key}\naws_secret_access_key = {i:040}\naws_session_token = token{i}\n"
            )),
            _ => s.push_str(&format!(
                "[profile-{i}]\naws_access_key_id = {key}\naws_secret_access_key = {i:040}\ns3 =\n  max_concurrent_requests = 20\n"
            )),
        }
    }
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    let runs = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    median(runs)
}

fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1_000_000.0 / d.as_secs_f64()
}

fn main() {
    let text = generate(PROFILES);
    let bytes = text.len();
    println!(
        "profiles benchmark: {PROFILES} profiles, {:.2} MB, median of {RUNS} runs",
        bytes as f64 / 1e6
    );

    let parse = time(|| Document::parse(black_box(&text)));
    println!(
        "  parse   {:>8.2} ms  {:>8.1} MB/s",
        parse.as_secs_f64() * 1e3,
        mb_per_s(bytes, parse)
    );

    let doc = Document::parse(&text);
    assert_eq!(doc.render(), text, "render must give back the input");
    let render = time(|| doc.render());
    println!(
        "  render  {:>8.2} ms  {:>8.1} MB/s",
        render.as_secs_f64() * 1e3,
        mb_per_s(bytes, render)
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let paths = FilePaths {
        credentials: dir.path().join("credentials"),
        config: dir.path().join("config"),
    };
    let load = time(|| ProfileFiles::from_texts(&paths, &text, "").expect("parses"));
    println!(
        "  load (parse + profile view)  {:>8.2} ms  {:>8.1} MB/s",
        load.as_secs_f64() * 1e3,
        mb_per_s(bytes, load)
    );

    let edit = |old: &str, new: &str| KeyEdit::Replace {
        old_key_id: old.to_string(),
        new_key_id: new.to_string(),
        new_secret: Secret::new("newSecret/newSecret+newSecret/newSecret1"),
    };
    let files = ProfileFiles::from_texts(&paths, &text, "").expect("parses");
    let holders = files.profiles_with_key(SHARED_KEY).len();
    let plan = time(|| {
        files
            .plan_edits(&[edit(SHARED_KEY, "AKIANEWNEWNEWNEWNEW1")])
            .expect("plan")
    });
    println!(
        "  plan Replace ({holders} holders)  {:>8.2} ms",
        plan.as_secs_f64() * 1e3
    );

    std::fs::write(&paths.credentials, &text).expect("write the file");
    let mut files = ProfileFiles::load(&paths).expect("load");
    let keys = ["AKIANEWNEWNEWNEWNEW1", SHARED_KEY];
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let (old, new) = (keys[(i + 1) % 2], keys[i % 2]);
        let start = Instant::now();
        files
            .apply_edits(&[edit(old, new)], &SaveOptions { backup: true })
            .expect("apply");
        runs.push(start.elapsed());
    }
    let apply = median(runs);
    println!(
        "  apply Replace (re-read, backup, atomic save, verify)  {:>8.2} ms",
        apply.as_secs_f64() * 1e3
    );
}
