//! Records in the sink, read back: objects as text, lines as records, compacted days
//! as Parquet ([`parquet`] holds that format both ways). The compactor, the study
//! history, the leaderboard and the report all read through here.
//!
//! A compacted day is read from its Parquet parts; the JSON objects are read for every
//! other day, and for compacted days of the last [`LATE_DAYS`] too (a late object
//! waits there for the next compaction), leaving out trials a part already holds. So
//! no trial counts twice, and a reader lists only the days it reads.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::model::records::{FactRecord, HyperRecord};
use crate::sink::encoding::decode;
use crate::sink::keys::{
    day_of, day_prefix, hyper_id_of, part_number, HYPER_PARQUET_PREFIX, HYPER_PREFIX,
};
use crate::sink::{Sink, SinkError};

pub mod parquet;

/// How many days back the daily job compacts again, for late objects; readers also
/// read the JSON of compacted days this recent, so a late object counts before then.
pub const LATE_DAYS: u64 = 7;

/// Objects fetched at once.
pub const PARALLEL_GETS: usize = 16;

/// An object that could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{location}: {reason}")]
    Unreadable { location: String, reason: String },
}

/// The object's text, decompressed; `None` when there is no such object.
pub async fn read_text(sink: &dyn Sink, key: &str) -> Result<Option<String>, ReadError> {
    let unreadable = |reason: String| ReadError::Unreadable {
        location: sink.location(key),
        reason,
    };
    let Some(bytes) = sink.get(key).await? else {
        return Ok(None);
    };
    let bytes = decode(key, bytes).map_err(|e| unreadable(e.to_string()))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

/// The records of newline-delimited JSON; `location` names the object in errors.
pub fn parse_lines<T: DeserializeOwned>(
    text: &str,
    location: impl Fn() -> String,
) -> Result<Vec<T>, ReadError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| ReadError::Unreadable {
                location: location(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// The last record of a one-record object (a hyper record), or `None` when the
/// object is gone.
pub async fn read_record<T: DeserializeOwned>(
    sink: &dyn Sink,
    key: &str,
) -> Result<Option<T>, ReadError> {
    let Some(text) = read_text(sink, key).await? else {
        return Ok(None);
    };
    let mut rows: Vec<T> = parse_lines(&text, || sink.location(key))?;
    Ok(rows.pop())
}

/// Where a hyper record was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A JSON object, by key.
    Json(String),
    /// The Parquet parts of a compacted day.
    Parquet(NaiveDate),
}

/// The compacted days under a Parquet prefix, each with its part keys in order.
pub async fn compacted_parts(
    sink: &dyn Sink,
    prefix: &str,
) -> Result<BTreeMap<NaiveDate, Vec<String>>, ReadError> {
    let mut days: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for key in sink.list(prefix).await? {
        if let (Some(day), Some(_)) = (day_of(&key), part_number(&key)) {
            days.entry(day).or_default().push(key);
        }
    }
    for parts in days.values_mut() {
        parts.sort_by_key(|k| part_number(k));
    }
    Ok(days)
}

/// The JSON keys under `prefix` to read beside the compacted days: the days without
/// parts, and the compacted days from `today - LATE_DAYS` on.
pub async fn json_keys<T>(
    sink: &dyn Sink,
    prefix: &str,
    compacted: &BTreeMap<NaiveDate, T>,
    today: NaiveDate,
) -> Result<Vec<String>, ReadError> {
    let recent = today
        .checked_sub_days(chrono::Days::new(LATE_DAYS))
        .unwrap_or(today);
    let folders = sink.list_folders(prefix).await?;
    let wanted = folders.into_iter().filter(|folder| match day_of(folder) {
        Some(day) => !compacted.contains_key(&day) || day >= recent,
        None => true,
    });
    let lists: Vec<Vec<String>> = futures::stream::iter(wanted)
        .map(|folder| async move { sink.list(&folder).await })
        .buffered(PARALLEL_GETS)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}

/// Decodes a part's bytes on a blocking thread.
async fn decode_part<T: Send + 'static>(
    sink: &dyn Sink,
    key: &str,
    bytes: Vec<u8>,
    decode: fn(Bytes) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, ReadError> {
    tokio::task::spawn_blocking(move || decode(Bytes::from(bytes)))
        .await
        .expect("decoding does not panic")
        .map_err(|reason| ReadError::Unreadable {
            location: sink.location(key),
            reason,
        })
}

/// The hyper records of a compacted part; none when it is gone.
pub async fn read_hyper_part(sink: &dyn Sink, key: &str) -> Result<Vec<HyperRecord>, ReadError> {
    match sink.get(key).await? {
        Some(bytes) => decode_part(sink, key, bytes, parquet::read_hyper).await,
        None => Ok(Vec::new()),
    }
}

/// What `keep` returns for each prediction of a compacted part, where it returns some;
/// none when the part is gone. Only what is kept is held in memory.
pub async fn scan_fact_part<T: Send + 'static>(
    sink: &dyn Sink,
    key: &str,
    keep: impl FnMut(FactRecord) -> Option<T> + Send + 'static,
) -> Result<Vec<T>, ReadError> {
    let Some(bytes) = sink.get(key).await? else {
        return Ok(Vec::new());
    };
    let mut keep = keep;
    tokio::task::spawn_blocking(move || {
        let mut kept = Vec::new();
        parquet::scan_facts(Bytes::from(bytes), |f| kept.extend(keep(f))).map(|_| kept)
    })
    .await
    .expect("decoding does not panic")
    .map_err(|reason| ReadError::Unreadable {
        location: sink.location(key),
        reason,
    })
}

/// Every hyper record in the sink, each trial once, with where it was read from.
pub async fn hyper_records(
    sink: &dyn Sink,
    today: NaiveDate,
) -> Result<Vec<(Origin, HyperRecord)>, ReadError> {
    let parts = compacted_parts(sink, HYPER_PARQUET_PREFIX).await?;
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    let keys = parts
        .iter()
        .flat_map(|(day, keys)| keys.iter().map(move |k| (*day, k)));
    // Fetched concurrently, decoded one at a time: decoding on many threads at once
    // would leave memory behind in as many allocator arenas.
    let mut fetches = futures::stream::iter(keys)
        .map(|(day, key)| async move { Ok::<_, ReadError>((day, key, sink.get(key).await?)) })
        .buffered(PARALLEL_GETS);
    while let Some((day, key, bytes)) = fetches.try_next().await? {
        let Some(bytes) = bytes else { continue };
        for record in decode_part(sink, key, bytes, parquet::read_hyper).await? {
            if ids.insert(record.hyper_id) {
                out.push((Origin::Parquet(day), record));
            }
        }
    }
    drop(fetches);
    let keys = json_keys(sink, HYPER_PREFIX, &parts, today).await?;
    let ids = &ids;
    let json: Vec<(Origin, HyperRecord)> = futures::stream::iter(keys)
        .filter(|key| std::future::ready(hyper_id_of(key).is_some_and(|id| !ids.contains(&id))))
        .map(|key| async move {
            let record: Option<HyperRecord> = read_record(sink, &key).await?;
            Ok::<_, ReadError>(record.map(|r| (Origin::Json(key), r)))
        })
        .buffer_unordered(PARALLEL_GETS)
        .try_filter_map(|r| async move { Ok(r) })
        .try_collect()
        .await?;
    out.extend(json.into_iter().filter(|(_, r)| !ids.contains(&r.hyper_id)));
    Ok(out)
}

/// The part keys of a compacted day, in order.
pub async fn part_keys(
    sink: &dyn Sink,
    prefix: &str,
    day: NaiveDate,
) -> Result<Vec<String>, ReadError> {
    let mut keys: Vec<String> = sink
        .list(&day_prefix(prefix, day))
        .await?
        .into_iter()
        .filter(|k| part_number(k).is_some())
        .collect();
    keys.sort_by_key(|k| part_number(k));
    Ok(keys)
}
