//! The layers listed in `src/lib.rs` hold: a module of the library imports only from
//! layers listed above its own, never from its own layer or one below.

use std::collections::BTreeMap;
use std::path::Path;

/// The layer of each top-level module, from the numbered list in `lib.rs`'s doc.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    let mut current = None;
    for line in lib.lines().map_while(|l| l.strip_prefix("//!")) {
        let line = line.trim_start();
        if let Some((number, rest)) = line.split_once(". ") {
            if let Ok(n) = number.parse::<usize>() {
                current = Some(n);
                add_names(rest, n, &mut layers);
                continue;
            }
        }
        if line.is_empty() {
            current = None;
        } else if let Some(n) = current {
            add_names(line, n, &mut layers);
        }
    }
    layers
}

/// Modules named as [`name`] at the start of a sentence of a layer's entry.
fn add_names(text: &str, layer: usize, layers: &mut BTreeMap<String, usize>) {
    for part in text.split("[`").skip(1) {
        let name = part.split('`').next().unwrap();
        if !name.contains("::") && part.split('`').nth(1).is_some_and(|r| r.starts_with("]:")) {
            layers.insert(name.to_string(), layer);
        }
    }
}

/// The top-level modules a file refers to as `crate::name`, in `use` lines, groups
/// (`crate::{a, b}`), paths and doc links alike.
fn references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                names.push(item.trim().split("::").next().unwrap().to_string());
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..end].to_string());
        }
    }
    names
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every upward or sideways import under `src`: (file, its module, the module it names).
fn violations(src: &Path) -> Vec<String> {
    let layers = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_str().unwrap().trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let own = *layers
            .get(module)
            .unwrap_or_else(|| panic!("src/{module} is in no layer of lib.rs"));
        let text = std::fs::read_to_string(&file).unwrap();
        for name in references(&text) {
            let Some(&theirs) = layers.get(&name) else {
                continue;
            };
            if name != module && theirs >= own {
                found.push(format!(
                    "{} (layer {own}) uses crate::{name} (layer {theirs})",
                    relative.display()
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_module_imports_only_from_the_layers_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(layers.len() >= 14, "{layers:?}");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports against the layers:\n{}",
        found.join("\n")
    );
}

#[test]
fn an_upward_import_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    std::fs::copy(src.join("lib.rs"), dir.path().join("lib.rs")).unwrap();
    std::fs::create_dir(dir.path().join("sink")).unwrap();
    std::fs::write(
        dir.path().join("sink/mod.rs"),
        "use crate::model::id::HyperId;\nuse crate::{dataset, trial::Pipeline};\n",
    )
    .unwrap();
    assert_eq!(
        violations(dir.path()),
        [
            "sink/mod.rs (layer 2) uses crate::dataset (layer 2)",
            "sink/mod.rs (layer 2) uses crate::trial (layer 5)"
        ]
    );
}
