-- What the ranking queries read: each trial from the Parquet tables once a compacted
-- part holds it, and from JSON until then. The choice is made per trial, not per day,
-- so a day being compacted, a late object not compacted yet, or a compaction stopped
-- between the two tables never counts a trial twice or leaves one out. The JSON
-- originals may expire under an S3 lifecycle rule once compacted (README), which keeps
-- the JSON side of the views small.
CREATE OR REPLACE VIEW svr_etl.hyperparams_all AS
SELECT * FROM svr_etl.hyperparams_parquet
UNION ALL
SELECT * FROM svr_etl.hyperparams
WHERE hyper_id NOT IN (SELECT hyper_id FROM svr_etl.hyperparams_parquet);

CREATE OR REPLACE VIEW svr_etl.predict_all AS
SELECT * FROM svr_etl.predict_parquet
UNION ALL
SELECT * FROM svr_etl.predict
WHERE hyper_id NOT IN (SELECT DISTINCT hyper_id FROM svr_etl.predict_parquet);
