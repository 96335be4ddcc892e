//! Profile-file tests: document.

use super::*;

const RICH: &str = "\u{feff}# leading comment\r\n\
[default]\r\n\
aws_access_key_id = AKIAOLDOLDOLDOLDOLD1 # key\n\
AWS_Secret_Access_Key\t=\tsecret ; semi\r\n\
; comment\n\
region=us-east-1#not-a-comment\n\
s3 =\n\
  max_concurrent_requests = 20\n\
\t\n\
  multipart_threshold = 64MB\n\
[profile   dev ] # trailing\n\
multi = first\n\
  second # kept\n\
[services local]\n\
iam =\n\
  endpoint_url = http://127.0.0.1:5000\n\
\n\
[default]\n\
unknown_key = x\r\n\
last = no newline";

#[test]
fn render_gives_back_every_byte_of_a_rich_file() {
    assert_eq!(Document::parse(RICH).render(), RICH);
    for text in [
        "", "\n", "\r\n", "\r", "a", "[x", "=", "\n\n\r\n", " \t ", "\u{feff}",
    ] {
        assert_eq!(Document::parse(text).render(), text, "{text:?}");
    }
}

#[test]
fn lines_are_classified_by_the_sdk_rules() {
    let text = "# c\n; c\n\n[profile a] ; x\nk = v ; c\nK2=v#c\ns3 =\n  sub = 1\nm = x\n  more\n  # indented\n";
    let doc = Document::parse(text);
    let kinds: Vec<String> = doc
        .lines()
        .iter()
        .map(|l| format!("{:?}", l.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            "comment",
            "comment",
            "blank",
            "Section(\"profile a\")",
            "Property(\"k\")",
            "Property(\"k2\")",
            "Property(\"s3\")",
            "continuation",
            "Property(\"m\")",
            "continuation",
            "continuation",
        ]
    );
    assert_eq!(doc.full_value(4).unwrap(), "v");
    assert_eq!(doc.full_value(5).unwrap(), "v#c");
    assert_eq!(doc.full_value(6).unwrap(), "\nsub = 1");
    assert_eq!(doc.full_value(8).unwrap(), "x\nmore\n# indented");
    assert_eq!(doc.lines()[4].inline_comment(), Some("; c"));
    assert!(doc.issues().is_empty());
}

#[test]
fn line_endings_are_kept_per_line() {
    let doc = Document::parse("[a]\r\nk = v\nx = y");
    let endings: Vec<LineEnding> = doc.lines().iter().map(|l| l.ending()).collect();
    assert_eq!(
        endings,
        [LineEnding::CrLf, LineEnding::Lf, LineEnding::None]
    );
    // A lone CR is text, as in the SDK (`str::lines`).
    let doc = Document::parse("[a]\r\rk = v\r");
    assert_eq!(doc.lines()[0].text(), "[a]\r\rk = v\r");
}

#[test]
fn malformed_lines_are_kept_and_reported_with_line_numbers() {
    let text = "k = v\n[ok]\n  cont\n[bad\nnoequals\n= v\ns3 =\n  broken\n";
    let doc = Document::parse(text);
    assert_eq!(doc.render(), text);
    let issues: Vec<(usize, String)> = doc
        .issues()
        .into_iter()
        .map(|i| (i.line, i.message))
        .collect();
    assert_eq!(
        issues,
        [
            (1, "Expected a profile definition".to_string()),
            (
                3,
                "Expected a property definition, found continuation".to_string()
            ),
            (4, "Profile definition must end with ']'".to_string()),
            (5, "Expected an '=' sign defining a property".to_string()),
            (6, "Property did not have a name".to_string()),
            (
                8,
                "Expected an '=' sign defining a sub-property".to_string()
            ),
        ]
    );
    let bom = Document::parse("\u{feff}[default]\n");
    assert!(bom.issues()[0].message.contains("byte order mark"));
}

#[test]
fn set_value_changes_only_the_value_text() {
    let mut doc = Document::parse("[a]\r\nAWS_Access_Key_ID\t=  old  \r\nx=1");
    assert!(!doc.set_value(1, "NEW"));
    assert_eq!(doc.render(), "[a]\r\nAWS_Access_Key_ID\t=  NEW  \r\nx=1");
    let mut doc = Document::parse("[a]\nk=\n");
    doc.set_value(1, "v");
    assert_eq!(doc.render(), "[a]\nk=v\n");
    let mut doc = Document::parse("[a]\nk =\n");
    doc.set_value(1, "v");
    assert_eq!(doc.render(), "[a]\nk = v\n");
}

#[test]
fn set_value_moves_an_inline_comment_above_and_drops_continuations() {
    let mut doc = Document::parse("[a]\r\nk = old   # the key\r\n  more\r\nz = 1\r\n");
    assert!(doc.set_value(1, "NEW"));
    assert_eq!(doc.render(), "[a]\r\n# the key\r\nk = NEW\r\nz = 1\r\n");
}

#[test]
fn remove_property_removes_its_continuation_lines_and_keeps_the_final_newline_state() {
    let mut doc = Document::parse("[a]\nt = x\n  y\n# c\n  z\nk = v\n");
    doc.remove_property(1);
    assert_eq!(doc.render(), "[a]\n# c\nk = v\n");
    let mut doc = Document::parse("[a]\nk = v\nt = x");
    doc.remove_property(2);
    assert_eq!(doc.render(), "[a]\nk = v");
    let mut doc = Document::parse("[a]\nk = v\n\nt = x");
    doc.remove_property(3);
    assert_eq!(doc.render(), "[a]\nk = v\n\n");
    assert_eq!(doc.lines().len(), 3);
}

#[test]
fn added_lines_follow_their_neighbours() {
    let mut doc = Document::parse("[a]\r\nkey=v\r\n[b]\r\n");
    doc.insert_property(1, Some(1), "n", "w");
    assert_eq!(doc.render(), "[a]\r\nkey=v\r\nn=w\r\n[b]\r\n");
    let mut doc = Document::parse("[a]\nkey\t=\tv");
    doc.insert_property(1, Some(1), "n", "w");
    assert_eq!(doc.render(), "[a]\nkey\t=\tv\nn\t=\tw");
    let mut doc = Document::parse("# only a comment");
    doc.append_section("dev", &[("k", "v")]);
    assert_eq!(doc.render(), "# only a comment\n\n[dev]\nk = v\n");
    let mut doc = Document::parse("[a]\r\nk = v\r\n");
    doc.append_section("dev", &[("k", "v")]);
    assert_eq!(doc.render(), "[a]\r\nk = v\r\n\r\n[dev]\r\nk = v\r\n");
}

#[test]
fn debug_output_shows_no_values() {
    let doc = Document::parse("[a]\naws_secret_access_key = SUPERSECRET\n");
    let text = format!("{doc:?}");
    assert!(!text.contains("SUPERSECRET"), "{text}");
    let f = files(
        "[a]\naws_access_key_id = AKIAX\naws_secret_access_key = SUPERSECRET\n",
        "",
    );
    let p = f.profile("a").unwrap();
    assert!(!format!("{p:?} {f:?}").contains("SUPERSECRET"));
}
