//! Shutdown: the run in flight gets the grace period, then is cancelled.

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{ping, Daemon, Stats, CANCEL_WINDOW};
use crate::trial::TrialReport;

impl Daemon {
    /// Stops ticking, drops a reload in preparation, and gives the run in flight the
    /// grace period; past it the run's trials are cancelled (open uploads aborted).
    pub async fn drain(mut self) -> Stats {
        self.notifier.stopping();
        self.ticks.shutdown().await;
        if let Some(reload) = self.reload.take() {
            reload.abort();
            tracing::info!("reload abandoned at shutdown");
        }
        if let Some(mut run) = self.run.take() {
            let grace = self.settings.schedule().shutdown_grace_secs.get();
            tracing::info!(
                grace_secs = grace.as_secs_f64(),
                "waiting for the run in flight"
            );
            let deadline = Instant::now() + grace;
            loop {
                tokio::select! {
                    biased;
                    finished = &mut run => {
                        self.on_run_done(finished);
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        self.abandon(run).await;
                        break;
                    }
                    () = ping(&mut self.watchdog) => self.notifier.watchdog(),
                }
            }
        }
        tracing::info!(status = %self.stats.status_line(), "stopped");
        self.stats
    }

    async fn abandon(&mut self, mut run: JoinHandle<Vec<TrialReport>>) {
        self.run_cancel.cancel();
        match tokio::time::timeout(CANCEL_WINDOW, &mut run).await {
            Ok(finished) => {
                self.on_run_done(finished);
            }
            Err(_) => run.abort(),
        }
        // Objects become visible only when complete, so abandoning leaves none
        // half-written; a trial whose facts landed but whose hyper record did not
        // is invisible to the queries, which join on the hyper records.
        tracing::warn!("run abandoned after the grace period");
    }
}
