//! The profile view of one loaded file: which sections are profiles (and of which name),
//! which are `sso-session` / `services` sections, which the AWS SDKs ignore; and the merge
//! of both files into [`Profile`] snapshots, following aws-runtime 1.10.2
//! `env_config/normalize.rs`:
//!
//! - credentials file: `[name]` is profile `name`; `[profile name]` or any other prefixed
//!   section is ignored (the AWS CLI would read it as a profile called `profile name`);
//! - config file: `[profile name]` and `[default]` are profiles; `[profile default]`, when
//!   present, replaces `[default]` entirely; `[sso-session x]`, `[services x]` and other
//!   prefixed sections are not profiles; an unprefixed `[name]` other than `default` is ignored;
//! - profile and property names must match `[A-Za-z0-9_\-/.%@:+]+`, others are ignored;
//! - property names are case-insensitive; within a file a later line wins over an earlier
//!   one; the credentials file wins over the config file key by key.
//!
//! Where the SDK's own order is undefined (two differently spelled headers for the same
//! profile, such as `[profile a]` and `[profile  a]`, merge in hash-map order there) this view
//! takes file order; such profiles are refused for editing anyway.
//!
//! Must not: edit documents or touch the filesystem.

use super::document::{Document, SectionRef};
use super::{FileKind, Origin, Profile};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Whitespace as the AWS parser means it.
const WHITESPACE: &[char] = &[' ', '\t'];

/// The properties that make up a static key.
pub(super) const KEY_ID: &str = "aws_access_key_id";
pub(super) const SECRET: &str = "aws_secret_access_key";
pub(super) const SESSION_TOKEN: &str = "aws_session_token";
pub(super) const SECURITY_TOKEN: &str = "aws_security_token";
pub(super) const TOKENS: [&str; 2] = [SESSION_TOKEN, SECURITY_TOKEN];

/// What a section is, in the file it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// A profile section. `shadowed`: a config file `[default]` that the SDKs ignore because
    /// `[profile default]` exists.
    Profile {
        name: String,
        shadowed: bool,
    },
    SsoSession(String),
    /// `[prefix name]` in the config file, e.g. `[services my-endpoints]`.
    Other {
        prefix: String,
        name: String,
    },
    /// Ignored by the SDKs; the reason says why.
    Ignored(String),
}

#[derive(Clone, Debug)]
pub(super) struct Section {
    pub role: Role,
    pub lines: SectionRef,
}

impl Section {
    pub fn profile_name(&self) -> Option<&str> {
        match &self.role {
            Role::Profile { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Line indices of the properties named `key` (lower case), in order.
    pub fn lines_of(&self, doc: &Document, key: &str) -> Vec<usize> {
        self.lines
            .properties
            .iter()
            .copied()
            .filter(|&i| doc.lines()[i].key() == Some(key))
            .collect()
    }

    /// The line index of the property that the SDK reads for `key` (the last one).
    pub fn last_of(&self, doc: &Document, key: &str) -> Option<usize> {
        self.lines_of(doc, key).last().copied()
    }
}

/// One file as loaded: path, bytes (to notice a change on disk), document, sections.
#[derive(Clone)]
pub(super) struct FileView {
    pub kind: FileKind,
    pub path: PathBuf,
    /// Whether the file existed when it was read.
    pub existed: bool,
    pub bytes: Vec<u8>,
    pub doc: Document,
    pub sections: Vec<Section>,
    /// The path is `/dev/null` (or a link to it): read as empty, never written.
    pub null_device: bool,
}

impl FileView {
    pub fn new(
        kind: FileKind,
        path: PathBuf,
        existed: bool,
        bytes: Vec<u8>,
        doc: Document,
    ) -> Self {
        let sections = classify(kind, &doc);
        FileView {
            kind,
            path,
            existed,
            bytes,
            doc,
            sections,
            null_device: false,
        }
    }

    /// Every section of profile `name`, shadowed ones included.
    pub fn profile_sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections
            .iter()
            .filter(move |s| s.profile_name() == Some(name))
    }

    /// The value of `key` in a section, as the SDK reads it (last line wins).
    pub fn value(&self, section: &Section, key: &str) -> Option<String> {
        section
            .last_of(&self.doc, key)
            .and_then(|i| self.doc.full_value(i))
    }

    /// Profile names in order of first appearance.
    pub fn profile_names(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.sections
            .iter()
            .filter_map(Section::profile_name)
            .filter(|name| seen.insert(*name))
            .map(str::to_string)
            .collect()
    }

    /// Whether any property line that holds a secret is in the file.
    pub fn holds_secrets(&self) -> bool {
        self.doc
            .lines()
            .iter()
            .any(|l| matches!(l.key(), Some(k) if k == SECRET || TOKENS.contains(&k)))
    }

    /// Merge this file's sections of profile `name` into `props`, as the SDK does.
    fn merge_into(&self, name: &str, props: &mut BTreeMap<String, (String, Origin)>) {
        for section in self.profile_sections(name) {
            if matches!(section.role, Role::Profile { shadowed: true, .. }) {
                continue;
            }
            for &i in &section.lines.properties {
                let Some(key) = self.doc.lines()[i].key() else {
                    continue;
                };
                if !valid_identifier(key) {
                    continue;
                }
                let value = self.doc.full_value(i).unwrap_or_default();
                let origin = Origin {
                    file: self.kind,
                    line: i + 1,
                };
                props.insert(key.to_string(), (value, origin));
            }
        }
    }
}

/// The merged snapshot of profile `name`, or `None` when neither file has it.
pub(super) fn merge_profile(files: [&FileView; 2], name: &str) -> Option<Profile> {
    let [credentials, config] = files;
    if credentials.profile_sections(name).next().is_none()
        && config.profile_sections(name).next().is_none()
    {
        return None;
    }
    let mut props = BTreeMap::new();
    config.merge_into(name, &mut props);
    credentials.merge_into(name, &mut props);
    let key_files = [credentials, config]
        .into_iter()
        .filter(|f| {
            f.profile_sections(name)
                .any(|s| s.last_of(&f.doc, KEY_ID).is_some())
        })
        .map(|f| f.kind)
        .collect();
    Some(Profile {
        name: name.to_string(),
        props,
        key_files,
    })
}

/// `[A-Za-z0-9_\-/.%@:+]+`, the SDKs' rule for profile and property names.
pub(super) fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
}

/// Split a section name into prefix and name, as the SDK does (`profile  foo` → `profile`,
/// `foo`).
pub(super) fn split_name(input: &str) -> (Option<&str>, &str) {
    let input = input.trim_matches(WHITESPACE);
    match input.split_once(WHITESPACE) {
        Some((prefix, rest)) => (Some(prefix.trim()), rest.trim()),
        None => (None, input.trim()),
    }
}

fn classify(kind: FileKind, doc: &Document) -> Vec<Section> {
    let refs = doc.sections();
    let mut sections: Vec<Section> = refs
        .into_iter()
        .map(|r| Section {
            role: role(kind, &r.name),
            lines: r,
        })
        .collect();
    if kind == FileKind::Config {
        let prefixed_default = sections.iter().any(|s| {
            matches!(split_name(&s.lines.name), (Some("profile"), "default"))
                && matches!(s.role, Role::Profile { .. })
        });
        if prefixed_default {
            for s in &mut sections {
                if matches!(split_name(&s.lines.name), (None, "default")) {
                    s.role = Role::Profile {
                        name: "default".to_string(),
                        shadowed: true,
                    };
                }
            }
        }
    }
    sections
}

fn role(kind: FileKind, raw: &str) -> Role {
    let (prefix, name) = split_name(raw);
    let profile = |name: &str| Role::Profile {
        name: name.to_string(),
        shadowed: false,
    };
    match (kind, prefix) {
        (_, _) if !valid_identifier(name) => Role::Ignored(format!(
            "section [{raw}] is ignored by the AWS SDKs: `{name}` is not a valid name \
             (letters, digits and _-/.%@:+ only)"
        )),
        (FileKind::Credentials, None) => profile(name),
        (FileKind::Credentials, Some("profile")) => Role::Ignored(format!(
            "section [{raw}] is ignored by the AWS SDKs (the AWS CLI reads it as a profile \
             named `{raw}`): in the credentials file write [{name}]"
        )),
        (FileKind::Credentials, Some(_)) => Role::Ignored(format!(
            "section [{raw}] is ignored by the AWS SDKs: it belongs in the config file"
        )),
        (FileKind::Config, None) if name == "default" => profile(name),
        (FileKind::Config, None) => Role::Ignored(format!(
            "section [{raw}] is ignored by the AWS SDKs and the AWS CLI: in the config file \
             write [profile {name}]"
        )),
        (FileKind::Config, Some("profile")) => profile(name),
        (FileKind::Config, Some("sso-session")) => Role::SsoSession(name.to_string()),
        (FileKind::Config, Some(prefix)) => Role::Other {
            prefix: prefix.to_string(),
            name: name.to_string(),
        },
    }
}

/// The sub-properties of a value such as `\nendpoint_url = http://...` (`s3 =` blocks).
pub(super) fn sub_properties(value: &str) -> Vec<(String, String)> {
    value
        .split('\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((
                k.trim_matches(WHITESPACE).to_string(),
                v.trim_matches(WHITESPACE).to_string(),
            ))
        })
        .collect()
}
