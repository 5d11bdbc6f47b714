//! `svr-etl report` over a real sink: the page is well-formed, self-contained, names
//! the best trial, and headless Chromium renders it to a screenshot that is not blank.

use std::process::Command;

use serde_json::Value;

use crate::helper::{stderr, stdout, svr_etl};

#[test]
fn the_report_is_a_self_contained_page_a_browser_renders() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], sampler: &str| {
        let out = svr_etl(dir.path())
            .args(args)
            .env("SVR_ETL__SEARCH__SAMPLER", sampler)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    run(&["once", "--trials", "15"], "random");
    run(&["once", "--trials", "10"], "tpe");
    let line = run(&["report", "--out", "page.html"], "random");
    assert!(line.contains("25 trials"), "{line}");
    let board: Vec<Value> =
        serde_json::from_str(&run(&["leaderboard", "--format", "json"], "random")).unwrap();
    let best = board[0]["hyper_id"].to_string();

    let page = dir.path().join("page.html");
    let shot = dir.path().join("page.png");
    let profile = tempfile::tempdir().unwrap();
    let chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1050,1900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (apt-get install chromium; .ci/run installs it)");
    assert!(chromium.status.success(), "{}", stderr(&chromium));

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/report_check.py");
    let check = Command::new("python3")
        .arg(script)
        .arg(&page)
        .arg(&shot)
        .arg(&best)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    eprintln!("{}", stdout(&check).trim());
}

#[test]
fn a_sink_without_trials_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = svr_etl(dir.path())
        .args(["report", "--sink", "empty"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no ok trial") && err.contains("empty"),
        "{err}"
    );
}
