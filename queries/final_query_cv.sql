-- Trials ranked by their cross-validated score (cv_r2, the mean R^2 of the folds on
-- the training rows), with the test R^2 computed from the predictions beside it, over
-- the `ok` trials of the current study that have a CV score: the study of the newest
-- such trial. Choosing by cv_r2 leaves the test rows unseen by the choice, so the test
-- R^2 of the top row is an honest estimate; choosing by test R^2 (final_query.sql)
-- overstates it. Reads the *_all views of create_views.sql.
WITH test_points AS (
  SELECT
    p.hyper_id,
    d.y_true,
    p.y_pred,
    AVG(d.y_true) OVER (PARTITION BY p.hyper_id) AS y_mean
  FROM svr_etl.predict_all AS p
  JOIN svr_etl.data AS d
    ON p.point_id = d.point_id
  WHERE NOT d.is_train
),
scores AS (
  SELECT
    hyper_id,
    1 - SUM((y_true - y_pred) * (y_true - y_pred))
      / SUM((y_true - y_mean) * (y_true - y_mean)) AS test_r2,
    COUNT(*) AS n_test
  FROM test_points
  GROUP BY hyper_id
),
latest_study AS (
  SELECT study
  FROM svr_etl.hyperparams_all
  WHERE status = 'ok' AND cv_r2 IS NOT NULL
  ORDER BY hyper_id DESC
  LIMIT 1
)
SELECT
  h.hyper_id,
  h.gamma,
  h.c,
  h.epsilon,
  h.cv_r2,
  h.cv_r2_std,
  s.test_r2,
  s.n_test,
  h.sampler,
  h.study,
  h.created_at
FROM svr_etl.hyperparams_all AS h
JOIN scores AS s
  ON s.hyper_id = h.hyper_id
WHERE h.status = 'ok'
  AND h.cv_r2 IS NOT NULL
  AND h.study = (SELECT study FROM latest_study)
ORDER BY h.cv_r2 DESC, h.hyper_id ASC
;
