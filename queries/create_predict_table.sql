-- One row per trial and data point, from fact/dt=YYYY-MM-DD/<hyper_id>.json.
-- Same partition projection as hyperparams; a trial's facts share its hyper record's dt.
CREATE EXTERNAL TABLE IF NOT EXISTS svr_etl.predict (
  hyper_id BIGINT,
  point_id BIGINT,
  y_pred DOUBLE
)
PARTITIONED BY (dt STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/fact/'
TBLPROPERTIES (
  'classification' = 'json',
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2025-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://BUCKET/PREFIX/fact/dt=${dt}/'
)
;
