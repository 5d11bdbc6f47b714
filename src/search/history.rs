//! The study's history, read from the sink: what the TPE sampler learns from.
//!
//! Every trial's hyper record is written once, by whichever host ran it, so the sink
//! is the study's storage and needs no database. The first refresh lists every hyper
//! record and reads those not yet seen (concurrently, keeping only the fields the
//! sampler needs); later refreshes list only yesterday's and today's partitions, and
//! every [`FULL_EVERY`] the whole prefix again, so that a late writer's record (from a
//! host whose sink was down) is picked up too. A full refresh reads compacted days from
//! their Parquet parts (each part once) and lists only the other days' JSON (see
//! [`crate::store`]). Objects are read once: their ids are
//! remembered. Trials in flight are announced by empty marker objects whose key holds
//! the parameters (see [`crate::sink::keys::running_key`]); a listing is enough to see
//! them, and each is deleted when its trial ends.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Deserialize;

use super::parzen::Point;
use super::tpe::Scored;
use crate::model::id::HyperId;
use crate::model::records::{HyperRecord, TrialStatus};
use crate::sink::keys::{
    hyper_id_of, parse_running_key, running_prefix, HYPER_PARQUET_PREFIX, HYPER_PREFIX,
};
use crate::sink::{Sink, SinkError};
use crate::store::{
    compacted_parts, json_keys, read_hyper_part, read_record, ReadError, PARALLEL_GETS,
};

/// How often the whole prefix is listed again.
pub const FULL_EVERY: Duration = Duration::hours(6);
/// A marker older than this belongs to a trial whose host is gone.
pub const STALE_MARKER: Duration = Duration::hours(1);

/// The fields of a hyper record the sampler needs.
#[derive(Debug, Deserialize)]
struct Summary {
    hyper_id: HyperId,
    study: String,
    status: TrialStatus,
    gamma: f64,
    #[serde(rename = "C")]
    c: f64,
    epsilon: f64,
    cv_r2: Option<f64>,
}

impl From<HyperRecord> for Summary {
    fn from(r: HyperRecord) -> Summary {
        Summary {
            hyper_id: r.hyper_id,
            study: r.study,
            status: r.status,
            gamma: r.gamma,
            c: r.c,
            epsilon: r.epsilon,
            cv_r2: r.cv_r2,
        }
    }
}

/// What the sampler sees of one study.
#[derive(Debug, Default)]
pub struct StudyHistory {
    study: Option<String>,
    completed: Vec<Scored>,
    /// Ids of every hyper record read or written here, of any study.
    seen: HashSet<HyperId>,
    /// This process's trials in flight.
    own: BTreeMap<HyperId, Point>,
    /// Other writers' trials in flight, from their markers.
    others: Vec<(i64, Point)>,
    last_full: Option<DateTime<Utc>>,
    /// Compacted parts read, each once.
    parts_read: HashSet<String>,
    /// Records that could not be read, for the log.
    pub unreadable: usize,
}

/// The natural logs of a trial's parameters.
pub fn point(gamma: f64, c: f64, epsilon: f64) -> Point {
    [gamma.ln(), c.ln(), epsilon.ln()]
}

impl StudyHistory {
    /// The completed trials of the study with a cross-validated score.
    pub fn completed(&self) -> &[Scored] {
        &self.completed
    }

    /// Whether the whole of `study` has been read once.
    pub fn loaded(&self, study: &str) -> bool {
        self.study.as_deref() == Some(study) && self.last_full.is_some()
    }

    /// Trials in flight, here and elsewhere, except `except`.
    pub fn running(&self, except: HyperId) -> Vec<(i64, Point)> {
        let own = self.own.iter().filter(|(id, _)| **id != except);
        let mut all: Vec<(i64, Point)> = own.map(|(id, x)| (id.get(), *x)).collect();
        all.extend(self.others.iter().copied());
        all
    }

    pub fn start(&mut self, id: HyperId, x: Point) {
        self.own.insert(id, x);
    }

    /// Takes this process's finished trial: its score, if it has one, joins the history.
    pub fn finish(&mut self, id: HyperId, x: Point, cv_r2: Option<f64>) {
        self.own.remove(&id);
        if self.seen.insert(id) {
            if let Some(value) = cv_r2.filter(|v| v.is_finite()) {
                self.completed.push(Scored {
                    order: id.get(),
                    x,
                    value,
                });
            }
        }
    }

    /// Brings the history of `study` up to date from `sink`. What was read stays even
    /// when a later read fails or the refresh is abandoned at a deadline.
    pub async fn refresh(
        &mut self,
        sink: &dyn Sink,
        study: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        if self.study.as_deref() != Some(study) {
            *self = StudyHistory {
                study: Some(study.to_string()),
                ..StudyHistory::default()
            };
        }
        let full = self.last_full.is_none_or(|t| now - t >= FULL_EVERY);
        let keys = if full {
            let parts = compacted_parts(sink, HYPER_PARQUET_PREFIX).await?;
            for key in parts.values().flatten() {
                if self.parts_read.contains(key) {
                    continue;
                }
                match read_hyper_part(sink, key).await {
                    Ok(records) => records
                        .into_iter()
                        .for_each(|r| self.take(Summary::from(r))),
                    Err(ReadError::Sink(e)) => return Err(ReadError::Sink(e)),
                    Err(e) => {
                        self.unreadable += 1;
                        tracing::warn!(error = %e, "a compacted part the sampler cannot read is left out: {e}");
                    }
                }
                self.parts_read.insert(key.clone());
            }
            json_keys(sink, HYPER_PREFIX, &parts, now.date_naive()).await?
        } else {
            let mut keys = Vec::new();
            for day in [now - Duration::days(1), now] {
                let prefix = format!("{HYPER_PREFIX}dt={}/", day.format("%Y-%m-%d"));
                keys.extend(sink.list(&prefix).await?);
            }
            keys
        };
        self.read_new(sink, keys).await?;
        self.read_markers(sink, study, now, full).await?;
        if full {
            self.last_full = Some(now);
        }
        Ok(())
    }

    async fn read_new(&mut self, sink: &dyn Sink, keys: Vec<String>) -> Result<(), ReadError> {
        let new: Vec<String> = keys
            .into_iter()
            .filter(|k| hyper_id_of(k).is_some_and(|id| !self.seen.contains(&id)))
            .collect();
        let mut reads = futures::stream::iter(new)
            .map(|key| async move {
                let read = read_record::<Summary>(sink, &key).await;
                (key, read)
            })
            .buffer_unordered(PARALLEL_GETS);
        while let Some((key, read)) = reads.next().await {
            match read {
                Ok(Some(summary)) => self.take(summary),
                Ok(None) => {}
                Err(ReadError::Sink(e)) => return Err(ReadError::Sink(e)),
                Err(e @ ReadError::Unreadable { .. }) => {
                    self.unreadable += 1;
                    tracing::warn!(error = %e, "a hyper record the sampler cannot read is left out: {e}");
                    if let Some(id) = hyper_id_of(&key) {
                        self.seen.insert(id);
                    }
                }
            }
        }
        Ok(())
    }

    fn take(&mut self, s: Summary) {
        if !self.seen.insert(s.hyper_id) || self.study.as_deref() != Some(s.study.as_str()) {
            return;
        }
        let value = s.cv_r2.filter(|v| v.is_finite());
        if let (TrialStatus::Ok, Some(value)) = (s.status, value) {
            self.completed.push(Scored {
                order: s.hyper_id.get(),
                x: point(s.gamma, s.c, s.epsilon),
                value,
            });
        }
    }

    async fn read_markers(
        &mut self,
        sink: &dyn Sink,
        study: &str,
        now: DateTime<Utc>,
        clean: bool,
    ) -> Result<(), SinkError> {
        let cutoff = (now - STALE_MARKER).timestamp_millis();
        self.others.clear();
        for key in sink.list(&running_prefix(study)).await? {
            let Some((id, [g, c, e])) = parse_running_key(&key) else {
                continue;
            };
            let stale = (id.timestamp_ms() as i64) < cutoff;
            if stale && clean {
                // Its host stopped before it could remove it.
                if let Err(e) = sink.delete(&key).await {
                    tracing::warn!(error = %e, "a stale marker could not be removed: {e}");
                }
            }
            if !stale && !self.own.contains_key(&id) && !self.seen.contains(&id) {
                self.others.push((id.get(), point(g, c, e)));
            }
        }
        Ok(())
    }
}
