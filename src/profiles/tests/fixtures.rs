//! Profile-file tests: fixtures.

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/profiles")
}

/// Each `tests/fixtures/profiles/edits/<case>/` holds `credentials` and/or `config`, an
/// `edit` line (`replace OLD NEW SECRET` or `set PROFILE KEY SECRET`), and the expected
/// results `credentials.expected` / `config.expected` (a missing one: unchanged), or
/// `error.expected` with a text the error must contain.
#[test]
fn fixture_corpus_gives_the_expected_files() {
    let mut cases = 0;
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures().join("edits"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let read = |name: &str| fs::read_to_string(dir.join(name)).ok();
        let edit_line = read("edit").expect("edit file");
        let words: Vec<&str> = edit_line.split_whitespace().collect();
        let edit = match words.as_slice() {
            ["replace", old, new, secret] => KeyEdit::Replace {
                old_key_id: old.to_string(),
                new_key_id: new.to_string(),
                new_secret: Secret::new(*secret),
            },
            ["set", profile, key, secret] => KeyEdit::SetProfile {
                profile: profile.to_string(),
                key_id: key.to_string(),
                secret: Secret::new(*secret),
            },
            other => panic!("{}: bad edit line {other:?}", dir.display()),
        };
        let d = Dir::new(read("credentials").as_deref(), read("config").as_deref());
        let result = d
            .load_result()
            .and_then(|mut f| f.apply_edits(&[edit], &SaveOptions { backup: false }));
        if let Some(expected) = read("error.expected") {
            let err = result.expect_err(&dir.display().to_string()).to_string();
            assert!(err.contains(expected.trim()), "{}: {err}", dir.display());
        } else {
            result.unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        for name in ["credentials", "config"] {
            let expected = read(&format!("{name}.expected")).or(read(name));
            let actual = fs::read_to_string(d.dir.path().join(name)).ok();
            assert_eq!(actual, expected, "{}: {name}", dir.display());
        }
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} fixture cases");
}

impl Dir {
    fn load_result(&self) -> Result<ProfileFiles, ProfileError> {
        ProfileFiles::load(&self.paths)
    }
}
