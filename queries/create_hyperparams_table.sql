-- One row per trial, from hyper/dt=YYYY-MM-DD/<hyper_id>.json.
-- Partition projection on dt: new days are visible without MSCK REPAIR TABLE.
-- created_at is RFC 3339 text; from_iso8601_timestamp(created_at) makes it a timestamp.
CREATE EXTERNAL TABLE IF NOT EXISTS svr_etl.hyperparams (
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
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/hyper/'
TBLPROPERTIES (
  'classification' = 'json',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2025-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://BUCKET/PREFIX/hyper/dt=${dt}/'
)
;
