//! One trial end to end: draw, fit, write facts, then the hyper record.
//!
//! [`Pipeline`] holds what lives between trials (the prepared data, the sink, the id
//! generator) and runs one trial at a time, so the daemon and `svr-etl once` share it
//! and tests drive it directly. Commit order is the contract: the fact object is
//! complete before the hyper object is written, so an `ok` hyper record always means
//! all its predictions are there. The stages live beside it: `choice` draws or asks
//! the searcher, [`trainer`] fits (on the cores through `fitting`), `delivery` writes, `publish` puts the data set in
//! the sink once.

mod choice;
mod cores;
mod delivery;
mod fitting;
pub mod metrics;
mod publish;
pub mod trainer;
mod trial_report;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use choice::Chosen;
pub use choice::Draw;
use cores::Cores;
pub use delivery::{FittedTrial, Unwritten};
pub use publish::PublishError;
pub use trial_report::TrialReport;

use crate::dataset::{Dataset, DatasetError, DatasetSource};
use crate::model::id::{HyperId, HyperIdGenerator};
use crate::model::params::SamplerKind;
use crate::model::params::SearchSpace;
use crate::model::records::{self, HyperRecord, TrialStatus};
use crate::search::Searcher;
use crate::sink::keys::running_key;
use crate::sink::{Deadline, Layout, OpenSink, S3Settings, Sink, SinkError, SinkSettings, Written};
use trainer::{CvScore, FitOutcome, SolverSettings, Trainer};

/// Where "now" comes from; injected so tests can pin it.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// Why a pipeline could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{0}")]
    Clock(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// What a pipeline is built from: the data set, the fit and its folds, the sink, and
/// whether TPE announces trials in flight. Two equal ones build the same pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineSettings {
    pub dataset: DatasetSource,
    pub solver: SolverSettings,
    pub cv_folds: usize,
    pub sink: SinkSettings,
    pub s3: S3Settings,
    pub constant_liar: bool,
}

/// Every check that making a pipeline runs, short of opening the sink: the data set
/// loads and is valid, its fit stays within the solver's bounds, and the clock can
/// stamp trial ids. `svr-etl check-config` runs it too.
pub fn prepare(settings: &PipelineSettings, now: DateTime<Utc>) -> Result<Trainer, BuildError> {
    HyperIdGenerator::check_clock(now).map_err(BuildError::Clock)?;
    let source = &settings.dataset;
    let dataset = Arc::new(source.load()?);
    let trainer = Trainer::new(dataset, settings.solver)
        .and_then(|t| t.with_folds(settings.cv_folds))
        .map_err(|reason| DatasetError {
            origin: source.origin(),
            line: None,
            key: None,
            reason,
        })?;
    Ok(trainer)
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Everything a trial needs, kept between trials.
#[derive(Clone)]
pub struct Pipeline {
    trainer: Arc<Trainer>,
    sink: Arc<dyn Sink>,
    layout: Layout,
    upload_timeout: std::time::Duration,
    ids: Arc<HyperIdGenerator>,
    clock: Clock,
    host: String,
    /// Where fits run, one per core at a time.
    cores: Arc<Cores>,
    /// The TPE sampler and the study history it keeps.
    searcher: Arc<Searcher>,
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
    /// Builds what every trial needs from `settings` (data set, trainer, sink) and
    /// publishes the data set in the sink unless the same one is there; the publish has
    /// the sink's upload deadline and ends at `cancel`. Also says whether it wrote the
    /// data set.
    pub async fn open(
        settings: &PipelineSettings,
        connect: &dyn OpenSink,
        ids: Arc<HyperIdGenerator>,
        clock: Clock,
        cancel: &CancellationToken,
    ) -> Result<(Pipeline, bool), BuildError> {
        let pipeline = Pipeline::build(settings, connect, ids, clock).await?;
        let published = publish::publish_dataset(&pipeline, &pipeline.deadline(cancel)).await?;
        Ok((pipeline, published))
    }

    async fn build(
        settings: &PipelineSettings,
        connect: &dyn OpenSink,
        ids: Arc<HyperIdGenerator>,
        clock: Clock,
    ) -> Result<Pipeline, BuildError> {
        let trainer = {
            let settings = settings.clone();
            let now = clock();
            tokio::task::spawn_blocking(move || prepare(&settings, now))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?
        };
        let sink = connect.open(&settings.sink, &settings.s3).await;
        let searcher = Arc::new(Searcher::new(
            sink.clone(),
            settings.sink.upload_timeout(),
            settings.constant_liar,
        ));
        Ok(Pipeline {
            searcher,
            trainer: Arc::new(trainer),
            sink,
            layout: Layout::new(settings.sink.compression),
            upload_timeout: settings.sink.upload_timeout(),
            ids,
            clock,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            cores: Cores::new(cores()),
        })
    }

    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn dataset(&self) -> &Arc<Dataset> {
        self.trainer.dataset()
    }

    /// The deadline of one write, ended early by `cancel`.
    pub fn deadline(&self, cancel: &CancellationToken) -> Deadline {
        Deadline {
            timeout: self.upload_timeout,
            cancel: cancel.clone(),
        }
    }

    /// Runs one trial to the end. Never fails: what went wrong is in the report, and
    /// in the hyper record when it could still be written. A trial whose writes failed
    /// for a reason a retry can mend comes back with [`TrialReport::unwritten`] set,
    /// to be written later. Once `cancel` fires, the trial stops where it is, its open
    /// uploads aborted, and writes nothing more.
    pub async fn run_trial(&self, draw: Draw, cancel: &CancellationToken) -> TrialReport {
        self.fit_trial(draw, cancel).await.write(cancel).await
    }

    /// The first half of [`Pipeline::run_trial`]: draws the trial, fits it and
    /// cross-validates it, and tells the search its score; nothing of it is written
    /// yet. The next trial can be drawn and fitted while this one is written.
    pub async fn fit_trial(&self, draw: Draw, cancel: &CancellationToken) -> FittedTrial {
        let created = (self.clock)();
        let hyper_id = self.ids.next(created);
        let space = match draw {
            Draw::Seeded { space, .. } => Some(space),
            Draw::Given(_) => None,
        };
        let study = self.study(space.as_ref());
        let chosen = self.choose(draw, &study, hyper_id, created, cancel).await;
        let mut record = self.new_record(hyper_id, created, &chosen, study);
        // A TPE trial is announced while it runs, so other hosts steer clear of it.
        let tpe = chosen.sampler == Some(SamplerKind::Tpe);
        let marker = (tpe && self.searcher.constant_liar()).then(|| {
            let p = chosen.params;
            running_key(&record.study, hyper_id, [p.gamma(), p.c(), p.epsilon()])
        });
        let (fitted, ()) = tokio::join!(
            self.fit_with_cv(chosen.params, cancel),
            self.announce(marker.as_deref(), cancel)
        );
        let predictions = match fitted {
            Ok((outcome, cv)) => {
                record_scores(&mut record, &outcome, cv.as_ref());
                Some(Arc::new(outcome.predictions))
            }
            Err(e) => {
                record.fail(e.to_string());
                None
            }
        };
        // The score is known now: the next suggestion can use it while this trial's
        // objects are written.
        if tpe {
            let cv_r2 = record.cv_r2.filter(|_| record.status == TrialStatus::Ok);
            self.searcher.finish(hyper_id, &chosen.params, cv_r2).await;
        }
        FittedTrial::new(
            Unwritten::new(self.clone(), created, record, predictions),
            marker,
        )
    }

    /// The study fingerprint of trials drawn from `space` (`None`: given by hand).
    fn study(&self, space: Option<&SearchSpace>) -> String {
        let checksum = self.dataset().checksum();
        records::study_fingerprint(space, &self.trainer.describe(), checksum)
    }

    fn new_record(
        &self,
        hyper_id: HyperId,
        created: DateTime<Utc>,
        chosen: &Chosen,
        study: String,
    ) -> HyperRecord {
        let dataset = self.dataset();
        let params = &chosen.params;
        HyperRecord {
            hyper_id,
            study,
            status: TrialStatus::Ok,
            error: None,
            gamma: params.gamma(),
            c: params.c(),
            epsilon: params.epsilon(),
            seed: chosen.seed,
            train_r2: None,
            test_r2: None,
            n_support: None,
            n_train: dataset.n_train() as u64,
            n_test: (dataset.n_rows() - dataset.n_train()) as u64,
            fit_ms: None,
            cv_r2: None,
            cv_r2_std: None,
            cv_folds: self.trainer.n_folds() as u32,
            cv_ms: None,
            sampler: chosen.sampler,
            n_history: chosen.n_history,
            solver_tol: self.trainer.solver().tolerance.get(),
            created_at: records::timestamp(created),
            host: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    async fn write_facts(
        &self,
        created: DateTime<Utc>,
        record: &HyperRecord,
        predictions: Arc<Vec<f64>>,
        cancel: &CancellationToken,
    ) -> Result<Written, SinkError> {
        let dataset = self.dataset().clone();
        let hyper_id = record.hyper_id;
        let body = self.layout.encode(Arc::new(move |w| {
            records::write_facts(hyper_id, dataset.point_ids(), &predictions, w)
        }));
        let key = self.layout.fact_key(created, hyper_id);
        self.sink.create(&key, body, &self.deadline(cancel)).await
    }

    async fn write_hyper(
        &self,
        created: DateTime<Utc>,
        record: &HyperRecord,
        cancel: &CancellationToken,
    ) -> Result<Written, SinkError> {
        let line = record.clone();
        let body = self.layout.encode(Arc::new(move |w| line.write_ndjson(w)));
        let key = self.layout.hyper_key(created, record.hyper_id);
        self.sink.create(&key, body, &self.deadline(cancel)).await
    }
}

/// Writes a successful fit's scores into its record.
fn record_scores(record: &mut HyperRecord, outcome: &FitOutcome, cv: Option<&CvScore>) {
    record.train_r2 = Some(outcome.train_r2);
    record.test_r2 = Some(outcome.test_r2);
    record.n_support = Some(outcome.n_support as u64);
    record.fit_ms = Some(outcome.fit_ms);
    if let Some(cv) = cv {
        record.cv_r2 = Some(cv.mean);
        record.cv_r2_std = Some(cv.std);
        record.cv_ms = Some(cv.ms);
    }
}
