//! The checks of the `profiles` fuzz target, shared with the corpus replay that
//! `cargo test` runs (`tests/it/fuzz_corpus.rs` includes this file by path): any input must
//! parse without panicking and render back byte for byte; when it is a valid file with an
//! access key, a Replace edit must reach every holder, re-parse, and leave no profile with
//! the old key. Uses only the public API of `iam_keys`.

use iam_keys::profiles::document::Document;
use iam_keys::profiles::{FilePaths, KeyEdit, ProfileFiles};
use iam_keys::secret::Secret;

const NEW_KEY: &str = "AKIAFUZZFUZZFUZZFUZ1";
const NEW_SECRET: &str = "fuzzSecret/fuzzSecret+fuzzSecret/fuzzSe1";

/// How far one input went through the checks (each step passed its assertions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// Not UTF-8: nothing to check.
    NotUtf8,
    /// Rendered back byte for byte, but the files do not load (a line the SDKs reject).
    Rendered,
    /// Loaded as both files; no key to edit, or a holder that may not be edited.
    Loaded,
    /// The Replace edit ran and reached every holder.
    Edited,
}

/// Run every check on one input; panics (with no secret: the inputs are test data) on a
/// failed one.
pub fn check(data: &[u8]) -> Reached {
    let Ok(text) = std::str::from_utf8(data) else {
        return Reached::NotUtf8;
    };
    let doc = Document::parse(text);
    assert_eq!(doc.render(), text, "render must give back the input");
    let _ = doc.issues();

    // The same text as both files exercises the cross-file rules too.
    let paths = FilePaths {
        credentials: "fuzz/credentials".into(),
        config: "fuzz/config".into(),
    };
    let Ok(files) = ProfileFiles::from_texts(&paths, text, text) else {
        return Reached::Rendered;
    };
    let _ = files.warnings();
    let mut old_key = None;
    for name in files.profile_names() {
        let profile = files.profile(&name).expect("a listed profile exists");
        let kind = profile.kind();
        assert_eq!(kind.rotatable(), kind.not_rotatable_reason().is_none());
        if old_key.is_none() {
            old_key = profile
                .get("aws_access_key_id")
                .filter(|k| !k.is_empty() && *k != NEW_KEY)
                .map(str::to_string);
        }
    }
    let Some(old_key) = old_key else {
        return Reached::Loaded;
    };
    let holders = files.profiles_with_key(&old_key);
    if holders.is_empty()
        || holders
            .iter()
            .any(|h| files.check_editable(&h.profile).is_err())
    {
        return Reached::Loaded;
    }
    let edit = KeyEdit::Replace {
        old_key_id: old_key.clone(),
        new_key_id: NEW_KEY.to_string(),
        new_secret: Secret::new(NEW_SECRET),
    };
    let planned = files.plan_edits(std::slice::from_ref(&edit)).expect("plan");
    assert!(!planned.is_empty());
    let edited = files
        .with_edits(&[edit])
        .expect("the edit applies and re-parses");
    assert!(
        edited.profiles_with_key(&old_key).is_empty(),
        "the old key is gone"
    );
    let now: Vec<String> = edited
        .profiles_with_key(NEW_KEY)
        .into_iter()
        .map(|h| h.profile)
        .collect();
    for h in holders {
        assert!(now.contains(&h.profile), "every holder has the new key");
    }
    Reached::Edited
}
