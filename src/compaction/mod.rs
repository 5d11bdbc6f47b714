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
//! again: the daily job looks back [`LATE_DAYS`] days. Every run also takes any older
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

pub mod parquet;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::values::{Bounded, Seconds};
use crate::daemon::schedule::{CronExpr, CronSchedule};
use crate::sink::keys::{
    day_of, day_prefix, hyper_id_of, part_key, part_number, FACT_PARQUET_PREFIX, FACT_PREFIX,
    HYPER_PARQUET_PREFIX, HYPER_PREFIX,
};
use crate::sink::{Deadline, Sink, SinkError};
use crate::study::history::{compacted_parts, parse_lines, read_text, ReadError, PARALLEL_GETS};
use crate::trial::id::HyperId;
use crate::trial::records::{FactRecord, HyperRecord};

/// How many days back the daily job compacts again, for late objects; readers also
/// read the JSON of compacted days this recent, so a late object counts before then.
pub const LATE_DAYS: u64 = 7;

/// Attempts at one table of one day when other writers keep winning the part keys.
const RACES: usize = 8;

/// `[compaction]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactionSettings {
    /// Whether `svr-etl run` compacts finished days itself.
    pub enabled: bool,
    /// When the daily job starts, in UTC, before [`Self::settle_secs`].
    pub cron: CronExpr,
    /// How long after a day ends it counts as finished: longer than the upload
    /// deadline, so that trials of the day still being written have landed.
    pub settle_secs: Seconds<false>,
    /// The largest Parquet object, in MiB (estimated from the records' JSON size,
    /// which Parquet only shrinks); a day past it is split into parts.
    pub max_object_mib: Bounded<1, 65_536>,
}

impl CompactionSettings {
    pub fn settle(&self) -> Duration {
        self.settle_secs.get()
    }

    fn max_object_bytes(&self) -> usize {
        self.max_object_mib.get() * 1024 * 1024
    }

    /// When the daily job next runs after `now`: the cron tick plus the settling delay.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = CronSchedule::new(self.cron.clone(), chrono_tz::UTC);
        let settle = chrono::Duration::from_std(self.settle()).ok()?;
        cron.next_after(now - settle).map(|t| t + settle)
    }

    /// The moment `day` counts as finished.
    pub fn finished_at(&self, day: NaiveDate) -> DateTime<Utc> {
        let end = day
            .succ_opt()
            .unwrap_or(day)
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        end + chrono::Duration::from_std(self.settle()).unwrap_or_default()
    }

    /// The finished days the daily job looks at on `now`: the last [`LATE_DAYS`].
    pub fn due_days(&self, now: DateTime<Utc>) -> Vec<NaiveDate> {
        let today = now.date_naive();
        (1..=LATE_DAYS)
            .rev()
            .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
            .filter(|day| self.finished_at(*day) <= now)
            .collect()
    }
}

/// The days a compaction run takes on `now`: the finished days of the last
/// [`LATE_DAYS`] (for late objects) and every finished day, however old, whose JSON
/// some part does not cover yet: a day no part holds (a day before compaction was
/// turned on, or one whose compaction failed), or whose hyper records or predictions
/// alone were compacted. Two listings of day folders and two of parts find them.
pub async fn days_to_compact(
    sink: &dyn Sink,
    settings: &CompactionSettings,
    now: DateTime<Utc>,
) -> Result<Vec<NaiveDate>, ReadError> {
    let mut days: std::collections::BTreeSet<NaiveDate> =
        settings.due_days(now).into_iter().collect();
    for (json, parquet) in [
        (HYPER_PREFIX, HYPER_PARQUET_PREFIX),
        (FACT_PREFIX, FACT_PARQUET_PREFIX),
    ] {
        let compacted = compacted_parts(sink, parquet).await?;
        let written = sink.list_folders(json).await?;
        days.extend(
            written
                .iter()
                .filter_map(|folder| day_of(folder))
                .filter(|day| !compacted.contains_key(day))
                .filter(|day| settings.finished_at(*day) <= now),
        );
    }
    Ok(days.into_iter().collect())
}

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

/// What compacting one table of one day did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOutcome {
    /// Parts there were before.
    pub parts_before: usize,
    /// The locations of the parts written now.
    pub written: Vec<String>,
    /// Trials the new parts hold.
    pub trials: usize,
    /// Rows the new parts hold.
    pub rows: usize,
    /// Whether another writer took a part key first (then it compacted those trials).
    pub raced: bool,
}

/// What compacting one day did.
#[derive(Debug, Clone, PartialEq)]
pub struct DayOutcome {
    pub day: NaiveDate,
    pub hyper: TableOutcome,
    pub fact: TableOutcome,
}

impl DayOutcome {
    /// Whether nothing was written: every trial of the day was compacted already.
    pub fn nothing_new(&self) -> bool {
        self.hyper.written.is_empty() && self.fact.written.is_empty()
    }
}

impl fmt::Display for DayOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, x) = (&self.hyper, &self.fact);
        if self.nothing_new() && h.parts_before + x.parts_before == 0 {
            return write!(f, "{}: no trials to compact", self.day);
        }
        if self.nothing_new() {
            let by = if h.raced || x.raced {
                "by another writer just now"
            } else {
                "before"
            };
            return write!(
                f,
                "{}: already compacted {by} ({} hyper and {} fact parts), nothing new",
                self.day, h.parts_before, x.parts_before
            );
        }
        let late = if h.parts_before + x.parts_before > 0 {
            " (late objects, as further parts)"
        } else {
            ""
        };
        write!(
            f,
            "{}: compacted {} trials{late}: {} hyper rows in {}, {} predictions in {}",
            self.day,
            h.trials.max(x.trials),
            h.rows,
            list(&h.written),
            x.rows,
            list(&x.written),
        )
    }
}

fn list(locations: &[String]) -> String {
    if locations.is_empty() {
        "no new part".to_string()
    } else {
        locations.join(", ")
    }
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
            let body = Box::new(move |out: &mut dyn std::io::Write| out.write_all(&bytes));
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

/// A part's bytes; `None` when it is gone.
pub async fn read_part(sink: &dyn Sink, key: &str) -> Result<Option<Bytes>, ReadError> {
    Ok(sink.get(key).await?.map(Bytes::from))
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
        let Some(bytes) = read_part(sink, key).await? else {
            continue;
        };
        let part_ids = tokio::task::spawn_blocking(move || parquet::read_ids(bytes))
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

    fn settings(cron: &str, settle: f64) -> CompactionSettings {
        CompactionSettings {
            enabled: true,
            cron: CronExpr::try_from(cron.to_string()).unwrap(),
            settle_secs: Seconds::try_from(settle).unwrap(),
            max_object_mib: Bounded::try_from(256).unwrap(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_day_is_finished_once_it_has_settled() {
        let s = settings("0 0 0 * * *", 600.0);
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(s.finished_at(day), at("2026-11-27T00:10:00Z"));
        assert_eq!(
            s.due_days(at("2026-11-27T00:09:59Z")).last().copied(),
            day.pred_opt()
        );
        let due = s.due_days(at("2026-11-27T00:10:00Z"));
        assert_eq!(due.len(), LATE_DAYS as usize);
        assert_eq!(due.last(), Some(&day));
        assert_eq!(due[0], NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
    }

    #[test]
    fn the_job_runs_after_the_cron_tick_plus_the_settling_delay() {
        let s = settings("0 0 0 * * *", 600.0);
        assert_eq!(
            s.next_run(at("2026-11-26T13:00:00Z")),
            Some(at("2026-11-27T00:10:00Z"))
        );
        // Between the tick and the end of the delay the job is still ahead.
        assert_eq!(
            s.next_run(at("2026-11-27T00:05:00Z")),
            Some(at("2026-11-27T00:10:00Z"))
        );
        assert_eq!(
            s.next_run(at("2026-11-27T00:10:00Z")),
            Some(at("2026-11-28T00:10:00Z"))
        );
    }

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
