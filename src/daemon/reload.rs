//! Preparing a reload off the daemon's loop: read the file again and, when the data
//! set, solver or sink changed, build the new pipeline and publish its data set; when
//! `metrics.listen` changed, bind the new address.
//!
//! The loop spawns [`prepare`] as a task and keeps serving ticks, pings and signals
//! while it runs; it applies the result in one step once it is ready.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinError;
use tokio_util::sync::CancellationToken;

use super::metrics::endpoint;
use super::{Daemon, Step};
use crate::config::Settings;
use crate::error::{error_chain, AppError};
use crate::model::id::HyperIdGenerator;
use crate::model::params::SeedSource;
use crate::sink::OpenSink;
use crate::trial::{Clock, Pipeline};

/// A reload ready to apply.
pub(super) struct Prepared {
    pub settings: Settings,
    /// The new pipeline, when the new settings need one.
    pub pipeline: Option<Pipeline>,
    pub changed: Vec<String>,
    /// The metrics endpoint's new listener (`Some(None)`: turned off), when
    /// `metrics.listen` changed.
    pub metrics: Option<Option<TcpListener>>,
}

/// What [`prepare`] needs, cloned out of the daemon so the task owns it.
pub(super) struct Request {
    pub path: Option<PathBuf>,
    pub current: Settings,
    pub connect: Arc<dyn OpenSink>,
    pub ids: Arc<HyperIdGenerator>,
    pub clock: Clock,
    /// Ends a publish still waiting on the sink at shutdown.
    pub cancel: CancellationToken,
}

/// Loads the file and builds what the new settings need. Any error refuses the reload
/// whole; the publish has the new sink's upload deadline.
pub(super) async fn prepare(request: Request) -> Result<Prepared, AppError> {
    let settings = Settings::load(request.path.as_deref())?;
    let changed = request.current.changed_keys(&settings);
    let pipeline = if request.current.same_pipeline(&settings) {
        None
    } else {
        let (pipeline, _) = Pipeline::open(
            &settings.pipeline(),
            request.connect.as_ref(),
            request.ids,
            request.clock,
            &request.cancel,
        )
        .await?;
        Some(pipeline)
    };
    let metrics = match settings.metrics_listen() {
        same if same == request.current.metrics_listen() => None,
        Some(addr) => Some(Some(endpoint::bind(addr).await.map_err(AppError::Startup)?)),
        None => Some(None),
    };
    Ok(Prepared {
        settings,
        pipeline,
        changed,
        metrics,
    })
}

impl Daemon {
    pub(super) fn on_reload_asked(&mut self) -> Step {
        if self.reload.is_some() {
            self.reload_again = true;
            return Step::ReloadQueued;
        }
        self.start_reload();
        Step::ReloadStarted
    }

    fn start_reload(&mut self) {
        self.notifier.reloading();
        let request = Request {
            path: self.config_path.clone(),
            current: self.settings.clone(),
            connect: self.connect.clone(),
            ids: self.ids.clone(),
            clock: self.clock.clone(),
            cancel: self.shutdown.clone(),
        };
        self.reload = Some(tokio::spawn(prepare(request)));
    }

    pub(super) async fn on_reload_done(
        &mut self,
        prepared: Result<Result<Prepared, AppError>, JoinError>,
    ) -> Step {
        self.reload = None;
        let outcome = match prepared {
            Ok(Ok(prepared)) => self.apply(prepared).await,
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(e) => Err(format!("the reload task failed: {e}")),
        };
        let step = match outcome {
            Ok((changed, described)) => {
                if changed.is_empty() {
                    tracing::info!("config reloaded: nothing changed");
                } else {
                    let described = described.join(", ");
                    tracing::info!(changed = %changed.join(", "), "config reloaded: {described}");
                }
                Step::Reloaded { changed }
            }
            Err(error) => {
                tracing::error!(
                    error = %error,
                    "config reload refused ({error}); the running config stays in force"
                );
                Step::ReloadRefused { error }
            }
        };
        self.notifier.ready(&self.stats.status_line());
        if std::mem::take(&mut self.reload_again) {
            self.start_reload();
        }
        step
    }

    /// Switches to the prepared settings in one step; the run in flight, if any, ends
    /// on the pipeline it started with.
    /// Switches to the prepared settings; the keys that changed, and each change in
    /// words.
    async fn apply(&mut self, prepared: Prepared) -> Result<(Vec<String>, Vec<String>), String> {
        let new = prepared.settings;
        let schedule = new.schedule().schedule();
        if schedule != self.settings.schedule().schedule() {
            self.ticks
                .reschedule(&schedule)
                .await
                .map_err(|e| format!("changing the schedule: {e}"))?;
        }
        if let Some(pipeline) = prepared.pipeline {
            self.pipeline = pipeline;
        }
        if let Some(listener) = prepared.metrics {
            // The old endpoint closes as it is dropped.
            self.metrics_endpoint = listener.map(|l| endpoint::serve(l, self.metrics.clone()));
        }
        if new.search().seed != self.settings.search().seed {
            self.seeds = SeedSource::new(new.search().seed);
        }
        self.log.set_level(new.log_level());
        let compaction_changed = new.compaction() != self.settings.compaction();
        let described = self.settings.describe_changes(&new);
        self.settings = new;
        if compaction_changed {
            self.schedule_compaction();
        }
        Ok((prepared.changed, described))
    }
}
