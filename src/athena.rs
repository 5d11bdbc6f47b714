//! The Athena SQL in `queries/`, embedded, and `svr-etl sql`, which prints the table
//! definitions with the configured database and sink location filled in, so that what
//! Athena reads is always where the daemon writes.

use crate::sink::SinkUrl;

/// The statements to run once to set up Athena, in order, by file name.
pub const SETUP: &[(&str, &str)] = &[
    (
        "create_data_table.sql",
        include_str!("../queries/create_data_table.sql"),
    ),
    (
        "create_hyperparams_table.sql",
        include_str!("../queries/create_hyperparams_table.sql"),
    ),
    (
        "create_predict_table.sql",
        include_str!("../queries/create_predict_table.sql"),
    ),
    ("compact.sql", include_str!("../queries/compact.sql")),
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

/// Everything `svr-etl sql` prints.
pub fn setup_script(database: &str, url: &SinkUrl) -> String {
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
        out.push_str(&fill(sql, database, url));
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
        let script = setup_script("trials", &url);
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
        assert!(setup_script("d", &bare).contains("LOCATION 's3://lake/data/'"));
    }
}
