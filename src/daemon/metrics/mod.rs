//! What the daemon has done, for Prometheus: the families behind `/metrics` and the
//! endpoint that serves them ([`endpoint`]).
//!
//! The loop owns the numbers ([`Stats`], the outbox); after each step it copies them
//! here ([`Metrics::sync`]), and each trial's report adds its durations and sink error
//! ([`Metrics::observe_fit`], [`Metrics::observe_writes`]). Scrapes only read, so they never wait on the loop.

pub mod endpoint;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use super::Stats;
use crate::sink::SinkError;
use crate::trial::TrialReport;

type Label = [(&'static str, &'static str); 1];
type FloatGauge = Gauge<f64, AtomicU64>;

/// The registry and a handle on each family; clones share them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    trials: Family<Label, Counter>,
    ticks_skipped: Counter,
    dropped: Counter,
    queue_trials: Gauge,
    queue_bytes: Gauge,
    best_cv_r2: FloatGauge,
    last_compaction: FloatGauge,
    fit: Histogram,
    cv: Histogram,
    upload: Histogram,
    sink_errors: Family<Label, Counter>,
}

/// 1 ms to about 4.5 minutes, each bucket 4 times the one before: a fit at the
/// search's limits and a write through an S3 outage both land inside.
fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("svr_etl");
        let metrics = Metrics {
            registry: Arc::default(),
            trials: Family::default(),
            ticks_skipped: Counter::default(),
            dropped: Counter::default(),
            queue_trials: Gauge::default(),
            queue_bytes: Gauge::default(),
            best_cv_r2: FloatGauge::default(),
            last_compaction: FloatGauge::default(),
            fit: seconds_buckets(),
            cv: seconds_buckets(),
            upload: seconds_buckets(),
            sink_errors: Family::default(),
        };
        metrics.best_cv_r2.set(f64::NAN);
        let r = &mut registry;
        r.register(
            "trials",
            "Trials that ended, by status: ok (fitted and written) or failed",
            metrics.trials.clone(),
        );
        r.register(
            "ticks_skipped",
            "Cron ticks skipped because the run before was still going",
            metrics.ticks_skipped.clone(),
        );
        r.register(
            "queue_dropped_trials",
            "Trials dropped from the full queue for the sink",
            metrics.dropped.clone(),
        );
        r.register(
            "queue_trials",
            "Trials waiting for the sink",
            metrics.queue_trials.clone(),
        );
        r.register_with_unit(
            "queue",
            "Size of the trials waiting for the sink",
            Unit::Bytes,
            metrics.queue_bytes.clone(),
        );
        r.register(
            "best_cv_r2",
            "Best cross-validated R^2 of the trials this process ran (NaN before the first)",
            metrics.best_cv_r2.clone(),
        );
        r.register_with_unit(
            "last_compaction_timestamp",
            "When the last daily compaction without failures ended, as a Unix time (0: none yet)",
            Unit::Seconds,
            metrics.last_compaction.clone(),
        );
        r.register_with_unit(
            "fit_duration",
            "Time of a trial's fit, predictions included",
            Unit::Seconds,
            metrics.fit.clone(),
        );
        r.register_with_unit(
            "cv_duration",
            "Time of a trial's cross-validation",
            Unit::Seconds,
            metrics.cv.clone(),
        );
        r.register_with_unit(
            "upload_duration",
            "Time to write a trial's objects to the sink",
            Unit::Seconds,
            metrics.upload.clone(),
        );
        r.register(
            "sink_errors",
            "Trial writes the sink refused or did not answer, by kind",
            metrics.sink_errors.clone(),
        );
        // A gauge at 1, as Prometheus's own `prometheus_build_info`: the classic text
        // format has no info type.
        let build = Family::<Label, Gauge>::default();
        build
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        r.register("build_info", "The running build, in its label", build);
        let started = FloatGauge::default();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        started.set(now.map_or(0.0, |d| d.as_secs_f64()));
        r.register_with_unit(
            "start_time",
            "When the daemon started, as a Unix time",
            Unit::Seconds,
            started,
        );
        Metrics {
            registry: Arc::new(registry),
            ..metrics
        }
    }

    /// A trial's fit and cross-validation times, once, when its run ends.
    pub fn observe_fit(&self, report: &TrialReport) {
        let r = &report.record;
        if let Some(ms) = r.fit_ms {
            self.fit.observe(ms / 1e3);
        }
        if let Some(ms) = r.cv_ms {
            self.cv.observe(ms / 1e3);
        }
    }

    /// How a trial's writes went: each time they were tried, in its run or from the
    /// queue.
    pub fn observe_writes(&self, report: &TrialReport) {
        if report.hyper.is_some() {
            self.upload.observe(report.upload_ms / 1e3);
        }
        if let Some(e) = &report.sink_error {
            self.sink_errors.get_or_create(&[("kind", kind(e))]).inc();
        }
    }

    /// Brings the counters and gauges level with the loop's own numbers.
    pub fn sync(&self, stats: &Stats, queue_bytes: usize) {
        catch_up(
            &self.trials.get_or_create(&[("status", "ok")]),
            stats.trials_ok,
        );
        catch_up(
            &self.trials.get_or_create(&[("status", "failed")]),
            stats.trials_failed,
        );
        catch_up(&self.ticks_skipped, stats.ticks_skipped);
        catch_up(&self.dropped, stats.dropped);
        self.queue_trials.set(stats.queued as i64);
        self.queue_bytes.set(queue_bytes as i64);
        if let Some(cv) = stats.best.and_then(|b| b.cv_r2) {
            self.best_cv_r2.set(cv);
        }
        if let Some(c) = stats.last_compaction.filter(|c| c.failed == 0) {
            self.last_compaction
                .set(c.at.timestamp_millis() as f64 / 1e3);
        }
    }

    /// The OpenMetrics text of every family.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// The same in Prometheus's classic text format (0.0.4), for clients that do not
    /// ask for OpenMetrics (curl, `promtool check metrics`): a counter's family is
    /// named with its `_total`, and there are no `# UNIT` or `# EOF` lines.
    pub fn encode_classic(&self) -> String {
        classic(&self.encode())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Raises `counter` to `total`; the loop's totals only grow.
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// The label a sink error is counted under.
fn kind(e: &SinkError) -> &'static str {
    match e {
        SinkError::Exists { .. } => "exists",
        SinkError::Io { .. } => "io",
        SinkError::Remote { .. } => "remote",
        SinkError::Timeout { .. } => "timeout",
        SinkError::Cancelled { .. } => "cancelled",
    }
}

/// OpenMetrics text rewritten as the classic text format.
fn classic(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let named = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        text.push_str(named.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loops_numbers_come_out_under_prometheus_names_in_both_formats() {
        let metrics = Metrics::new();
        let stats = Stats {
            trials_ok: 3,
            trials_failed: 1,
            queued: 2,
            ..Stats::default()
        };
        metrics.sync(&stats, 5000);
        metrics.sync(&stats, 5000);
        let open = metrics.encode();
        assert!(open.contains("# TYPE svr_etl_trials counter\n"), "{open}");
        assert!(open.ends_with("# EOF\n"));
        let classic = metrics.encode_classic();
        for line in [
            "# TYPE svr_etl_trials_total counter",
            "svr_etl_trials_total{status=\"ok\"} 3",
            "svr_etl_trials_total{status=\"failed\"} 1",
            "svr_etl_queue_trials 2",
            "svr_etl_queue_bytes 5000",
            "# TYPE svr_etl_fit_duration_seconds histogram",
        ] {
            assert!(classic.lines().any(|l| l == line), "{line}\n{classic}");
        }
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
    }
}
