//! The Athena SQL in `queries/`, embedded, and `svr-etl sql`, which prints the table
//! definitions with the configured database, sink location and data set columns filled
//! in, so that what Athena reads is always where and what the daemon writes.

use crate::sink::SinkUrl;

/// The statements to run once to set up Athena, in order, by file name.
pub const SETUP: &[(&str, &str)] = &[
    (
        "create_data_table.sql",
        include_str!("../../queries/create_data_table.sql"),
    ),
    (
        "create_hyperparams_table.sql",
        include_str!("../../queries/create_hyperparams_table.sql"),
    ),
    (
        "create_predict_table.sql",
        include_str!("../../queries/create_predict_table.sql"),
    ),
    (
        "create_hyperparams_parquet_table.sql",
        include_str!("../../queries/create_hyperparams_parquet_table.sql"),
    ),
    (
        "create_predict_parquet_table.sql",
        include_str!("../../queries/create_predict_parquet_table.sql"),
    ),
    (
        "create_views.sql",
        include_str!("../../queries/create_views.sql"),
    ),
];

/// The database and location the files in `queries/` are written against.
const DATABASE: &str = "svr_etl.";
const LOCATION: &str = "s3://BUCKET/PREFIX/";

/// The sink's root as a URL prefix ending in `/`.
fn root(url: &SinkUrl) -> String {
    match url {
        SinkUrl::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}/"),
        SinkUrl::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/"),
        SinkUrl::Local(dir) => {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
            format!("file://{}/", dir.display())
        }
    }
}

/// One SQL file with the placeholders replaced.
pub fn fill(sql: &str, database: &str, url: &SinkUrl) -> String {
    sql.replace(DATABASE, &format!("{database}."))
        .replace(LOCATION, &root(url))
}

/// The data table's feature columns as `queries/create_data_table.sql` lists them.
const DIABETES_COLUMNS: &str = "  age DOUBLE,\n  sex DOUBLE,\n  bmi DOUBLE,\n  bp DOUBLE,\n  s1 DOUBLE,\n  s2 DOUBLE,\n  s3 DOUBLE,\n  s4 DOUBLE,\n  s5 DOUBLE,\n  s6 DOUBLE,\n";

/// The data table definition for a data set with these feature columns.
fn data_table(sql: &str, features: &[String]) -> String {
    assert!(
        sql.contains(DIABETES_COLUMNS),
        "create_data_table.sql lists the diabetes features"
    );
    let columns: String = features
        .iter()
        .map(|f| format!("  `{}` DOUBLE,\n", f.replace('`', "``")))
        .collect();
    if features.iter().map(String::as_str).eq([
        "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
    ]) {
        sql.to_string()
    } else {
        sql.replace(DIABETES_COLUMNS, &columns)
    }
}

/// The views when the daemon does not compact: the JSON tables alone.
const JSON_ONLY_VIEWS: &str = "\
-- compaction.enabled = false: no day is compacted, so the views read the JSON tables
-- alone (create_views.sql reads JSON for the last 7 days only).
CREATE OR REPLACE VIEW svr_etl.hyperparams_all AS
SELECT * FROM svr_etl.hyperparams;

CREATE OR REPLACE VIEW svr_etl.predict_all AS
SELECT * FROM svr_etl.predict;
";

/// Everything `svr-etl sql` prints, for a data set with `features` as its columns and
/// views that follow whether the daemon compacts.
pub fn setup_script(
    database: &str,
    url: &SinkUrl,
    features: &[String],
    compaction: bool,
) -> String {
    let mut out = String::new();
    if let SinkUrl::Local(_) = url {
        out.push_str(
            "-- The configured sink is a local directory; Athena reads only S3. Set sink.url\n\
             -- to s3://bucket/prefix (or pass --sink) for locations Athena can use.\n\n",
        );
    }
    out.push_str(&format!("CREATE DATABASE IF NOT EXISTS {database};\n\n"));
    for (name, sql) in SETUP {
        out.push_str(&format!("-- queries/{name}\n"));
        let sql = match *name {
            "create_data_table.sql" => data_table(sql, features),
            "create_views.sql" if !compaction => JSON_ONLY_VIEWS.to_string(),
            _ => sql.to_string(),
        };
        out.push_str(&fill(&sql, database, url));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_all_replaced() {
        let url = SinkUrl::S3 {
            bucket: "lake".into(),
            prefix: "svr/etl".into(),
        };
        let diabetes = crate::dataset::Dataset::embedded().feature_names().to_vec();
        let script = setup_script("trials", &url, &diabetes, true);
        assert!(
            !script.contains("BUCKET") && !script.contains("PREFIX"),
            "{script}"
        );
        assert!(!script.contains("svr_etl."), "{script}");
        assert!(script.contains("LOCATION 's3://lake/svr/etl/hyper/'"));
        assert!(script.contains("'s3://lake/svr/etl/fact/dt=${dt}/'"));
        assert!(script.contains("CREATE EXTERNAL TABLE IF NOT EXISTS trials.predict ("));
        let bare = SinkUrl::S3 {
            bucket: "lake".into(),
            prefix: String::new(),
        };
        assert!(setup_script("d", &bare, &diabetes, true).contains("LOCATION 's3://lake/data/'"));
    }

    #[test]
    fn without_compaction_the_views_read_json_alone() {
        let url = SinkUrl::S3 {
            bucket: "lake".into(),
            prefix: String::new(),
        };
        let diabetes = crate::dataset::Dataset::embedded().feature_names().to_vec();
        let on = setup_script("d", &url, &diabetes, true);
        let off = setup_script("d", &url, &diabetes, false);
        assert!(on.contains("FROM d.hyperparams_parquet\nUNION ALL"), "{on}");
        assert!(off.contains("CREATE OR REPLACE VIEW d.predict_all AS\nSELECT * FROM d.predict;"));
        assert!(!off.contains("UNION ALL"), "{off}");
    }

    #[test]
    fn the_data_table_follows_the_data_sets_columns() {
        let url = SinkUrl::S3 {
            bucket: "lake".into(),
            prefix: String::new(),
        };
        let script = setup_script("d", &url, &["x1".to_string(), "height".to_string()], true);
        assert!(
            script
                .contains("is_train BOOLEAN,\n  `x1` DOUBLE,\n  `height` DOUBLE,\n  y_true DOUBLE"),
            "{script}"
        );
        assert!(!script.contains("bmi DOUBLE"));
    }
}
