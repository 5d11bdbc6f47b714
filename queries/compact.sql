-- Compaction. One trial a minute is about 2,900 small objects a day and a million a
-- year; Athena slows by an order of magnitude over millions of small objects. A daily job
-- rewrites each finished UTC day of hyper/ and fact/ into Parquet, and the *_all views
-- (which final_query.sql reads) take compacted days from Parquet and later days from JSON,
-- so the ranking stays fast and never counts a day twice.

-- Once: the Parquet tables. Their location must lie outside hyper/ and fact/.
CREATE EXTERNAL TABLE IF NOT EXISTS svr_etl.hyperparams_parquet (
  hyper_id BIGINT,
  study STRING,
  status STRING,
  error STRING,
  gamma DOUBLE,
  c DOUBLE,
  epsilon DOUBLE,
  seed BIGINT,
  train_r2 DOUBLE,
  test_r2 DOUBLE,
  n_support BIGINT,
  n_train BIGINT,
  n_test BIGINT,
  fit_ms DOUBLE,
  cv_r2 DOUBLE,
  cv_r2_std DOUBLE,
  cv_folds BIGINT,
  cv_ms DOUBLE,
  sampler STRING,
  n_history BIGINT,
  solver_tol DOUBLE,
  created_at STRING,
  host STRING,
  version STRING
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/compacted/hyper/'
TBLPROPERTIES ('parquet.compression' = 'SNAPPY');

CREATE EXTERNAL TABLE IF NOT EXISTS svr_etl.predict_parquet (
  hyper_id BIGINT,
  point_id BIGINT,
  y_pred DOUBLE
)
PARTITIONED BY (dt STRING)
STORED AS PARQUET
LOCATION 's3://BUCKET/PREFIX/compacted/fact/'
TBLPROPERTIES ('parquet.compression' = 'SNAPPY');

-- Once: the views the ranking reads.
CREATE OR REPLACE VIEW svr_etl.hyperparams_all AS
SELECT * FROM svr_etl.hyperparams_parquet
UNION ALL
SELECT * FROM svr_etl.hyperparams
WHERE dt > (SELECT COALESCE(MAX(dt), '') FROM svr_etl."hyperparams_parquet$partitions");

CREATE OR REPLACE VIEW svr_etl.predict_all AS
SELECT * FROM svr_etl.predict_parquet
UNION ALL
SELECT * FROM svr_etl.predict
WHERE dt > (SELECT COALESCE(MAX(dt), '') FROM svr_etl."predict_parquet$partitions");

-- Daily, after 01:00 UTC so that the last trials of the day have landed: compact
-- yesterday. Each statement skips a day already compacted, so a rerun adds nothing.
-- Compact fact before hyper: the views switch a day to Parquet by the hyper table's
-- partitions, and by then its predictions are there too.
INSERT INTO svr_etl.predict_parquet
SELECT hyper_id, point_id, y_pred, dt
FROM svr_etl.predict
WHERE dt = date_format(current_date - INTERVAL '1' DAY, '%Y-%m-%d')
  AND NOT EXISTS (
    SELECT 1 FROM svr_etl."predict_parquet$partitions"
    WHERE dt = date_format(current_date - INTERVAL '1' DAY, '%Y-%m-%d')
  );

INSERT INTO svr_etl.hyperparams_parquet
SELECT
  hyper_id, study, status, error, gamma, c, epsilon, seed, train_r2, test_r2,
  n_support, n_train, n_test, fit_ms, cv_r2, cv_r2_std, cv_folds, cv_ms, sampler,
  n_history, solver_tol, created_at, host, version, dt
FROM svr_etl.hyperparams
WHERE dt = date_format(current_date - INTERVAL '1' DAY, '%Y-%m-%d')
  AND NOT EXISTS (
    SELECT 1 FROM svr_etl."hyperparams_parquet$partitions"
    WHERE dt = date_format(current_date - INTERVAL '1' DAY, '%Y-%m-%d')
  );
