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

use crate::dataset::Dataset;
use crate::metrics::r_squared;
use crate::records::{FactRecord, HyperRecord, TrialStatus};
use crate::sink::{self, Sink, SinkError};

/// Objects fetched at once.
const PARALLEL_GETS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum LeaderboardError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{location}: {reason}")]
    Unreadable { location: String, reason: String },
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

/// The object's text, decompressed; `None` when there is no such object.
async fn read_text(sink: &dyn Sink, key: &str) -> Result<Option<String>, LeaderboardError> {
    let unreadable = |reason: String| LeaderboardError::Unreadable {
        location: sink.location(key),
        reason,
    };
    let Some(bytes) = sink.get(key).await? else {
        return Ok(None);
    };
    let bytes = sink::decode(key, bytes).map_err(|e| unreadable(e.to_string()))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

fn parse_lines<T: serde::de::DeserializeOwned>(
    text: &str,
    location: impl Fn() -> String,
) -> Result<Vec<T>, LeaderboardError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| LeaderboardError::Unreadable {
                location: location(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Ranks the `ok` trials of `study` (default: the newest ok trial's study).
pub async fn rank(sink: &dyn Sink, study: Option<&str>) -> Result<Vec<Entry>, LeaderboardError> {
    let data_key = sink
        .list("data/")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| LeaderboardError::NoData(sink.location("data/")))?;
    let data_text = read_text(sink, &data_key)
        .await?
        .ok_or_else(|| LeaderboardError::NoData(sink.location(&data_key)))?;
    let dataset = Dataset::parse(&data_text, &sink.location(&data_key)).map_err(|e| {
        LeaderboardError::Unreadable {
            location: sink.location(&data_key),
            reason: e.to_string(),
        }
    })?;
    let test_y: HashMap<i64, f64> = dataset
        .test_indices()
        .map(|i| (dataset.point_ids()[i], dataset.targets()[i]))
        .collect();

    let hyper_keys = sink.list("hyper/").await?;
    let records: Vec<(String, HyperRecord)> = futures::stream::iter(hyper_keys)
        .map(|key| async move {
            let Some(text) = read_text(sink, &key).await? else {
                return Ok(None);
            };
            let mut rows: Vec<HyperRecord> = parse_lines(&text, || sink.location(&key))?;
            Ok::<_, LeaderboardError>(rows.pop().map(|r| (key, r)))
        })
        .buffer_unordered(PARALLEL_GETS)
        .try_filter_map(|r| async move { Ok(r) })
        .try_collect()
        .await?;
    let ok: Vec<(String, HyperRecord)> = records
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
            .map(|(key, record)| async move {
                let fact_key = key.replacen("hyper/", "fact/", 1);
                // A missing fact object drops the trial, as the query's join does.
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
                Ok::<_, LeaderboardError>(Some(Entry {
                    hyper_id: record.hyper_id.get(),
                    gamma: record.gamma,
                    c: record.c,
                    epsilon: record.epsilon,
                    test_r2: r_squared(&truth, &pred),
                    n_test: truth.len() as u64,
                    study: record.study,
                    created_at: record.created_at,
                }))
            })
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
