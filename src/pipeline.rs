//! One trial end to end: draw, fit, write facts, then the hyper record.
//!
//! [`Pipeline`] holds what lives between trials (the prepared data, the sink, the id
//! generator) and runs one step at a time, so the daemon and `svr-etl once` share it
//! and tests drive it directly. Commit order is the contract: the fact object is
//! complete before the hyper object is written, so an `ok` hyper record always means
//! all its predictions are there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::dataset::Dataset;
use crate::hyper_id::HyperIdGenerator;
use crate::records::{self, HyperRecord, TrialStatus};
use crate::sampler::{SearchSpace, TrialParams};
use crate::sink::{self, Layout, Sink, SinkError, Written};
use crate::trainer::{FitError, FitOutcome, Trainer};

/// Where "now" comes from; injected so tests can pin it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// How a trial gets its parameters.
#[derive(Debug, Clone, Copy)]
pub enum Draw {
    /// Drawn from the search space with this seed.
    Seeded { space: SearchSpace, seed: u64 },
    /// Given by hand (`--gamma --c --epsilon`).
    Given(TrialParams),
}

/// What one trial did.
#[derive(Debug)]
pub struct TrialReport {
    pub record: HyperRecord,
    pub fact: Option<Written>,
    pub hyper: Option<Written>,
    pub upload_ms: f64,
    /// The first write that failed, if any.
    pub sink_error: Option<SinkError>,
}

impl TrialReport {
    /// Fitted, and both objects written.
    pub fn is_ok(&self) -> bool {
        self.record.status == TrialStatus::Ok && self.sink_error.is_none()
    }

    /// Why the trial failed: the first failed write, else the fit's error. `None`
    /// when it is ok.
    pub fn failure(&self) -> Option<String> {
        if self.is_ok() {
            return None;
        }
        let reason = match &self.sink_error {
            Some(e) => e.to_string(),
            None => self.record.error.clone().unwrap_or_default(),
        };
        Some(reason)
    }

    pub fn bytes(&self) -> u64 {
        self.fact.iter().chain(&self.hyper).map(|w| w.bytes).sum()
    }
}

/// The data set object already in the sink differs from ours.
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

/// Everything a trial needs, kept between trials.
#[derive(Clone)]
pub struct Pipeline {
    trainer: Arc<Trainer>,
    sink: Arc<dyn Sink>,
    layout: Layout,
    upload_timeout: Duration,
    ids: Arc<HyperIdGenerator>,
    clock: Clock,
    host: String,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("sink", &self.sink)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(
        trainer: Arc<Trainer>,
        sink: Arc<dyn Sink>,
        layout: Layout,
        upload_timeout: Duration,
        ids: Arc<HyperIdGenerator>,
        clock: Clock,
    ) -> Pipeline {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        Pipeline {
            trainer,
            sink,
            layout,
            upload_timeout,
            ids,
            clock,
            host,
        }
    }

    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        self.trainer.dataset()
    }

    /// Writes the data set under `data/` unless the same content is already there.
    /// Returns whether it wrote.
    pub async fn publish_dataset(&self) -> Result<bool, PublishError> {
        let key = self.layout.data_key();
        let dataset = self.dataset().clone();
        let body = self
            .layout
            .encode(Box::new(move |w| dataset.write_ndjson(w)));
        match self.sink.create(&key, body, self.upload_timeout).await {
            Ok(_) => Ok(true),
            Err(SinkError::Exists { location }) => {
                let unreadable = |reason: String| PublishError::Unreadable {
                    location: location.clone(),
                    reason,
                };
                let bytes = self
                    .sink
                    .get(&key)
                    .await?
                    .ok_or_else(|| unreadable("it vanished".into()))?;
                let text = sink::decode(&key, bytes).map_err(|e| unreadable(e.to_string()))?;
                let text = String::from_utf8(text).map_err(|e| unreadable(e.to_string()))?;
                let theirs =
                    Dataset::parse(&text, &location).map_err(|e| unreadable(e.to_string()))?;
                if theirs.checksum() == self.dataset().checksum() {
                    Ok(false)
                } else {
                    Err(PublishError::Conflict {
                        location,
                        found: theirs.checksum().to_string(),
                        expected: self.dataset().checksum().to_string(),
                    })
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs one trial to the end. Never fails: what went wrong is in the report, and
    /// in the hyper record when it could still be written.
    pub async fn run_trial(&self, draw: Draw) -> TrialReport {
        let (params, seed, search) = match draw {
            Draw::Seeded { space, seed } => (space.draw(seed), Some(seed), Some(space)),
            Draw::Given(p) => (p, None, None),
        };
        let created = (self.clock)();
        let hyper_id = self.ids.next(created);
        let trainer = self.trainer.clone();
        let fit = tokio::task::spawn_blocking(move || trainer.fit(&params))
            .await
            .unwrap_or_else(|e| Err(FitError::Panicked(e.to_string())));

        let dataset = self.dataset();
        let solver = self.trainer.solver();
        let mut record = HyperRecord {
            hyper_id,
            study: records::study_fingerprint(search.as_ref(), &solver, dataset.checksum()),
            status: TrialStatus::Ok,
            error: None,
            gamma: params.gamma(),
            c: params.c(),
            epsilon: params.epsilon(),
            seed,
            train_r2: None,
            test_r2: None,
            n_support: None,
            n_train: dataset.n_train() as u64,
            n_test: (dataset.n_rows() - dataset.n_train()) as u64,
            fit_ms: None,
            solver_tol: solver.tolerance(),
            created_at: records::timestamp(created),
            host: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        let started = Instant::now();
        let mut fact = None;
        let mut sink_error = None;
        match fit {
            Ok(outcome) => {
                fill_outcome(&mut record, &outcome);
                match self.write_facts(created, &record, outcome).await {
                    Ok(w) => fact = Some(w),
                    Err(e) => {
                        record.status = TrialStatus::Failed;
                        record.error = Some(format!("fact upload failed: {e}"));
                        sink_error = Some(e);
                    }
                }
            }
            Err(e) => {
                record.status = TrialStatus::Failed;
                record.error = Some(e.to_string());
            }
        }
        let line = record.clone();
        let body = self.layout.encode(Box::new(move |w| line.write_ndjson(w)));
        let key = self.layout.hyper_key(created, hyper_id);
        let hyper = match self.sink.create(&key, body, self.upload_timeout).await {
            Ok(w) => Some(w),
            Err(e) => {
                sink_error.get_or_insert(e);
                None
            }
        };
        let report = TrialReport {
            record,
            fact,
            hyper,
            upload_ms: started.elapsed().as_secs_f64() * 1e3,
            sink_error,
        };
        log_trial(&report);
        report
    }

    async fn write_facts(
        &self,
        created: DateTime<Utc>,
        record: &HyperRecord,
        outcome: FitOutcome,
    ) -> Result<Written, SinkError> {
        let dataset = self.dataset().clone();
        let hyper_id = record.hyper_id;
        let body = self.layout.encode(Box::new(move |w| {
            records::write_facts(hyper_id, dataset.point_ids(), &outcome.predictions, w)
        }));
        let key = self.layout.fact_key(created, hyper_id);
        self.sink.create(&key, body, self.upload_timeout).await
    }
}

fn fill_outcome(record: &mut HyperRecord, outcome: &FitOutcome) {
    record.train_r2 = Some(outcome.train_r2);
    record.test_r2 = Some(outcome.test_r2);
    record.n_support = Some(outcome.n_support as u64);
    record.fit_ms = Some(outcome.fit_ms);
}

/// One line per trial; under journald the fields become searchable
/// (`journalctl -u svr-etl HYPER_ID=…`).
fn log_trial(report: &TrialReport) {
    let r = &report.record;
    let location = report.hyper.as_ref().map(|w| w.location.as_str());
    if report.is_ok() {
        tracing::info!(
            hyper_id = r.hyper_id.get(),
            gamma = r.gamma,
            c = r.c,
            epsilon = r.epsilon,
            test_r2 = r.test_r2,
            fit_ms = r.fit_ms,
            upload_ms = report.upload_ms,
            bytes = report.bytes(),
            seed = r.seed,
            study = %r.study,
            location,
            "trial ok"
        );
    } else {
        let error = report.failure().unwrap_or_default();
        tracing::warn!(
            hyper_id = r.hyper_id.get(),
            gamma = r.gamma,
            c = r.c,
            epsilon = r.epsilon,
            fit_ms = r.fit_ms,
            upload_ms = report.upload_ms,
            seed = r.seed,
            location,
            error = %error,
            "trial failed"
        );
    }
}
