//! When runs happen: the tick sources. [`Ticks`] is what the daemon waits on;
//! [`CronTicker`] is the real one, on tokio-cron-scheduler, ticking on a
//! [`CronSchedule`]. What a tick does is the daemon's business.

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

pub use crate::model::cron::{CronExpr, CronSchedule};

/// Where the daemon's ticks come from.
#[async_trait]
pub trait Ticks: Send {
    /// The next tick; `None` once the source has ended. Cancel-safe: the daemon
    /// waits on it in a `select!`.
    async fn tick(&mut self) -> Option<()>;

    /// Ticks on `schedule` from now on.
    async fn reschedule(&mut self, schedule: &CronSchedule) -> Result<(), String>;

    /// Stops ticking.
    async fn shutdown(&mut self);
}

/// Ticks on a cron schedule, through tokio-cron-scheduler.
pub struct CronTicker {
    scheduler: JobScheduler,
    job: Uuid,
    tx: mpsc::Sender<()>,
    rx: mpsc::Receiver<()>,
}

impl CronTicker {
    pub async fn start(schedule: &CronSchedule) -> Result<CronTicker, JobSchedulerError> {
        // One slot: a tick the daemon has not taken yet absorbs the next one.
        let (tx, rx) = mpsc::channel(1);
        let scheduler = JobScheduler::new().await?;
        let job = scheduler.add(Self::job(schedule, tx.clone())?).await?;
        scheduler.start().await?;
        Ok(CronTicker {
            scheduler,
            job,
            tx,
            rx,
        })
    }

    fn job(schedule: &CronSchedule, ticks: mpsc::Sender<()>) -> Result<Job, JobSchedulerError> {
        Job::new_async_tz(schedule.expr(), schedule.timezone(), move |_, _| {
            let ticks = ticks.clone();
            Box::pin(async move {
                // A full channel means the daemon has not taken the previous tick yet;
                // dropping this one is the same as skipping it.
                let _ = ticks.try_send(());
            })
        })
    }
}

#[async_trait]
impl Ticks for CronTicker {
    async fn tick(&mut self) -> Option<()> {
        self.rx.recv().await
    }

    async fn reschedule(&mut self, schedule: &CronSchedule) -> Result<(), String> {
        let job = Self::job(schedule, self.tx.clone()).map_err(|e| e.to_string())?;
        let id = self.scheduler.add(job).await.map_err(|e| e.to_string())?;
        self.scheduler
            .remove(&self.job)
            .await
            .map_err(|e| e.to_string())?;
        self.job = id;
        Ok(())
    }

    async fn shutdown(&mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %e, "stopping the scheduler: {e}");
        }
    }
}
