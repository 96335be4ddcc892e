//! Profile-file tests: properties.

use super::*;

use proptest::prelude::*;

/// Lines that mean something to the parser, and hostile ones.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[default]".to_string()),
        Just("[profile dev]".to_string()),
        Just("[profile\tdefault] # c".to_string()),
        Just("[dev]".to_string()),
        Just("[services s]".to_string()),
        Just("[".to_string()),
        Just("=".to_string()),
        Just("\r".to_string()),
        Just(format!("aws_access_key_id = {OLD}")),
        Just(format!("AWS_ACCESS_KEY_ID={OLD} # c")),
        Just(format!("aws_secret_access_key\t=\t{OLD_SECRET}")),
        Just("aws_session_token = tok ; c".to_string()),
        Just("region = us-east-1".to_string()),
        Just("s3 =".to_string()),
        Just("  sub = value".to_string()),
        Just("  continued".to_string()),
        Just("# comment".to_string()),
        Just("; comment".to_string()),
        Just(String::new()),
        " {0,300}",
        "[ -~\t]{0,40}",
        any::<String>(),
    ]
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("")]
}

fn file() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec((line(), eol()), 0..40)).prop_map(|(bom, lines)| {
        let mut s = if bom {
            "\u{feff}".to_string()
        } else {
            String::new()
        };
        for (l, e) in lines {
            s.push_str(&l);
            s.push_str(e);
        }
        s
    })
}

/// Lines without hostile ones, in any order: most of these files do not parse (a
/// property before any section) or cannot be edited (a duplicated section or key).
fn loose_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[default]".to_string()),
        Just("[dev]".to_string()),
        Just("[other]".to_string()),
        Just(format!("aws_access_key_id = {OLD}")),
        Just(format!("Aws_Access_Key_Id={OLD} # c")),
        Just("aws_access_key_id = AKIAOTHER".to_string()),
        Just(format!("aws_secret_access_key\t=\t{OLD_SECRET}")),
        Just("aws_session_token = tok ; c".to_string()),
        Just("region = us-east-1".to_string()),
        Just("# comment".to_string()),
        Just(String::new()),
    ];
    (
        prop::collection::vec((line, prop_oneof![Just("\n"), Just("\r\n")]), 1..30),
        any::<bool>(),
    )
        .prop_map(|(lines, final_newline)| {
            let mut s = String::new();
            for (l, e) in lines {
                s.push_str(&l);
                s.push_str(e);
            }
            if !final_newline {
                s.truncate(s.trim_end_matches(['\r', '\n']).len());
            }
            s
        })
}

/// The body of one section: each property at most once, in any order, with comments and
/// blank lines among them.
fn section_body() -> impl Strategy<Value = Vec<String>> {
    let key = prop_oneof![
        3 => Just(Some(format!("aws_access_key_id = {OLD}"))),
        2 => Just(Some(format!("Aws_Access_Key_Id={OLD} # c"))),
        1 => Just(Some("aws_access_key_id = AKIAOTHER".to_string())),
        1 => Just(None),
    ];
    let maybe = |line: String| prop_oneof![Just(Some(line)), Just(None)];
    let extra = prop_oneof![Just("# comment".to_string()), Just(String::new())];
    (
        key,
        maybe(format!("aws_secret_access_key\t=\t{OLD_SECRET}")),
        maybe("aws_session_token = tok ; c".to_string()),
        maybe("region = us-east-1".to_string()),
        prop::collection::vec(extra, 0..3),
    )
        .prop_map(|(key, secret, token, region, extra)| {
            let mut lines: Vec<String> =
                [key, secret, token, region].into_iter().flatten().collect();
            lines.extend(extra);
            lines
        })
        .prop_shuffle()
}

/// Files that parse and can be edited: distinct sections in any order, each property
/// at most once per section, LF or CRLF per line, with or without a final newline.
fn editable_file() -> impl Strategy<Value = String> {
    (
        prop::sample::subsequence(vec!["[default]", "[dev]", "[other]"], 1..=3).prop_shuffle(),
        prop::collection::vec(section_body(), 3),
        prop::collection::vec(any::<bool>(), 64),
        any::<bool>(),
        prop::collection::vec(prop_oneof![Just("# top"), Just("")], 0..2),
    )
        .prop_map(|(headers, bodies, crlf, final_newline, preamble)| {
            let mut lines: Vec<String> = preamble.into_iter().map(str::to_string).collect();
            for (header, body) in headers.into_iter().zip(bodies) {
                lines.push(header.to_string());
                lines.extend(body);
            }
            let mut s = String::new();
            for (i, l) in lines.iter().enumerate() {
                s.push_str(l);
                s.push_str(if crlf[i % crlf.len()] { "\r\n" } else { "\n" });
            }
            if !final_newline {
                s.truncate(s.trim_end_matches(['\r', '\n']).len());
            }
            s
        })
}

/// Mostly editable files, and some loose ones for the paths that refuse.
fn valid_file() -> impl Strategy<Value = String> {
    prop_oneof![3 => editable_file(), 1 => loose_file()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_then_render_is_the_identity(text in file()) {
        prop_assert_eq!(Document::parse(&text).render(), text);
    }

    #[test]
    fn parse_then_render_is_the_identity_on_any_string(text in any::<String>()) {
        prop_assert_eq!(Document::parse(&text).render(), text);
    }
}

/// Why a generated file did not run the edit, or that it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ran {
    Edited,
    Unparsed,
    NoHolder,
    Uneditable,
}

/// The edit on one generated file: every holder gets the new key, every other line is
/// kept. Says whether the edit really ran.
fn replace_property(text: &str) -> Result<Ran, TestCaseError> {
    let Ok(f) = ProfileFiles::from_texts(&paths(), text, "") else {
        return Ok(Ran::Unparsed);
    };
    let holders: Vec<String> = f
        .profiles_with_key(OLD)
        .into_iter()
        .map(|h| h.profile)
        .collect();
    if holders.is_empty() {
        return Ok(Ran::NoHolder);
    }
    if holders.iter().any(|h| f.check_editable(h).is_err()) {
        return Ok(Ran::Uneditable);
    }
    let d = Dir::new(Some(text), None);
    let mut loaded = d.load();
    let report = loaded
        .apply_edits(&[replace()], &SaveOptions { backup: false })
        .unwrap();
    let after = fs::read_to_string(&d.paths.credentials).unwrap();
    let g = ProfileFiles::from_texts(&paths(), &after, "").unwrap();
    for h in &holders {
        let p = g.profile(h).unwrap();
        prop_assert_eq!(p.get("aws_access_key_id"), Some(NEW));
        prop_assert_eq!(p.get("aws_secret_access_key"), Some(NEW_SECRET));
        prop_assert_eq!(p.get("aws_session_token"), None);
    }
    prop_assert!(g.profiles_with_key(OLD).is_empty());
    // Every line not named by a change is still there, byte for byte, in order.
    let changes = &report.files[0].changes;
    let touched: Vec<usize> = changes
        .iter()
        .filter(|c| c.change != ChangeKind::Add)
        .map(|c| c.line)
        .collect();
    let before = Document::parse(text);
    let kept: Vec<String> = before
        .lines()
        .iter()
        .enumerate()
        .filter(|(i, _)| !touched.contains(&(i + 1)))
        .map(|(_, l)| l.text().to_string())
        .collect();
    let after_doc = Document::parse(&after);
    let mut rest = after_doc.lines().iter().map(|l| l.text());
    for line in &kept {
        prop_assert!(rest.any(|l| l == line), "line {:?} lost", line);
    }
    // The "no final newline" state is kept, unless the removed last line followed an
    // empty line, which then ends the file.
    let ends_blank = after_doc
        .lines()
        .last()
        .is_some_and(|l| l.text().is_empty());
    prop_assert!(after.ends_with('\n') == text.ends_with('\n') || ends_blank);
    Ok(Ran::Edited)
}

/// The property runs on `CASES` generated files; those it cannot edit (a duplicated
/// section or key, no holder) are counted, not silently passed, and at least
/// `MIN_EDITED` must really run the edit.
#[test]
fn replace_reaches_every_holder_and_keeps_every_other_line() {
    const CASES: u32 = 300;
    const MIN_EDITED: usize = 150;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES));
    let tally = std::cell::RefCell::new(std::collections::BTreeMap::<Ran, usize>::new());
    let result = runner.run(&valid_file(), |text| {
        let ran = replace_property(&text)?;
        *tally.borrow_mut().entry(ran).or_default() += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let tally = tally.into_inner();
    let edited = tally.get(&Ran::Edited).copied().unwrap_or(0);
    eprintln!("replace property: {tally:?} of {CASES} cases");
    assert!(
        edited >= MIN_EDITED,
        "only {edited} of {CASES} generated files ran the edit ({tally:?}): fix the generator"
    );
}

#[test]
fn odd_single_lines_round_trip() {
    for t in [
        "[", "]", "[]", "[ ]", "=", " =", "\t", "\u{feff}", "a=b=c", "[a]#", "[a];x]",
    ] {
        let text = format!("[x]\n{t}\n");
        assert_eq!(Document::parse(&text).render(), text);
    }
}
