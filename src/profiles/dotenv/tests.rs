//! The dotenv editor: a corpus of real-looking files edited losslessly, properties over
//! generated files, and the file-safety rules of the save.

use super::*;
use proptest::prelude::*;

const OLD_ID: &str = "AKIAOLDKEY0000000001";
const OLD_SECRET: &str = "oldSecret/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const NEW_ID: &str = "AKIANEWKEY0000000002";
const NEW_SECRET: &str = "newSecret+BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

fn corpus(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dotenv")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn edited(text: &str) -> String {
    edit(text, OLD_ID, NEW_ID, &Secret::new(NEW_SECRET)).expect("the edit is accepted")
}

fn swapped(text: &str) -> String {
    text.replace(OLD_ID, NEW_ID).replace(OLD_SECRET, NEW_SECRET)
}

#[test]
fn corpus_files_with_both_variables_change_only_the_values() {
    for name in ["laravel.env", "crlf-spaced.env", "compose.env"] {
        let text = corpus(name);
        assert_eq!(edited(&text), swapped(&text), "{name}");
    }
}

#[test]
fn exports_and_quotes_are_kept_and_a_stale_session_token_goes() {
    let text = corpus("exported.env");
    let expected: String = swapped(&text)
        .lines()
        .filter(|l| !l.contains("AWS_SESSION_TOKEN"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = edited(&text);
    assert_eq!(out, expected);
    assert!(out.contains(&format!(
        "export AWS_ACCESS_KEY_ID=\"{NEW_ID}\"   # deploy bot\n"
    )));
    assert!(out.contains(&format!("export AWS_SECRET_ACCESS_KEY='{NEW_SECRET}'\n")));
}

#[test]
fn a_multiline_value_is_not_read_as_assignments_and_a_missing_key_id_is_added() {
    let text = corpus("multiline.env");
    let out = edited(&text);
    let expected = swapped(&text).replace(
        &format!("AWS_SECRET_ACCESS_KEY={NEW_SECRET}\n"),
        &format!("AWS_SECRET_ACCESS_KEY={NEW_SECRET}\nAWS_ACCESS_KEY_ID={NEW_ID}\n"),
    );
    assert_eq!(out, expected);
    assert!(out.contains("AWS_ACCESS_KEY_ID=NotAnAssignment\n"));
    assert_eq!(value_of(&out, KEY_ID_VAR).as_deref(), Some(NEW_ID));
}

#[test]
fn a_file_without_a_final_newline_gets_the_missing_secret_on_its_own_line() {
    let out = edited(&corpus("no-final-newline.env"));
    assert_eq!(
        out,
        format!(
            "S3_BUCKET=assets\nAWS_ACCESS_KEY_ID={NEW_ID}\nAWS_SECRET_ACCESS_KEY={NEW_SECRET}\n"
        )
    );
}

#[test]
fn variables_are_added_in_the_file_style() {
    assert_eq!(
        edited(&corpus("empty.env")),
        format!("AWS_ACCESS_KEY_ID={NEW_ID}\nAWS_SECRET_ACCESS_KEY={NEW_SECRET}\n")
    );
    let text = corpus("no-aws.env");
    assert_eq!(
        edited(&text),
        format!(
            "{text}export AWS_ACCESS_KEY_ID={NEW_ID}\nexport AWS_SECRET_ACCESS_KEY={NEW_SECRET}\n"
        )
    );
    // CRLF files get CRLF lines.
    assert_eq!(
        edited("A=1\r\n"),
        format!("A=1\r\nAWS_ACCESS_KEY_ID={NEW_ID}\r\nAWS_SECRET_ACCESS_KEY={NEW_SECRET}\r\n")
    );
}

#[test]
fn every_corpus_edit_is_idempotent_and_reads_back() {
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dotenv"))
            .unwrap()
    {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let once = edited(&corpus(&name));
        assert_eq!(edited(&once), once, "{name}");
        assert_eq!(
            value_of(&once, KEY_ID_VAR).as_deref(),
            Some(NEW_ID),
            "{name}"
        );
        assert_eq!(
            value_of(&once, SECRET_VAR).as_deref(),
            Some(NEW_SECRET),
            "{name}"
        );
        assert!(
            !once.contains(OLD_ID) && !once.contains(OLD_SECRET),
            "{name}"
        );
    }
}

#[test]
fn another_key_is_refused_naming_its_line() {
    let text = "# app\nAWS_ACCESS_KEY_ID=AKIASOMEONEELSE00009\n";
    assert_eq!(
        edit(text, OLD_ID, NEW_ID, &Secret::new(NEW_SECRET)),
        Err(EditError::OtherKey {
            line: 2,
            key_id: "AKIASOMEONEELSE00009".into()
        })
    );
    // An empty placeholder is filled in.
    assert!(
        edit(
            "AWS_ACCESS_KEY_ID=\n",
            OLD_ID,
            NEW_ID,
            &Secret::new(NEW_SECRET)
        )
        .is_ok()
    );
}

#[test]
fn an_unclosed_quote_is_refused_naming_its_line() {
    let text = "A=1\nB=\"never closed\nC=3\n";
    assert_eq!(
        edit(text, OLD_ID, NEW_ID, &Secret::new(NEW_SECRET)),
        Err(EditError::Unclosed { line: 2 })
    );
}

#[test]
fn errors_never_show_the_secret() {
    let e = DotenvError::OtherKey {
        path: "/p/.env".into(),
        line: 3,
        key_id: "AKIASOMEONEELSE00009".into(),
    };
    let text = e.to_string();
    assert!(text.contains("/p/.env line 3"), "{text}");
    assert!(
        !text.contains("AKIASOMEONEELSE00009"),
        "the key id is masked: {text}"
    );
}

/// A line of a dotenv file that is not one of ours.
fn other_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "# [ -~]{0,30}".prop_map(|s| s),
        "[A-Z][A-Z0-9_]{0,12}=[a-z0-9:/._-]{0,20}",
        "export [A-Z][A-Z0-9_]{0,12}=\"[ a-z0-9#']{0,20}\"",
        "[A-Z][A-Z0-9_]{0,12}='[ a-z0-9#\"]{0,20}' # [a-z ]{0,10}",
    ]
    .prop_filter("not one of ours", |l| !l.contains("AWS_"))
}

/// One of our assignments, in some style.
fn our_line(name: &'static str, value: &'static str) -> impl Strategy<Value = String> {
    (any::<bool>(), 0..3usize, any::<bool>()).prop_map(move |(export, quote, comment)| {
        let q = ["", "\"", "'"][quote];
        format!(
            "{}{name}={q}{value}{q}{}",
            if export { "export " } else { "" },
            if comment { " # note" } else { "" }
        )
    })
}

proptest! {
    #[test]
    fn only_our_values_change(
        before in proptest::collection::vec(other_line(), 0..8),
        after in proptest::collection::vec(other_line(), 0..8),
        key in proptest::option::of(our_line(KEY_ID_VAR, OLD_ID)),
        secret in proptest::option::of(our_line(SECRET_VAR, OLD_SECRET)),
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut lines = before.clone();
        lines.extend(key.clone());
        lines.extend(secret.clone());
        lines.extend(after.clone());
        let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
        let out = edited(&text);
        prop_assert_eq!(value_of(&out, KEY_ID_VAR), Some(NEW_ID.to_string()));
        prop_assert_eq!(value_of(&out, SECRET_VAR), Some(NEW_SECRET.to_string()));
        // Every other line is kept, in order.
        let others = |t: &str| -> Vec<String> {
            t.split_inclusive('\n').filter(|l| !l.contains("AWS_")).map(str::to_string).collect()
        };
        prop_assert_eq!(others(&out), others(&text));
        // Our lines keep their style: only the value changed.
        if let (Some(k), Some(s)) = (&key, &secret) {
            prop_assert_eq!(out, swapped(&text));
            let _ = (k, s);
        }
    }
}

#[cfg(unix)]
mod files {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn save(path: &Path) -> Result<bool, DotenvError> {
        save_key(path, OLD_ID, NEW_ID, &Secret::new(NEW_SECRET))
    }

    #[test]
    fn a_save_is_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, corpus("laravel.env")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(save(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            swapped(&corpus("laravel.env"))
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".env"]);
        // Again with the same key: nothing to write.
        assert!(!save(&path).unwrap());
    }

    #[test]
    fn a_missing_file_is_created_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        assert!(save(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("AWS_ACCESS_KEY_ID={NEW_ID}\nAWS_SECRET_ACCESS_KEY={NEW_SECRET}\n")
        );
    }

    #[test]
    fn a_symlink_is_kept_and_its_target_written() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.env");
        let link = dir.path().join(".env");
        std::fs::write(&real, corpus("compose.env")).unwrap();
        std::os::unix::fs::symlink("real.env", &link).unwrap();
        save(&link).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            swapped(&corpus("compose.env"))
        );
    }

    #[test]
    fn a_hard_link_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(&a, corpus("laravel.env")).unwrap();
        std::fs::hard_link(&a, &b).unwrap();
        save(&a).unwrap();
        let expected = swapped(&corpus("laravel.env"));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), expected);
        assert_eq!(
            std::fs::read_to_string(&b).unwrap(),
            expected,
            "both names see the new key"
        );
        assert_eq!(mode(&a), 0o600);
    }

    #[test]
    fn a_fifo_a_directory_and_dev_null_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.env");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for path in [fifo.as_path(), dir.path(), Path::new("/dev/null")] {
            match save(path) {
                Err(e @ DotenvError::Unusable { .. }) => {
                    assert!(e.to_string().contains(&path.display().to_string()), "{e}")
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn another_key_is_left_alone_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let text = "AWS_ACCESS_KEY_ID=AKIASOMEONEELSE00009\n";
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            save(&path),
            Err(DotenvError::OtherKey { line: 1, .. })
        ));
        assert!(matches!(
            check(&path, OLD_ID),
            Err(DotenvError::OtherKey { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
