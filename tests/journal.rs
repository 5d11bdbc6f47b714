//! The trial lines as a person and a query read them in a real journal: a private
//! `systemd-journald` in a mount namespace of its own, `svr-etl` logging to it, and
//! `journalctl -o json` reading it back.

use std::process::Command;

use serde_json::Value;

use crate::helper::{stderr, write_nan_model_data};

/// Runs `svr-etl once ARGS` (in `dir`) under a private journald; the journal's entries.
fn journal_of(dir: &std::path::Path, runs: &[&str]) -> Vec<Value> {
    let bin = env!("CARGO_BIN_EXE_svr-etl");
    let mut script = String::from(
        "set -e\n\
         mount -t tmpfs tmpfs /run/systemd\n\
         mount -t tmpfs tmpfs /run/log\n\
         mkdir -p /run/systemd/journal /run/log/journal\n\
         /lib/systemd/systemd-journald &\n\
         journald=$!\n\
         for i in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done\n",
    );
    for args in runs {
        script.push_str(&format!(
            "JOURNAL_STREAM=0:0 AWS_EC2_METADATA_DISABLED=true {bin} once {args} >/dev/null || true\n"
        ));
    }
    script.push_str(
        "journalctl -D /run/log/journal --sync >/dev/null 2>&1 || sleep 0.5\n\
         journalctl -D /run/log/journal -o json --no-pager SYSLOG_IDENTIFIER=svr-etl\n\
         kill $journald\n",
    );
    let out = Command::new("unshare")
        .args(["-m", "bash", "-c", &script])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("unshare runs (the tests run as root)");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_journal_shows_readable_trial_lines_with_fields_for_filtering() {
    let dir = tempfile::tempdir().unwrap();
    write_nan_model_data(&dir.path().join("nan.json"));
    std::fs::write(
        dir.path().join("fail.toml"),
        "[dataset]\npath = \"nan.json\"\n[search]\ncv_folds = 0\n",
    )
    .unwrap();
    let entries = journal_of(
        dir.path(),
        &[
            "--gamma 16.391207 --c 40.452183 --epsilon 0.17571951",
            // A model that predicts NaN: a failed trial.
            "--gamma 5e-324 --c 1 --epsilon 0.1 --config fail.toml --sink failed",
        ],
    );
    let field = |e: &Value, k: &str| e[k].as_str().map(str::to_string);
    let ok = entries
        .iter()
        .find(|e| field(e, "MESSAGE").is_some_and(|m| m.starts_with("trial ok")))
        .unwrap_or_else(|| panic!("no trial ok entry in {entries:?}"));
    let message = field(ok, "MESSAGE").unwrap();
    let id = field(ok, "HYPER_ID").expect("HYPER_ID field");
    let r2: f64 = field(ok, "TEST_R2").unwrap().parse().unwrap();
    assert!(message.contains(&id), "{message}");
    assert!(message.contains(&format!("test_r2={r2:.6}")), "{message}");
    assert!(
        message.contains("gamma=16.391207") && message.contains("C=40.452183"),
        "{message}"
    );
    assert!(
        message.contains(" ms") && message.contains("-> file://"),
        "{message}"
    );
    for key in [
        "GAMMA",
        "C",
        "EPSILON",
        "FIT_MS",
        "UPLOAD_MS",
        "BYTES",
        "STUDY",
        "LOCATION",
    ] {
        assert!(ok.get(key).is_some(), "{key} missing from {ok}");
    }
    // tracing-journald writes INFO as priority 5 and WARN as 4.
    assert_eq!(field(ok, "PRIORITY").as_deref(), Some("5"));
    assert!((r2 - 0.5548645916432509).abs() < 1e-4, "{r2}");

    let failed = entries
        .iter()
        .find(|e| field(e, "MESSAGE").is_some_and(|m| m.starts_with("trial failed")))
        .unwrap_or_else(|| panic!("no trial failed entry in {entries:?}"));
    let message = field(failed, "MESSAGE").unwrap();
    let id = field(failed, "HYPER_ID").expect("HYPER_ID field");
    let error = field(failed, "ERROR").expect("ERROR field");
    assert!(
        message.contains(&id) && message.contains(&error),
        "{message}"
    );
    assert!(error.contains("unusable"), "{error}");
    assert_eq!(field(failed, "PRIORITY").as_deref(), Some("4"));
}
