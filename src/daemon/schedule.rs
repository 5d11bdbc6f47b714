//! When runs happen: the tick sources. [`Ticks`] is what the daemon waits on;
//! [`CronTicker`] is the real one, ticking on a [`CronSchedule`]. What a tick does is
//! the daemon's business.
//!
//! Each tick is computed in the schedule's zone when the one before it has fired, so
//! a zone's offset may change between ticks (daylight saving) and local time is kept.
//! A time the zone skips runs right after the change; a time it repeats runs once
//! (croner's reading of the expression, as cronie runs jobs). tokio-cron-scheduler,
//! used before, fixed the zone's offset when a job was added, an hour off after each
//! change until the next reload.

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// Ticks on a cron schedule, in its zone.
pub struct CronTicker {
    task: JoinHandle<()>,
    tx: mpsc::Sender<()>,
    rx: mpsc::Receiver<()>,
}

/// The longest sleep between two looks at the wall clock, so that a step of the clock
/// (NTP, a suspended instance) moves the next tick with it.
const LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(60);

impl CronTicker {
    pub fn start(schedule: &CronSchedule) -> CronTicker {
        // One slot: a tick the daemon has not taken yet absorbs the next one.
        let (tx, rx) = mpsc::channel(1);
        CronTicker {
            task: tokio::spawn(tick_on(schedule.clone(), tx.clone())),
            tx,
            rx,
        }
    }
}

/// Sends a tick at each time `schedule` names, until the receiver is gone.
async fn tick_on(schedule: CronSchedule, ticks: mpsc::Sender<()>) {
    let mut after = Utc::now();
    while let Some(next) = schedule.next_after(after) {
        loop {
            let left = (next - Utc::now()).to_std().unwrap_or_default();
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(LOOK_AGAIN)).await;
        }
        // A full channel means the daemon has not taken the previous tick yet;
        // dropping this one is the same as skipping it.
        if let Err(mpsc::error::TrySendError::Closed(())) = ticks.try_send(()) {
            return;
        }
        after = next;
    }
}

#[async_trait]
impl Ticks for CronTicker {
    async fn tick(&mut self) -> Option<()> {
        self.rx.recv().await
    }

    async fn reschedule(&mut self, schedule: &CronSchedule) -> Result<(), String> {
        self.task.abort();
        self.task = tokio::spawn(tick_on(schedule.clone(), self.tx.clone()));
        Ok(())
    }

    async fn shutdown(&mut self) {
        self.task.abort();
    }
}
