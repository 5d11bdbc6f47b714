-- Compacted days of hyper/, from hyper_parquet/dt=YYYY-MM-DD/part-NNNNN.parquet.
-- Written by the daemon's daily compaction (`svr-etl compact`): one Parquet object per
-- UTC day (more when a day passes compaction.max_object_mib, or when late objects are
-- compacted later as further parts), Snappy-compressed. Same columns as the JSON table.
-- Read through the views of create_views.sql, which take each trial from here when
-- compacted and from JSON otherwise.
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
LOCATION 's3://BUCKET/PREFIX/hyper_parquet/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2025-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://BUCKET/PREFIX/hyper_parquet/dt=${dt}/'
)
;
