//! The data set object: written once per sink, compared on every later start.

use super::Pipeline;
use crate::dataset::Dataset;
use crate::sink::encoding::decode;
use crate::sink::{Deadline, SinkError};

/// The data set object already in the sink differs from ours, or cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{location} holds a different data set (sha256 {found}, expected {expected}); use another sink prefix or restore it")]
    Conflict {
        location: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("reading back {location}: {reason}")]
    Unreadable { location: String, reason: String },
}

/// Writes the pipeline's data set under `data/` unless the same content is already
/// there. Both the write and the read-back end at `deadline`. Returns whether it wrote.
pub(super) async fn publish_dataset(
    pipeline: &Pipeline,
    deadline: &Deadline,
) -> Result<bool, PublishError> {
    let layout = pipeline.layout();
    let sink = pipeline.sink();
    let key = layout.data_key();
    let ours = pipeline.dataset().clone();
    let dataset = ours.clone();
    let body = layout.encode(std::sync::Arc::new(move |w| dataset.write_ndjson(w)));
    let location = match sink.create(&key, body, deadline).await {
        Ok(_) => return Ok(true),
        Err(SinkError::Exists { location }) => location,
        Err(e) => return Err(e.into()),
    };
    let unreadable = |reason: String| PublishError::Unreadable {
        location: location.clone(),
        reason,
    };
    let bytes = tokio::select! {
        got = tokio::time::timeout(deadline.timeout, sink.get(&key)) => got
            .map_err(|_| unreadable(format!("no answer within {}s", deadline.timeout.as_secs_f64())))??,
        _ = deadline.cancel.cancelled() => return Err(unreadable("cancelled".into())),
    };
    let bytes = bytes.ok_or_else(|| unreadable("it vanished".into()))?;
    let text = decode(&key, bytes).map_err(|e| unreadable(e.to_string()))?;
    let text = String::from_utf8(text).map_err(|e| unreadable(e.to_string()))?;
    let theirs = Dataset::parse(&text, &location).map_err(|e| unreadable(e.to_string()))?;
    if theirs.checksum() == ours.checksum() {
        Ok(false)
    } else {
        Err(PublishError::Conflict {
            location,
            found: theirs.checksum().to_string(),
            expected: ours.checksum().to_string(),
        })
    }
}
