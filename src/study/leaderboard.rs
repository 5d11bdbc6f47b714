//! `svr-etl leaderboard`: the rankings `queries/final_query_cv.sql` (by `cv_r2`) and
//! `queries/final_query.sql` (by test R^2) produce, computed from what a sink holds,
//! without Athena.
//!
//! Like the queries, it scores each `ok` trial of one study (the study of the newest ok
//! trial unless one is named) by the test R^2 of its fact object against the data
//! object, not by the `test_r2` its hyper record claims, and orders best first by the
//! score asked for; ranked by `cv_r2`, trials without one are left out. Compacted days
//! are read from Parquet, as the queries' views read them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::NaiveDate;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::dataset::Dataset;
use crate::model::id::HyperId;
use crate::model::records::{FactRecord, HyperRecord, TrialStatus};
use crate::sink::keys::{fact_key_of, DATA_PREFIX, FACT_PARQUET_PREFIX};
use crate::sink::{Compression, Layout, Sink};
use crate::store::{
    self, parse_lines, read_text, scan_fact_part, Origin, ReadError, PARALLEL_GETS,
};
use crate::trial::metrics::r_squared;

#[derive(Debug, thiserror::Error)]
pub enum LeaderboardError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("no data set under {0}")]
    NoData(String),
}

/// One ranked trial; the fields and order of `final_query.sql`'s columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub hyper_id: i64,
    pub gamma: f64,
    #[serde(rename = "C")]
    pub c: f64,
    pub epsilon: f64,
    pub cv_r2: Option<f64>,
    pub test_r2: f64,
    pub n_test: u64,
    pub study: String,
    pub created_at: String,
}

/// The score trials are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    /// The cross-validated score on the training rows: the honest choice.
    CvR2,
    /// The test R^2 from the predictions, as the seed pipeline ranked.
    TestR2,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// The test rows' targets by point id, from the sink's data set object.
async fn test_targets(sink: &dyn Sink) -> Result<HashMap<i64, f64>, LeaderboardError> {
    let data_key = sink
        .list(DATA_PREFIX)
        .await
        .map_err(ReadError::from)?
        .into_iter()
        .next()
        .ok_or_else(|| LeaderboardError::NoData(sink.location(DATA_PREFIX)))?;
    let data_text = read_text(sink, &data_key)
        .await?
        .ok_or_else(|| LeaderboardError::NoData(sink.location(&data_key)))?;
    let location = sink.location(&data_key);
    let dataset = Dataset::parse(&data_text, &location).map_err(|e| ReadError::Unreadable {
        location,
        reason: e.to_string(),
    })?;
    Ok(dataset
        .test_indices()
        .map(|i| (dataset.point_ids()[i], dataset.targets()[i]))
        .collect())
}

/// The entry of a trial whose test rows' targets and predictions are `truth` and
/// `pred`; `None` without any, which drops the trial as the query's join does.
fn entry(record: HyperRecord, truth: &[f64], pred: &[f64]) -> Option<Entry> {
    if truth.is_empty() {
        return None;
    }
    Some(Entry {
        hyper_id: record.hyper_id.get(),
        gamma: record.gamma,
        c: record.c,
        epsilon: record.epsilon,
        cv_r2: record.cv_r2,
        test_r2: r_squared(truth, pred),
        n_test: truth.len() as u64,
        study: record.study,
        created_at: record.created_at,
    })
}

/// The test rows of `facts` that belong to `id`, as (targets, predictions).
fn test_rows<'a>(
    test_y: &HashMap<i64, f64>,
    id: HyperId,
    facts: impl IntoIterator<Item = &'a FactRecord>,
) -> (Vec<f64>, Vec<f64>) {
    facts
        .into_iter()
        .filter(|f| f.hyper_id == id)
        .filter_map(|f| test_y.get(&f.point_id).map(|y| (*y, f.y_pred)))
        .unzip()
}

/// Scores one trial by its JSON fact object, the first of `fact_keys` there is.
async fn score_json(
    sink: &dyn Sink,
    test_y: &HashMap<i64, f64>,
    fact_keys: Vec<String>,
    record: HyperRecord,
) -> Result<Option<Entry>, ReadError> {
    for fact_key in fact_keys {
        let Some(text) = read_text(sink, &fact_key).await? else {
            continue;
        };
        let facts: Vec<FactRecord> = parse_lines(&text, || sink.location(&fact_key))?;
        let (truth, pred) = test_rows(test_y, record.hyper_id, &facts);
        return Ok(entry(record, &truth, &pred));
    }
    Ok(None)
}

/// Scores the trials of one compacted day by the day's Parquet predictions; a trial
/// whose predictions no part holds is looked for in JSON, as the views do.
async fn score_day(
    sink: &dyn Sink,
    test_y: &Arc<HashMap<i64, f64>>,
    day: NaiveDate,
    records: Vec<HyperRecord>,
) -> Result<Vec<Entry>, ReadError> {
    let wanted: Arc<HashSet<HyperId>> = Arc::new(records.iter().map(|r| r.hyper_id).collect());
    let mut rows: HashMap<HyperId, (Vec<f64>, Vec<f64>)> = HashMap::new();
    for part in store::part_keys(sink, FACT_PARQUET_PREFIX, day).await? {
        let (wanted, test_y) = (wanted.clone(), test_y.clone());
        let kept = scan_fact_part(sink, &part, move |f| {
            let y = test_y.get(&f.point_id)?;
            wanted
                .contains(&f.hyper_id)
                .then_some((f.hyper_id, *y, f.y_pred))
        })
        .await?;
        for (id, y, pred) in kept {
            let (truth, preds) = rows.entry(id).or_default();
            truth.push(y);
            preds.push(pred);
        }
    }
    let mut entries = Vec::new();
    for record in records {
        let found = match rows.remove(&record.hyper_id) {
            Some((truth, pred)) => entry(record, &truth, &pred),
            None => {
                let keys = [Compression::None, Compression::Gzip]
                    .map(|c| Layout::new(c).fact_key_on(day, record.hyper_id))
                    .to_vec();
                score_json(sink, test_y, keys, record).await?
            }
        };
        entries.extend(found);
    }
    Ok(entries)
}

/// Ranks the `ok` trials of `study` (default: the newest ok trial's study) by `by`
/// (default: `cv_r2` where the study's newest trial has one, else test R^2). `today`
/// is the day readers count late objects back from.
pub async fn rank(
    sink: &dyn Sink,
    study: Option<&str>,
    by: Option<RankBy>,
    today: NaiveDate,
) -> Result<Vec<Entry>, LeaderboardError> {
    let test_y = Arc::new(test_targets(sink).await?);
    let ok: Vec<(Origin, HyperRecord)> = store::hyper_records(sink, today)
        .await?
        .into_iter()
        .filter(|(_, r)| r.status == TrialStatus::Ok)
        .filter(|(_, r)| by != Some(RankBy::CvR2) || r.cv_r2.is_some())
        .collect();
    let Some(study) = study.map(str::to_string).or_else(|| {
        ok.iter()
            .max_by_key(|(_, r)| r.hyper_id)
            .map(|(_, r)| r.study.clone())
    }) else {
        return Ok(Vec::new());
    };
    let by = by.unwrap_or_else(|| {
        let newest = ok
            .iter()
            .filter(|(_, r)| r.study == study)
            .max_by_key(|(_, r)| r.hyper_id);
        match newest.and_then(|(_, r)| r.cv_r2) {
            Some(_) => RankBy::CvR2,
            None => RankBy::TestR2,
        }
    });
    let test_y = &test_y;
    let in_study = ok
        .into_iter()
        .filter(|(_, r)| r.study == study)
        .filter(|(_, r)| by == RankBy::TestR2 || r.cv_r2.is_some());
    let mut json = Vec::new();
    let mut days: BTreeMap<NaiveDate, Vec<HyperRecord>> = BTreeMap::new();
    for (origin, record) in in_study {
        match origin {
            Origin::Json(key) => json.extend(fact_key_of(&key).map(|k| (vec![k], record))),
            Origin::Parquet(day) => days.entry(day).or_default().push(record),
        }
    }
    let mut entries: Vec<Entry> = futures::stream::iter(json)
        .map(|(keys, record)| score_json(sink, test_y, keys, record))
        .buffer_unordered(PARALLEL_GETS)
        .try_filter_map(|e| async move { Ok(e) })
        .try_collect()
        .await?;
    for (day, records) in days {
        entries.extend(score_day(sink, test_y, day, records).await?);
    }
    let score = |e: &Entry| match by {
        RankBy::CvR2 => e.cv_r2.unwrap_or(f64::NEG_INFINITY),
        RankBy::TestR2 => e.test_r2,
    };
    entries.sort_by(|a, b| {
        score(b)
            .total_cmp(&score(a))
            .then(a.hyper_id.cmp(&b.hyper_id))
    });
    Ok(entries)
}

/// Renders the ranking.
pub fn render(entries: &[Entry], format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            out = serde_json::to_string(entries).expect("entries serialize");
            out.push('\n');
        }
        Format::Csv => {
            out.push_str("rank,hyper_id,gamma,C,epsilon,cv_r2,test_r2,n_test,study,created_at\n");
            for (i, e) in entries.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}",
                    i + 1,
                    e.hyper_id,
                    e.gamma,
                    e.c,
                    e.epsilon,
                    e.cv_r2.map(|v| v.to_string()).unwrap_or_default(),
                    e.test_r2,
                    e.n_test,
                    e.study,
                    e.created_at
                );
            }
        }
        Format::Table => {
            let _ = writeln!(
                out,
                "{:>4}  {:>18}  {:>12}  {:>12}  {:>12}  {:>10}  {:>10}  {:<12}  created_at",
                "rank", "hyper_id", "gamma", "C", "epsilon", "cv_r2", "test_r2", "study"
            );
            for (i, e) in entries.iter().enumerate() {
                let cv = e.cv_r2.map_or("-".to_string(), |v| format!("{v:.6}"));
                let _ = writeln!(
                    out,
                    "{:>4}  {:>18}  {:>12.6}  {:>12.6}  {:>12.6}  {:>10}  {:>10.6}  {:<12}  {}",
                    i + 1,
                    e.hyper_id,
                    e.gamma,
                    e.c,
                    e.epsilon,
                    cv,
                    e.test_r2,
                    e.study,
                    e.created_at
                );
            }
        }
    }
    out
}
