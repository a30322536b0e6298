//! `shared`'s modules form layers: no module imports one that (directly or through others)
//! imports it back. Read from the sources, so a new back-edge fails here with the circle
//! named. A module is a top-level file or folder (`x.rs`, or `x/` with its submodules,
//! which may use each other); an import is a `crate::` path, or a `use` of a submodule
//! (`pub use store::…` in `x/mod.rs` makes `x` depend on what `x/store.rs` imports).

use std::collections::{BTreeMap, BTreeSet};

fn sources() -> BTreeMap<String, String> {
    let root = e2e::repo_root().join("shared/src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read shared/src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&root)
                .expect("under src")
                .with_extension("");
            let mut name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if name.last().is_some_and(|n| n == "mod") {
                name.pop();
            }
            if name == ["lib"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            // Tests may reach anywhere; comments are not imports.
            let text = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text[..],
            };
            let text: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(name.join("::"), text);
        }
    }
    out
}

/// `a::{b::{c, d}, e}` → `a::b::c`, `a::b::d`, `a::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&format!("{prefix}{head}"), &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand(&format!("{prefix}{head}"), &inner[start..], out);
    }
}

fn imports(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut paths = Vec::new();
    let statement =
        regex::Regex::new(r"(?s)\buse\s+(crate::|self::|super::)?([a-z_{][^;]*);").expect("re");
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    for c in statement.captures_iter(text) {
        let mut expanded = Vec::new();
        expand("", &c[2], &mut expanded);
        for p in expanded {
            paths.push(match c.get(1).map(|m| m.as_str()) {
                Some("crate::") => p,
                Some("super::") => format!("{parent}::{p}"),
                // A submodule of this one (`pub use store::…` in `x/mod.rs`).
                _ => format!("{module}::{p}"),
            });
        }
    }
    let inline = regex::Regex::new(r"crate::([a-z_]+(?:::[a-z_]+)*)").expect("re");
    paths.extend(inline.captures_iter(text).map(|c| c[1].to_owned()));
    let mut out = BTreeSet::new();
    for p in paths {
        let parts: Vec<&str> = p.split("::").map(str::trim).collect();
        // The longest prefix that names a module of the crate.
        if let Some(target) = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m))
        {
            let (from, to) = (top(module), top(&target));
            if from != to {
                out.insert(to.to_owned());
            }
        }
    }
    out
}

/// The top-level module (`template` for `template::store`).
fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn graph_of(sources: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in sources {
        graph
            .entry(top(m).to_owned())
            .or_default()
            .extend(imports(m, text, &modules));
    }
    graph
}

#[test]
fn shared_has_no_import_circle() {
    let graph = graph_of(&sources());
    assert!(graph.len() > 20, "read the modules: {:?}", graph.keys());
    assert!(graph["state"].contains("store"), "imports are read");
    if let Some(c) = circle(&graph) {
        panic!("import circle in shared: {}", c.join(" -> "));
    }
}

#[test]
fn a_back_edge_is_caught() {
    let mut sources = sources();
    sources
        .get_mut("ids")
        .expect("ids")
        .push_str("\nuse crate::state::AppState;\n");
    let c = circle(&graph_of(&sources)).expect("the added back-edge closes a circle");
    assert!(c.contains(&"ids".to_owned()), "{c:?}");
}
