// Over 500 lines: one edit planner with its refusals; every rule is a branch of the same walk over the lines.
//! Planning and applying key edits on one file's document, the editing refusals, and the
//! warnings about what the AWS SDKs and the AWS CLI read differently.
//!
//! A plan is a list of line operations on the document as loaded (set a value, remove a
//! property, add a property after a line, append a section) plus the [`LineChange`]s that
//! describe them without values. Operations are applied from the bottom of the file up, so
//! each one's line index is still valid when it runs.
//!
//! Must not: touch the filesystem, or put a value in a `LineChange`, a warning or an error.

use super::document::{Document, LineKind};
use super::view::{FileView, KEY_ID, Role, SECRET, SECURITY_TOKEN, SESSION_TOKEN, Section, TOKENS};
use super::{ChangeKind, Diagnostic, FileKind, KeyEdit, LineChange, ProfileError};
use crate::secret::Secret;

/// One line operation. Values are held as [`Secret`] so `Debug` never shows them.
#[derive(Clone, Debug)]
enum Op {
    Set {
        line: usize,
        value: Secret,
    },
    Remove {
        line: usize,
    },
    Insert {
        after: usize,
        style_from: Option<usize>,
        key: &'static str,
        value: Secret,
    },
    AppendSection {
        name: String,
        key_id: Secret,
        secret: Secret,
    },
}

impl Op {
    /// Bottom-up order: a larger anchor runs first; an insert after line n runs before a
    /// change of line n.
    fn anchor(&self) -> usize {
        match self {
            Op::Set { line, .. } | Op::Remove { line } => line * 2,
            Op::Insert { after, .. } => after * 2 + 1,
            Op::AppendSection { .. } => usize::MAX,
        }
    }
}

/// The changes of all edits to one file.
#[derive(Clone, Debug)]
pub(super) struct FilePlan {
    pub kind: FileKind,
    ops: Vec<Op>,
    pub changes: Vec<LineChange>,
    /// (profile, key id) for every section whose key id is set.
    keys_set: Vec<(String, String)>,
    /// How many operations each edit produced here, by edit index.
    hits: Vec<usize>,
}

struct Planner<'a> {
    file: &'a FileView,
    plan: FilePlan,
}

impl Planner<'_> {
    fn change(&mut self, line: usize, profile: &str, property: &str, change: ChangeKind) {
        self.plan.changes.push(LineChange {
            file: self.file.kind,
            path: self.file.path.clone(),
            line,
            profile: profile.to_string(),
            property: property.to_string(),
            change,
        });
    }

    fn set(&mut self, line: usize, profile: &str, property: &str, value: &Secret) {
        if self
            .plan
            .ops
            .iter()
            .any(|o| matches!(o, Op::Set { line: l, .. } if *l == line))
        {
            return;
        }
        if self.file.doc.lines()[line].inline_comment().is_some() {
            self.change(line + 1, profile, property, ChangeKind::MoveComment);
        }
        self.change(line + 1, profile, property, ChangeKind::Replace);
        self.plan.ops.push(Op::Set {
            line,
            value: value.clone(),
        });
    }

    fn remove(&mut self, line: usize, profile: &str, property: &str) {
        if self
            .plan
            .ops
            .iter()
            .any(|o| matches!(o, Op::Remove { line: l } if *l == line))
        {
            return;
        }
        self.change(line + 1, profile, property, ChangeKind::Remove);
        self.plan.ops.push(Op::Remove { line });
    }

    fn insert(&mut self, s: &Section, profile: &str, key: &'static str, value: &Secret) {
        let after = s.lines.last;
        let style_from = s
            .last_of(&self.file.doc, KEY_ID)
            .or(s.lines.properties.last().copied());
        self.change(after + 1, profile, key, ChangeKind::Add);
        self.plan.ops.push(Op::Insert {
            after,
            style_from,
            key,
            value: value.clone(),
        });
    }

    /// Set key id and secret in a section and drop its tokens.
    fn write_key(&mut self, s: &Section, profile: &str, key_id: &str, secret: &Secret) {
        let doc = &self.file.doc;
        match s.last_of(doc, KEY_ID) {
            Some(line) => self.set(line, profile, KEY_ID, &Secret::new(key_id)),
            None => self.insert(s, profile, KEY_ID, &Secret::new(key_id)),
        }
        match s.last_of(doc, SECRET) {
            Some(line) => self.set(line, profile, SECRET, secret),
            None => self.insert(s, profile, SECRET, secret),
        }
        self.drop_tokens(s, profile);
        self.plan
            .keys_set
            .push((profile.to_string(), key_id.to_string()));
    }

    /// A section of the profile without a key id of its own: its secret and tokens would be
    /// merged with the new key by the SDKs, so replace the secret and drop the tokens.
    fn write_sibling(&mut self, s: &Section, profile: &str, secret: &Secret) {
        if let Some(line) = s.last_of(&self.file.doc, SECRET) {
            self.set(line, profile, SECRET, secret);
        }
        self.drop_tokens(s, profile);
    }

    fn drop_tokens(&mut self, s: &Section, profile: &str) {
        for token in TOKENS {
            for line in s.lines_of(&self.file.doc, token) {
                self.remove(line, profile, token);
            }
        }
    }
}

/// The names of the profiles an edit touches (in either file).
pub(super) fn touched_profiles(files: [&FileView; 2], edit: &KeyEdit) -> Vec<String> {
    match edit {
        KeyEdit::Replace { old_key_id, .. } => holders(files, old_key_id),
        KeyEdit::SetProfile { profile, .. } => vec![profile.clone()],
    }
}

/// Profiles with an `aws_access_key_id` line holding `key_id`, in either file.
fn holders(files: [&FileView; 2], key_id: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in files {
        for s in &f.sections {
            let Some(name) = s.profile_name() else {
                continue;
            };
            if f.value(s, KEY_ID).as_deref() == Some(key_id) && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

fn has_key(f: &FileView, profile: &str) -> bool {
    f.profile_sections(profile)
        .any(|s| s.last_of(&f.doc, KEY_ID).is_some())
}

/// Plan `edits` on `file`; `other` is the other file as it is now.
pub(super) fn plan_file(file: &FileView, other: &FileView, edits: &[KeyEdit]) -> FilePlan {
    let mut p = Planner {
        file,
        plan: FilePlan {
            kind: file.kind,
            ops: Vec::new(),
            changes: Vec::new(),
            keys_set: Vec::new(),
            hits: vec![0; edits.len()],
        },
    };
    for (i, edit) in edits.iter().enumerate() {
        let before = p.plan.ops.len();
        match edit {
            KeyEdit::Replace {
                old_key_id,
                new_key_id,
                new_secret,
            } => {
                for name in holders([file, other], old_key_id) {
                    for s in file.profile_sections(&name) {
                        match file.value(s, KEY_ID) {
                            Some(v) if v == *old_key_id => {
                                p.write_key(s, &name, new_key_id, new_secret)
                            }
                            None => p.write_sibling(s, &name, new_secret),
                            Some(_) => {}
                        }
                    }
                }
            }
            KeyEdit::SetProfile {
                profile,
                key_id,
                secret,
            } => {
                let here = has_key(file, profile);
                let elsewhere = has_key(other, profile);
                let create_here = !here && !elsewhere && file.kind == FileKind::Credentials;
                let sections: Vec<&Section> = file.profile_sections(profile).collect();
                if create_here && sections.is_empty() {
                    p.change(
                        file.doc.lines().len(),
                        profile,
                        &format!("[{profile}]"),
                        ChangeKind::Add,
                    );
                    p.change(file.doc.lines().len(), profile, KEY_ID, ChangeKind::Add);
                    p.change(file.doc.lines().len(), profile, SECRET, ChangeKind::Add);
                    p.plan.ops.push(Op::AppendSection {
                        name: profile.clone(),
                        key_id: Secret::new(key_id.as_str()),
                        secret: secret.clone(),
                    });
                    p.plan.keys_set.push((profile.clone(), key_id.clone()));
                }
                for (n, s) in sections.iter().enumerate() {
                    let last = n + 1 == sections.len();
                    if s.last_of(&file.doc, KEY_ID).is_some() || (create_here && last) {
                        p.write_key(s, profile, key_id, secret);
                    } else {
                        p.write_sibling(s, profile, secret);
                    }
                }
            }
        }
        p.plan.hits[i] = p.plan.ops.len() - before;
    }
    p.plan.changes.sort_by_key(|c| c.line);
    p.plan
}

/// Apply a plan to the document it was made for.
pub(super) fn apply(doc: &mut Document, plan: &FilePlan) {
    // Bottom-up; two inserts after the same line run last-planned first, so they end up in
    // planned order.
    let mut ops: Vec<(usize, Op)> = plan.ops.iter().cloned().enumerate().collect();
    ops.sort_by_key(|(i, o)| std::cmp::Reverse((o.anchor(), *i)));
    for (_, op) in ops {
        match op {
            Op::Set { line, value } => {
                doc.set_value(line, value.expose());
            }
            Op::Remove { line } => doc.remove_property(line),
            Op::Insert {
                after,
                style_from,
                key,
                value,
            } => {
                doc.insert_property(after, style_from, key, value.expose());
            }
            Op::AppendSection {
                name,
                key_id,
                secret,
            } => {
                doc.append_section(
                    &name,
                    &[(KEY_ID, key_id.expose()), (SECRET, secret.expose())],
                );
            }
        }
    }
    // The edits classify only the lines they touch; a fresh parse must agree.
    debug_assert_eq!(
        format!("{:?}", Document::parse(&doc.render())),
        format!("{doc:?}"),
        "line kinds after an edit"
    );
}

/// The key id of an edit that changed `loaded` but no longer changes `fresh` (the file
/// changed on disk and the old key is gone).
pub(super) fn lost_edit(loaded: &FilePlan, fresh: &FilePlan, edits: &[KeyEdit]) -> Option<String> {
    edits.iter().enumerate().find_map(|(i, e)| {
        (loaded.hits[i] > 0 && fresh.hits[i] == 0).then(|| match e {
            KeyEdit::Replace { old_key_id, .. } => old_key_id.clone(),
            KeyEdit::SetProfile { key_id, .. } => key_id.clone(),
        })
    })
}

/// (profile, key id) pairs the saved file must show.
pub(super) fn expected_keys(plan: &FilePlan) -> Vec<(String, String)> {
    plan.keys_set.clone()
}

/// New values must be read identically by both readers: one line, no surrounding or inner
/// whitespace, not starting with a comment character.
pub(super) fn validate(edit: &KeyEdit) -> Result<(), ProfileError> {
    let (key_id, secret) = match edit {
        KeyEdit::Replace {
            new_key_id,
            new_secret,
            ..
        } => (new_key_id, new_secret),
        KeyEdit::SetProfile { key_id, secret, .. } => (key_id, secret),
    };
    check_value(KEY_ID, key_id)?;
    check_value(SECRET, secret.expose())?;
    if let KeyEdit::SetProfile { profile, .. } = edit
        && !super::view::valid_identifier(profile)
    {
        return Err(ProfileError::InvalidValue {
            property: "profile name",
            reason: "use letters, digits and _-/.%@:+ only",
        });
    }
    Ok(())
}

fn check_value(property: &'static str, value: &str) -> Result<(), ProfileError> {
    let reason = if value.is_empty() {
        Some("it is empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains whitespace or a control character")
    } else if value.starts_with(['#', ';']) {
        Some("it starts with a comment character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ProfileError::InvalidValue { property, reason }),
        None => Ok(()),
    }
}

/// Refuse a profile whose section, or whose key id, secret or token line, is duplicated.
pub(super) fn check_editable(f: &FileView, profile: &str) -> Result<(), ProfileError> {
    let sections: Vec<&Section> = f.profile_sections(profile).collect();
    let ambiguous = |what: String, lines: Vec<usize>| ProfileError::Ambiguous {
        kind: f.kind,
        path: f.path.clone(),
        profile: profile.to_string(),
        what,
        lines,
    };
    if sections.len() > 1 {
        let lines = sections.iter().map(|s| s.lines.header + 1).collect();
        return Err(ambiguous(
            format!("its section appears {} times", sections.len()),
            lines,
        ));
    }
    for s in sections {
        for key in [KEY_ID, SECRET, SESSION_TOKEN, SECURITY_TOKEN] {
            let lines = s.lines_of(&f.doc, key);
            if lines.len() > 1 {
                let n = lines.len();
                return Err(ambiguous(
                    format!("`{key}` appears {n} times in its section"),
                    lines.into_iter().map(|i| i + 1).collect(),
                ));
            }
        }
    }
    Ok(())
}

fn diag(f: &FileView, line: usize, message: String) -> Diagnostic {
    Diagnostic {
        file: f.kind,
        path: f.path.clone(),
        line,
        message,
    }
}

fn lines_text(lines: &[usize]) -> String {
    lines
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Warnings about one file.
pub(super) fn file_warnings(f: &FileView, out: &mut Vec<Diagnostic>) {
    let doc = &f.doc;
    for s in &f.sections {
        if let Role::Ignored(reason) = &s.role {
            out.push(diag(f, s.lines.header + 1, reason.clone()));
        }
    }
    // Duplicate sections: per profile name, and per exact header for other sections.
    let mut seen: Vec<String> = Vec::new();
    for s in &f.sections {
        let group = match &s.role {
            Role::Profile { name, .. } => format!("profile `{name}`"),
            Role::Ignored(_) => continue,
            _ => format!("section [{}]", s.lines.name),
        };
        if seen.contains(&group) {
            continue;
        }
        let same: Vec<usize> = f
            .sections
            .iter()
            .filter(|t| match (&t.role, &s.role) {
                (Role::Profile { name: a, .. }, Role::Profile { name: b, .. }) => a == b,
                (Role::Ignored(_), _) => false,
                _ => t.lines.name == s.lines.name,
            })
            .map(|t| t.lines.header + 1)
            .collect();
        if same.len() > 1 {
            let shadowed = f
                .sections
                .iter()
                .any(|t| matches!(t.role, Role::Profile { shadowed: true, .. }));
            let how = if shadowed && group == "profile `default`" {
                "[profile default] replaces [default] for the AWS SDKs, while the AWS CLI takes \
                 the one that comes last"
            } else {
                "the AWS SDKs merge them, the AWS CLI refuses the whole file"
            };
            out.push(diag(
                f,
                same[0],
                format!(
                    "{group} appears {} times (lines {}): {how}; merge them into one",
                    same.len(),
                    lines_text(&same)
                ),
            ));
        }
        seen.push(group);
    }
    for s in &f.sections {
        let mut keys: Vec<&str> = Vec::new();
        for &i in &s.lines.properties {
            let Some(key) = doc.lines()[i].key() else {
                continue;
            };
            if keys.contains(&key) {
                continue;
            }
            keys.push(key);
            let same: Vec<usize> = s.lines_of(doc, key).into_iter().map(|i| i + 1).collect();
            if same.len() > 1 {
                out.push(diag(
                    f,
                    same[0],
                    format!(
                        "`{key}` appears {} times in [{}] (lines {}): the AWS SDKs use the last \
                         one, the AWS CLI refuses the whole file; keep one",
                        same.len(),
                        s.lines.name,
                        lines_text(&same)
                    ),
                ));
            }
        }
    }
    for (i, line) in doc.lines().iter().enumerate() {
        if line.text().contains('\r') {
            out.push(diag(
                f,
                i + 1,
                "a carriage return not followed by a line feed: the AWS CLI reads it as a line \
                 break, the AWS SDKs do not; save the file with LF or CRLF line endings"
                    .to_string(),
            ));
        }
        match line.kind() {
            LineKind::Property {
                key,
                comment: Some(_),
                ..
            } => out.push(diag(
                f,
                i + 1,
                format!(
                    "the AWS CLI reads the comment after `{key}` as part of its value (the AWS \
                     SDKs do not); put the comment on a line of its own"
                ),
            )),
            LineKind::Continuation { .. }
                if line
                    .text()
                    .trim_start_matches([' ', '\t'])
                    .starts_with(['#', ';']) =>
            {
                let property = doc.owner(i).unwrap_or(i);
                let key = doc.lines()[property].key().unwrap_or_default();
                out.push(diag(
                    f,
                    i + 1,
                    format!(
                        "this indented comment is a comment for the AWS CLI but part of the \
                         value of `{key}` (line {}) for the AWS SDKs; start it in the first column",
                        property + 1
                    ),
                ));
            }
            _ => {}
        }
    }
}

/// Warnings that need both files: credential values set in both, a key split across them.
pub(super) fn cross_file_warnings(files: [&FileView; 2], out: &mut Vec<Diagnostic>) {
    let [credentials, config] = files;
    for name in config.profile_names() {
        let in_config: Vec<&Section> = config.profile_sections(&name).collect();
        let in_creds: Vec<&Section> = credentials.profile_sections(&name).collect();
        if in_creds.is_empty() {
            continue;
        }
        let value = |f: &FileView, ss: &[&Section], key: &str| -> Option<(String, usize)> {
            ss.iter()
                .filter_map(|s| s.last_of(&f.doc, key))
                .max()
                .and_then(|i| f.doc.full_value(i).map(|v| (v, i + 1)))
        };
        for key in [KEY_ID, SECRET, SESSION_TOKEN] {
            if let (Some((a, _)), Some((b, line))) = (
                value(credentials, &in_creds, key),
                value(config, &in_config, key),
            ) && a != b
            {
                out.push(diag(
                    config,
                    line,
                    format!(
                        "profile `{name}`: `{key}` is also set in the credentials file, \
                             whose value is used; this line is not"
                    ),
                ));
            }
        }
        let id_c = value(credentials, &in_creds, KEY_ID);
        let secret_c = value(credentials, &in_creds, SECRET);
        let id_f = value(config, &in_config, KEY_ID);
        let secret_f = value(config, &in_config, SECRET);
        let split = match (&id_c, &secret_c, &id_f, &secret_f) {
            (Some((_, line)), None, _, Some(_)) => Some((credentials, *line)),
            (None, Some(_), Some((_, line)), _) => Some((config, *line)),
            _ => None,
        };
        if let Some((f, line)) = split {
            out.push(diag(
                f,
                line,
                format!(
                    "profile `{name}`: the key id and the secret are in different files; the \
                     AWS SDKs combine them, the AWS CLI does not: keep them together"
                ),
            ));
        }
    }
}
