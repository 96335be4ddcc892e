//! The fuzz corpus (`fuzz/corpus/profiles/`: the named seeds and the minimised corpus of
//! the long runs), replayed by `cargo test` through the fuzz target's own checks
//! (`fuzz/fuzz_targets/profiles_check.rs`, included by path): render identity, loading as
//! both files, and the Replace edit. No moto needed.

#[path = "../../fuzz/fuzz_targets/profiles_check.rs"]
mod profiles_check;

use profiles_check::{Reached, check};
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn every_fuzz_corpus_input_passes_the_fuzz_targets_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/profiles");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the fuzz corpus {}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    inputs.sort();
    let mut tally: BTreeMap<Reached, usize> = BTreeMap::new();
    for path in &inputs {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let reached = std::panic::catch_unwind(|| check(&data)).unwrap_or_else(|_| {
            panic!(
                "corpus input {} fails the fuzz target's checks (replay: \
                 `RUSTC_BOOTSTRAP=1 cargo fuzz run profiles {}`)",
                path.display(),
                path.display()
            )
        });
        *tally.entry(reached).or_default() += 1;
    }
    eprintln!("fuzz corpus: {} inputs, {tally:?}", inputs.len());
    // The corpus is committed: a replay that sees much less of it checks much less.
    assert!(inputs.len() >= 1000, "only {} corpus inputs", inputs.len());
    let edited = tally.get(&Reached::Edited).copied().unwrap_or(0);
    assert!(
        edited >= 500,
        "only {edited} corpus inputs ran the edit: {tally:?}"
    );
}
