//! Daily compaction: each finished UTC day's hyper and fact objects, from every writer,
//! rewritten as Parquet under `hyper_parquet/dt=D/` and `fact_parquet/dt=D/`.
//!
//! One trial a minute is some 2,900 small objects a day; Athena, the leaderboard and the
//! study history slow down over millions of them. A compacted day is one Parquet object
//! per table (more when one would pass `compaction.max_object_mib`), and readers take
//! the day from it.
//!
//! Parts are numbered and created once: a part holds exactly the trials of the day that
//! no earlier part holds, computed after listing the earlier parts, so two hosts
//! compacting the same day race for the same part key and one wins; the other lists
//! again and finds nothing new. A late object (a trial queued through an outage) lands
//! in a day already compacted and goes into the next part when the day is compacted
//! again: the daily job looks back [`LATE_DAYS`](crate::store::LATE_DAYS) days. Every run also takes any older
//! finished day that has JSON but no part ([`days_to_compact`]), so that after a run
//! every day older than the look-back is in Parquet: the views of `queries/` read JSON
//! for the recent days alone. The JSON originals stay.
//!
//! Facts are compacted before hyper records and the hyper records listed first: a
//! trial writes its facts before its hyper record, so every hyper record compacted has
//! its facts compacted in the same run or an earlier one. A writer that loses the race
//! for a fact part leaves the day's hyper records to the winner. (Readers do not rely
//! on the order: each table takes a trial from Parquet when a part holds it, else from
//! JSON.)

mod days;
mod outcome;

pub use days::{days_to_compact, CompactionSettings};
pub use outcome::{DayOutcome, TableOutcome};

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::model::id::HyperId;
use crate::model::records::{FactRecord, HyperRecord};
use crate::sink::keys::{
    day_prefix, hyper_id_of, part_key, part_number, FACT_PARQUET_PREFIX, FACT_PREFIX,
    HYPER_PARQUET_PREFIX, HYPER_PREFIX,
};
use crate::sink::{Deadline, Sink, SinkError};
use crate::store::{parquet, parse_lines, part_keys, read_text, ReadError, PARALLEL_GETS};

/// Attempts at one table of one day when other writers keep winning the part keys.
const RACES: usize = 8;

/// Why a day was not compacted.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("{day} is not finished: it can be compacted from {at}")]
    NotFinished { day: NaiveDate, at: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A part could not be written; the sink's error names it.
    #[error(transparent)]
    Write(SinkError),
    #[error("encoding {location} as Parquet: {reason}")]
    Encode { location: String, reason: String },
    #[error("{location}: other writers kept taking the next part; try again later")]
    Contended { location: String },
}

/// The two tables, each a JSON prefix and its compacted copy.
#[derive(Debug, Clone, Copy)]
enum Table {
    Hyper,
    Fact,
}

impl Table {
    fn json(self) -> &'static str {
        match self {
            Table::Hyper => HYPER_PREFIX,
            Table::Fact => FACT_PREFIX,
        }
    }

    fn parquet(self) -> &'static str {
        match self {
            Table::Hyper => HYPER_PARQUET_PREFIX,
            Table::Fact => FACT_PARQUET_PREFIX,
        }
    }
}

/// What a compaction needs besides the sink and the day.
#[derive(Debug, Clone)]
pub struct Compactor {
    pub max_object_bytes: usize,
    /// Deadline of each part's write.
    pub upload_timeout: Duration,
    pub cancel: CancellationToken,
    /// Written into each part's metadata (host and process).
    pub writer: String,
}

impl Compactor {
    pub fn new(settings: &CompactionSettings, upload_timeout: Duration) -> Compactor {
        Compactor {
            max_object_bytes: settings.max_object_bytes(),
            upload_timeout,
            cancel: CancellationToken::new(),
            writer: format!(
                "{}:{}:{:016x}",
                gethostname::gethostname().to_string_lossy(),
                std::process::id(),
                rand::random::<u64>()
            ),
        }
    }

    /// Compacts `day`: the trials its JSON objects hold that no part holds yet.
    pub async fn compact_day(
        &self,
        sink: &dyn Sink,
        day: NaiveDate,
    ) -> Result<DayOutcome, CompactError> {
        // Hyper records listed before facts: see the module's notes.
        let hyper_keys = sink
            .list(&day_prefix(HYPER_PREFIX, day))
            .await
            .map_err(ReadError::from)?;
        let fact = self.compact_table(sink, day, Table::Fact, None).await?;
        if fact.raced && fact.written.is_empty() {
            // Another writer is compacting the day right now and writes the hyper
            // records next; racing it for those would split the day between two.
            let hyper = TableOutcome {
                parts_before: part_keys(sink, HYPER_PARQUET_PREFIX, day).await?.len(),
                raced: true,
                ..TableOutcome::default()
            };
            return Ok(DayOutcome { day, hyper, fact });
        }
        let hyper = self
            .compact_table(sink, day, Table::Hyper, Some(hyper_keys))
            .await?;
        Ok(DayOutcome { day, hyper, fact })
    }

    async fn compact_table(
        &self,
        sink: &dyn Sink,
        day: NaiveDate,
        table: Table,
        listed: Option<Vec<String>>,
    ) -> Result<TableOutcome, CompactError> {
        let json_keys = match listed {
            Some(keys) => keys,
            None => sink
                .list(&day_prefix(table.json(), day))
                .await
                .map_err(ReadError::from)?,
        };
        let mut outcome = TableOutcome::default();
        for _ in 0..RACES {
            let parts = part_keys(sink, table.parquet(), day).await?;
            outcome.parts_before = parts.len() - outcome.written.len();
            let covered = ids_in_parts(sink, &parts).await?;
            let new: Vec<String> = json_keys
                .iter()
                .filter(|k| hyper_id_of(k).is_some_and(|id| !covered.contains(&id)))
                .cloned()
                .collect();
            if new.is_empty() {
                return Ok(outcome);
            }
            let next = parts
                .iter()
                .filter_map(|k| part_number(k))
                .max()
                .map_or(0, |n| n + 1);
            if self
                .write_parts(sink, day, table, new, next, &mut outcome)
                .await?
            {
                return Ok(outcome);
            }
            outcome.raced = true;
        }
        Err(CompactError::Contended {
            location: sink.location(&day_prefix(table.parquet(), day)),
        })
    }

    /// Reads `keys` and writes them as parts numbered from `next`, adding each to
    /// `outcome`. `false` when another writer took a part key first; the parts written
    /// before that stay (they hold trials no other part holds).
    async fn write_parts(
        &self,
        sink: &dyn Sink,
        day: NaiveDate,
        table: Table,
        keys: Vec<String>,
        next: u32,
        outcome: &mut TableOutcome,
    ) -> Result<bool, CompactError> {
        let objects = read_objects(sink, table, keys).await?;
        for (n, batch) in (next..).zip(batches(objects, self.max_object_bytes)) {
            let key = part_key(table.parquet(), day, n);
            let writer = self.writer.clone();
            let encoded = tokio::task::spawn_blocking(move || batch.encode(&writer))
                .await
                .expect("encoding does not panic");
            let (bytes, batch_trials, batch_rows) =
                encoded.map_err(|reason| CompactError::Encode {
                    location: sink.location(&key),
                    reason,
                })?;
            let deadline = Deadline {
                timeout: self.upload_timeout,
                cancel: self.cancel.clone(),
            };
            let body: crate::sink::BodyWriter =
                std::sync::Arc::new(move |out: &mut dyn std::io::Write| out.write_all(&bytes));
            match sink.create(&key, body, &deadline).await {
                Ok(w) => outcome.written.push(w.location),
                Err(SinkError::Exists { .. }) => return Ok(false),
                Err(e) => return Err(CompactError::Write(e)),
            }
            outcome.trials += batch_trials;
            outcome.rows += batch_rows;
        }
        Ok(true)
    }
}

fn unreadable(sink: &dyn Sink, key: &str, reason: String) -> ReadError {
    ReadError::Unreadable {
        location: sink.location(key),
        reason,
    }
}

/// The trial ids the parts hold.
async fn ids_in_parts(sink: &dyn Sink, parts: &[String]) -> Result<HashSet<HyperId>, ReadError> {
    let mut ids = HashSet::new();
    for key in parts {
        let Some(bytes) = sink.get(key).await? else {
            continue;
        };
        let part_ids = tokio::task::spawn_blocking(move || parquet::read_ids(Bytes::from(bytes)))
            .await
            .expect("reading does not panic")
            .map_err(|reason| unreadable(sink, key, reason))?;
        ids.extend(part_ids);
    }
    Ok(ids)
}

/// One table's records of one trial, and the size of their JSON.
enum Object {
    Hyper(Box<HyperRecord>, usize),
    Facts(Vec<FactRecord>, usize),
}

impl Object {
    fn size(&self) -> usize {
        match self {
            Object::Hyper(_, n) | Object::Facts(_, n) => *n,
        }
    }
}

/// Reads the objects at `keys`, in key order; those gone since the listing are left out.
async fn read_objects(
    sink: &dyn Sink,
    table: Table,
    keys: Vec<String>,
) -> Result<Vec<Object>, ReadError> {
    let objects: Vec<Option<Object>> = futures::stream::iter(keys)
        .map(|key| async move {
            match table {
                Table::Hyper => {
                    let Some(text) = read_text(sink, &key).await? else {
                        return Ok(None);
                    };
                    let size = text.len();
                    let record: Option<HyperRecord> =
                        parse_lines(&text, || sink.location(&key))?.pop();
                    Ok::<_, ReadError>(record.map(|r| Object::Hyper(Box::new(r), size)))
                }
                Table::Fact => {
                    let Some(text) = read_text(sink, &key).await? else {
                        return Ok(None);
                    };
                    let facts = parse_lines(&text, || sink.location(&key))?;
                    Ok(Some(Object::Facts(facts, text.len())))
                }
            }
        })
        .buffered(PARALLEL_GETS)
        .try_collect()
        .await?;
    Ok(objects.into_iter().flatten().collect())
}

/// The records of one part to be.
enum Batch {
    Hyper(Vec<HyperRecord>),
    Facts(Vec<FactRecord>, usize),
}

impl Batch {
    /// The Parquet bytes, the trials and the rows.
    fn encode(self, writer: &String) -> Result<(Vec<u8>, usize, usize), String> {
        match self {
            Batch::Hyper(records) => {
                let n = records.len();
                let bytes = parquet::write_hyper(&records, writer).map_err(|e| e.to_string())?;
                Ok((bytes, n, n))
            }
            Batch::Facts(facts, trials) => {
                let bytes = parquet::write_facts(&facts, writer).map_err(|e| e.to_string())?;
                Ok((bytes, trials, facts.len()))
            }
        }
    }
}

/// Groups objects into parts of at most `max_bytes` of JSON each (at least one
/// object a part).
fn batches(objects: Vec<Object>, max_bytes: usize) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut size = 0;
    for object in objects {
        let fits = size + object.size() <= max_bytes;
        size = if fits {
            size + object.size()
        } else {
            object.size()
        };
        match (out.last_mut(), object) {
            (Some(Batch::Hyper(records)), Object::Hyper(r, _)) if fits => records.push(*r),
            (Some(Batch::Facts(facts, trials)), Object::Facts(f, _)) if fits => {
                facts.extend(f);
                *trials += 1;
            }
            (_, Object::Hyper(r, _)) => out.push(Batch::Hyper(vec![*r])),
            (_, Object::Facts(f, _)) => out.push(Batch::Facts(f, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(id: i64, n: usize) -> Object {
        let f = (0..n as i64)
            .map(|p| FactRecord {
                hyper_id: HyperId::from_raw(id),
                point_id: p,
                y_pred: 0.0,
            })
            .collect();
        Object::Facts(f, n * 10)
    }

    #[test]
    fn parts_stay_within_the_size_and_keep_whole_trials() {
        let objects = vec![facts(1, 5), facts(2, 5), facts(3, 5), facts(4, 20)];
        let parts = batches(objects, 100);
        let shape: Vec<(usize, usize)> = parts
            .iter()
            .map(|b| match b {
                Batch::Facts(f, t) => (*t, f.len()),
                Batch::Hyper(_) => unreachable!(),
            })
            .collect();
        assert_eq!(shape, [(2, 10), (1, 5), (1, 20)]);
    }
}
