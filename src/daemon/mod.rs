//! `svr-etl run`: the long-running service, as a library function.
//!
//! One loop owns the state. Each [`Daemon::step`] waits for one event and handles it:
//! a tick (start a run unless one is in flight, else skip and count it), the end of a
//! run, a reload request (prepared as a task, so the loop never waits on the file or
//! the sink), the end of that task (apply it whole or refuse it whole), a watchdog
//! ping, the daily compaction (due, done), or shutdown. [`Daemon::drain`] then gives the run in flight
//! `schedule.shutdown_grace_secs` and cancels what is left. Everything from outside
//! (clock, ticks, notifier, log handle, sink connector, signals) comes in through
//! [`DaemonInputs`], so tests drive the loop in-process with paused time.
//! [`schedule`], [`signals`] and [`notify`] are the real inputs.

mod daily_compaction;
mod drain;
pub mod metrics;
pub mod notify;
mod outbox;
mod reload;
pub mod schedule;
pub mod signals;
mod start;
mod stats;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant as WallInstant;

use chrono::NaiveDate;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Duration, Instant, Interval};
use tokio_util::sync::CancellationToken;

pub use stats::Stats;

use crate::config::Settings;
use crate::error::AppError;
use crate::model::id::HyperIdGenerator;
use crate::model::params::SeedSource;
use crate::sink::OpenSink;
use crate::telemetry::LogHandle;
use crate::trial::{Clock, Draw, Pipeline, TrialReport};
use daily_compaction::CompactionTally;
use metrics::endpoint::Endpoint;
use metrics::Metrics;
use notify::Notify;
use outbox::{Flushed, Outbox};
use reload::Prepared;
use schedule::Ticks;

/// After the grace period, how long cancelled trials get to abort their uploads.
const CANCEL_WINDOW: Duration = Duration::from_millis(1500);

/// What comes from outside the daemon.
pub struct DaemonInputs {
    /// The file a reload reads again.
    pub config_path: Option<PathBuf>,
    pub clock: Clock,
    pub ticks: Box<dyn Ticks>,
    pub notifier: Arc<dyn Notify>,
    pub log: LogHandle,
    pub connect: Arc<dyn OpenSink>,
    /// One message per reload request (SIGHUP).
    pub reloads: mpsc::Receiver<()>,
    /// Cancelled at SIGTERM/SIGINT.
    pub shutdown: CancellationToken,
}

/// What one [`Daemon::step`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    RunStarted {
        trials: usize,
    },
    TickSkipped {
        skipped: u64,
    },
    RunFinished {
        ok: usize,
        failed: usize,
    },
    ReloadStarted,
    /// A request while a reload was being prepared: one more follows it.
    ReloadQueued,
    Reloaded {
        changed: Vec<String>,
    },
    ReloadRefused {
        error: String,
    },
    /// Queued trials are being written again.
    FlushStarted {
        queued: usize,
    },
    Flushed {
        written: usize,
        left: usize,
    },
    Watchdog,
    /// The daily compaction started.
    CompactionStarted,
    /// The daily compaction ended: days looked at, days with new parts, days that
    /// failed.
    CompactionFinished {
        days: usize,
        compacted: usize,
        failed: usize,
    },
    /// Shutdown was asked for (or the ticks ended); call [`Daemon::drain`].
    Stopping,
}

/// What the loop waits on.
enum Event {
    Shutdown,
    Tick,
    RunDone(Result<Vec<TrialReport>, JoinError>),
    ReloadDone(Box<Result<Result<Prepared, AppError>, JoinError>>),
    ReloadAsked,
    FlushDue,
    FlushDone(Result<Flushed, JoinError>),
    CompactionDue,
    CompactionDone(Result<CompactionTally, JoinError>),
    Watchdog,
}

pub struct Daemon {
    config_path: Option<PathBuf>,
    clock: Clock,
    ticks: Box<dyn Ticks>,
    notifier: Arc<dyn Notify>,
    log: LogHandle,
    connect: Arc<dyn OpenSink>,
    reloads: mpsc::Receiver<()>,
    shutdown: CancellationToken,
    settings: Settings,
    pipeline: Pipeline,
    ids: Arc<HyperIdGenerator>,
    seeds: SeedSource,
    stats: Stats,
    metrics: Metrics,
    /// Serving `metrics`, when `metrics.listen` is set.
    metrics_endpoint: Option<Endpoint>,
    watchdog: Option<Interval>,
    run: Option<JoinHandle<Vec<TrialReport>>>,
    /// Cancelled once the grace period is over, ending the run's trials.
    run_cancel: CancellationToken,
    reload: Option<JoinHandle<Result<Prepared, AppError>>>,
    reload_again: bool,
    outbox: Outbox,
    flush: Option<JoinHandle<Flushed>>,
    /// When the daily compaction next runs; `None` when it is off.
    compaction_at: Option<Instant>,
    compaction: Option<JoinHandle<CompactionTally>>,
    /// Finished days that queued trials were written into after the fact: the next
    /// compaction takes them whatever their age.
    late_days: BTreeSet<NaiveDate>,
}

/// Runs until shutdown. Fails only at start-up (bad data set, the sink refusing the
/// data set); once running, a failed trial or run is logged and counted, and a bad
/// reload is refused.
pub async fn run(settings: Settings, inputs: DaemonInputs) -> Result<Stats, AppError> {
    let mut daemon = Daemon::start(settings, inputs).await?;
    while daemon.step().await != Step::Stopping {}
    Ok(daemon.drain().await)
}

impl Daemon {
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Waits for the next event and handles it.
    pub async fn step(&mut self) -> Step {
        let step = self.handle_next_event().await;
        self.metrics.sync(&self.stats, self.outbox.bytes());
        step
    }

    async fn handle_next_event(&mut self) -> Step {
        match self.next_event().await {
            Event::Shutdown => Step::Stopping,
            Event::Tick => self.on_tick(),
            Event::RunDone(finished) => self.on_run_done(finished),
            Event::ReloadAsked => self.on_reload_asked(),
            Event::ReloadDone(prepared) => self.on_reload_done(*prepared).await,
            Event::FlushDue => self.start_flush(),
            Event::FlushDone(flushed) => self.on_flush_done(flushed),
            Event::CompactionDue => self.start_compaction(),
            Event::CompactionDone(tally) => self.on_compaction_done(tally),
            Event::Watchdog => {
                self.notifier.watchdog();
                Step::Watchdog
            }
        }
    }

    async fn next_event(&mut self) -> Event {
        tokio::select! {
            // Shutdown first: once asked for, no tick starts another run.
            biased;
            _ = self.shutdown.cancelled() => Event::Shutdown,
            tick = self.ticks.tick() => match tick {
                Some(()) => Event::Tick,
                None => Event::Shutdown,
            },
            finished = join(&mut self.run) => Event::RunDone(finished),
            prepared = join(&mut self.reload) => Event::ReloadDone(Box::new(prepared)),
            flushed = join(&mut self.flush) => Event::FlushDone(flushed),
            () = tokio::time::sleep_until(self.outbox.retry_at()),
                if self.flush.is_none() && !self.outbox.is_empty() => Event::FlushDue,
            compacted = join(&mut self.compaction) => Event::CompactionDone(compacted),
            () = at(self.compaction_at), if self.compaction.is_none() => Event::CompactionDue,
            Some(()) = self.reloads.recv() => Event::ReloadAsked,
            () = ping(&mut self.watchdog) => Event::Watchdog,
        }
    }

    fn on_tick(&mut self) -> Step {
        if self.run.is_some() {
            self.stats.ticks_skipped += 1;
            tracing::warn!(
                skipped = self.stats.ticks_skipped,
                "tick skipped: the previous run is still going ({} skipped so far)",
                self.stats.ticks_skipped
            );
            return Step::TickSkipped {
                skipped: self.stats.ticks_skipped,
            };
        }
        let trials = self.settings.schedule().trials_per_run.get();
        let space = self.settings.search().space();
        let sampler = self.settings.search().sampler;
        let draws: Vec<Draw> = (0..trials)
            .map(|_| Draw::Seeded {
                space,
                seed: self.seeds.next_seed(),
                sampler,
            })
            .collect();
        self.run = Some(tokio::spawn(run_trials(
            self.pipeline.clone(),
            draws,
            self.run_cancel.clone(),
        )));
        Step::RunStarted { trials }
    }

    fn on_run_done(&mut self, finished: Result<Vec<TrialReport>, JoinError>) -> Step {
        self.run = None;
        let step = match finished {
            Ok(reports) => {
                let (ok, failed) = self.sort_reports(reports);
                Step::RunFinished { ok, failed }
            }
            Err(e) => {
                let trials = self.settings.schedule().trials_per_run.get();
                self.stats.trials_failed += trials as u64;
                tracing::error!(error = %e, "run crashed: {e}");
                Step::RunFinished {
                    ok: 0,
                    failed: trials,
                }
            }
        };
        self.notifier.status(&self.stats.status_line());
        step
    }
}

/// One run: the draws as trials in parallel. The pipeline lets one fit per core run at
/// once; three times as many trials in flight keep the cores fitting while others
/// write. With twice as many, 1,024 trials on two cores took 9 % longer (the fit queue
/// ran dry while trials wrote, and its threads were woken again); four times did no
/// better than three, and each trial in flight is one more that TPE's draws have not
/// seen finish.
async fn run_trials(
    pipeline: Pipeline,
    draws: Vec<Draw>,
    cancel: CancellationToken,
) -> Vec<TrialReport> {
    let parallel = 3 * crate::trial::cores();
    let started = WallInstant::now();
    let trials = draws.len();
    tracing::info!(trials, "run started: {trials} trials");
    let reports: Vec<TrialReport> = futures::stream::iter(draws)
        .map(|draw| pipeline.run_trial(draw, &cancel))
        .buffer_unordered(parallel)
        .collect()
        .await;
    let queued = reports.iter().filter(|r| r.unwritten.is_some()).count();
    let ok = reports.iter().filter(|r| r.is_ok()).count();
    let failed = reports
        .iter()
        .filter(|r| !r.is_ok() && r.unwritten.is_none())
        .count();
    let ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::info!(
        trials,
        ok,
        failed,
        queued,
        ms,
        "run finished: {trials} trials, {ok} ok, {failed} failed, {queued} queued for the sink, in {ms:.0} ms"
    );
    reports
}

/// The task's result, or never when there is no task.
async fn join<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// `when`, or never.
async fn at(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// The next watchdog tick, or never when there is no watchdog.
async fn ping(watchdog: &mut Option<Interval>) {
    match watchdog {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
