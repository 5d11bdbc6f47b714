//! Starting the daemon: the pipeline opened (the data set published), what an earlier
//! crash left behind cleaned up, the start line logged, and systemd told it is ready.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use super::metrics::{endpoint, Metrics};
use super::outbox::Outbox;
use super::{Daemon, DaemonInputs, Stats};
use crate::config::Settings;
use crate::error::{error_chain, AppError};
use crate::model::id::HyperIdGenerator;
use crate::model::params::SeedSource;
use crate::trial::Pipeline;

impl Daemon {
    /// Builds the pipeline, publishes the data set and tells the manager it is ready.
    pub async fn start(settings: Settings, inputs: DaemonInputs) -> Result<Daemon, AppError> {
        let ids = Arc::new(HyperIdGenerator::new());
        let (pipeline, published) = Pipeline::open(
            &settings.pipeline(),
            inputs.connect.as_ref(),
            ids.clone(),
            inputs.clock.clone(),
            &inputs.shutdown,
        )
        .await?;
        if published {
            let location = pipeline.sink().location("");
            tracing::info!(location = %location, "data set published to {location}");
        }
        clean_up_after_crashes(&pipeline, settings.sink().upload_timeout()).await;
        let watchdog = inputs
            .notifier
            .watchdog_interval()
            .map(tokio::time::interval);
        let metrics = Metrics::new();
        let metrics_endpoint = match settings.metrics_listen() {
            Some(addr) => {
                let listener = endpoint::bind(addr).await.map_err(AppError::Startup)?;
                Some(endpoint::serve(listener, metrics.clone()))
            }
            None => None,
        };
        let queue_bytes = settings.sink().retry_queue_bytes();
        let mut daemon = Daemon {
            config_path: inputs.config_path,
            clock: inputs.clock,
            ticks: inputs.ticks,
            notifier: inputs.notifier,
            log: inputs.log,
            connect: inputs.connect,
            reloads: inputs.reloads,
            shutdown: inputs.shutdown,
            seeds: SeedSource::new(settings.search().seed),
            settings,
            pipeline,
            ids,
            stats: Stats::default(),
            metrics,
            metrics_endpoint,
            watchdog,
            run: None,
            run_cancel: CancellationToken::new(),
            reload: None,
            reload_again: false,
            outbox: Outbox::new(queue_bytes),
            flush: None,
            compaction_at: None,
            compaction: None,
            late_days: BTreeSet::new(),
        };
        daemon.schedule_compaction();
        daemon.log_start();
        daemon.notifier.ready(&daemon.stats.status_line());
        Ok(daemon)
    }

    /// The start line: what runs where, on what, in words and as fields.
    fn log_start(&self) {
        let settings = &self.settings;
        let schedule = settings.schedule().schedule();
        let trials_per_run = settings.schedule().trials_per_run.get();
        let sampler = settings.search().sampler.name();
        let engine = settings.solver().engine.name();
        let cores = crate::trial::cores();
        let sink = &settings.sink().url;
        let version = env!("CARGO_PKG_VERSION");
        tracing::info!(
            %schedule,
            trials_per_run,
            sampler,
            engine,
            cores,
            %sink,
            version,
            "started on {sink}: schedule {schedule}, {trials_per_run} trials a run, \
             sampler {sampler}, engine {engine}, {cores} cores, svr-etl {version}"
        );
    }
}

/// Removes what writes cut short by an earlier crash left behind: partial files, open
/// multipart uploads. Anything younger than the upload deadline may belong to a writer
/// still at work (another host on the same prefix) and stays.
async fn clean_up_after_crashes(pipeline: &Pipeline, upload_timeout: Duration) {
    let sink = pipeline.sink();
    let cleaned = tokio::time::timeout(upload_timeout, sink.clean_stale(upload_timeout)).await;
    match cleaned {
        Ok(Ok(0)) => {}
        Ok(Ok(removed)) => tracing::info!(
            removed,
            location = %sink.location(""),
            "removed {removed} objects that writes cut short by an earlier crash left in {}",
            sink.location("")
        ),
        Ok(Err(e)) => {
            let error = error_chain(&e);
            tracing::warn!(error = %error, "cleaning up after earlier crashes: {error}")
        }
        Err(_) => tracing::warn!("cleaning up after earlier crashes: no answer in time"),
    }
}
