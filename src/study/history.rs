//! Reading records back from a sink: objects as text, lines as records.

use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::sink::keys::{decode, HYPER_PREFIX};
use crate::sink::{Sink, SinkError};
use crate::trial::records::HyperRecord;

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

/// Every hyper record in the sink, with its key.
pub async fn hyper_records(sink: &dyn Sink) -> Result<Vec<(String, HyperRecord)>, ReadError> {
    let keys = sink.list(HYPER_PREFIX).await?;
    futures::stream::iter(keys)
        .map(|key| async move {
            let record: Option<HyperRecord> = read_record(sink, &key).await?;
            Ok(record.map(|r| (key, r)))
        })
        .buffer_unordered(PARALLEL_GETS)
        .try_filter_map(|r| async move { Ok(r) })
        .try_collect()
        .await
}
