//! `svr-etl export --optuna`: the journal read by Optuna 5.0 itself, its importances,
//! and optuna-dashboard rendered in headless Chromium (tests/optuna_check.py).

use std::path::Path;
use std::process::Command;

use crate::helper::{stderr, stdout, svr_etl};

#[test]
fn optuna_loads_the_exported_study_and_its_dashboard_shows_the_best_trial() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], sampler: &str| {
        let out = svr_etl(dir.path())
            .args(args)
            .env("SVR_ETL__SEARCH__SAMPLER", sampler)
            .env("SVR_ETL__LOG__LEVEL", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&["once", "--trials", "12"], "random");
    run(&["once", "--trials", "6"], "tpe");
    let line = run(&["export", "--optuna", "study.journal"], "random");
    assert!(line.contains("18 trials, value cv_r2"), "{line}");

    // An existing journal is Optuna's record of some study: it is not replaced.
    let again = svr_etl(dir.path())
        .args(["export", "--optuna", "study.journal"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("study.journal"),
        "{}",
        stderr(&again)
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/optuna_check.py");
    let check = Command::new("python3")
        .arg(script)
        .arg(dir.path().join("study.journal"))
        .arg(dir.path().join("svr-etl-output/hyper"))
        .arg(dir.path().join("dashboard.png"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    eprintln!("{}", stdout(&check).trim());
}
