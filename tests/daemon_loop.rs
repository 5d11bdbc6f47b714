//! The daemon's loop in-process, with paused time: every input injected, one step at
//! a time. Sinks are real directories; where a test needs a slow or unresponsive
//! store, [`Latency`] puts a delay in front of one, as a stalled network would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use svr_etl::config::Settings;
use svr_etl::daemon::notify::Notify;
use svr_etl::daemon::schedule::{CronSchedule, Ticks};
use svr_etl::daemon::{Daemon, DaemonInputs, Step};
use svr_etl::sink::{
    BodyWriter, Connector, Deadline, OpenSink, S3Settings, Sink, SinkError, SinkSettings, SinkUrl,
    Written,
};
use svr_etl::telemetry::LogHandle;
use svr_etl::trial::{system_clock, Clock};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::helper::{files_under, ndjson, svr_etl_at};

/// Ticks sent by the test; reschedules are recorded.
struct ManualTicks {
    rx: mpsc::Receiver<()>,
    schedules: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Ticks for ManualTicks {
    async fn tick(&mut self) -> Option<()> {
        self.rx.recv().await
    }

    async fn reschedule(&mut self, schedule: &CronSchedule) -> Result<(), String> {
        self.schedules
            .lock()
            .unwrap()
            .push(schedule.expr().to_string());
        Ok(())
    }

    async fn shutdown(&mut self) {}
}

/// What the daemon told its service manager, with the (paused) time of each message.
#[derive(Default)]
struct Recorder {
    watchdog: Option<Duration>,
    messages: Mutex<Vec<(Instant, String)>>,
}

impl Recorder {
    fn push(&self, m: String) {
        self.messages.lock().unwrap().push((Instant::now(), m));
    }

    fn count(&self, needle: &str) -> usize {
        let messages = self.messages.lock().unwrap();
        messages.iter().filter(|(_, m)| m.contains(needle)).count()
    }
}

impl Notify for Recorder {
    fn ready(&self, status: &str) {
        self.push(format!("READY=1 STATUS={status}"));
    }
    fn status(&self, status: &str) {
        self.push(format!("STATUS={status}"));
    }
    fn watchdog(&self) {
        self.push("WATCHDOG=1".into());
    }
    fn reloading(&self) {
        self.push("RELOADING=1".into());
    }
    fn stopping(&self) {
        self.push("STOPPING=1".into());
    }
    fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// A real sink behind a delay: every create and get waits `delay` first, giving up at
/// the write's deadline (as the S3 sink does) or at its cancellation. While `down` is
/// set, creates are refused at once, as by a store that refuses connections.
#[derive(Debug)]
struct Latency {
    inner: Arc<dyn Sink>,
    delay: Duration,
    down: Arc<AtomicBool>,
}

impl Latency {
    fn refuse_while_down(&self, op: &'static str, key: &str) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Remote {
                op,
                location: self.location(key),
                message: "connection refused".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for Latency {
    async fn create(
        &self,
        key: &str,
        body: BodyWriter,
        deadline: &Deadline,
    ) -> Result<Written, SinkError> {
        let location = self.location(key);
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Remote {
                op: "uploading",
                location,
                message: "connection refused".into(),
            });
        }
        tokio::select! {
            waited = tokio::time::timeout(deadline.timeout, tokio::time::sleep(self.delay)) => {
                if waited.is_err() {
                    return Err(SinkError::Timeout { op: "uploading", location, after: deadline.timeout });
                }
            }
            _ = deadline.cancel.cancelled() => {
                return Err(SinkError::Cancelled { op: "uploading", location });
            }
        }
        self.inner.create(key, body, deadline).await
    }

    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
        deadline: &Deadline,
    ) -> Result<Written, SinkError> {
        self.refuse_while_down("writing", key)?;
        tokio::time::sleep(self.delay).await;
        self.inner.replace(key, bytes, content_type, deadline).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.refuse_while_down("reading", key)?;
        tokio::time::sleep(self.delay).await;
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, SinkError> {
        self.refuse_while_down("listing", prefix)?;
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        self.refuse_while_down("deleting", key)?;
        self.inner.delete(key).await
    }

    async fn clean_stale(&self, age: Duration) -> Result<usize, SinkError> {
        self.inner.clean_stale(age).await
    }

    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}

/// Opens real sinks, with the delay configured for their directory; `down` switches
/// every sink off and on.
#[derive(Default)]
struct Stalls {
    delays: Mutex<HashMap<PathBuf, Duration>>,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl OpenSink for Stalls {
    async fn open(&self, sink: &SinkSettings, s3: &S3Settings) -> Arc<dyn Sink> {
        let inner = Connector.open(sink, s3).await;
        let SinkUrl::Local(dir) = &sink.url else {
            return inner;
        };
        let delay = self
            .delays
            .lock()
            .unwrap()
            .get(dir)
            .copied()
            .unwrap_or_default();
        Arc::new(Latency {
            inner,
            delay,
            down: self.down.clone(),
        })
    }
}

/// A daemon on a config file in a temporary directory, and the handles to drive it.
struct Harness {
    dir: tempfile::TempDir,
    ticks: mpsc::Sender<()>,
    reloads: mpsc::Sender<()>,
    shutdown: CancellationToken,
    notes: Arc<Recorder>,
    schedules: Arc<Mutex<Vec<String>>>,
    stalls: Arc<Stalls>,
    clock: Clock,
}

impl Harness {
    fn new(watchdog: Option<Duration>) -> Harness {
        Harness {
            dir: tempfile::tempdir().unwrap(),
            ticks: mpsc::channel(1).0,
            reloads: mpsc::channel(1).0,
            shutdown: CancellationToken::new(),
            notes: Arc::new(Recorder {
                watchdog,
                ..Recorder::default()
            }),
            schedules: Arc::default(),
            stalls: Arc::default(),
            clock: system_clock(),
        }
    }

    /// From now on the daemon's clock reads `start` and moves with (paused) time.
    fn clock_from(&mut self, start: &str) {
        let start = chrono::DateTime::parse_from_rfc3339(start)
            .unwrap()
            .with_timezone(&chrono::Utc);
        let t0 = Instant::now();
        self.clock = Arc::new(move || start + chrono::Duration::from_std(t0.elapsed()).unwrap());
    }

    /// The sink directory `name`, each of whose writes waits `delay`.
    fn sink(&self, name: &str, delay: Duration) -> PathBuf {
        let dir = self.dir.path().join(name);
        self.stalls
            .delays
            .lock()
            .unwrap()
            .insert(dir.clone(), delay);
        dir
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("svr-etl.toml")
    }

    /// Writes the config file: the sink directory and its upload deadline, then
    /// `extra` keys. The daily compaction is off unless `extra` configures it.
    fn write_config(&self, sink: &Path, upload_timeout_secs: u32, extra: &str) -> Settings {
        let compaction = if extra.contains("[compaction]") {
            ""
        } else {
            "[compaction]\nenabled = false\n"
        };
        let toml = format!(
            "{extra}\n{compaction}[sink]\nurl = {:?}\nupload_timeout_secs = {upload_timeout_secs}\n",
            sink.display().to_string()
        );
        std::fs::write(self.config_path(), toml).unwrap();
        Settings::load(Some(&self.config_path())).unwrap()
    }

    async fn start(&mut self, settings: Settings) -> Daemon {
        let (ticks, ticks_rx) = mpsc::channel(1);
        let (reloads, reloads_rx) = mpsc::channel(1);
        self.ticks = ticks;
        self.reloads = reloads;
        let inputs = DaemonInputs {
            config_path: Some(self.config_path()),
            clock: self.clock.clone(),
            ticks: Box::new(ManualTicks {
                rx: ticks_rx,
                schedules: self.schedules.clone(),
            }),
            notifier: self.notes.clone(),
            log: LogHandle::detached(),
            connect: self.stalls.clone(),
            reloads: reloads_rx,
            shutdown: self.shutdown.clone(),
        };
        Daemon::start(settings, inputs).await.unwrap()
    }

    async fn tick(&self) {
        self.ticks.send(()).await.unwrap();
    }

    async fn reload(&self) {
        self.reloads.send(()).await.unwrap();
    }

    fn sink_down(&self, down: bool) {
        self.stalls.down.store(down, Ordering::SeqCst);
    }
}

/// The hyper records under `sink`.
fn trials(sink: &Path) -> Vec<Value> {
    files_under(sink)
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .flat_map(|f| ndjson(&std::fs::read_to_string(sink.join(f)).unwrap()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn ticks_during_a_run_are_skipped_and_counted() {
    let mut h = Harness::new(None);
    let sink = h.sink("slow", Duration::from_secs(10));
    let settings = h.write_config(&sink, 900, "");
    let mut daemon = h.start(settings).await;

    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    for skipped in 1..=3 {
        h.tick().await;
        assert_eq!(daemon.step().await, Step::TickSkipped { skipped });
    }
    let started = Instant::now();
    assert_eq!(daemon.step().await, Step::RunFinished { ok: 1, failed: 0 });
    // Two writes (facts, then the hyper record), each behind the 10 s delay.
    assert!(
        started.elapsed() >= Duration::from_secs(19),
        "{:?}",
        started.elapsed()
    );
    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    assert_eq!(daemon.stats().ticks_skipped, 3);
    assert!(h.notes.count("3 ticks skipped") >= 1);
    assert_eq!(trials(&sink).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reload_during_a_run_applies_from_the_next_tick() {
    let mut h = Harness::new(None);
    let sink = h.sink("slow", Duration::from_secs(10));
    let settings = h.write_config(&sink, 900, "[search]\ngamma = [-2.0, -1.9]\n");
    let mut daemon = h.start(settings).await;

    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    h.write_config(
        &sink,
        900,
        "[search]\ngamma = [1.9, 2.0]\n[schedule]\ncron = \"*/2 * * * * *\"\n",
    );
    h.reload().await;
    assert_eq!(daemon.step().await, Step::ReloadStarted);
    let changed = vec!["schedule.cron".to_string(), "search.gamma".to_string()];
    assert_eq!(daemon.step().await, Step::Reloaded { changed });
    assert_eq!(*h.schedules.lock().unwrap(), ["*/2 * * * * *"]);
    // The run that started before the reload ends as it began.
    assert_eq!(daemon.step().await, Step::RunFinished { ok: 1, failed: 0 });
    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    assert_eq!(daemon.step().await, Step::RunFinished { ok: 1, failed: 0 });

    let mut gammas: Vec<f64> = trials(&sink)
        .iter()
        .map(|t| t["gamma"].as_f64().unwrap())
        .collect();
    gammas.sort_by(f64::total_cmp);
    assert!(gammas[0] < 0.013 && gammas[1] > 79.0, "{gammas:?}");
    assert_eq!(h.notes.count("RELOADING=1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reload_to_a_frozen_sink_never_stalls_the_loop() {
    let mut h = Harness::new(Some(Duration::from_secs(1)));
    let old = h.sink("old", Duration::ZERO);
    let frozen = h.sink("frozen", Duration::from_secs(365 * 86_400));
    let settings = h.write_config(&old, 5, "");
    let mut daemon = h.start(settings).await;

    h.write_config(&frozen, 5, "");
    h.reload().await;
    assert_eq!(daemon.step().await, Step::ReloadStarted);
    let began = Instant::now();
    // While the new sink does not answer: ticks run on the old sink, pings go on, and
    // a second request is folded into one more reload.
    h.reload().await;
    let mut finished_runs = 0;
    let mut queued = 0;
    let mut steps = Vec::new();
    while !matches!(steps.last(), Some(Step::ReloadRefused { .. })) {
        let step = daemon.step().await;
        match &step {
            // A tick a second, as the one-second schedule would give.
            Step::Watchdog => {
                let _ = h.ticks.try_send(());
            }
            Step::RunFinished { ok, .. } => finished_runs += ok,
            Step::ReloadQueued => queued += 1,
            _ => {}
        }
        steps.push(step);
        assert!(steps.len() < 1000, "{steps:?}");
    }
    let Some(Step::ReloadRefused { error }) = steps.last() else {
        unreachable!()
    };
    assert!(error.contains("no answer within 5s"), "{error}");
    assert!(began.elapsed() >= Duration::from_secs(5));
    assert_eq!(queued, 1, "{steps:?}");
    assert!(finished_runs >= 3, "{steps:?}");
    assert!(
        steps.iter().filter(|s| **s == Step::Watchdog).count() >= 5,
        "{steps:?}"
    );
    // The folded request started at once, and the running config stays in force.
    assert_eq!(h.notes.count("RELOADING=1"), 2);
    assert_eq!(daemon.settings().sink().url, SinkUrl::Local(old.clone()));
    // The refusal can come in the same turn as a run's end, its trial already written
    // and its report not yet taken: the trials are counted once the drain has taken
    // every run's.
    assert!(trials(&old).len() >= finished_runs);
    assert!(trials(&frozen).is_empty());

    // Shutdown during that second reload: no wait on the frozen sink.
    h.shutdown.cancel();
    let stopping = Instant::now();
    assert_eq!(daemon.step().await, Step::Stopping);
    let stats = daemon.drain().await;
    assert!(stopping.elapsed() < Duration::from_secs(1));
    assert_eq!(trials(&old).len() as u64, stats.trials_ok);
    assert_eq!(stats.trials_failed, 0);
    assert!(trials(&frozen).is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_run_finish_within_the_grace_period() {
    let mut h = Harness::new(None);
    let sink = h.sink("slow", Duration::from_secs(3));
    let settings = h.write_config(&sink, 900, "[schedule]\nshutdown_grace_secs = 30\n");
    let mut daemon = h.start(settings).await;

    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    h.shutdown.cancel();
    // A tick that arrives after shutdown starts nothing.
    h.tick().await;
    assert_eq!(daemon.step().await, Step::Stopping);
    let stats = daemon.drain().await;
    assert_eq!((stats.trials_ok, stats.trials_failed), (1, 0));
    assert_eq!(trials(&sink).len(), 1);
    assert_eq!(h.notes.count("STOPPING=1"), 1);
}

#[tokio::test(start_paused = true)]
async fn past_the_grace_period_the_run_is_cancelled_and_nothing_is_left_half_written() {
    let mut h = Harness::new(None);
    let sink = h.sink("slow", Duration::from_secs(600));
    let settings = h.write_config(
        &sink,
        900,
        "[schedule]\nshutdown_grace_secs = 2\ntrials_per_run = 4\n",
    );
    let mut daemon = h.start(settings).await;

    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 4 });
    h.shutdown.cancel();
    assert_eq!(daemon.step().await, Step::Stopping);
    let stopping = Instant::now();
    let stats = daemon.drain().await;
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!((stats.trials_ok, stats.trials_failed), (0, 4));
    let files: Vec<String> = files_under(&sink)
        .into_iter()
        .filter(|f| !f.starts_with("data/"))
        .collect();
    assert!(files.is_empty(), "{files:?}");
}

/// With the sink down, `runs` runs of `trials` trials each, none written.
async fn runs_while_down(h: &Harness, daemon: &mut Daemon, runs: usize, trials: usize) {
    h.sink_down(true);
    for _ in 0..runs {
        h.tick().await;
        assert_eq!(daemon.step().await, Step::RunStarted { trials });
        assert_eq!(daemon.step().await, Step::RunFinished { ok: 0, failed: 0 });
    }
}

/// One try at writing the queued trials: `queued` of them, `written` written, `left`
/// still queued.
async fn flush(daemon: &mut Daemon, queued: usize, written: usize, left: usize) {
    assert_eq!(daemon.step().await, Step::FlushStarted { queued });
    assert_eq!(daemon.step().await, Step::Flushed { written, left });
}

#[tokio::test(start_paused = true)]
async fn trials_the_sink_refused_are_written_oldest_first_once_it_answers() {
    let mut h = Harness::new(None);
    let sink = h.sink("flaky", Duration::ZERO);
    let settings = h.write_config(&sink, 900, "");
    let mut daemon = h.start(settings).await;

    runs_while_down(&h, &mut daemon, 3, 1).await;
    assert_eq!(daemon.stats().queued, 3);
    assert!(h.notes.count("3 queued for the sink") >= 1);
    // Tries while the sink is still down write nothing and keep the order.
    flush(&mut daemon, 3, 0, 3).await;
    assert!(trials(&sink).is_empty());

    h.sink_down(false);
    let back = chrono::Utc::now();
    flush(&mut daemon, 3, 3, 0).await;
    let stats = daemon.stats();
    assert_eq!(
        (stats.trials_ok, stats.trials_failed, stats.queued),
        (3, 0, 0)
    );

    // Written whole, with their own creation time and partition, oldest first.
    let mut written: Vec<(i64, std::time::SystemTime, String)> = files_under(&sink)
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .map(|f| {
            let record = &ndjson(&std::fs::read_to_string(sink.join(f)).unwrap())[0];
            let fact = sink.join(f.replacen("hyper/", "fact/", 1));
            assert_eq!(ndjson(&std::fs::read_to_string(fact).unwrap()).len(), 442);
            assert_eq!(record["status"], "ok");
            let created = record["created_at"].as_str().unwrap().to_string();
            assert!(f.contains(&format!("dt={}", &created[..10])), "{f}");
            let mtime = std::fs::metadata(sink.join(f)).unwrap().modified().unwrap();
            (record["hyper_id"].as_i64().unwrap(), mtime, created)
        })
        .collect();
    written.sort();
    assert_eq!(written.len(), 3);
    assert!(written.windows(2).all(|w| w[0].1 <= w[1].1), "{written:?}");
    for (_, _, created) in &written {
        let created = chrono::DateTime::parse_from_rfc3339(created).unwrap();
        assert!(created < back, "{created} is the trial's own time");
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_trials_and_counts_them() {
    let mut h = Harness::new(None);
    let sink = h.sink("flaky", Duration::ZERO);
    h.write_config(&sink, 900, "[schedule]\ntrials_per_run = 2\n");
    // The [sink] table ends the file: a queue of 0 MiB keeps nothing.
    let path = h.config_path();
    let text = std::fs::read_to_string(&path).unwrap() + "retry_queue_mib = 0\n";
    std::fs::write(&path, text).unwrap();
    let settings = Settings::load(Some(&path)).unwrap();
    let mut daemon = h.start(settings).await;
    runs_while_down(&h, &mut daemon, 1, 2).await;
    assert_eq!((daemon.stats().queued, daemon.stats().dropped), (0, 2));
    assert!(h.notes.count("0 queued for the sink, 2 dropped") >= 1);
}

#[tokio::test(start_paused = true)]
async fn sigterm_gives_queued_trials_the_grace_period() {
    let mut h = Harness::new(None);
    let sink = h.sink("flaky", Duration::ZERO);
    let settings = h.write_config(&sink, 900, "[schedule]\nshutdown_grace_secs = 10\n");
    let mut daemon = h.start(settings).await;
    runs_while_down(&h, &mut daemon, 2, 1).await;
    // The sink comes back 3 s into the grace period.
    let down = h.stalls.down.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        down.store(false, Ordering::SeqCst);
    });
    h.shutdown.cancel();
    assert_eq!(daemon.step().await, Step::Stopping);
    let stopping = Instant::now();
    let stats = daemon.drain().await;
    assert!(stopping.elapsed() < Duration::from_secs(10));
    assert_eq!((stats.trials_ok, stats.queued), (2, 0));
    assert_eq!(trials(&sink).len(), 2);

    // A sink that never returns: the grace period ends the wait.
    let mut h = Harness::new(None);
    let sink = h.sink("gone", Duration::ZERO);
    let settings = h.write_config(&sink, 900, "[schedule]\nshutdown_grace_secs = 10\n");
    let mut daemon = h.start(settings).await;
    runs_while_down(&h, &mut daemon, 1, 1).await;
    h.shutdown.cancel();
    assert_eq!(daemon.step().await, Step::Stopping);
    let stopping = Instant::now();
    let stats = daemon.drain().await;
    let took = stopping.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "{took:?}"
    );
    assert_eq!(stats.queued, 1);
}

#[tokio::test(start_paused = true)]
async fn a_tpe_daemon_goes_on_while_the_sink_is_down_and_catches_up() {
    let mut h = Harness::new(None);
    let sink = h.sink("tpe-down", Duration::ZERO);
    let settings = h.write_config(&sink, 900, "[search]\nsampler = \"tpe\"\n");
    let mut daemon = h.start(settings).await;
    // The history cannot be read, the markers not written: trials go on all the same.
    runs_while_down(&h, &mut daemon, 3, 1).await;
    assert_eq!(daemon.stats().queued, 3);
    h.sink_down(false);
    flush(&mut daemon, 3, 3, 0).await;
    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    assert_eq!(daemon.step().await, Step::RunFinished { ok: 1, failed: 0 });
    let records = trials(&sink);
    assert_eq!(records.len(), 4);
    // The trials of the outage joined the history as they finished.
    let seen: Vec<u64> = records
        .iter()
        .map(|r| r["n_history"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, [0, 1, 2, 3]);
    assert!(files_under(&sink)
        .iter()
        .all(|f| !f.starts_with("running/")));
}

/// `svr-etl once --trials N` into `sink` by another process, its clock at `when` (UTC).
fn trials_at(sink: &Path, when: &str, n: u32) {
    let out = svr_etl_at(sink.parent().unwrap(), when)
        .args(["once", "--trials", &n.to_string(), "--sink"])
        .arg(sink)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn parts(sink: &Path) -> Vec<String> {
    files_under(sink)
        .into_iter()
        .filter(|f| f.contains("_parquet/"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_daily_compaction_runs_after_the_settling_delay_and_takes_late_objects() {
    let mut h = Harness::new(None);
    let sink = h.sink("out", Duration::ZERO);
    trials_at(&sink, "2025-06-02 12:00:00", 3);
    let settings = h.write_config(
        &sink,
        5,
        "[compaction]\ncron = \"0 0 0 * * *\"\nsettle_secs = 600\n",
    );
    h.clock_from("2025-06-02T23:00:00Z");
    let mut daemon = h.start(settings).await;

    let t0 = Instant::now();
    // Midnight is an hour away, then the settling delay.
    assert_eq!(daemon.step().await, Step::CompactionStarted);
    assert_eq!(t0.elapsed(), Duration::from_secs(3600 + 600));
    assert_eq!(
        daemon.step().await,
        Step::CompactionFinished {
            days: 7,
            compacted: 1,
            failed: 0
        }
    );
    assert_eq!(
        parts(&sink),
        [
            "fact_parquet/dt=2025-06-02/part-00000.parquet",
            "hyper_parquet/dt=2025-06-02/part-00000.parquet",
        ]
    );
    let report = || std::fs::read_to_string(sink.join("report/latest.html")).unwrap();
    assert!(report().contains("<b>3</b> ok"), "{}", report());

    // A trial of 2025-06-02 lands late; the next day's run puts it in a second part,
    // and nothing else is written again.
    trials_at(&sink, "2025-06-02 22:00:00", 1);
    assert_eq!(daemon.step().await, Step::CompactionStarted);
    assert_eq!(t0.elapsed(), Duration::from_secs(3600 + 600 + 86_400));
    assert_eq!(
        daemon.step().await,
        Step::CompactionFinished {
            days: 7,
            compacted: 1,
            failed: 0
        }
    );
    assert_eq!(parts(&sink).len(), 4);
    assert!(sink
        .join("hyper_parquet/dt=2025-06-02/part-00001.parquet")
        .exists());
    // The report was written again, over the old one, with the late trial.
    assert!(report().contains("<b>4</b> ok"), "{}", report());
    assert!(files_under(&sink).iter().all(|f| !f.contains(".partial-")));

    // A run that finds nothing new writes nothing.
    assert_eq!(daemon.step().await, Step::CompactionStarted);
    assert_eq!(
        daemon.step().await,
        Step::CompactionFinished {
            days: 7,
            compacted: 0,
            failed: 0
        }
    );
    assert_eq!(parts(&sink).len(), 4);
    h.shutdown.cancel();
    assert_eq!(daemon.step().await, Step::Stopping);
    daemon.drain().await;
}

#[tokio::test(start_paused = true)]
async fn a_day_older_than_the_look_back_is_compacted_when_queued_trials_land_in_it() {
    let mut h = Harness::new(None);
    let sink = h.sink("out", Duration::ZERO);
    // 2025-06-02 is compacted already (another host's trial, compacted by hand).
    trials_at(&sink, "2025-06-02 09:00:00", 1);
    let out = svr_etl_at(sink.parent().unwrap(), "2025-06-04 00:00:00")
        .args(["compact", "--day", "2025-06-02", "--sink"])
        .arg(&sink)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let settings = h.write_config(
        &sink,
        5,
        "[compaction]\ncron = \"0 0 0 * * *\"\nsettle_secs = 600\n",
    );
    h.clock_from("2025-06-02T12:00:00Z");
    let mut daemon = h.start(settings).await;
    h.sink_down(true);
    h.tick().await;
    assert_eq!(daemon.step().await, Step::RunStarted { trials: 1 });
    assert_eq!(daemon.step().await, Step::RunFinished { ok: 0, failed: 0 });
    // Nine days pass (the daemon not stepped meanwhile), then the sink answers: the
    // queued trial of 2025-06-02 lands in a day that has a part and lies outside the
    // 7-day look-back, where only the daemon's own note finds it.
    tokio::time::advance(Duration::from_secs(9 * 86_400)).await;
    h.sink_down(false);
    let mut steps = Vec::new();
    while steps
        .iter()
        .filter(|s| matches!(s, Step::CompactionFinished { .. }))
        .count()
        < 2
    {
        steps.push(daemon.step().await);
    }
    assert!(
        steps.contains(&Step::Flushed {
            written: 1,
            left: 0
        }),
        "{steps:?}"
    );
    assert!(
        steps.contains(&Step::CompactionFinished {
            days: 8,
            compacted: 1,
            failed: 0
        }),
        "{steps:?}"
    );
    assert_eq!(
        parts(&sink),
        [
            "fact_parquet/dt=2025-06-02/part-00000.parquet",
            "fact_parquet/dt=2025-06-02/part-00001.parquet",
            "hyper_parquet/dt=2025-06-02/part-00000.parquet",
            "hyper_parquet/dt=2025-06-02/part-00001.parquet",
        ]
    );
    h.shutdown.cancel();
    assert_eq!(daemon.step().await, Step::Stopping);
    daemon.drain().await;
}
