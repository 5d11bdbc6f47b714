//! The daemon keeps no memory per trial but what it must: live heap bytes, counted by
//! the allocator, after 100 and after 1,000 trials through the daemon's loop.
//!
//! A test binary of its own: the counting allocator sees every thread of the process,
//! so no other test may run beside it. The loop runs in-process with paused time, ticked
//! by hand, fitting with 5-fold cross-validation and writing to a local sink, once with
//! the random sampler and once with TPE.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use svr_etl::config::Settings;
use svr_etl::daemon::notify::Notify;
use svr_etl::daemon::schedule::{CronSchedule, Ticks};
use svr_etl::daemon::{Daemon, DaemonInputs, Step};
use svr_etl::sink::Connector;
use svr_etl::telemetry::LogHandle;
use svr_etl::trial::system_clock;
use svr_exact::spare_bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bytes allocated and not yet freed, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call goes to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes, less the row storage fit threads keep for their next fit (it grows
/// with the largest fit a thread has run, up to a bound per thread, not per trial).
fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst) - spare_bytes() as isize
}

/// Ticks sent by the test.
struct ManualTicks(mpsc::Receiver<()>);

#[async_trait]
impl Ticks for ManualTicks {
    async fn tick(&mut self) -> Option<()> {
        self.0.recv().await
    }
    async fn reschedule(&mut self, _: &CronSchedule) -> Result<(), String> {
        Ok(())
    }
    async fn shutdown(&mut self) {}
}

struct Silent;

impl Notify for Silent {
    fn ready(&self, _: &str) {}
    fn status(&self, _: &str) {}
    fn watchdog(&self) {}
    fn reloading(&self) {}
    fn stopping(&self) {}
    fn watchdog_interval(&self) -> Option<Duration> {
        None
    }
}

const WARM_UP: usize = 100;
const TRIALS: usize = 1000;

/// Runs `TRIALS` one-trial runs of the daemon on `sampler`, writing under `dir`; the
/// live bytes after `WARM_UP` trials and after all of them.
async fn live_bytes_over_trials(dir: &Path, sampler: &str) -> (isize, isize) {
    let config = dir.join("svr-etl.toml");
    let toml = format!(
        "[search]\nsampler = \"{sampler}\"\ncv_folds = 5\n[compaction]\nenabled = false\n\
         [sink]\nurl = {:?}\n",
        dir.join("out").display().to_string()
    );
    std::fs::write(&config, toml).unwrap();
    let settings = Settings::load(Some(&config)).unwrap();
    let (ticks, ticks_rx) = mpsc::channel(1);
    let inputs = DaemonInputs {
        config_path: Some(config),
        clock: system_clock(),
        ticks: Box::new(ManualTicks(ticks_rx)),
        notifier: Arc::new(Silent),
        log: LogHandle::detached(),
        connect: Arc::new(Connector),
        reloads: mpsc::channel(1).1,
        shutdown: CancellationToken::new(),
    };
    let mut daemon = Daemon::start(settings, inputs).await.unwrap();
    let mut after_warm_up = 0;
    for trial in 1..=TRIALS {
        ticks.send(()).await.unwrap();
        assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
        assert_eq!(daemon.step().await, Step::RunFinished { ok: 1, failed: 0 });
        if trial == WARM_UP {
            after_warm_up = live_bytes_at_rest().await;
        }
    }
    let after_all = live_bytes_at_rest().await;
    drop(ticks);
    assert_eq!(daemon.step().await, Step::Stopping);
    daemon.drain().await;
    (after_warm_up, after_all)
}

/// What TPE must keep of each finished trial: its id among those seen (a `HashSet` of
/// u64, which holds at most 7 elements per 8 buckets of 9 bytes each), and its point
/// and score among the completed (40 bytes: order, three log parameters, value); both
/// grow by doubling, so live bytes may be up to twice that per trial.
fn tpe_history_bytes_per_trial() -> f64 {
    let seen = 9.0 * 8.0 / 7.0;
    let completed = 40.0;
    2.0 * (seen + completed)
}

/// Live bytes once every blocking thread is idle: a fit's thread may still be freeing
/// the fit's memory after it has handed its result over.
async fn live_bytes_at_rest() -> isize {
    occupy_every_blocking_thread().await;
    live_bytes()
}

/// The runtime's blocking threads (fits, the local sink's writes): all started before
/// the first trial and kept to the end, so that no thread's own allocations come or go
/// between the two counts.
const BLOCKING_THREADS: usize = 8;

/// Runs a task on every blocking thread at once: all of them exist, and none is busy
/// with anything else.
async fn occupy_every_blocking_thread() {
    let all_started = Arc::new(std::sync::Barrier::new(BLOCKING_THREADS));
    let threads: Vec<_> = (0..BLOCKING_THREADS)
        .map(|_| {
            let all_started = all_started.clone();
            tokio::task::spawn_blocking(move || {
                all_started.wait();
            })
        })
        .collect();
    for thread in threads {
        thread.await.unwrap();
    }
}

/// Bytes the runtime and the allocator's callers may move without a trial keeping
/// anything: a timer wheel level, a buffer whose capacity a longer listing raised.
const SLACK: isize = 2 << 10;

#[test]
fn trials_keep_no_memory_but_the_study_history() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(Duration::from_secs(24 * 3600))
        .build()
        .unwrap();
    runtime.block_on(occupy_every_blocking_thread());
    let dir = tempfile::tempdir().unwrap();
    let counted = TRIALS - WARM_UP;
    for (sampler, per_trial) in [("random", 0.0), ("tpe", tpe_history_bytes_per_trial())] {
        let sink = dir.path().join(sampler);
        std::fs::create_dir_all(&sink).unwrap();
        let (before, after) = runtime.block_on(live_bytes_over_trials(&sink, sampler));
        let grew = after - before;
        let allowed = (per_trial * counted as f64) as isize + SLACK;
        println!(
            "{sampler}: live heap {before} bytes after {WARM_UP} trials, {after} after {TRIALS}: \
             {grew:+} bytes, {:.1} a trial (allowed {allowed})",
            grew as f64 / counted as f64
        );
        assert!(
            grew <= allowed,
            "{sampler}: {grew} bytes kept over {counted} trials, {:.1} a trial; allowed \
             {per_trial:.1} a trial and {SLACK} in all",
            grew as f64 / counted as f64
        );
    }
}
