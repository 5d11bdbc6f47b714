//! Shared by the integration tests: running the built binary, reading a local sink.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A `svr-etl` command with a clean environment: no SVR_ETL_* or RUST_LOG from the
/// caller, no AWS metadata look-ups, run in `cwd`.
pub fn svr_etl(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_svr-etl"));
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("SVR_ETL") || key == "RUST_LOG" || key == "JOURNAL_STREAM" {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses newline-delimited JSON.
pub fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// The `key=value` fields of `svr-etl once`'s line.
pub fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

/// A `file://` location as a path.
pub fn file_path(location: &str) -> PathBuf {
    PathBuf::from(
        location
            .strip_prefix("file://")
            .expect("a file:// location"),
    )
}

/// Every file under `dir` (relative paths, sorted), hidden ones included.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// R^2 of `pred` against `truth`, written out independently of the crate's own.
pub fn r2(truth: &[f64], pred: &[f64]) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let sse: f64 = truth.iter().zip(pred).map(|(t, p)| (t - p).powi(2)).sum();
    let sst: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    1.0 - sse / sst
}
