//! `svr-etl run`: wires the real inputs (cron ticks, signals, systemd, the sink
//! connector, the system clock) into [`crate::daemon::run`].

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::ThreadBudget;
use crate::config::Settings;
use crate::daemon::notify::SdNotify;
use crate::daemon::schedule::CronTicker;
use crate::daemon::{self, signals, DaemonInputs};
use crate::error::AppError;
use crate::sink::Connector;
use crate::telemetry::LogHandle;
use crate::trial::system_clock;

pub async fn run(
    settings: Settings,
    config_path: Option<PathBuf>,
    log: LogHandle,
    threads: ThreadBudget,
) -> Result<(), AppError> {
    tracing::info!(
        "threads: at most {} ({} runtime workers, {} blocking, the main thread)",
        threads.most(),
        threads.workers,
        threads.blocking,
    );
    let shutdown = CancellationToken::new();
    let reloads = signals::listen(shutdown.clone())
        .map_err(|e| AppError::Startup(format!("installing signal handlers: {e}")))?;
    let ticks = CronTicker::start(&settings.schedule().schedule());
    let inputs = DaemonInputs {
        config_path,
        clock: system_clock(),
        ticks: Box::new(ticks),
        notifier: Arc::new(SdNotify),
        log,
        connect: Arc::new(Connector),
        reloads,
        shutdown,
    };
    daemon::run(settings, inputs).await.map(drop)
}
