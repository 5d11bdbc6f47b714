-- What the ranking queries read: every compacted trial from the Parquet tables, and from
-- JSON the trials of the last 7 days that no compacted part holds yet. The daemon's
-- daily compaction takes every finished day older than that (and late objects in any
-- day), so nothing older is left in JSON alone; the JSON side reads only the recent
-- partitions (the dt bound is a constant, so partition projection prunes the rest).
-- Choosing per trial, not per day, means that a day being compacted, a late object not
-- compacted yet, or a compaction stopped between the two tables never counts a trial
-- twice or loses one. With compaction.enabled = false, `svr-etl sql` prints views over
-- the JSON tables alone instead.
CREATE OR REPLACE VIEW svr_etl.hyperparams_all AS
SELECT * FROM svr_etl.hyperparams_parquet
UNION ALL
SELECT * FROM svr_etl.hyperparams
WHERE dt >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
  AND hyper_id NOT IN (
    SELECT hyper_id FROM svr_etl.hyperparams_parquet
    WHERE dt >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
  );

CREATE OR REPLACE VIEW svr_etl.predict_all AS
SELECT * FROM svr_etl.predict_parquet
UNION ALL
SELECT * FROM svr_etl.predict
WHERE dt >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
  AND hyper_id NOT IN (
    SELECT hyper_id FROM svr_etl.predict_parquet
    WHERE dt >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
  );
