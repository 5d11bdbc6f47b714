//! queries/ against what the daemon writes: the columns are the record fields, every
//! file parses as Athena SQL, and the ranking query, run on DuckDB over real output,
//! agrees with the hyper records and with `svr-etl leaderboard`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use svr_etl::config::Settings;
use svr_etl::dataset::Dataset;
use svr_etl::model::records::{FACT_FIELDS, HYPER_FIELDS};
use svr_etl::store;

use crate::helper::{files_under, ndjson, stderr, stdout, svr_etl};

fn query(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("queries")
            .join(name),
    )
    .unwrap()
}

/// The column names of a CREATE EXTERNAL TABLE, lower-cased, then its partition columns.
fn ddl_columns(sql: &str) -> (Vec<String>, Vec<String>) {
    let column = |line: &str| {
        let line = line.trim();
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(name), Some(kind))
                if kind
                    .trim_end_matches(',')
                    .chars()
                    .all(|c| c.is_ascii_uppercase())
                    && !name.starts_with("--") =>
            {
                Some(name.trim_matches('`').to_lowercase())
            }
            _ => None,
        }
    };
    let body = sql
        .split_once("(\n")
        .unwrap()
        .1
        .split_once("\n)")
        .unwrap()
        .0;
    let columns = body.lines().filter_map(column).collect();
    let partitions = sql
        .split_once("PARTITIONED BY (")
        .map(|(_, rest)| {
            rest.split_once(')')
                .unwrap()
                .0
                .split(',')
                .filter_map(column)
                .collect()
        })
        .unwrap_or_default();
    (columns, partitions)
}

fn lower(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| f.to_lowercase()).collect()
}

#[test]
fn table_columns_are_exactly_the_serialized_fields() {
    let (hyper, hyper_parts) = ddl_columns(&query("create_hyperparams_table.sql"));
    assert_eq!(hyper, lower(HYPER_FIELDS));
    assert_eq!(hyper_parts, ["dt"]);
    let (fact, fact_parts) = ddl_columns(&query("create_predict_table.sql"));
    assert_eq!(fact, lower(FACT_FIELDS));
    assert_eq!(fact_parts, ["dt"]);
    let (data, data_parts) = ddl_columns(&query("create_data_table.sql"));
    let d = Dataset::embedded();
    let mut expected = vec!["point_id".to_string(), "is_train".to_string()];
    expected.extend(d.feature_names().iter().cloned());
    expected.push("y_true".into());
    assert_eq!(data, expected);
    assert!(data_parts.is_empty());
    // The compacted copies carry the same columns, with the types the Parquet files
    // are written with.
    let (parquet, parts) = ddl_columns(&query("create_hyperparams_parquet_table.sql"));
    assert_eq!((parquet, parts), (hyper, hyper_parts));
    let (parquet, parts) = ddl_columns(&query("create_predict_parquet_table.sql"));
    assert_eq!((parquet, parts), (fact, fact_parts));
    for (file, columns) in [
        (
            "create_hyperparams_parquet_table.sql",
            store::parquet::hyper_columns(),
        ),
        (
            "create_predict_parquet_table.sql",
            store::parquet::fact_columns(),
        ),
    ] {
        let sql = query(file);
        for (name, _, kind) in columns {
            let line = format!("  {name} {},", kind.athena());
            let last = format!("  {name} {}\n)", kind.athena());
            assert!(
                sql.contains(&line) || sql.contains(&last),
                "{file}: {name} {kind:?}"
            );
        }
    }
}

#[test]
fn the_shipped_config_parses_and_validates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/svr-etl.toml");
    let settings = Settings::load(Some(&path)).unwrap();
    assert!(settings
        .changed_keys(&Settings::load(None).unwrap())
        .is_empty());
}

/// Runs tests/sql/athena_on_duckdb.py over a local sink with `arg`; its JSON output.
fn duckdb_script(sink: &Path, arg: &std::ffi::OsStr) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql/athena_on_duckdb.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(sink)
        .arg(arg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a query from queries/ on DuckDB over a local sink; the rows as JSON.
pub fn duckdb(sink: &Path, name: &str) -> Vec<Value> {
    let query = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("queries")
        .join(name);
    match duckdb_script(sink, query.as_os_str()) {
        Value::Array(rows) => rows,
        other => panic!("not rows: {other}"),
    }
}

/// Each table's and view's row count and column types, as DuckDB reads them.
pub fn duckdb_tables(sink: &Path) -> Value {
    duckdb_script(sink, std::ffi::OsStr::new("--tables"))
}

#[test]
fn final_query_on_duckdb_matches_the_records_and_the_leaderboard() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = svr_etl(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    // An older trial of another study, which the ranking must leave out.
    run(&["once", "--gamma", "10", "--c", "50", "--epsilon", "0.1"]);
    run(&["once", "--trials", "60"]);
    let sink = dir.path().join("svr-etl-output");

    let records: HashMap<i64, Value> = files_under(&sink)
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .flat_map(|f| ndjson(&std::fs::read_to_string(sink.join(f)).unwrap()))
        .map(|r| (r["hyper_id"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(records.len(), 61);

    let rows = duckdb(&sink, "final_query.sql");
    assert_eq!(rows.len(), 60, "one study, ok trials only");
    for row in &rows {
        let record = &records[&row["hyper_id"].as_i64().unwrap()];
        let (sql, daemon) = (
            row["test_r2"].as_f64().unwrap(),
            record["test_r2"].as_f64().unwrap(),
        );
        assert!((sql - daemon).abs() <= 1e-9, "{sql} vs {daemon}");
        assert_eq!(row["c"], record["C"]);
        assert_eq!(row["n_test"], 89);
    }
    assert!(rows
        .windows(2)
        .all(|w| w[0]["test_r2"].as_f64() >= w[1]["test_r2"].as_f64()));

    let board: Vec<Value> = serde_json::from_str(&run(&[
        "leaderboard",
        "--format",
        "json",
        "--by",
        "test_r2",
    ]))
    .unwrap();
    let ids = |rows: &[Value]| {
        rows.iter()
            .map(|r| r["hyper_id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&board), ids(&rows));
    for (b, r) in board.iter().zip(&rows) {
        assert!((b["test_r2"].as_f64().unwrap() - r["test_r2"].as_f64().unwrap()).abs() <= 1e-9);
    }
    let top: Vec<Value> = serde_json::from_str(&run(&[
        "leaderboard",
        "--format",
        "json",
        "--top",
        "5",
        "--by",
        "test_r2",
    ]))
    .unwrap();
    assert_eq!(ids(&top), ids(&rows)[..5]);

    // Ranked by the cross-validated score, with the computed test R^2 beside it: the
    // query and the leaderboard (whose default it is) agree.
    let by_cv = duckdb(&sink, "final_query_cv.sql");
    assert_eq!(by_cv.len(), 60);
    assert!(by_cv
        .windows(2)
        .all(|w| w[0]["cv_r2"].as_f64() >= w[1]["cv_r2"].as_f64()));
    for row in &by_cv {
        let record = &records[&row["hyper_id"].as_i64().unwrap()];
        assert_eq!(row["cv_r2"], record["cv_r2"]);
        let test_r2 = row["test_r2"].as_f64().unwrap();
        assert!((test_r2 - record["test_r2"].as_f64().unwrap()).abs() <= 1e-9);
    }
    let board: Vec<Value> =
        serde_json::from_str(&run(&["leaderboard", "--format", "json"])).unwrap();
    assert_eq!(ids(&board), ids(&by_cv));
    assert_ne!(ids(&by_cv), ids(&rows), "the two scores rank differently");
    for (b, r) in board.iter().zip(&by_cv) {
        assert_eq!(b["cv_r2"], r["cv_r2"]);
        assert!((b["test_r2"].as_f64().unwrap() - r["test_r2"].as_f64().unwrap()).abs() <= 1e-9);
    }

    // All trials are from today, so the last-7-days variant ranks the same trials.
    assert_eq!(
        ids(&duckdb(&sink, "final_query_date_range.sql")),
        ids(&rows)
    );
}

#[test]
fn sql_prints_the_ddl_for_the_configured_sink() {
    let dir = tempfile::tempdir().unwrap();
    let out = svr_etl(dir.path())
        .args(["sql", "--sink", "s3://lake/trials"])
        .env("SVR_ETL__ATHENA__DATABASE", "ml")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sql = stdout(&out);
    assert!(
        sql.contains("CREATE EXTERNAL TABLE IF NOT EXISTS ml.hyperparams ("),
        "{sql}"
    );
    assert!(sql.contains("LOCATION 's3://lake/trials/fact/'"), "{sql}");
    assert!(
        sql.contains("LOCATION 's3://lake/trials/hyper_parquet/'"),
        "{sql}"
    );
    assert!(
        sql.contains("CREATE OR REPLACE VIEW ml.predict_all AS"),
        "{sql}"
    );
    assert!(
        !sql.contains("BUCKET") && !sql.contains("svr_etl."),
        "{sql}"
    );
}

#[test]
fn the_schema_picture_names_every_column() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/schema.svg");
    let svg = std::fs::read_to_string(path).unwrap();
    // Column names appear as text, alone or in comma-separated groups.
    let words: std::collections::HashSet<String> = svg
        .split(['>', '<', ','])
        .map(|w| w.trim().to_lowercase())
        .collect();
    for field in HYPER_FIELDS.iter().chain(FACT_FIELDS) {
        assert!(
            words.contains(&field.to_lowercase()),
            "{field} missing from schema.svg"
        );
    }
}
