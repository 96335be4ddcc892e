//! Profile-file tests: edits.

use super::*;

#[test]
fn replace_changes_key_and_secret_and_drops_tokens_keeping_everything_else() {
    let creds = format!(
        "# my keys\n[default]\nAWS_ACCESS_KEY_ID=  {OLD}\naws_secret_access_key=  {OLD_SECRET}\n\
         aws_session_token=  stale\n  stale-continued\nregion = us-east-1\n\n[other]\naws_access_key_id = AKIAOTHER\n"
    );
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!(
            "# my keys\n[default]\nAWS_ACCESS_KEY_ID=  {NEW}\naws_secret_access_key=  {NEW_SECRET}\n\
             region = us-east-1\n\n[other]\naws_access_key_id = AKIAOTHER\n"
        )
    );
}

#[test]
fn replace_updates_every_holder_in_both_files_in_one_save_each() {
    let creds = format!(
        "[a]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n[b]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n"
    );
    let config = format!(
        "[profile c]\nregion = eu-west-1\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\noutput = json\n"
    );
    let d = Dir::new(Some(&creds), Some(&config));
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    assert_eq!(report.files.len(), 2);
    assert_eq!(report.files[0].kind, FileKind::Credentials);
    assert_eq!(report.files[0].changes.len(), 4);
    assert_eq!(report.files[1].changes.len(), 2);
    assert_eq!(
        d.read(&d.paths.credentials),
        creds.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
    assert_eq!(
        d.read(&d.paths.config),
        config.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
    // The in-memory state is the new content.
    assert_eq!(f.profiles_with_key(NEW).len(), 3);
    assert!(f.profiles_with_key(OLD).is_empty());
    assert_eq!(
        f.profile("c").unwrap().get("aws_secret_access_key"),
        Some(NEW_SECRET)
    );
}

#[test]
fn replace_adds_a_missing_secret_after_the_last_property_in_the_neighbours_style() {
    let creds = format!("[a]\r\naws_access_key_id={OLD}\r\nregion=x\r\n\r\n[b]\r\n");
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!(
            "[a]\r\naws_access_key_id={NEW}\r\nregion=x\r\naws_secret_access_key={NEW_SECRET}\r\n\r\n[b]\r\n"
        )
    );
}

#[test]
fn replace_moves_inline_comments_above_the_edited_lines() {
    let creds = format!(
        "[a]\naws_access_key_id = {OLD} # work key\naws_secret_access_key = {OLD_SECRET} ;s\n"
    );
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!(
            "[a]\n# work key\naws_access_key_id = {NEW}\n;s\naws_secret_access_key = {NEW_SECRET}\n"
        )
    );
    let f = files(&creds, "");
    let kinds: Vec<ChangeKind> = f
        .plan_edits(&[replace()])
        .unwrap()
        .iter()
        .map(|c| c.change)
        .collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::MoveComment,
            ChangeKind::Replace,
            ChangeKind::MoveComment,
            ChangeKind::Replace
        ]
    );
}

/// Found by the fuzzer: an inline comment on a last line without a newline.
#[test]
fn a_comment_moved_from_a_last_line_without_newline_gets_its_own_line() {
    let creds = format!("[a]\naws_access_key_id = {OLD}\naws_secret_access_key =  # the secret");
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!(
            "[a]\naws_access_key_id = {NEW}\n# the secret\naws_secret_access_key = {NEW_SECRET}"
        )
    );
}

#[test]
fn replace_keeps_a_missing_final_newline_and_crlf() {
    let creds = format!(
        "[a]\r\naws_access_key_id = {OLD}\r\naws_secret_access_key = {OLD_SECRET}\r\naws_session_token = t"
    );
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!("[a]\r\naws_access_key_id = {NEW}\r\naws_secret_access_key = {NEW_SECRET}")
    );
    let creds = format!("[a]\naws_access_key_id = {OLD}");
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!("[a]\naws_access_key_id = {NEW}\naws_secret_access_key = {NEW_SECRET}")
    );
}

/// Found by the fuzzer: a last line ending in a lone CR becomes a CRLF line when a line is
/// added after it; the model must still equal a fresh parse.
#[test]
fn a_last_line_ending_in_a_lone_cr_becomes_a_crlf_line_when_a_line_follows() {
    let creds = format!("[a]\naws_access_key_id = {OLD}\nregion = x\r");
    let (c, _) = edited(&creds, "", &[replace()]);
    assert_eq!(
        c,
        format!(
            "[a]\naws_access_key_id = {NEW}\nregion = x\r\naws_secret_access_key = {NEW_SECRET}"
        )
    );
    let f = files(&creds, "");
    assert!(
        f.warnings()
            .iter()
            .any(|w| w.line == 3 && w.message.contains("carriage return"))
    );
    let mut doc = Document::parse("[a]\r");
    doc.append_section("b", &[("k", "v")]);
    assert_eq!(doc.render(), "[a]\r\n\n[b]\nk = v\n");
    assert!(doc.issues().is_empty());
}

#[test]
fn replace_edits_a_profile_default_section_in_the_config_file() {
    let config = format!(
        "[profile default]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n"
    );
    let (_, c) = edited("", &config, &[replace()]);
    assert_eq!(c, config.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET));
}

#[test]
fn replace_also_fixes_a_split_key_in_the_other_file() {
    let creds = format!("[dev]\naws_secret_access_key = {OLD_SECRET}\naws_session_token = t\n");
    let config = format!("[profile dev]\naws_access_key_id = {OLD}\nregion = x\n");
    let (c, g) = edited(&creds, &config, &[replace()]);
    assert_eq!(c, format!("[dev]\naws_secret_access_key = {NEW_SECRET}\n"));
    assert_eq!(
        g,
        format!(
            "[profile dev]\naws_access_key_id = {NEW}\nregion = x\naws_secret_access_key = {NEW_SECRET}\n"
        )
    );
}

#[test]
fn replace_leaves_sub_property_blocks_and_continuations_alone() {
    let config = format!(
        "[profile a]\ns3 =\n  max_concurrent_requests = 20\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\nnotes = one\n  two\n"
    );
    let (_, c) = edited("", &config, &[replace()]);
    assert_eq!(c, config.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET));
    let f = files("", &c);
    assert_eq!(
        f.profile("a").unwrap().get("s3"),
        Some("\nmax_concurrent_requests = 20")
    );
}

#[test]
fn set_profile_creates_a_section_or_fills_an_existing_one() {
    let edit = |p: &str| KeyEdit::SetProfile {
        profile: p.to_string(),
        key_id: NEW.to_string(),
        secret: Secret::new(NEW_SECRET),
    };
    let (c, g) = edited("[a]\nregion = x", "[profile b]\nregion = y\n", &[edit("b")]);
    assert_eq!(
        c,
        format!(
            "[a]\nregion = x\n\n[b]\naws_access_key_id = {NEW}\naws_secret_access_key = {NEW_SECRET}\n"
        )
    );
    assert_eq!(g, "[profile b]\nregion = y\n");
    let (c, _) = edited(
        "[a]\nregion=x\naws_session_token=t\n[z]\n",
        "",
        &[edit("a")],
    );
    assert_eq!(
        c,
        format!(
            "[a]\nregion=x\naws_access_key_id={NEW}\naws_secret_access_key={NEW_SECRET}\n[z]\n"
        )
    );
    let config =
        format!("[profile c]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n");
    let (c, g) = edited("", &config, &[edit("c")]);
    assert_eq!(c, "");
    assert_eq!(g, config.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET));
}

#[test]
fn plan_edits_changes_nothing_and_prints_no_values() {
    let creds = format!(
        "[a]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\naws_security_token = t\n"
    );
    let d = Dir::new(Some(&creds), None);
    let f = d.load();
    let changes = f.plan_edits(&[replace()]).unwrap();
    let text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(text.len(), 3);
    assert!(
        text[0].ends_with("line 2, profile a: replace aws_access_key_id"),
        "{}",
        text[0]
    );
    assert!(
        text[2].ends_with("line 4, profile a: remove aws_security_token"),
        "{}",
        text[2]
    );
    for t in &text {
        assert!(
            !t.contains(NEW_SECRET) && !t.contains(OLD_SECRET) && !t.contains(NEW),
            "{t}"
        );
    }
    assert!(!format!("{changes:?} {:?}", replace()).contains(NEW_SECRET));
    assert_eq!(d.read(&d.paths.credentials), creds);
    assert_eq!(d.names(), ["credentials"]);
}

#[test]
fn duplicates_are_refused_with_file_and_lines() {
    let dup_section = format!("[a]\naws_access_key_id = {OLD}\n[b]\n[a]\nregion = x\n");
    let f = files(&dup_section, "");
    let err = f.plan_edits(&[replace()]).unwrap_err().to_string();
    assert!(
        err.contains("profile `a`")
            && err.contains("lines 1, 4")
            && err.contains("/nonexistent/credentials")
            && err.contains("merge them by hand"),
        "{err}"
    );
    assert!(f.check_editable("b").is_ok());

    let dup_key = format!(
        "[a]\naws_access_key_id = {OLD}\naws_secret_access_key = x\nAWS_SECRET_ACCESS_KEY = y\n"
    );
    let f = files(&dup_key, "");
    let err = f.check_editable("a").unwrap_err().to_string();
    assert!(
        err.contains("`aws_secret_access_key` appears 2 times") && err.contains("lines 3, 4"),
        "{err}"
    );
    assert!(
        f.warnings()
            .iter()
            .any(|w| w.line == 3 && w.message.contains("AWS CLI refuses"))
    );

    let spelled_twice = "[profile a]\n[profile\ta]\n";
    let f = files("", spelled_twice);
    assert!(f.check_editable("a").is_err());
    assert!(f.check_editable("missing").is_ok());
}

#[test]
fn an_unknown_key_and_bad_values_are_refused() {
    let d = Dir::new(Some("[a]\naws_access_key_id = AKIAX\n"), None);
    let mut f = d.load();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    assert!(matches!(err, ProfileError::KeyNotFound { .. }), "{err}");
    assert!(err.to_string().contains("AKIA…OLD1"), "{err}");
    let bad = KeyEdit::Replace {
        old_key_id: "AKIAX".into(),
        new_key_id: NEW.into(),
        new_secret: Secret::new("has space"),
    };
    let err = f
        .apply_edits(&[bad], &SaveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("aws_secret_access_key") && !err.contains("has space"),
        "{err}"
    );
    assert_eq!(
        d.read(&d.paths.credentials),
        "[a]\naws_access_key_id = AKIAX\n"
    );
}
