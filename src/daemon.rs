//! `svr-etl run`: the long-running service.
//!
//! One loop owns the state and reacts to four things: a cron tick (start a run unless
//! one is in flight, then the tick is skipped and counted), the end of a run, a reload
//! request (re-read the file; apply it whole or refuse it whole) and shutdown (stop
//! ticking, give the run in flight `schedule.shutdown_grace` to finish). A run is
//! `schedule.trials_per_run` trials, fitted in parallel on blocking threads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::{build_pipeline, error_chain, AppError};
use crate::config::Settings;
use crate::hyper_id::{HyperId, HyperIdGenerator};
use crate::notify::Notifier;
use crate::pipeline::{system_clock, Draw, Pipeline, TrialReport};
use crate::sampler::SeedSource;
use crate::schedule::Ticker;
use crate::telemetry::LogHandle;

/// What the daemon has done since it started, for STATUS= and logs.
#[derive(Debug, Default)]
struct Stats {
    trials_ok: u64,
    trials_failed: u64,
    ticks_skipped: u64,
    last: Option<(HyperId, Option<f64>)>,
    best: Option<(HyperId, f64)>,
}

impl Stats {
    fn record(&mut self, report: &TrialReport) {
        let r = &report.record;
        if report.is_ok() {
            self.trials_ok += 1;
            if let Some(r2) = r.test_r2 {
                if self.best.is_none_or(|(_, best)| r2 > best) {
                    self.best = Some((r.hyper_id, r2));
                }
            }
        } else {
            self.trials_failed += 1;
        }
        self.last = Some((r.hyper_id, r.test_r2));
    }

    fn status_line(&self) -> String {
        let last = match self.last {
            Some((id, Some(r2))) => format!("last {id} test_r2={r2:.4}"),
            Some((id, None)) => format!("last {id} failed"),
            None => "no trial yet".to_string(),
        };
        let best = match self.best {
            Some((id, r2)) => format!("best {id} test_r2={r2:.4}"),
            None => "no best yet".to_string(),
        };
        format!(
            "{last}; {best}; {} ok, {} failed, {} ticks skipped",
            self.trials_ok, self.trials_failed, self.ticks_skipped
        )
    }
}

/// Inputs of [`run`] that come from outside: the file to reload from, logging, and the
/// channels that signals feed.
pub struct DaemonInputs {
    pub config_path: Option<PathBuf>,
    pub log: LogHandle,
    pub reloads: mpsc::Receiver<()>,
    pub shutdown: CancellationToken,
}

struct Daemon {
    config_path: Option<PathBuf>,
    settings: Settings,
    pipeline: Pipeline,
    ids: Arc<HyperIdGenerator>,
    seeds: SeedSource,
    ticker: Ticker,
    log: LogHandle,
    stats: Stats,
    notifier: Notifier,
}

/// Runs until `shutdown` is cancelled. Fails only at start-up (bad data set, the sink
/// refusing the data set, the scheduler not starting): once running, a failed trial or
/// run is logged and counted, and a bad reload is refused.
pub async fn run(settings: Settings, inputs: DaemonInputs) -> Result<(), AppError> {
    let DaemonInputs {
        config_path,
        log,
        mut reloads,
        shutdown,
    } = inputs;
    let ids = Arc::new(HyperIdGenerator::new());
    let pipeline = build_pipeline(&settings, ids.clone(), system_clock()).await?;
    if pipeline.publish_dataset().await? {
        tracing::info!(location = %pipeline.sink().location(""), "data set published");
    }
    let (tick_tx, mut ticks) = mpsc::channel(1);
    let ticker = Ticker::start(&settings.schedule.cron, tick_tx)
        .await
        .map_err(|e| AppError::Startup(format!("starting the scheduler: {e}")))?;
    let notifier = Notifier;
    let mut daemon = Daemon {
        config_path,
        seeds: SeedSource::new(settings.seed),
        settings,
        pipeline,
        ids,
        ticker,
        log,
        stats: Stats::default(),
        notifier,
    };
    tracing::info!(
        schedule = %daemon.settings.schedule.cron,
        trials_per_run = daemon.settings.schedule.trials_per_run,
        sink = %daemon.settings.sink.url,
        "started"
    );
    notifier.ready(&daemon.stats.status_line());

    let mut watchdog = notifier.watchdog_interval().map(tokio::time::interval);
    let mut in_flight: Option<JoinHandle<Vec<TrialReport>>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reloads.recv() => daemon.reload().await,
            Some(()) = ticks.recv() => {
                if in_flight.is_some() {
                    daemon.stats.ticks_skipped += 1;
                    tracing::warn!(
                        skipped = daemon.stats.ticks_skipped,
                        "tick skipped: the previous run is still going"
                    );
                } else {
                    in_flight = Some(daemon.start_run());
                }
            }
            finished = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                daemon.finish_run(finished);
            }
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                notifier.watchdog();
            }
        }
    }

    notifier.stopping();
    daemon.ticker.shutdown().await;
    if let Some(run) = in_flight {
        let grace = daemon.settings.schedule.shutdown_grace;
        tracing::info!(
            grace_secs = grace.as_secs_f64(),
            "waiting for the run in flight"
        );
        match tokio::time::timeout(grace, run).await {
            Ok(finished) => daemon.finish_run(finished),
            // Objects become visible only when complete, so abandoning leaves none
            // half-written; a trial whose facts landed but whose hyper record did not
            // is invisible to the queries, which join on the hyper records.
            Err(_) => tracing::warn!("run abandoned after the grace period"),
        }
    }
    tracing::info!(status = %daemon.stats.status_line(), "stopped");
    Ok(())
}

impl Daemon {
    fn start_run(&mut self) -> JoinHandle<Vec<TrialReport>> {
        let draws: Vec<Draw> = (0..self.settings.schedule.trials_per_run)
            .map(|_| Draw::Seeded {
                space: self.settings.search,
                seed: self.seeds.next_seed(),
            })
            .collect();
        let pipeline = self.pipeline.clone();
        // One fit per core at a time: more would only queue on the blocking pool.
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::spawn(async move {
            let started = Instant::now();
            tracing::info!(trials = draws.len(), "run started");
            let reports: Vec<TrialReport> = futures::stream::iter(draws)
                .map(|draw| pipeline.run_trial(draw))
                .buffer_unordered(parallel)
                .collect()
                .await;
            tracing::info!(
                trials = reports.len(),
                failed = reports.iter().filter(|r| !r.is_ok()).count(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "run finished"
            );
            reports
        })
    }

    fn finish_run(&mut self, finished: Result<Vec<TrialReport>, tokio::task::JoinError>) {
        match finished {
            Ok(reports) => reports.iter().for_each(|r| self.stats.record(r)),
            Err(e) => {
                self.stats.trials_failed += self.settings.schedule.trials_per_run as u64;
                tracing::error!(error = %e, "run crashed");
            }
        }
        self.notifier.status(&self.stats.status_line());
    }

    /// Re-reads the config file. A valid one takes effect from the next tick; an
    /// invalid one, or one whose new sink or data set cannot be set up, is refused
    /// whole and the running config stays.
    async fn reload(&mut self) {
        self.notifier.reloading();
        match self.try_reload().await {
            Ok(changed) if changed.is_empty() => {
                tracing::info!("config reloaded: nothing changed")
            }
            Ok(changed) => tracing::info!(changed = %changed.join(", "), "config reloaded"),
            Err(e) => tracing::error!(
                error = %error_chain(&e),
                "config reload refused; the running config stays in force"
            ),
        }
        self.notifier.ready(&self.stats.status_line());
    }

    async fn try_reload(&mut self) -> Result<Vec<&'static str>, AppError> {
        let new = Settings::load(self.config_path.as_deref())?;
        let changed = self.settings.changed_keys(&new);
        let rebuild = changed.iter().any(|k| {
            k.starts_with("dataset.")
                || k.starts_with("solver.")
                || k.starts_with("sink.")
                || k.starts_with("s3.")
        });
        let pipeline = if rebuild {
            let pipeline = build_pipeline(&new, self.ids.clone(), system_clock()).await?;
            pipeline.publish_dataset().await?;
            Some(pipeline)
        } else {
            None
        };
        if new.schedule.cron != self.settings.schedule.cron {
            self.ticker
                .replace(&new.schedule.cron)
                .await
                .map_err(|e| AppError::Startup(format!("changing the schedule: {e}")))?;
        }
        if let Some(p) = pipeline {
            self.pipeline = p;
        }
        if new.seed != self.settings.seed {
            self.seeds = SeedSource::new(new.seed);
        }
        if let Err(e) = self.log.set_level(&new.log_level) {
            tracing::warn!(error = %e, "keeping the log level");
        }
        self.settings = new;
        Ok(changed)
    }
}
