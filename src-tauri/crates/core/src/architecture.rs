//! The crate's module graph, derived from its sources, and the rule that it has no cycles.
//!
//! A node is a source file's module (`providers/web/form.rs` → `providers::web::form`; `lib.rs`, which
//! only declares modules, is left out). There is an edge A → B when A's code names B: a
//! `crate::b::…` path (also inside `use crate::{…}` groups), a `super::…` path, or a path through
//! one of A's own child modules (`webhook::verify` in `wechat/mod.rs`). Declaring a child (`mod b;`)
//! is not an edge. Comments and string literals are skipped, and so is test code (`#[cfg(test)]` items
//! and modules declared under `#[cfg(test)]`, e.g. `testing`): fakes may depend on what they fake; the
//! rule is about the product's modules.
//!
//! `cargo test -p voicewall-core --lib architecture -- --nocapture` prints the graph, one line per
//! module; `VOICEWALL_GRAPH_SRC=/some/src` analyses another source tree (e.g. an older checkout).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`a::b`) → the modules it names.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Read every `.rs` file under `src` and derive the graph.
pub fn graph_of(src: &Path) -> std::io::Result<Graph> {
    let mut files = Vec::new();
    collect(src, &mut files)?;
    let mut modules = BTreeMap::new();
    let mut test_only = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f)?;
        let parent = module_path(src, f);
        let (code, test_mods) = without_tests(&strip(&text));
        for m in test_mods {
            test_only.insert(match &parent {
                Some(p) => format!("{p}::{m}"),
                None => m,
            });
        }
        if let Some(m) = parent {
            modules.insert(m, code);
        }
    }
    modules.retain(|m, _| {
        !test_only
            .iter()
            .any(|t| m == t || m.starts_with(&format!("{t}::")))
    });
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    Ok(modules
        .iter()
        .map(|(m, code)| (m.clone(), edges(m, code, &known)))
        .collect())
}

/// The code without its `#[cfg(test)]` items, and the names of modules declared `#[cfg(test)] mod x;`.
fn without_tests(code: &str) -> (String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut test_mods = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let semi = item.find(';');
        let brace = item.find('{');
        let end = match (semi, brace) {
            (Some(s), b) if b.is_none_or(|b| s < b) => {
                // A declaration: `mod x;` names a test-only file module.
                let decl = item[..s].trim();
                if let Some(name) = decl.strip_prefix("mod ").or(decl.strip_prefix("pub mod ")) {
                    test_mods.push(name.trim().to_string());
                }
                s + 1
            }
            (_, Some(b)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            _ => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, test_mods)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn module_path(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
        return None;
    }
    Some(parts.join("::"))
}

/// The code without comments, string and char literals (each replaced by a space).
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br") {
            // Raw string: r"…", r#"…"#, br"…".
            let start = if rest[0] == b'b' { i + 2 } else { i + 1 };
            let hashes = b[start..].iter().take_while(|c| **c == b'#').count();
            if b.get(start + hashes) != Some(&b'"') {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            i = start + hashes + 1;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push(' ');
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') — not a lifetime ('a) or a label.
            let lit_end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|c| *c == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let ch_len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match lit_end {
                Some(end) => {
                    i = end + 1;
                    out.push(' ');
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path written in `code`, as segment lists, with `use` groups expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_path = is_ident(chars[i])
            && (i == 0
                || !(is_ident(chars[i - 1])
                    || (chars[i - 1] == ':' && i >= 2 && chars[i - 2] == ':')));
        if starts_path {
            let (found, next) = read_path(&chars, i, Vec::new());
            out.extend(found);
            i = next.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Read `a::b::{c, d::e}` from `i`; returns the complete paths and where reading stopped.
fn read_path(chars: &[char], mut i: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut segs = prefix;
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            // A group: each comma-separated item continues the prefix.
            let mut all = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return (all, i + 1);
                }
                let (found, next) = read_path(chars, i, segs.clone());
                all.extend(found);
                // Skip `as x` and anything else up to the next item.
                i = next;
                while i < chars.len() && chars[i] != ',' && chars[i] != '}' {
                    if chars[i] == '{' {
                        break;
                    }
                    i += 1;
                }
            }
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if start == i {
            return (vec![segs], i);
        }
        segs.push(chars[start..i].iter().collect());
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
            i = j + 2;
        } else {
            return (vec![segs], i);
        }
    }
}

/// The modules `module`'s code names.
fn edges(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let here: Vec<&str> = module.split("::").collect();
    let mut out = BTreeSet::new();
    for path in paths(code) {
        if path.len() < 2 {
            continue;
        }
        let absolute: Vec<String> = match path[0].as_str() {
            "crate" => path[1..].to_vec(),
            "super" => {
                let ups = path.iter().take_while(|s| *s == "super").count();
                if ups > here.len() {
                    continue;
                }
                here[..here.len() - ups]
                    .iter()
                    .map(|s| s.to_string())
                    .chain(path[ups..].iter().cloned())
                    .collect()
            }
            "self" => here
                .iter()
                .map(|s| s.to_string())
                .chain(path[1..].iter().cloned())
                .collect(),
            child => {
                let candidate = format!("{module}::{child}");
                if !known.contains(&candidate) {
                    continue;
                }
                here.iter()
                    .map(|s| s.to_string())
                    .chain(path.iter().cloned())
                    .collect()
            }
        };
        // The longest prefix that is a module.
        let target = (1..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|m| known.contains(m));
        if let Some(t) = target {
            if t != module {
                out.insert(t);
            }
        }
    }
    out
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
pub fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// One line per module: `a::b -> c, d`.
pub fn render(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, to)| {
            format!(
                "{m} -> {}\n",
                to.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> PathBuf {
        std::env::var_os("VOICEWALL_GRAPH_SRC")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
    }

    #[test]
    fn the_module_graph_has_no_cycles() {
        let graph = graph_of(&src()).expect("read the sources");
        println!("{}", render(&graph));
        let cycles = cycles(&graph);
        assert!(
            cycles.is_empty(),
            "module cycles (each line: modules that reach each other):\n{}",
            cycles
                .iter()
                .map(|c| c.join(" <-> "))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn paths_are_read_from_code_not_from_comments_or_strings() {
        let known: BTreeSet<String> = ["a", "b", "c", "d", "p", "p::q", "p::r"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let code = strip(
            "use crate::{a::X, b};\n// crate::c::Y\nlet s = \"crate::d::Z\"; let c = '\"'; fn f<'a>() {}\n\
             use super::r::T; q::go(); crate::p::q::deep();",
        );
        let e = edges("p::q", &code, &known);
        assert_eq!(
            e.into_iter().collect::<Vec<_>>(),
            vec!["a", "b", "p::r"],
            "q is p::q itself"
        );
        let e = edges("p", "q::go(); r::T", &known);
        assert_eq!(e.into_iter().collect::<Vec<_>>(), vec!["p::q", "p::r"]);
    }

    #[test]
    fn test_code_is_not_part_of_the_graph() {
        let (code, mods) = without_tests(
            "use crate::a::X;\n#[cfg(test)]\nmod testing;\n#[cfg(test)]\nmod tests { use crate::b::Y; fn f() { {} } }\nuse crate::c::Z;",
        );
        assert_eq!(mods, vec!["testing"]);
        assert!(code.contains("crate::a") && code.contains("crate::c"));
        assert!(!code.contains("crate::b"), "{code}");
    }

    #[test]
    fn a_cycle_is_found_and_a_chain_is_not() {
        let g = |edges: &[(&str, &str)]| {
            let mut g = Graph::new();
            for (a, b) in edges {
                g.entry(a.to_string()).or_default().insert(b.to_string());
                g.entry(b.to_string()).or_default();
            }
            g
        };
        assert!(cycles(&g(&[("a", "b"), ("b", "c")])).is_empty());
        assert_eq!(
            cycles(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
            vec![vec!["a".to_string(), "b".into(), "c".into()]]
        );
    }
}
