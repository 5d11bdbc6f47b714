-- The data set: one row per data point, written once under data/.
-- `svr-etl sql` prints this with the configured database and location filled in.
CREATE EXTERNAL TABLE IF NOT EXISTS svr_etl.data (
  point_id BIGINT,
  is_train BOOLEAN,
  age DOUBLE,
  sex DOUBLE,
  bmi DOUBLE,
  bp DOUBLE,
  s1 DOUBLE,
  s2 DOUBLE,
  s3 DOUBLE,
  s4 DOUBLE,
  s5 DOUBLE,
  s6 DOUBLE,
  y_true DOUBLE
)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
LOCATION 's3://BUCKET/PREFIX/data/'
TBLPROPERTIES ('classification' = 'json')
;
