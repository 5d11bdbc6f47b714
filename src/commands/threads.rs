//! The process's threads: how many the async runtime may have, set from the cores once
//! at start, so that load can queue work but never add threads without bound.
//!
//! tokio's defaults grow the blocking pool up to 512 threads whenever every thread in
//! it is busy, and each new thread costs about 1.2-1.5 MB resident (its stack and its
//! malloc arena); a soak on a busy machine saw the daemon step from 5 to 6 threads.

use std::time::Duration;

use tokio::runtime::Runtime;

/// Blocking threads beyond the fits and the writes of the trials in flight: reads of
/// the study history, compaction's encoding, name lookups, a reload's or a flush's
/// write. More such work waits for a thread; none of it waits on another.
const SPARE_BLOCKING: usize = 4;

/// How long an idle blocking thread stays for the next task (tokio's default is 10 s,
/// which let a one-second schedule start and end threads as load came and went).
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// The threads one process of svr-etl may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadBudget {
    /// The runtime's workers: one per core.
    pub workers: usize,
    /// The blocking pool: one fit per core (the trial pipeline's queue), two writes per
    /// core (the S3 sink produces a body over 256 KiB on a blocking thread while the upload
    /// awaits it; the local sink writes and syncs on one once its writes are slow), and
    /// `SPARE_BLOCKING` more.
    pub blocking: usize,
}

impl ThreadBudget {
    pub fn for_cores(cores: usize) -> ThreadBudget {
        let cores = cores.max(1);
        ThreadBudget {
            workers: cores,
            blocking: cores + 2 * cores + SPARE_BLOCKING,
        }
    }

    /// The most threads the process can have: these and the main thread.
    pub fn most(&self) -> usize {
        1 + self.workers + self.blocking
    }

    pub fn runtime(&self) -> std::io::Result<Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers)
            .max_blocking_threads(self.blocking)
            .thread_keep_alive(KEEP_ALIVE)
            .enable_all()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_never_has_more_blocking_threads_than_its_budget() {
        let budget = ThreadBudget::for_cores(1);
        assert_eq!(budget.most(), 1 + 1 + 7);
        let runtime = budget.runtime().unwrap();
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        runtime.block_on(async {
            let tasks: Vec<_> = (0..4 * budget.blocking)
                .map(|_| {
                    let (peak, running) = (peak.clone(), running.clone());
                    tokio::task::spawn_blocking(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        peak.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        running.fetch_sub(1, SeqCst);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak <= budget.blocking, "{peak} at once");
        assert_eq!(
            runtime.metrics().num_workers(),
            budget.workers,
            "runtime workers"
        );
    }
}
