// Over 500 lines: the line grammar of the AWS file format, kept in one place so no rule is read twice.
//! The lossless line model of one AWS shared config or credentials file.
//!
//! Job: split a file's text into lines, each kept byte for byte with its own line ending
//! (`\n`, `\r\n` or none on a last line), classify every line exactly the way the AWS SDKs'
//! parser does (aws-runtime 1.10.2 `src/env_config/parse.rs`, which follows the cross-SDK
//! `profile-parser-tests.json`), and make the few edits the tool needs: change the value text
//! of a property line, remove a property line with its continuation lines, add a property
//! line in the style of its neighbours, append a section. [`Document::render`] gives back
//! the input unchanged for any input, valid or not, until an edit is made; an edit changes
//! only the lines it names.
//!
//! Classification (SDK rules): a blank line (only spaces and tabs) is ignored; a line whose
//! first character is `#` or `;` is a comment; a line starting with `[` is a section header
//! (a `#`/`;` anywhere ends it, it must then end with `]`); a line starting with a space or a
//! tab continues the previous property (its value is extended, or, after an empty value such
//! as `s3 =`, it is a `key = value` sub-property); any other line is `key = value`, split at
//! the first `=`, where `#`/`;` start a comment only after whitespace. Lines the SDK rejects
//! are kept as [`LineKind::Invalid`] and listed by [`Document::issues`]; parsing never fails.
//! A UTF-8 byte order mark stays part of the first line's text, as in the SDK (which then
//! rejects that line).
//!
//! Must not: read or write files, merge profiles across sections or files (that is the
//! profile view in `view.rs`), or print values: property values may be secrets, so `Debug`
//! shows line kinds and keys only.

use std::fmt;

/// Whitespace as the AWS parser means it: space and tab only.
const WHITESPACE: &[char] = &[' ', '\t'];
const COMMENT: &[char] = &['#', ';'];
const BOM: char = '\u{feff}';

/// How one line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    /// The last line of a file without a final newline.
    None,
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::None => "",
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }
}

/// What a line is, by the SDK parser's rules.
#[derive(Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty or only spaces and tabs.
    Blank,
    /// Starts with `#` or `;` in the first column.
    Comment,
    /// `[name]`: `name` is the text between the brackets, trimmed, comment removed
    /// (`profile foo`, `default`, `sso-session x`, `services y`).
    Section { name: String },
    /// `key = value`. `key` is lower-cased; `value` is this line's value only (without
    /// continuation lines; see [`Document::full_value`]).
    Property {
        key: String,
        value: String,
        /// Byte range of the value text in the line (empty range at the insertion point when
        /// the value is empty).
        value_start: usize,
        value_end: usize,
        /// Byte offset of an inline comment (`# ...` or `; ...` after whitespace).
        comment: Option<usize>,
    },
    /// An indented line continuing the nearest property line above it (see
    /// [`Document::owner`]); a sub-property (`key = value`) when that property's own value
    /// is empty.
    Continuation { sub_property: bool },
    /// A line the SDK parser rejects; `message` uses the SDK's wording.
    Invalid { message: String },
}

impl LineKind {
    fn name(&self) -> &'static str {
        match self {
            LineKind::Blank => "blank",
            LineKind::Comment => "comment",
            LineKind::Section { .. } => "section",
            LineKind::Property { .. } => "property",
            LineKind::Continuation { .. } => "continuation",
            LineKind::Invalid { .. } => "invalid",
        }
    }
}

impl fmt::Debug for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineKind::Section { name } => write!(f, "Section({name:?})"),
            LineKind::Property { key, .. } => write!(f, "Property({key:?})"),
            LineKind::Invalid { message } => write!(f, "Invalid({message:?})"),
            other => f.write_str(other.name()),
        }
    }
}

/// One line: its text without the line ending, the ending, and what it is.
#[derive(Clone)]
pub struct Line {
    text: String,
    ending: LineEnding,
    kind: LineKind,
}

impl Line {
    /// The line's text without its line ending. May contain a secret value.
    pub fn text(&self) -> &str {
        &self.text
    }
    pub fn ending(&self) -> LineEnding {
        self.ending
    }
    pub fn kind(&self) -> &LineKind {
        &self.kind
    }
    /// The lower-cased key of a property line.
    pub fn key(&self) -> Option<&str> {
        match &self.kind {
            LineKind::Property { key, .. } => Some(key),
            _ => None,
        }
    }
    /// The text of an inline comment on a property line, from its `#` or `;`.
    pub fn inline_comment(&self) -> Option<&str> {
        match &self.kind {
            LineKind::Property {
                comment: Some(at), ..
            } => Some(&self.text[*at..]),
            _ => None,
        }
    }
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}/{:?}", self.kind, self.ending)
    }
}

/// A line the SDK parser rejects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A section as found in one file: its header line and the property lines under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionRef {
    /// 0-based index of the header line.
    pub header: usize,
    /// The name between the brackets (see [`LineKind::Section`]).
    pub name: String,
    /// 0-based indices of the property lines in this section, in order.
    pub properties: Vec<usize>,
    /// 0-based index of the last line that belongs to the section's properties (a property
    /// or one of its continuation lines), or the header when there is none.
    pub last: usize,
}

/// A whole file as lines. `Debug` shows no values.
#[derive(Clone, Default)]
pub struct Document {
    lines: Vec<Line>,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("lines", &self.lines)
            .finish()
    }
}

impl Document {
    /// Split and classify `text`. Never fails; see [`Document::issues`].
    pub fn parse(text: &str) -> Document {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, ending, next) = match rest.find('\n') {
                Some(i) => match rest[..i].strip_suffix('\r') {
                    Some(l) => (l, LineEnding::CrLf, &rest[i + 1..]),
                    None => (&rest[..i], LineEnding::Lf, &rest[i + 1..]),
                },
                None => (rest, LineEnding::None, ""),
            };
            lines.push(Line {
                text: line.to_string(),
                ending,
                kind: LineKind::Blank,
            });
            rest = next;
        }
        let mut doc = Document { lines };
        doc.classify();
        doc
    }

    /// The file's text: the input of [`Document::parse`], byte for byte, plus any edits.
    pub fn render(&self) -> String {
        let len = self.lines.iter().map(|l| l.text.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.ending.as_str());
        }
        out
    }

    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines the SDK parser rejects (it fails the whole file on the first one).
    pub fn issues(&self) -> Vec<Issue> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match &l.kind {
                LineKind::Invalid { message } => Some(Issue {
                    line: i + 1,
                    message: message.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Every section header with its properties, in file order (duplicates included).
    pub fn sections(&self) -> Vec<SectionRef> {
        let mut out: Vec<SectionRef> = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            match &line.kind {
                LineKind::Section { name } => out.push(SectionRef {
                    header: i,
                    name: name.clone(),
                    properties: Vec::new(),
                    last: i,
                }),
                LineKind::Property { .. } => {
                    if let Some(s) = out.last_mut() {
                        s.properties.push(i);
                        s.last = i;
                    }
                }
                LineKind::Continuation { .. } => {
                    if let Some(s) = out.last_mut() {
                        s.last = i;
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The value of the property on line index `idx` as the SDK reads it: the line's value,
    /// then each continuation line trimmed, joined with `\n`.
    pub fn full_value(&self, idx: usize) -> Option<String> {
        let LineKind::Property { value, .. } = &self.lines.get(idx)?.kind else {
            return None;
        };
        let mut out = value.clone();
        for c in self.continuations(idx) {
            out.push('\n');
            out.push_str(self.lines[c].text.trim_matches(WHITESPACE));
        }
        Some(out)
    }

    /// Line indices of the continuation lines of the property on line index `idx`.
    pub fn continuations(&self, idx: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate().skip(idx + 1) {
            match line.kind {
                LineKind::Continuation { .. } => out.push(i),
                LineKind::Blank | LineKind::Comment => {}
                _ => break,
            }
        }
        out
    }

    /// The line index of the property that the continuation line `idx` belongs to.
    pub fn owner(&self, idx: usize) -> Option<usize> {
        for i in (0..idx).rev() {
            match self.lines[i].kind {
                LineKind::Property { .. } => return Some(i),
                LineKind::Continuation { .. } | LineKind::Blank | LineKind::Comment => {}
                _ => return None,
            }
        }
        None
    }

    /// After a local edit that ends before line index `from`: when a continuation line
    /// follows (its owner may have changed), classify the whole file again.
    fn reclassify_if_continued(&mut self, from: usize) {
        let next = self.lines[from.min(self.lines.len())..]
            .iter()
            .find(|l| !matches!(l.kind, LineKind::Blank | LineKind::Comment));
        if matches!(next.map(|l| &l.kind), Some(LineKind::Continuation { .. })) {
            self.classify();
        }
    }

    /// The line ending used by most lines (LF for a file without any).
    pub fn dominant_ending(&self) -> LineEnding {
        let crlf = self
            .lines
            .iter()
            .filter(|l| l.ending == LineEnding::CrLf)
            .count();
        let lf = self
            .lines
            .iter()
            .filter(|l| l.ending == LineEnding::Lf)
            .count();
        if crlf > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// Replace the value text of the property on line index `idx`, keeping the key's
    /// spelling, the spacing around `=` and the line ending. Continuation lines of that
    /// property are removed (the new value is exactly `value`). When the line has an inline
    /// comment it is moved to a comment line of its own just above (both the SDKs and the
    /// AWS CLI then read the same value); returns whether it did. `value` must be a single
    /// line (the caller checks).
    pub fn set_value(&mut self, idx: usize, value: &str) -> bool {
        let LineKind::Property {
            value_start,
            value_end,
            comment,
            ..
        } = self.lines[idx].kind
        else {
            panic!("set_value on line {} that is not a property", idx + 1);
        };
        for c in self.continuations(idx).into_iter().rev() {
            self.lines.remove(c);
        }
        let dominant = self.dominant_ending();
        let line = &mut self.lines[idx];
        let mut text = String::with_capacity(line.text.len() + value.len());
        text.push_str(&line.text[..value_start]);
        if value_start == value_end && !text.ends_with(WHITESPACE) && text.contains(" =") {
            text.push(' ');
        }
        text.push_str(value);
        let moved = match comment {
            Some(at) => {
                // The comment line always needs an ending, even above a last line without.
                let mut comment_line = Line {
                    text: line.text[at..].to_string(),
                    ending: match line.ending {
                        LineEnding::None => dominant,
                        e => e,
                    },
                    kind: LineKind::Comment,
                };
                if comment_line.ending == LineEnding::Lf && comment_line.text.ends_with('\r') {
                    comment_line.text.pop();
                    comment_line.ending = LineEnding::CrLf;
                }
                line.text = text;
                line.kind = property_kind(&line.text);
                self.lines.insert(idx, comment_line);
                true
            }
            None => {
                text.push_str(&line.text[value_end..]);
                line.text = text;
                line.kind = property_kind(&line.text);
                false
            }
        };
        self.reclassify_if_continued(idx + 1 + usize::from(moved));
        moved
    }

    /// Remove the property on line index `idx` and its continuation lines.
    pub fn remove_property(&mut self, idx: usize) {
        assert!(
            matches!(self.lines[idx].kind, LineKind::Property { .. }),
            "remove_property on line {} that is not a property",
            idx + 1
        );
        let last_ending = self.lines[idx].ending;
        for c in self.continuations(idx).into_iter().rev() {
            self.lines.remove(c);
        }
        self.lines.remove(idx);
        // Removing the file's last line keeps the file's "no final newline" state: if the
        // removed line had no ending, neither does the new last line, unless that line is
        // empty (it would vanish; it keeps its ending and the file ends with a blank line).
        if last_ending == LineEnding::None
            && idx == self.lines.len()
            && idx > 0
            && !self.lines[idx - 1].text.is_empty()
        {
            self.lines[idx - 1].ending = LineEnding::None;
        }
        self.reclassify_if_continued(idx);
    }

    /// Add `key<sep>value` right after line index `after` (a section's last line), in the
    /// style of the section's property lines: the same text around `=` as the property
    /// `style_from` (else ` = `) and the line ending of the line it follows. Returns the new
    /// line's index.
    pub fn insert_property(
        &mut self,
        after: usize,
        style_from: Option<usize>,
        key: &str,
        value: &str,
    ) -> usize {
        let sep = style_from
            .and_then(|i| self.separator(i))
            .unwrap_or_else(|| " = ".to_string());
        let ending = match self.lines[after].ending {
            LineEnding::None => {
                // The file has no final newline: give the old last line one and keep the
                // file's "no final newline" state on the new last line.
                let e = self.dominant_ending();
                self.end_line(after, e);
                LineEnding::None
            }
            e => e,
        };
        let text = format!("{key}{sep}{value}");
        let line = Line {
            kind: property_kind(&text),
            text,
            ending,
        };
        self.lines.insert(after + 1, line);
        self.reclassify_if_continued(after + 2);
        after + 1
    }

    /// Append `[header]` and `key = value` lines at the end of the file, after a blank line
    /// when the file has content, using the file's usual line ending; a file without a
    /// final newline gets one first. Returns the index of the header line.
    pub fn append_section(&mut self, header: &str, properties: &[(&str, &str)]) -> usize {
        let ending = self.dominant_ending();
        if let Some(last) = self.lines.len().checked_sub(1)
            && self.lines[last].ending == LineEnding::None
        {
            self.end_line(last, ending);
        }
        let needs_blank = self
            .lines
            .last()
            .is_some_and(|l| !l.text.trim_matches(WHITESPACE).is_empty());
        if needs_blank {
            self.lines.push(Line {
                text: String::new(),
                ending,
                kind: LineKind::Blank,
            });
        }
        let header_idx = self.lines.len();
        let text = format!("[{header}]");
        self.lines.push(Line {
            kind: section_line(&text),
            text,
            ending,
        });
        for (k, v) in properties {
            let text = format!("{k} = {v}");
            self.lines.push(Line {
                kind: property_kind(&text),
                text,
                ending,
            });
        }
        header_idx
    }

    /// Give line `idx` (the last line, which has none) a line ending. A text ending in a lone
    /// `\r` then ends in `\r\n`: the line is stored as what those bytes now mean (a CRLF
    /// line) and the file is classified again, so the model always equals a fresh parse of
    /// its rendering.
    fn end_line(&mut self, idx: usize, ending: LineEnding) {
        let line = &mut self.lines[idx];
        line.ending = ending;
        if ending == LineEnding::Lf && line.text.ends_with('\r') {
            line.text.pop();
            line.ending = LineEnding::CrLf;
            self.classify();
        }
    }

    /// The text between a property's key and its value (` = `, `=`, `\t= `...).
    fn separator(&self, idx: usize) -> Option<String> {
        let line = &self.lines[idx];
        let LineKind::Property { value_start, .. } = line.kind else {
            return None;
        };
        let eq = line.text.find('=')?;
        let key_end = line.text[..eq].trim_end_matches(WHITESPACE).len();
        let mut sep = line.text[key_end..eq + 1].to_string();
        let after = &line.text[eq + 1..value_start];
        if after.is_empty() && value_start == line.text.len() && sep.starts_with(WHITESPACE) {
            sep.push(' ');
        } else {
            sep.push_str(after);
        }
        Some(sep)
    }

    /// (Re)classify every line with the SDK parser's state machine.
    fn classify(&mut self) {
        // Whether a section has started; whether there is a current property and whether
        // its continuation lines are sub-properties (its own value is empty).
        let mut in_section = false;
        let mut property: Option<bool> = None;
        for i in 0..self.lines.len() {
            let text = self.lines[i].text.as_str();
            let kind = if text.trim_matches(WHITESPACE).is_empty() {
                LineKind::Blank
            } else if text.starts_with(COMMENT) {
                LineKind::Comment
            } else if text.starts_with('[') {
                in_section = true;
                property = None;
                section_line(text)
            } else if text.starts_with(WHITESPACE) {
                match (in_section, property) {
                    (false, _) => invalid("Expected a profile definition"),
                    (true, None) => invalid("Expected a property definition, found continuation"),
                    (true, Some(true)) => match property_line(text) {
                        Ok(_) => LineKind::Continuation { sub_property: true },
                        Err(e) => invalid(e.message("sub-property")),
                    },
                    (true, Some(false)) => LineKind::Continuation {
                        sub_property: false,
                    },
                }
            } else if !in_section {
                invalid(bom_hint(text, "Expected a profile definition"))
            } else {
                match property_line(text) {
                    Ok(kind) => {
                        if let LineKind::Property { value, .. } = &kind {
                            property = Some(value.is_empty());
                        }
                        kind
                    }
                    Err(e) => invalid(e.message("property")),
                }
            };
            self.lines[i].kind = kind;
        }
    }
}

fn invalid(message: impl Into<String>) -> LineKind {
    LineKind::Invalid {
        message: message.into(),
    }
}

fn bom_hint(text: &str, message: &str) -> String {
    if text.starts_with(BOM) {
        format!(
            "{message}: the file starts with a UTF-8 byte order mark, which the AWS SDKs and \
             the AWS CLI cannot read; save the file as UTF-8 without a BOM"
        )
    } else {
        message.to_string()
    }
}

enum PropertyError {
    NoEquals,
    NoName,
}

impl PropertyError {
    fn message(&self, what: &str) -> String {
        match self {
            PropertyError::NoEquals => format!("Expected an '=' sign defining a {what}"),
            PropertyError::NoName => {
                let mut ctx = what.to_string();
                ctx[..1].make_ascii_uppercase();
                format!("{ctx} did not have a name")
            }
        }
    }
}

/// The SDK's `prepare_line`: trim, cut a comment, trim again. Returns the byte range of what
/// is left and where the comment starts.
fn prepare(line: &str, comments_need_whitespace: bool) -> (usize, usize, Option<usize>) {
    let start = line.len() - line.trim_start_matches(WHITESPACE).len();
    let trimmed = line.trim_matches(WHITESPACE);
    let mut prev_whitespace = false;
    let mut comment = None;
    for (i, c) in trimmed.char_indices() {
        if COMMENT.contains(&c) && (prev_whitespace || !comments_need_whitespace) {
            comment = Some(i);
            break;
        }
        prev_whitespace = c.is_whitespace();
    }
    let body = comment.map_or(trimmed, |i| &trimmed[..i]);
    let body = body.trim_matches(WHITESPACE);
    (start, start + body.len(), comment.map(|i| start + i))
}

/// The kind of a line known to be a property line inside a section (an edited or added one).
fn property_kind(text: &str) -> LineKind {
    property_line(text).unwrap_or_else(|e| invalid(e.message("property")))
}

fn section_line(text: &str) -> LineKind {
    let (start, end, _) = prepare(text, false);
    let body = &text[start..end];
    match body.strip_prefix('[') {
        None => invalid("Profile definition must start with '['"),
        Some(rest) => match rest.strip_suffix(']') {
            None => invalid("Profile definition must end with ']'"),
            Some(name) => LineKind::Section {
                name: name.to_string(),
            },
        },
    }
}

fn property_line(text: &str) -> Result<LineKind, PropertyError> {
    let (start, end, comment) = prepare(text, true);
    let body = &text[start..end];
    let eq = body.find('=').ok_or(PropertyError::NoEquals)?;
    let key = body[..eq].trim_matches(WHITESPACE);
    if key.is_empty() {
        return Err(PropertyError::NoName);
    }
    let raw_value = &body[eq + 1..];
    let value = raw_value.trim_matches(WHITESPACE);
    let lead = raw_value.len() - raw_value.trim_start_matches(WHITESPACE).len();
    let value_start = if value.is_empty() {
        end
    } else {
        start + eq + 1 + lead
    };
    Ok(LineKind::Property {
        key: key.to_ascii_lowercase(),
        value: value.to_string(),
        value_start,
        value_end: value_start + value.len(),
        comment,
    })
}
