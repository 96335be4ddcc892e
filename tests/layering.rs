//! The crate's dependency rule, checked on the source: every module imports only from its
//! own layer or the layers below it, and no two parts of the crate import each other, however
//! roundabout. See ARCHITECTURE.md for the layers and why.
//!
//! The check reads `src/**/*.rs` as text: every `crate::…` and `super::…` path outside
//! comments, `use` groups included (`use crate::{aws::Iam, secret::Secret}`), resolved to the
//! module it names. A part is a top-level module, or for a folder module each of its files
//! (`cli::rotate`, `rotation::exec`); a part importing its own parent or child (a folder's
//! `mod.rs` and its files) is containment, not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import from its own layer and every layer before it.
const LAYERS: &[&[&str]] = &[
    &["time", "secret"],
    &["aws"],
    &["profiles", "settings", "policy"],
    &["inventory"],
    &["rotation", "hooks", "audit", "grant", "schedule"],
    &["cli", "error", "logging"],
];

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&top))
}

/// `src/cli/rotate.rs` → `["cli", "rotate"]`; `src/profiles/mod.rs` → `["profiles"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments (line comments, doc comments, block comments).
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if !in_string => {
                in_string = true;
                out.push(c);
            }
            '"' if in_string => {
                in_string = false;
                out.push(c);
            }
            '\\' if in_string => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '/' if !in_string && chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if !in_string && chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every path the code names that starts with `crate::` or `super::`, with `use` groups
/// expanded (`crate::{a::B, c}` gives `crate::a::B` and `crate::c`), each with the number of
/// inline modules (`mod tests { … }`) it sits in.
fn paths_in(code: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut depth = 0usize;
    // The brace depth at which each open inline module started.
    let mut inline: Vec<usize> = Vec::new();
    let mut pending_mod = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let boundary = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let (paths, end) = read_path(&chars, i);
            found.extend(paths.into_iter().map(|p| (p, inline.len())));
            i = end;
            continue;
        }
        if boundary && rest.starts_with("mod ") {
            pending_mod = true;
        }
        match c {
            ';' => pending_mod = false,
            '{' => {
                if pending_mod {
                    inline.push(depth);
                    pending_mod = false;
                }
                depth += 1;
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Reads one path from `start`, expanding `{…}` groups; returns the full paths and the end.
fn read_path(chars: &[char], start: usize) -> (Vec<String>, usize) {
    let mut prefix = String::new();
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' || c == ':' {
            prefix.push(c);
            i += 1;
        } else if c == '{' && prefix.ends_with("::") {
            // A group: split its top-level items and read each as a path of its own.
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            i += 1;
            while i < chars.len() {
                let c = chars[i];
                match c {
                    '{' => {
                        depth += 1;
                        item.push(c);
                    }
                    '}' if depth == 0 => break,
                    '}' => {
                        depth -= 1;
                        item.push(c);
                    }
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ => item.push(c),
                }
                i += 1;
            }
            items.push(item);
            let mut out = Vec::new();
            for item in items {
                let item: String = item.chars().filter(|c| !c.is_whitespace()).collect();
                if item.is_empty() {
                    continue;
                }
                let inner: Vec<char> = format!("{prefix}{item}").chars().collect();
                out.extend(read_path(&inner, 0).0);
            }
            return (out, i + 1);
        } else {
            break;
        }
    }
    (vec![prefix.trim_end_matches(':').to_string()], i)
}

/// The module a path names, as segments from the crate root: `super` counted from the file's
/// module `from`, `inline` modules deep. `None` for a path into the file's own inline modules.
fn resolve(path: &str, from: &[String], inline: usize) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut base: Vec<Option<String>> = Vec::new();
    if segments.first() == Some(&"crate") {
        segments.remove(0);
    } else {
        base = from.iter().cloned().map(Some).collect();
        base.extend(std::iter::repeat_n(None, inline));
        while segments.first() == Some(&"super") {
            segments.remove(0);
            base.pop();
        }
    }
    let mut module: Vec<String> = base.into_iter().collect::<Option<Vec<_>>>()?;
    module.extend(segments.iter().map(|s| s.to_string()));
    Some(module)
}

/// The part a module belongs to: its first segment, plus the second for folder modules.
fn part_of(module: &[String], folders: &BTreeSet<String>) -> String {
    match module {
        [] => String::new(),
        [top] => top.clone(),
        [top, second, ..] if folders.contains(top) => format!("{top}::{second}"),
        [top, ..] => top.clone(),
    }
}

struct Crate {
    /// (file, part, top-level module) → the parts it imports, with one example path each.
    imports: Vec<(PathBuf, String, String, BTreeMap<String, String>)>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let folders: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            e.path()
                .is_dir()
                .then(|| e.file_name().to_string_lossy().to_string())
        })
        .collect();
    // Every part that exists, so a path is cut at the deepest part it names.
    let mut parts = BTreeSet::new();
    for file in &files {
        parts.insert(part_of(&module_of(&src, file), &folders));
    }
    let mut imports = Vec::new();
    for file in files {
        if file.file_name().is_some_and(|n| n == "main.rs") {
            continue;
        }
        let module = module_of(&src, &file);
        let part = part_of(&module, &folders);
        let top = module.first().cloned().unwrap_or_default();
        let code = without_comments(&std::fs::read_to_string(&file).unwrap());
        let mut targets = BTreeMap::new();
        for (path, inline) in paths_in(&code) {
            let Some(target) = resolve(&path, &module, inline) else {
                continue;
            };
            let mut target_part = part_of(&target, &folders);
            // `crate::aws::Iam` names part `aws`; `crate::cli::rotate::run` part `cli::rotate`;
            // `crate::cli::OutputFormat` is `cli` (its mod.rs), not a part named OutputFormat.
            if !parts.contains(&target_part) {
                target_part = target.first().cloned().unwrap_or_default();
            }
            if target_part.is_empty() || target_part == part {
                continue;
            }
            targets.entry(target_part).or_insert(path);
        }
        imports.push((file, part, top, targets));
    }
    Crate { imports }
}

fn top_of(part: &str) -> &str {
    part.split("::").next().unwrap()
}

/// One part inside the other (a folder's `mod.rs` and its files).
fn contains(a: &str, b: &str) -> bool {
    !a.contains("::") && top_of(b) == a || !b.contains("::") && top_of(a) == b
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let krate = read_crate();
    let mut violations = Vec::new();
    for (file, _, top, targets) in &krate.imports {
        let Some(own) = layer_of(top) else {
            if !top.is_empty() {
                violations.push(format!(
                    "{}: module `{top}` is in no layer: add it to LAYERS in tests/layering.rs and ARCHITECTURE.md",
                    file.display()
                ));
            }
            continue;
        };
        for (target, example) in targets {
            let target_top = top_of(target);
            match layer_of(target_top) {
                Some(layer) if layer <= own => {}
                Some(_) => violations.push(format!(
                    "{}: `{example}` imports `{target_top}`, a layer above `{top}`",
                    file.display()
                )),
                None => violations.push(format!(
                    "{}: `{example}` names `{target_top}`, which is in no layer",
                    file.display()
                )),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn no_two_parts_of_the_crate_import_each_other() {
    let krate = read_crate();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, part, _, targets) in &krate.imports {
        let edges = graph.entry(part.clone()).or_default();
        for target in targets.keys() {
            if !contains(part, target) {
                edges.insert(target.clone());
            }
        }
    }
    // Depth-first search; a back edge closes a circle, reported as the whole path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_string());
            circles.push(circle.join(" -> "));
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, circles);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_finds_grouped_relative_and_nested_paths() {
    let code = without_comments(
        "use crate::{aws::{Iam, Target}, secret::Secret};\n\
         // crate::cli::nothing\n\
         let x = super::journal::Stage::Done; /* crate::cli::neither */\n\
         let s = \"a // not a comment\"; crate::time::age_days(a, b);\n\
         mod tests { use super::*; use super::super::plan::Retire; }\n\
         use super::fake;",
    );
    let paths = paths_in(&code);
    let expected: Vec<(String, usize)> = [
        ("crate::aws::Iam", 0),
        ("crate::aws::Target", 0),
        ("crate::secret::Secret", 0),
        ("super::journal::Stage::Done", 0),
        ("crate::time::age_days", 0),
        ("super", 1),
        ("super::super::plan::Retire", 1),
        ("super::fake", 0),
    ]
    .iter()
    .map(|(p, d)| (p.to_string(), *d))
    .collect();
    assert_eq!(paths, expected);
    let exec = ["rotation".to_string(), "exec".to_string()];
    let module = |path: &str, inline: usize| resolve(path, &exec, inline);
    let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        module("super::journal::Stage", 0),
        names(&["rotation", "journal", "Stage"])
    );
    assert_eq!(
        module("super::super::plan::Retire", 1),
        names(&["rotation", "plan", "Retire"])
    );
    assert_eq!(
        module("super::Engine", 1),
        names(&["rotation", "exec", "Engine"])
    );
    assert_eq!(module("crate::aws::Iam", 1), names(&["aws", "Iam"]));
    assert_eq!(
        resolve("super::advice", &["cli".to_string()], 0),
        names(&["advice"])
    );
}
