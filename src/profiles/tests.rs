//! Unit tests of the profile files module: the document model, the profile view, edits,
//! saving, locking, the fixture corpus and the cross-SDK parser conformance cases.

use super::document::{Document, LineEnding};
use super::*;
use crate::secret::Secret;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const OLD: &str = "AKIAOLDOLDOLDOLDOLD1";
const NEW: &str = "AKIANEWNEWNEWNEWNEW1";
const OLD_SECRET: &str = "oldSecret/oldSecret+oldSecret/oldSecret1";
const NEW_SECRET: &str = "newSecret/newSecret+newSecret/newSecret1";

fn replace() -> KeyEdit {
    KeyEdit::Replace {
        old_key_id: OLD.to_string(),
        new_key_id: NEW.to_string(),
        new_secret: Secret::new(NEW_SECRET),
    }
}

fn paths() -> FilePaths {
    FilePaths {
        credentials: PathBuf::from("/nonexistent/credentials"),
        config: PathBuf::from("/nonexistent/config"),
    }
}

fn files(credentials: &str, config: &str) -> ProfileFiles {
    ProfileFiles::from_texts(&paths(), credentials, config).expect("parses")
}

/// A temporary directory with the two files written in it.
struct Dir {
    dir: tempfile::TempDir,
    paths: FilePaths,
}

impl Dir {
    fn new(credentials: Option<&str>, config: Option<&str>) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let paths = FilePaths {
            credentials: dir.path().join("credentials"),
            config: dir.path().join("config"),
        };
        if let Some(c) = credentials {
            fs::write(&paths.credentials, c).unwrap();
        }
        if let Some(c) = config {
            fs::write(&paths.config, c).unwrap();
        }
        Dir { dir, paths }
    }
    fn load(&self) -> ProfileFiles {
        ProfileFiles::load(&self.paths).unwrap()
    }
    fn read(&self, p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Apply `edits` on texts in memory (through a real save in a temp dir) and return both
/// new texts.
fn edited(credentials: &str, config: &str, edits: &[KeyEdit]) -> (String, String) {
    let d = Dir::new(Some(credentials), Some(config));
    let mut f = d.load();
    f.apply_edits(edits, &SaveOptions { backup: false })
        .unwrap();
    (d.read(&d.paths.credentials), d.read(&d.paths.config))
}

// ---------------------------------------------------------------- document

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

// ---------------------------------------------------------------- view

#[test]
fn profile_default_replaces_default_in_the_config_file() {
    let f = files(
        "",
        "[default]\nregion = us-east-1\noutput = json\n[profile default]\nregion = eu-west-1\n",
    );
    let p = f.profile("default").unwrap();
    assert_eq!(p.get("region"), Some("eu-west-1"));
    assert_eq!(p.get("output"), None);
    assert_eq!(
        p.origin("region"),
        Some(Origin {
            file: FileKind::Config,
            line: 5
        })
    );
    let w = f.warnings();
    assert!(
        w.iter()
            .any(|d| d.line == 1 && d.message.contains("[profile default] replaces [default]")),
        "{w:?}"
    );
    let err = f.check_editable("default").unwrap_err().to_string();
    assert!(err.contains("lines 1, 4"), "{err}");
}

#[test]
fn credentials_win_over_config_key_by_key_and_keys_are_case_insensitive() {
    let f = files(
        "[dev]\nAWS_ACCESS_KEY_ID = AKIACREDS\n",
        "[profile dev]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = s\nRegion = us-west-2\n",
    );
    let p = f.profile("dev").unwrap();
    assert_eq!(p.get("aws_access_key_id"), Some("AKIACREDS"));
    assert_eq!(p.get("AWS_Secret_Access_Key"), Some("s"));
    assert_eq!(p.get("region"), Some("us-west-2"));
    assert_eq!(
        p.origin("aws_access_key_id"),
        Some(Origin {
            file: FileKind::Credentials,
            line: 2
        })
    );
    assert_eq!(p.key_files(), [FileKind::Credentials, FileKind::Config]);
    let w = f.warnings();
    assert!(
        w.iter().any(|d| d.file == FileKind::Config
            && d.line == 2
            && d.message.contains("also set in the credentials file")),
        "{w:?}"
    );
    assert!(
        w.iter().any(|d| d.message.contains("different files")),
        "{w:?}"
    );
}

#[test]
fn profile_names_put_default_first_then_file_order() {
    let f = files(
        "[b]\n[a]\n[default]\n",
        "[profile c]\n[profile a]\n[sso-session s]\n[services x]\n[ignored]\n",
    );
    assert_eq!(f.profile_names(), ["default", "b", "a", "c"]);
    assert!(f.profile("ignored").is_none());
    assert!(f.profile("s").is_none());
}

#[test]
fn prefixed_sections_in_the_credentials_file_are_ignored_with_a_warning() {
    let f = files(&format!("[profile dev]\naws_access_key_id = {OLD}\n"), "");
    assert!(f.profile("dev").is_none());
    assert!(f.profiles_with_key(OLD).is_empty());
    let w = f.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message.contains("in the credentials file write [dev]"),
        "{}",
        w[0]
    );
    assert_eq!(w[0].line, 1);
}

#[test]
fn key_holders_are_found_in_both_files() {
    let f = files(
        &format!("[a]\naws_access_key_id = {OLD}\n[b]\naws_access_key_id = AKIAOTHER\n"),
        &format!("[profile c]\naws_access_key_id={OLD}\n[profile a]\naws_access_key_id = {OLD}\n"),
    );
    let holders = f.profiles_with_key(OLD);
    assert_eq!(
        holders,
        [
            KeyHolder {
                profile: "a".into(),
                locations: vec![
                    Origin {
                        file: FileKind::Credentials,
                        line: 2
                    },
                    Origin {
                        file: FileKind::Config,
                        line: 4
                    }
                ]
            },
            KeyHolder {
                profile: "c".into(),
                locations: vec![Origin {
                    file: FileKind::Config,
                    line: 2
                }]
            },
        ]
    );
}

#[test]
fn services_endpoint_reads_the_sub_property() {
    let f = files(
        "",
        "[services local]\niam =\n  endpoint_url = http://127.0.0.1:5000\nsts =\n  Endpoint_URL = http://sts\n",
    );
    assert_eq!(
        f.services_endpoint("local", "iam").as_deref(),
        Some("http://127.0.0.1:5000")
    );
    assert_eq!(
        f.services_endpoint("local", "STS").as_deref(),
        Some("http://sts")
    );
    assert_eq!(f.services_endpoint("local", "s3"), None);
    assert_eq!(f.services_endpoint("other", "iam"), None);
}

#[test]
fn kinds_follow_the_sdk_precedence() {
    let cases: &[(&str, &str, bool)] = &[
        (
            "aws_access_key_id = AKIA1\naws_secret_access_key = s",
            "static-key",
            true,
        ),
        (
            "aws_access_key_id = AKIA1\naws_secret_access_key = s\naws_security_token = t",
            "static-key-with-session-token",
            true,
        ),
        (
            "aws_access_key_id = ASIA1\naws_secret_access_key = s\naws_session_token = t",
            "session-credentials",
            false,
        ),
        (
            "aws_access_key_id = ASIA1\naws_secret_access_key = s",
            "incomplete",
            false,
        ),
        ("aws_access_key_id = AKIA1", "incomplete", false),
        ("aws_secret_access_key = s", "incomplete", false),
        (
            "role_arn = arn:aws:iam::1:role/r\nsource_profile = base\naws_access_key_id = AKIA1\naws_secret_access_key = s",
            "role",
            false,
        ),
        (
            "role_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /t",
            "web-identity",
            false,
        ),
        ("web_identity_token_file = /t", "incomplete", false),
        (
            "sso_session = corp\nsso_account_id = 1\nsso_role_name = r",
            "sso",
            false,
        ),
        (
            "sso_start_url = https://x\naws_access_key_id = AKIA1\naws_secret_access_key = s",
            "sso",
            false,
        ),
        (
            "login_session = arn:aws:iam::1:user/u",
            "login-session",
            false,
        ),
        (
            "credential_process = /bin/creds\naws_access_key_id = AKIA1\naws_secret_access_key = s",
            "credential-process",
            false,
        ),
        (
            "credential_source = Ec2InstanceMetadata",
            "incomplete",
            false,
        ),
        ("region = us-east-1", "none", false),
    ];
    for (body, label, rotatable) in cases {
        let f = files(&format!("[p]\n{body}\n"), "");
        let kind = f.profile("p").unwrap().kind();
        assert_eq!(kind.label(), *label, "{body}");
        assert_eq!(kind.rotatable(), *rotatable, "{body}");
        assert_eq!(kind.not_rotatable_reason().is_none(), *rotatable, "{body}");
    }
    let f = files(
        "",
        "[profile p]\nrole_arn = arn:r\ncredential_source = Environment\n",
    );
    assert_eq!(
        f.profile("p").unwrap().kind(),
        ProfileKind::Role {
            role_arn: "arn:r".into(),
            source_profile: None,
            credential_source: Some("Environment".into())
        }
    );
    let sso = ProfileKind::Sso { session: None }
        .not_rotatable_reason()
        .unwrap();
    assert_eq!(
        sso,
        "SSO profile: credentials come from IAM Identity Center; nothing to rotate"
    );
}

// ---------------------------------------------------------------- load errors

#[test]
fn load_treats_missing_files_as_empty_and_names_bad_ones() {
    let d = Dir::new(None, None);
    let f = d.load();
    assert!(f.profile_names().is_empty());

    fs::create_dir(&d.paths.config).unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::IsDirectory {
                kind: FileKind::Config,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("config"));
    fs::remove_dir(&d.paths.config).unwrap();

    fs::write(&d.paths.credentials, b"[a]\nk = v\nx = \xff\xfe\n").unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err().to_string();
    assert!(err.contains("not UTF-8") && err.contains("line 3"), "{err}");
    assert!(
        err.contains(&d.paths.credentials.display().to_string()),
        "{err}"
    );

    fs::write(&d.paths.credentials, "[a]\nk = v\nnot a property\n").unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err().to_string();
    assert!(err.contains("line 3: Expected an '=' sign"), "{err}");

    fs::write(
        &d.paths.credentials,
        "\u{feff}[default]\naws_access_key_id = AKIA1\n",
    )
    .unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && err.contains("byte order mark"),
        "{err}"
    );

    let under_file = FilePaths {
        credentials: d.paths.credentials.join("credentials"),
        config: d.paths.config.clone(),
    };
    let err = ProfileFiles::load(&under_file).unwrap_err();
    assert!(matches!(err, ProfileError::Read { .. }), "{err}");
}

// ---------------------------------------------------------------- edits

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

// ---------------------------------------------------------------- saving

fn key_file() -> String {
    format!("[default]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

#[cfg(unix)]
#[test]
fn a_symlinked_credentials_file_stays_a_symlink_and_its_target_is_edited() {
    let d = Dir::new(None, None);
    let real_dir = d.dir.path().join("dotfiles");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("aws-credentials");
    fs::write(&real, key_file()).unwrap();
    std::os::unix::fs::symlink("dotfiles/aws-credentials", &d.paths.credentials).unwrap();
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    assert!(
        fs::symlink_metadata(&d.paths.credentials)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(report.files[0].path, real_dir.join("aws-credentials"));
    assert_eq!(
        d.read(&real),
        key_file().replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
    assert_eq!(
        report.files[0].backup.as_deref(),
        Some(real_dir.join("aws-credentials.iam-keys.bak").as_path())
    );
}

#[cfg(unix)]
#[test]
fn a_loose_mode_is_tightened_to_0600_and_reported_and_the_backup_is_0600() {
    let d = Dir::new(Some(&key_file()), Some("[profile x]\nregion = y\n"));
    set_mode(&d.paths.credentials, 0o644);
    set_mode(&d.paths.config, 0o644);
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    let saved = &report.files[0];
    assert_eq!(saved.mode_tightened, Some((0o644, 0o600)));
    assert_eq!(mode(&d.paths.credentials), 0o600);
    let backup = saved.backup.clone().unwrap();
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(d.read(&backup), key_file());
    assert_eq!(
        mode(&d.paths.config),
        0o644,
        "the config file was not touched"
    );

    // A second save replaces the backup; a stricter mode is kept.
    set_mode(&d.paths.credentials, 0o400);
    let back = KeyEdit::Replace {
        old_key_id: NEW.into(),
        new_key_id: OLD.into(),
        new_secret: Secret::new(OLD_SECRET),
    };
    let report = f.apply_edits(&[back], &SaveOptions::default()).unwrap();
    assert_eq!(report.files[0].mode_tightened, None);
    assert_eq!(mode(&d.paths.credentials), 0o400);
    assert_eq!(
        d.read(&backup),
        key_file().replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
}

#[cfg(unix)]
#[test]
fn no_backup_when_turned_off_and_a_new_file_is_0600_in_a_0700_directory() {
    let d = Dir::new(None, None);
    let paths = FilePaths {
        credentials: d.dir.path().join("new/.aws/credentials"),
        config: d.dir.path().join("new/.aws/config"),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    let edit = KeyEdit::SetProfile {
        profile: "dev".into(),
        key_id: NEW.into(),
        secret: Secret::new(NEW_SECRET),
    };
    let report = f
        .apply_edits(&[edit], &SaveOptions { backup: false })
        .unwrap();
    assert_eq!(report.files[0].backup, None);
    assert_eq!(mode(&paths.credentials), 0o600);
    assert_eq!(mode(&d.dir.path().join("new/.aws")), 0o700);
    assert_eq!(
        fs::read_to_string(&paths.credentials).unwrap(),
        format!("[dev]\naws_access_key_id = {NEW}\naws_secret_access_key = {NEW_SECRET}\n")
    );
    assert!(!paths.config.exists());
}

#[test]
fn a_concurrent_change_is_kept_and_the_edit_reapplied() {
    let d = Dir::new(Some(&key_file()), None);
    let mut f = d.load();
    // `aws configure set region ...` meanwhile.
    let theirs = format!(
        "{}region = eu-north-1\n[added]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n",
        key_file()
    );
    fs::write(&d.paths.credentials, &theirs).unwrap();
    let report = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    assert!(report.files[0].reapplied_on_newer_content);
    assert_eq!(
        d.read(&d.paths.credentials),
        theirs.replace(OLD, NEW).replace(OLD_SECRET, NEW_SECRET)
    );
    assert_eq!(d.read(report.files[0].backup.as_ref().unwrap()), theirs);
    assert_eq!(f.profiles_with_key(NEW).len(), 2);
}

#[test]
fn a_concurrent_change_that_removed_the_key_stops_and_writes_nothing() {
    let d = Dir::new(Some(&key_file()), None);
    let mut f = d.load();
    let theirs = "[default]\naws_access_key_id = AKIASOMEONEELSE\naws_secret_access_key = x\n";
    fs::write(&d.paths.credentials, theirs).unwrap();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    assert!(matches!(err, ProfileError::ChangedOnDisk { .. }), "{err}");
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(d.read(&d.paths.credentials), theirs);
    assert_eq!(d.names(), ["credentials"]);
}

#[test]
fn a_failed_write_leaves_the_file_intact_and_no_temporary_file() {
    let d = Dir::new(Some(&key_file()), None);
    let mut f = d.load();
    // The backup path is taken by a non-empty directory: the rename of the backup's
    // temporary file fails after it was written.
    let blocker = d.dir.path().join("credentials.iam-keys.bak");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), "").unwrap();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, ProfileError::Write { saved, .. } if saved.is_empty()),
        "{err}"
    );
    assert!(err.to_string().contains("it is unchanged"), "{err}");
    assert_eq!(d.read(&d.paths.credentials), key_file());
    assert_eq!(d.names(), ["credentials", "credentials.iam-keys.bak"]);
    // The in-memory state is unchanged too: the edit can be retried.
    assert_eq!(f.profiles_with_key(OLD).len(), 1);
}

#[test]
fn a_failure_on_the_config_file_says_the_credentials_file_was_saved() {
    let config =
        format!("[profile c]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n");
    let d = Dir::new(Some(&key_file()), Some(&config));
    let mut f = d.load();
    let blocker = d.dir.path().join("config.iam-keys.bak");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), "").unwrap();
    let err = f
        .apply_edits(&[replace()], &SaveOptions::default())
        .unwrap_err();
    match &err {
        ProfileError::Write { kind, saved, .. } => {
            assert_eq!(*kind, FileKind::Config);
            assert_eq!(saved, std::slice::from_ref(&d.paths.credentials));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("already saved"), "{err}");
    assert_eq!(d.read(&d.paths.config), config);
    assert!(d.read(&d.paths.credentials).contains(NEW));
    assert!(
        !d.names().iter().any(|n| n.contains("tmp")),
        "{:?}",
        d.names()
    );
}

#[test]
fn check_writable_passes_without_leaving_anything_and_fails_under_a_regular_file() {
    let d = Dir::new(Some(&key_file()), None);
    d.load().check_writable().unwrap();
    assert_eq!(d.names(), ["credentials"]);

    let blocked = FilePaths {
        credentials: d.paths.credentials.join("sub/credentials"),
        config: d.paths.config.clone(),
    };
    let f = ProfileFiles::from_texts(&blocked, "", "").unwrap();
    let err = f.check_writable().unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::NotWritable {
                kind: FileKind::Credentials,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("sub/credentials"), "{err}");
}

#[test]
fn a_second_lock_holder_times_out_naming_the_first_and_the_lock_is_released_on_drop() {
    let d = Dir::new(None, None);
    let first = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut |_, _| {
        panic!("the first acquirer must not wait")
    })
    .unwrap();
    assert_eq!(first.path(), d.dir.path().join("credentials.iam-keys.lock"));
    let mut calls = Vec::new();
    let started = std::time::Instant::now();
    let err = RunLock::acquire(
        &d.paths.credentials,
        Duration::from_millis(350),
        &mut |p, pid| calls.push((p.to_path_buf(), pid)),
    )
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(350));
    // Windows byte-range locks are mandatory: another handle cannot read the holder's pid
    // (wine lets it), so there the waiter may not know it; everywhere else it must.
    let me = Some(std::process::id());
    let seen = if cfg!(windows) && calls.first().is_some_and(|c| c.1.is_none()) {
        None
    } else {
        me
    };
    assert_eq!(calls, [(first.path().to_path_buf(), seen)]);
    match &err {
        ProfileError::LockTimeout { holder, .. } => assert_eq!(*holder, seen),
        other => panic!("unexpected {other}"),
    }
    if seen.is_some() {
        assert!(
            err.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{err}"
        );
    }
    drop(first);
    let again = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut |_, _| {
        panic!("released")
    });
    assert!(again.is_ok());
}

// ---------------------------------------------------------------- file-system edges (issue 10)

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[cfg(unix)]
fn no_wait(_: &Path, _: Option<u32>) {
    panic!("must not wait")
}

/// A lock path that is not our regular file is refused, naming it, and nothing is written
/// through it.
// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_lock_path_that_is_not_our_regular_file_is_refused() {
    let d = Dir::new(None, None);
    let lock = d.dir.path().join("credentials.iam-keys.lock");
    let victim = d.dir.path().join("victim");
    fs::write(&victim, "keep me").unwrap();
    let refused = |what: &str| {
        let err = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut no_wait)
            .expect_err("refused");
        assert!(matches!(err, ProfileError::LockUnsafe { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains(&lock.display().to_string()), "{text}");
        assert!(text.contains(what), "{text}");
        assert!(text.contains("remove it"), "{text}");
    };
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    refused("a symbolic link");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
    // A dangling link is not followed either (O_CREAT would create its target).
    fs::remove_file(&lock).unwrap();
    let target = d.dir.path().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    refused("a symbolic link");
    assert!(!target.exists(), "nothing was created through the link");
    fs::remove_file(&lock).unwrap();

    mkfifo(&lock);
    let started = std::time::Instant::now();
    refused("a FIFO");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a FIFO never blocks"
    );
    fs::remove_file(&lock).unwrap();

    fs::create_dir(&lock).unwrap();
    refused("a directory");
    fs::remove_dir(&lock).unwrap();

    fs::write(&lock, "").unwrap();
    std::os::unix::fs::chown(&lock, Some(4242), None).unwrap();
    refused("owned by another user (uid 4242)");
    fs::remove_file(&lock).unwrap();

    fs::hard_link(&victim, &lock).unwrap();
    refused("2 names");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep me");
    fs::remove_file(&lock).unwrap();

    // A lock file left by a dead run (a regular file of ours, with its pid) is fine.
    fs::write(&lock, "999999").unwrap();
    let held = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut no_wait).unwrap();
    assert_eq!(
        fs::read_to_string(&lock).unwrap(),
        std::process::id().to_string()
    );
    drop(held);
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_profile_file_that_is_not_a_regular_file_is_refused_at_once_naming_it() {
    let d = Dir::new(Some(&key_file()), None);
    mkfifo(&d.paths.config);
    let started = std::time::Instant::now();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a FIFO never blocks"
    );
    assert!(
        matches!(
            err,
            ProfileError::NotRegular {
                kind: FileKind::Config,
                what: "a FIFO (named pipe)",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&d.paths.config.display().to_string()),
        "{err}"
    );
    fs::remove_file(&d.paths.config).unwrap();

    // A character device other than /dev/null.
    let zero = FilePaths {
        credentials: d.paths.credentials.clone(),
        config: PathBuf::from("/dev/zero"),
    };
    let err = ProfileFiles::load(&zero).unwrap_err();
    assert!(
        err.to_string().contains("/dev/zero is a character device"),
        "{err}"
    );

    // A symlink to a regular file is still fine.
    let real = d.dir.path().join("real-config");
    fs::write(&real, "[default]\nregion = eu-west-1\n").unwrap();
    std::os::unix::fs::symlink(&real, &d.paths.config).unwrap();
    let f = d.load();
    assert_eq!(
        f.profile("default").unwrap().get("region"),
        Some("eu-west-1")
    );
}

/// A regular file another process holds a lease on (a Samba oplock, say) is waited for
/// (the open is retried without blocking), not refused.
// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_file_under_a_lease_is_waited_for_and_then_read() {
    use std::os::fd::AsRawFd;
    let d = Dir::new(Some(&key_file()), None);
    // SAFETY: ignoring SIGIO (the lease break notice, fatal by default) has no preconditions.
    unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
    let holder = fs::File::open(&d.paths.credentials).unwrap();
    // SAFETY: a valid open file descriptor.
    let rc = unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
    assert_eq!(rc, 0, "F_SETLEASE: {}", std::io::Error::last_os_error());
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: a valid open file descriptor.
        unsafe { libc::fcntl(holder.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    });
    let started = std::time::Instant::now();
    let f = d.load();
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "it waited for the lease"
    );
    assert_eq!(f.profiles_with_key(OLD).len(), 1);
    release.join().unwrap();
}

#[test]
fn a_file_over_the_size_cap_is_refused_naming_it_and_the_cap() {
    let d = Dir::new(Some(&key_file()), None);
    let cap = super::open::MAX_FILE_SIZE;
    // Exactly at the cap is read (a sparse file of NUL bytes: a parse error, not a size one).
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&d.paths.credentials)
        .unwrap();
    file.set_len(cap).unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(matches!(err, ProfileError::Parse { .. }), "{err}");
    file.set_len(cap + 1).unwrap();
    let err = ProfileFiles::load(&d.paths).unwrap_err();
    assert!(
        matches!(err, ProfileError::TooLarge { size, .. } if size == cap + 1),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("16 MiB"), "{text}");
    assert!(
        text.contains(&d.paths.credentials.display().to_string()),
        "{text}"
    );
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn dev_null_reads_as_empty_and_is_never_written() {
    let d = Dir::new(Some(&key_file()), None);
    let null_before = fs::metadata("/dev/null").unwrap();
    let paths = FilePaths {
        credentials: PathBuf::from("/dev/null"),
        config: d.paths.config.clone(),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    assert!(f.profile_names().is_empty());
    // The preflight refuses a rotation that would have to write it, naming it.
    let err = f.check_writable().unwrap_err();
    assert!(
        matches!(
            err,
            ProfileError::NullDevice {
                kind: FileKind::Credentials,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("/dev/null"), "{err}");
    // And so does the save itself.
    let err = f
        .apply_edits(
            &[KeyEdit::SetProfile {
                profile: "new".into(),
                key_id: NEW.into(),
                secret: Secret::new(NEW_SECRET),
            }],
            &SaveOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ProfileError::NullDevice { .. }), "{err}");
    let null_after = fs::metadata("/dev/null").unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert!(null_after.file_type().is_char_device());
    assert_eq!(null_after.ino(), null_before.ino());
    assert!(!Path::new("/dev/null.iam-keys.bak").exists());

    // /dev/null as the config file while the credentials file is edited: fine.
    let paths = FilePaths {
        credentials: d.paths.credentials.clone(),
        config: PathBuf::from("/dev/null"),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    f.check_writable().unwrap();
    f.apply_edits(&[replace()], &SaveOptions { backup: false })
        .unwrap();
    assert!(d.read(&d.paths.credentials).contains(NEW));
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_hard_linked_file_is_rewritten_in_place_and_both_names_see_the_new_key() {
    use std::os::unix::fs::MetadataExt;
    for backup in [true, false] {
        let d = Dir::new(Some(&key_file()), None);
        set_mode(&d.paths.credentials, 0o644);
        let other = d.dir.path().join("other-name");
        fs::hard_link(&d.paths.credentials, &other).unwrap();
        let ino = fs::metadata(&other).unwrap().ino();
        let mut f = d.load();
        f.check_writable().unwrap();
        let report = f
            .apply_edits(&[replace()], &SaveOptions { backup })
            .unwrap();
        let saved = &report.files[0];
        assert_eq!(saved.rewritten_in_place, Some(InPlace::HardLinks(2)));
        assert_eq!(saved.mode_tightened, Some((0o644, 0o600)));
        let note = saved.in_place_note().unwrap();
        assert!(
            note.contains("rewritten in place") && note.contains("2 names"),
            "{note}"
        );
        for name in [&d.paths.credentials, &other] {
            let text = d.read(name);
            assert!(
                text.contains(NEW) && !text.contains(OLD),
                "{}",
                name.display()
            );
            assert_eq!(fs::metadata(name).unwrap().ino(), ino);
        }
        assert_eq!(mode(&other), 0o600);
        let bak = d.dir.path().join("credentials.iam-keys.bak");
        // The safety backup is always written first; --no-backup removes it afterwards.
        assert_eq!(bak.exists(), backup, "backup {backup}");
        assert_eq!(saved.backup.is_some(), backup);
        if backup {
            assert_eq!(d.read(&bak), key_file());
        }
        assert!(
            !d.names().iter().any(|n| n.starts_with(TEMP_PREFIX)),
            "{:?}",
            d.names()
        );
    }
}

/// A tmpfs mounted on a directory for the life of the guard (unit tests run as root in CI).
#[cfg(unix)]
struct Tmpfs(PathBuf);

#[cfg(unix)]
impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs is not permitted here ({}); this test needs root and mount(2)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

#[cfg(unix)]
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// An in-place rewrite that fails half way (the disk fills up after the backup) puts the
/// previous content back, so both names hold the old key and the error says "unchanged".
#[cfg(unix)]
#[test]
fn a_failed_in_place_rewrite_puts_the_previous_content_back() {
    let d = Dir::new(None, None);
    let disk = d.dir.path().join("disk");
    let _tmpfs = Tmpfs::mount(&disk, "64k");
    // One page (4000 bytes) now; the edit adds a profile and needs a second page.
    let mut old = key_file();
    old.push_str("# padding\n");
    while old.len() < 4000 {
        old.push_str("# padding padding padding padding padding padding padding\n");
    }
    old.truncate(3999);
    old.push('\n');
    let credentials = disk.join("credentials");
    fs::write(&credentials, &old).unwrap();
    let other_in_disk = disk.join("other-name");
    fs::hard_link(&credentials, &other_in_disk).unwrap();
    let paths = FilePaths {
        credentials: credentials.clone(),
        config: d.paths.config.clone(),
    };
    let mut f = ProfileFiles::load(&paths).unwrap();
    // Fill the disk, then free exactly one page: room for the backup, not for the growth.
    let filler_path = disk.join("filler");
    let mut filler = fs::File::create(&filler_path).unwrap();
    let page = vec![0u8; 4096];
    loop {
        use std::io::Write;
        if filler
            .write_all(&page)
            .and_then(|()| filler.sync_all())
            .is_err()
        {
            break;
        }
    }
    let len = fs::metadata(&filler_path).unwrap().len();
    filler.set_len(len / 4096 * 4096 - 4096).unwrap();
    let err = f
        .apply_edits(
            &[KeyEdit::SetProfile {
                profile: "new".into(),
                key_id: NEW.into(),
                secret: Secret::new(NEW_SECRET),
            }],
            &SaveOptions { backup: false },
        )
        .unwrap_err();
    assert!(matches!(err, ProfileError::Write { .. }), "{err}");
    assert!(err.to_string().contains("it is unchanged"), "{err}");
    for name in [&credentials, &other_in_disk] {
        assert_eq!(
            d.read(name),
            old,
            "{} holds its old content",
            name.display()
        );
    }
    // The safety backup of the in-place rewrite is kept after a failure.
    assert_eq!(d.read(&disk.join("credentials.iam-keys.bak")), old);
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn a_file_without_other_names_is_still_replaced_by_rename() {
    use std::os::unix::fs::MetadataExt;
    let d = Dir::new(Some(&key_file()), None);
    let ino = fs::metadata(&d.paths.credentials).unwrap().ino();
    let mut f = d.load();
    let report = f
        .apply_edits(&[replace()], &SaveOptions { backup: false })
        .unwrap();
    assert_eq!(report.files[0].rewritten_in_place, None);
    assert_eq!(report.files[0].in_place_note(), None);
    assert_ne!(fs::metadata(&d.paths.credentials).unwrap().ino(), ino);
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn every_temporary_file_is_private_from_creation_and_carries_the_prefix() {
    use std::cell::RefCell;
    use std::os::unix::fs::PermissionsExt;
    use std::rc::Rc;
    let config =
        format!("[profile c]\naws_access_key_id = {OLD}\naws_secret_access_key = {OLD_SECRET}\n");
    let d = Dir::new(Some(&key_file()), Some(&config));
    set_mode(&d.paths.credentials, 0o644);
    set_mode(&d.paths.config, 0o664);
    let seen: Rc<RefCell<Vec<(String, u32, u64)>>> = Rc::default();
    let record = Rc::clone(&seen);
    save::tests_hook::set(Some(Box::new(move |p: &Path| {
        let meta = fs::metadata(p).unwrap();
        record.borrow_mut().push((
            p.file_name().unwrap().to_string_lossy().into_owned(),
            meta.permissions().mode() & 0o7777,
            meta.len(),
        ));
    })));
    let mut f = d.load();
    f.check_writable().unwrap();
    f.apply_edits(&[replace()], &SaveOptions::default())
        .unwrap();
    save::tests_hook::set(None);
    let seen = seen.borrow();
    // Two probes, then per file a backup and the file itself.
    assert_eq!(seen.len(), 6, "{seen:?}");
    for (name, mode, len) in seen.iter() {
        assert!(name.starts_with(TEMP_PREFIX), "{name}");
        assert_eq!(*mode, 0o600, "{name} was created {mode:o}");
        assert_eq!(*len, 0, "{name} is empty when created");
    }
    assert!(
        !d.names().iter().any(|n| n.starts_with(TEMP_PREFIX)),
        "{:?}",
        d.names()
    );
}

// Unix file types, modes, links and leases.
#[cfg(unix)]
#[test]
fn stale_temporary_files_of_ours_are_removed_under_the_lock_and_nothing_else() {
    let d = Dir::new(Some(&key_file()), None);
    let dir = d.dir.path();
    let stale = dir.join(format!("{TEMP_PREFIX}credentials.AbC123"));
    let stale_backup = dir.join(format!("{TEMP_PREFIX}credentials.iam-keys.bak.dEf456"));
    let stale_probe = dir.join(format!("{TEMP_PREFIX}probe.GhI789"));
    for p in [&stale, &stale_backup, &stale_probe] {
        fs::write(p, "secret").unwrap();
    }
    // Kept: a file in use (a save in progress holds its flock), a symlink with the prefix,
    // another user's file, and files without our prefix.
    let in_use = dir.join(format!("{TEMP_PREFIX}credentials.InUse1"));
    fs::write(&in_use, "").unwrap();
    let holder = fs::File::open(&in_use).unwrap();
    holder.try_lock().unwrap();
    let victim = dir.join("victim");
    fs::write(&victim, "").unwrap();
    let link = dir.join(format!("{TEMP_PREFIX}credentials.Link01"));
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let foreign = dir.join(format!("{TEMP_PREFIX}credentials.Other1"));
    fs::write(&foreign, "").unwrap();
    std::os::unix::fs::chown(&foreign, Some(4242), None).unwrap();
    let unrelated = dir.join(".credentials.AbC123.iam-keys-tmp");
    fs::write(&unrelated, "").unwrap();

    let lock = RunLock::acquire(&d.paths.credentials, Duration::ZERO, &mut no_wait).unwrap();
    let mut removed = lock.remove_stale_temp_files(&d.paths);
    removed.sort();
    let mut want = vec![stale.clone(), stale_backup.clone(), stale_probe.clone()];
    want.sort();
    assert_eq!(removed, want);
    for p in [&in_use, &link, &foreign, &unrelated, &victim] {
        assert!(fs::symlink_metadata(p).is_ok(), "{} is kept", p.display());
    }
    drop(holder);
    assert_eq!(lock.remove_stale_temp_files(&d.paths), vec![in_use]);
}

// ---------------------------------------------------------------- fixtures

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

// ---------------------------------------------------------------- SDK conformance

/// The cross-SDK parser cases shipped with aws-runtime 1.10.2 (Apache-2.0, see
/// `tests/fixtures/profiles/NOTICE-profile-parser-tests.md`): our reading must match.
#[test]
fn cross_sdk_parser_conformance_cases() {
    let text = include_str!("../../tests/fixtures/profiles/profile-parser-tests.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let tests = json["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 65);
    for case in tests {
        let name = case["name"].as_str().unwrap();
        let config = case["input"]["configFile"].as_str().unwrap_or("");
        let credentials = case["input"]["credentialsFile"].as_str().unwrap_or("");
        let result = ProfileFiles::from_texts(&paths(), credentials, config);
        if let Some(expected) = case["output"]["errorContaining"].as_str() {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{name}: no error"))
                .to_string();
            assert!(err.contains(expected), "{name}: {err}");
            continue;
        }
        let f = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = case["output"]["config"]["profiles"].as_object().unwrap();
        let mut names = f.profile_names();
        names.sort();
        let mut want: Vec<String> = expected.keys().cloned().collect();
        want.sort();
        assert_eq!(names, want, "{name}");
        for (profile, props) in expected {
            let p = f.profile(profile).unwrap();
            let want: Vec<(String, String)> = props
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let got: Vec<(String, String)> = p
                .keys()
                .iter()
                .map(|k| (k.to_string(), p.get(k).unwrap().to_string()))
                .collect();
            let mut want = want;
            want.sort();
            assert_eq!(got, want, "{name}: profile {profile}");
        }
        if let Some(sessions) = case["output"]["config"]["sso_sessions"].as_object() {
            let mut got = f.sso_session_names();
            got.sort();
            let mut want: Vec<String> = sessions.keys().cloned().collect();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
    }
}

// ---------------------------------------------------------------- properties

mod properties {
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
}
