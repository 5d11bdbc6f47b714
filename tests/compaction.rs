//! `svr-etl compact` on a real local sink: trials of several days from two writers,
//! compacted day by day into Parquet; DuckDB reads the Parquet objects with the tables'
//! types and row counts, and the views and ranking queries give the same ranking before
//! and after, a late object included; the leaderboard, the report and the TPE history
//! read the compacted days.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;
use svr_etl::compaction::Compactor;
use svr_etl::config::Settings;
use svr_etl::sink::{LocalSink, Sink, SinkError};

use crate::athena::{duckdb, duckdb_tables};
use crate::helper::{files_under, stderr, stdout, svr_etl, svr_etl_at, Create, Hooked};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["hyper_id"].as_i64().unwrap())
        .collect()
}

/// Same trials in the same order, scores within 1e-9.
fn same_ranking(a: &[Value], b: &[Value], what: &str) {
    assert_eq!(ids(a), ids(b), "{what}");
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (
            x["test_r2"].as_f64().unwrap(),
            y["test_r2"].as_f64().unwrap(),
        );
        assert!((x - y).abs() <= 1e-9, "{what}: {x} vs {y}");
    }
}

fn leaderboard(dir: &Path, by: &str) -> Vec<Value> {
    let out = svr_etl(dir)
        .args(["leaderboard", "--format", "json", "--by", by])
        .output()
        .unwrap();
    serde_json::from_str(&ok(out)).unwrap()
}

fn compact(dir: &Path, day: &str) -> String {
    ok(svr_etl(dir)
        .args(["compact", "--day", day])
        .output()
        .unwrap())
}

fn rows(tables: &Value, table: &str) -> u64 {
    tables[table]["rows"].as_u64().unwrap()
}

/// The UTC day `back` days before today, as `YYYY-MM-DD`.
fn days_ago(back: u64) -> String {
    let today = chrono::Utc::now().date_naive();
    today
        .checked_sub_days(chrono::Days::new(back))
        .unwrap()
        .to_string()
}

#[test]
fn compacted_days_rank_the_same_on_duckdb_and_in_the_leaderboard() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("svr-etl-output");
    // Two writers (two processes, each its own id node), three recent days: the views
    // read them from JSON before compaction and from Parquet after.
    let (d1, d2, d3) = (days_ago(5), days_ago(4), days_ago(2));
    for (day, time, trials) in [
        (&d1, "10:00:00", "4"),
        (&d1, "16:00:00", "3"),
        (&d2, "09:00:00", "4"),
        (&d3, "08:00:00", "3"),
    ] {
        ok(svr_etl_at(dir.path(), &format!("{day} {time}"))
            .args(["once", "--trials", trials])
            .output()
            .unwrap());
    }
    let days: HashSet<String> = files_under(&sink)
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .map(|f| f.split('/').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(days.len(), 3, "{days:?}");

    let before_cv = duckdb(&sink, "final_query_cv.sql");
    let before_test = duckdb(&sink, "final_query.sql");
    assert_eq!(before_cv.len(), 14);
    same_ranking(
        &leaderboard(dir.path(), "cv_r2"),
        &before_cv,
        "leaderboard before",
    );

    // A day not finished is refused, naming when it can be.
    let today = days_ago(0);
    let out = svr_etl(dir.path())
        .args(["compact", "--day", &today])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not finished"), "{}", stderr(&out));

    let first = compact(dir.path(), &d1);
    assert!(first.contains("compacted 7 trials"), "{first}");
    let again = compact(dir.path(), &d1);
    assert!(again.contains("already compacted"), "{again}");
    assert!(compact(dir.path(), &days_ago(3)).contains("no trials"));
    for day in [&d2, &d3] {
        compact(dir.path(), day);
    }
    let parts: Vec<String> = files_under(&sink)
        .into_iter()
        .filter(|f| f.contains("_parquet/"))
        .collect();
    let mut expected: Vec<String> = ["fact_parquet", "hyper_parquet"]
        .iter()
        .flat_map(|t| [&d1, &d2, &d3].map(|d| format!("{t}/dt={d}/part-00000.parquet")))
        .collect();
    expected.sort();
    assert_eq!(parts, expected);

    // DuckDB reads the Parquet objects with the DDL's types (the script checks each
    // column) and as many rows as the JSON; the views count each trial once.
    let tables = duckdb_tables(&sink);
    assert_eq!(rows(&tables, "hyperparams_parquet"), 14);
    assert_eq!(rows(&tables, "hyperparams"), 14);
    assert_eq!(rows(&tables, "predict_parquet"), 14 * 442);
    assert_eq!(rows(&tables, "predict"), 14 * 442);
    assert_eq!(rows(&tables, "hyperparams_all"), 14);
    assert_eq!(rows(&tables, "predict_all"), 14 * 442);
    assert_eq!(
        tables["hyperparams_parquet"]["types"],
        tables["hyperparams"]["types"]
    );
    assert_eq!(
        tables["predict_parquet"]["types"],
        tables["predict"]["types"]
    );

    same_ranking(&duckdb(&sink, "final_query_cv.sql"), &before_cv, "cv after");
    same_ranking(
        &duckdb(&sink, "final_query.sql"),
        &before_test,
        "test after",
    );
    same_ranking(
        &leaderboard(dir.path(), "cv_r2"),
        &before_cv,
        "leaderboard after",
    );
    same_ranking(
        &leaderboard(dir.path(), "test_r2"),
        &before_test,
        "by test after",
    );

    // A late object: a trial of d2 lands after that day was compacted. The views and
    // the leaderboard count it once, from JSON; the next compaction puts it in a second
    // part.
    ok(svr_etl_at(dir.path(), &format!("{d2} 20:00:00"))
        .args(["once"])
        .output()
        .unwrap());
    let tables = duckdb_tables(&sink);
    assert_eq!(rows(&tables, "hyperparams_all"), 15);
    assert_eq!(rows(&tables, "predict_all"), 15 * 442);
    let with_late = duckdb(&sink, "final_query_cv.sql");
    assert_eq!(with_late.len(), 15);
    same_ranking(
        &leaderboard(dir.path(), "cv_r2"),
        &with_late,
        "leaderboard, late",
    );
    let late = compact(dir.path(), &d2);
    assert!(late.contains("compacted 1 trials (late objects"), "{late}");
    assert!(sink
        .join(format!("hyper_parquet/dt={d2}/part-00001.parquet"))
        .exists());
    assert!(sink
        .join(format!("fact_parquet/dt={d2}/part-00001.parquet"))
        .exists());
    let tables = duckdb_tables(&sink);
    assert_eq!(rows(&tables, "hyperparams_parquet"), 15);
    assert_eq!(rows(&tables, "hyperparams_all"), 15);
    assert_eq!(rows(&tables, "predict_all"), 15 * 442);
    same_ranking(
        &duckdb(&sink, "final_query_cv.sql"),
        &with_late,
        "late, compacted",
    );
    same_ranking(
        &leaderboard(dir.path(), "cv_r2"),
        &with_late,
        "leaderboard, late compacted",
    );

    // The JSON of compacted days may expire (a lifecycle rule): the readers do not
    // need it.
    std::fs::remove_dir_all(sink.join("hyper")).unwrap();
    std::fs::remove_dir_all(sink.join("fact")).unwrap();
    same_ranking(
        &duckdb(&sink, "final_query_cv.sql"),
        &with_late,
        "parquet only",
    );
    same_ranking(
        &leaderboard(dir.path(), "cv_r2"),
        &with_late,
        "leaderboard, parquet only",
    );
    let report = dir.path().join("report.html");
    ok(svr_etl(dir.path())
        .args(["report", "--out"])
        .arg(&report)
        .output()
        .unwrap());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains(&with_late[0]["hyper_id"].to_string()),
        "best trial named"
    );
}

#[test]
fn an_old_day_joins_the_views_once_compact_without_a_day_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("svr-etl-output");
    // A day from before compaction was turned on, and a recent one.
    for (when, trials) in [
        ("2025-06-02 10:00:00", "3"),
        (&*format!("{} 10:00:00", days_ago(1)), "2"),
    ] {
        ok(svr_etl_at(dir.path(), when)
            .args(["once", "--trials", trials])
            .output()
            .unwrap());
    }
    // The views read JSON for the last 7 days only: the old day is not there yet. The
    // leaderboard lists the days and reads every day no part holds.
    assert_eq!(rows(&duckdb_tables(&sink), "hyperparams_all"), 2);
    assert_eq!(leaderboard(dir.path(), "cv_r2").len(), 5);
    let out = ok(svr_etl(dir.path()).arg("compact").output().unwrap());
    assert!(out.contains("2025-06-02: compacted 3 trials"), "{out}");
    assert!(
        out.contains(&format!("{}: compacted 2 trials", days_ago(1))),
        "{out}"
    );
    assert_eq!(rows(&duckdb_tables(&sink), "hyperparams_all"), 5);
    same_ranking(
        &leaderboard(dir.path(), "cv_r2"),
        &duckdb(&sink, "final_query_cv.sql"),
        "after the backfill",
    );
    // Nothing is left to take.
    let again = ok(svr_etl(dir.path()).arg("compact").output().unwrap());
    assert!(!again.contains(": compacted"), "{again}");
}

#[test]
fn two_writers_compacting_one_day_write_each_part_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("svr-etl-output");
    ok(svr_etl_at(dir.path(), "2025-07-01 12:00:00")
        .args(["once", "--trials", "6"])
        .output()
        .unwrap());
    for _ in 0..5 {
        let racers: Vec<_> = (0..2)
            .map(|_| {
                svr_etl(dir.path())
                    .args(["compact", "--day", "2025-07-01"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<String> = racers
            .into_iter()
            .map(|r| ok(r.wait_with_output().unwrap()))
            .collect();
        // Usually one writes the day and the other finds it done; when the second
        // arrives between the first's two tables it writes the second table. Either
        // way each table's part is written once.
        let wrote = outs
            .iter()
            .filter(|o| o.contains("compacted 6 trials"))
            .count();
        let done = outs
            .iter()
            .filter(|o| o.contains("already compacted"))
            .count();
        assert!(wrote >= 1 && wrote + done == 2, "{outs:?}");
        assert_eq!(
            files_under(&sink)
                .iter()
                .filter(|f| f.contains("_parquet/"))
                .count(),
            2,
            "one part per table"
        );
        std::fs::remove_dir_all(sink.join("hyper_parquet")).unwrap();
        std::fs::remove_dir_all(sink.join("fact_parquet")).unwrap();
    }
}

#[test]
fn the_tpe_history_reads_compacted_days() {
    let dir = tempfile::tempdir().unwrap();
    let tpe = |cmd: &mut Command| {
        cmd.env("SVR_ETL__SEARCH__SAMPLER", "tpe");
    };
    let mut first = svr_etl_at(dir.path(), "2025-08-01 12:00:00");
    tpe(&mut first);
    ok(first.args(["once", "--trials", "12"]).output().unwrap());
    compact(dir.path(), "2025-08-01");
    std::fs::remove_dir_all(dir.path().join("svr-etl-output/hyper")).unwrap();
    let mut next = svr_etl(dir.path());
    tpe(&mut next);
    let line = ok(next.arg("once").output().unwrap());
    let hyper = files_under(&dir.path().join("svr-etl-output"))
        .into_iter()
        .find(|f| f.starts_with("hyper/"))
        .unwrap();
    let record: Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("svr-etl-output").join(hyper))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(record["n_history"], 12, "{line}");
}

#[test]
fn a_day_past_max_object_mib_is_split_into_whole_trial_parts() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("svr-etl-output");
    // About 33 KB of JSON predictions a trial: 40 trials pass 1 MiB.
    ok(svr_etl_at(dir.path(), "2025-07-02 12:00:00")
        .args(["once", "--trials", "40"])
        .output()
        .unwrap());
    let out = ok(svr_etl(dir.path())
        .args(["compact", "--day", "2025-07-02"])
        .env("SVR_ETL__COMPACTION__MAX_OBJECT_MIB", "1")
        .output()
        .unwrap());
    assert!(out.contains("compacted 40 trials"), "{out}");
    let facts: Vec<String> = files_under(&sink)
        .into_iter()
        .filter(|f| f.starts_with("fact_parquet/"))
        .collect();
    assert_eq!(
        facts,
        [
            "fact_parquet/dt=2025-07-02/part-00000.parquet",
            "fact_parquet/dt=2025-07-02/part-00001.parquet",
        ]
    );
    for part in &facts {
        let size = std::fs::metadata(sink.join(part)).unwrap().len();
        assert!(size < 1024 * 1024, "{part}: {size} bytes");
    }
    let tables = duckdb_tables(&sink);
    assert_eq!(rows(&tables, "predict_parquet"), 40 * 442);
    assert_eq!(rows(&tables, "predict_all"), 40 * 442);
    assert_eq!(rows(&tables, "hyperparams_all"), 40);
}

#[tokio::test]
async fn a_compaction_stopped_between_the_tables_counts_no_trial_twice_and_finishes_later() {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("svr-etl-output");
    // A recent day: the views read its JSON while it is not compacted.
    let day_text = days_ago(3);
    ok(svr_etl_at(dir.path(), &format!("{day_text} 12:00:00"))
        .args(["once", "--trials", "5"])
        .output()
        .unwrap());
    let before = duckdb(&sink, "final_query_cv.sql");
    let settings = Settings::load(None).unwrap();
    let compactor = Compactor::new(settings.compaction(), settings.sink().upload_timeout());
    let day: chrono::NaiveDate = day_text.parse().unwrap();

    // Writes of the hyper records' parts fail, as a store refusing mid-compaction.
    let local = LocalSink::new(sink.clone());
    let refusing = Hooked {
        hook: Arc::new(move |create| match create {
            Create::Starting(key) if key.starts_with("hyper_parquet/") => Some(SinkError::Remote {
                op: "uploading",
                location: local.location(key),
                message: "503 Slow Down".into(),
            }),
            _ => None,
        }),
        inner: Arc::new(LocalSink::new(sink.clone())),
    };
    let err = compactor
        .compact_day(&refusing, day)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("hyper_parquet/dt={day_text}/part-00000.parquet"))
            && err.contains("503"),
        "{err}"
    );
    // The predictions are compacted, the hyper records are not: each trial still
    // counts once, and the ranking is the same.
    let tables = duckdb_tables(&sink);
    assert_eq!(rows(&tables, "predict_parquet"), 5 * 442);
    assert_eq!(rows(&tables, "hyperparams_parquet"), 0);
    assert_eq!(rows(&tables, "predict_all"), 5 * 442);
    assert_eq!(rows(&tables, "hyperparams_all"), 5);
    same_ranking(
        &duckdb(&sink, "final_query_cv.sql"),
        &before,
        "half compacted",
    );

    // The next run writes what is missing and nothing twice.
    let done = compactor
        .compact_day(&LocalSink::new(sink.clone()), day)
        .await
        .unwrap();
    assert!(done.fact.written.is_empty(), "{done}");
    assert_eq!(
        (done.hyper.written.len(), done.hyper.trials),
        (1, 5),
        "{done}"
    );
    let tables = duckdb_tables(&sink);
    assert_eq!(rows(&tables, "hyperparams_all"), 5);
    assert_eq!(rows(&tables, "predict_all"), 5 * 442);
    same_ranking(&duckdb(&sink, "final_query_cv.sql"), &before, "finished");
}
