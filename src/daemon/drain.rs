//! Shutdown: the run in flight and the queued trials share the grace period; past it
//! what is left is cancelled.

use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

use super::outbox::flush;
use super::{ping, Daemon, Stats, CANCEL_WINDOW};

impl Daemon {
    /// Stops ticking, drops a reload in preparation, and gives the run in flight, then
    /// the queued trials, the grace period; past it their writes are cancelled (open
    /// uploads aborted).
    pub async fn drain(mut self) -> Stats {
        self.notifier.stopping();
        self.ticks.shutdown().await;
        if let Some(reload) = self.reload.take() {
            reload.abort();
            tracing::info!("reload abandoned at shutdown");
        }
        self.stop_compaction().await;
        let grace = self.settings.schedule().shutdown_grace_secs.get();
        let deadline = Instant::now() + grace;
        if let Some(mut run) = self.run.take() {
            tracing::info!(
                grace_secs = grace.as_secs_f64(),
                "waiting up to {}s for the run in flight",
                grace.as_secs_f64()
            );
            match self.wait(&mut run, deadline).await {
                Some(finished) => {
                    self.on_run_done(finished);
                }
                None => {
                    if let Some(finished) = self.cancel(run).await {
                        self.on_run_done(finished);
                    }
                    // Objects become visible only when complete, so abandoning leaves
                    // none half-written; a trial whose facts landed but whose hyper
                    // record did not is invisible to the queries, which join on the
                    // hyper records.
                    tracing::warn!("run abandoned after the grace period");
                }
            }
        }
        self.drain_outbox(deadline).await;
        let status = self.stats.status_line();
        tracing::info!(status = %status, "stopped: {status}");
        self.stats
    }

    /// Writes the queued trials until the queue is empty or `deadline` passes.
    async fn drain_outbox(&mut self, deadline: Instant) {
        loop {
            let mut task = match self.flush.take() {
                Some(task) => task,
                None if self.outbox.is_empty() => return,
                None => {
                    let queued = self.outbox.len();
                    tracing::info!(queued, "writing {queued} queued trials before exit");
                    tokio::spawn(flush(self.outbox.take(), self.run_cancel.clone()))
                }
            };
            let flushed = match self.wait(&mut task, deadline).await {
                Some(flushed) => flushed,
                None => {
                    let flushed = self.cancel(task).await;
                    if let Some(flushed) = flushed {
                        self.on_flush_done(flushed);
                    }
                    break;
                }
            };
            self.on_flush_done(flushed);
            if self.outbox.is_empty() {
                return;
            }
            let retry = self.outbox.retry_at().min(deadline);
            tokio::time::sleep_until(retry).await;
            if retry >= deadline {
                break;
            }
        }
        if !self.outbox.is_empty() {
            let lost = self.outbox.len();
            tracing::error!(
                lost,
                "{lost} queued trials not written within the grace period: lost"
            );
        }
    }

    /// `task`'s result, or `None` once `deadline` passes; the watchdog is pinged
    /// meanwhile.
    async fn wait<T>(
        &mut self,
        task: &mut JoinHandle<T>,
        deadline: Instant,
    ) -> Option<Result<T, JoinError>> {
        loop {
            tokio::select! {
                biased;
                done = &mut *task => return Some(done),
                _ = tokio::time::sleep_until(deadline) => return None,
                () = ping(&mut self.watchdog) => self.notifier.watchdog(),
            }
        }
    }

    /// Cancels the trials' writes and gives them a moment to abort their uploads.
    async fn cancel<T>(&mut self, mut task: JoinHandle<T>) -> Option<Result<T, JoinError>> {
        self.run_cancel.cancel();
        match tokio::time::timeout(CANCEL_WINDOW, &mut task).await {
            Ok(done) => Some(done),
            Err(_) => {
                task.abort();
                None
            }
        }
    }
}
