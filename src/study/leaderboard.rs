//! `svr-etl leaderboard`: the ranking `queries/final_query.sql` produces, computed from
//! what a sink holds, without Athena.
//!
//! Like the query, it scores each `ok` trial of one study (the study of the newest ok
//! trial unless one is named) by the test R^2 of its fact object against the data
//! object, not by the `test_r2` its hyper record claims, and orders best first.

use std::collections::HashMap;
use std::fmt::Write as _;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::history::{self, parse_lines, read_text, ReadError, PARALLEL_GETS};
use crate::dataset::Dataset;
use crate::sink::keys::{fact_key_of, DATA_PREFIX};
use crate::sink::Sink;
use crate::trial::metrics::r_squared;
use crate::trial::records::{FactRecord, HyperRecord, TrialStatus};

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
    pub test_r2: f64,
    pub n_test: u64,
    pub study: String,
    pub created_at: String,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

/// Scores one trial by its fact object; `None` when its facts are missing, which drops
/// the trial as the query's join does.
async fn score(
    sink: &dyn Sink,
    test_y: &HashMap<i64, f64>,
    key: String,
    record: HyperRecord,
) -> Result<Option<Entry>, ReadError> {
    let Some(fact_key) = fact_key_of(&key) else {
        return Ok(None);
    };
    let Some(text) = read_text(sink, &fact_key).await? else {
        return Ok(None);
    };
    let facts: Vec<FactRecord> = parse_lines(&text, || sink.location(&fact_key))?;
    let (truth, pred): (Vec<f64>, Vec<f64>) = facts
        .iter()
        .filter(|f| f.hyper_id == record.hyper_id)
        .filter_map(|f| test_y.get(&f.point_id).map(|y| (*y, f.y_pred)))
        .unzip();
    if truth.is_empty() {
        return Ok(None);
    }
    Ok(Some(Entry {
        hyper_id: record.hyper_id.get(),
        gamma: record.gamma,
        c: record.c,
        epsilon: record.epsilon,
        test_r2: r_squared(&truth, &pred),
        n_test: truth.len() as u64,
        study: record.study,
        created_at: record.created_at,
    }))
}

/// Ranks the `ok` trials of `study` (default: the newest ok trial's study).
pub async fn rank(sink: &dyn Sink, study: Option<&str>) -> Result<Vec<Entry>, LeaderboardError> {
    let test_y = test_targets(sink).await?;
    let ok: Vec<(String, HyperRecord)> = history::hyper_records(sink)
        .await?
        .into_iter()
        .filter(|(_, r)| r.status == TrialStatus::Ok)
        .collect();
    let Some(study) = study.map(str::to_string).or_else(|| {
        ok.iter()
            .max_by_key(|(_, r)| r.hyper_id)
            .map(|(_, r)| r.study.clone())
    }) else {
        return Ok(Vec::new());
    };
    let test_y = &test_y;
    let mut entries: Vec<Entry> =
        futures::stream::iter(ok.into_iter().filter(|(_, r)| r.study == study))
            .map(|(key, record)| score(sink, test_y, key, record))
            .buffer_unordered(PARALLEL_GETS)
            .try_filter_map(|e| async move { Ok(e) })
            .try_collect()
            .await?;
    entries.sort_by(|a, b| {
        b.test_r2
            .total_cmp(&a.test_r2)
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
            out.push_str("rank,hyper_id,gamma,C,epsilon,test_r2,n_test,study,created_at\n");
            for (i, e) in entries.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{}",
                    i + 1,
                    e.hyper_id,
                    e.gamma,
                    e.c,
                    e.epsilon,
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
                "{:>4}  {:>18}  {:>12}  {:>12}  {:>12}  {:>10}  {:<12}  created_at",
                "rank", "hyper_id", "gamma", "C", "epsilon", "test_r2", "study"
            );
            for (i, e) in entries.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:>4}  {:>18}  {:>12.6}  {:>12.6}  {:>12.6}  {:>10.6}  {:<12}  {}",
                    i + 1,
                    e.hyper_id,
                    e.gamma,
                    e.c,
                    e.epsilon,
                    e.test_r2,
                    e.study,
                    e.created_at
                );
            }
        }
    }
    out
}
