//! `svr-etl run` as a real process with real signals and a local sink.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::helper::{files_under, ndjson, svr_etl, wait_for, Logged, Moto};

const DEADLINE: Duration = Duration::from_secs(60);

/// A running daemon with its stderr collected line by line.
struct Daemon {
    logged: Logged,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
        std::fs::write(dir.join("svr-etl.toml"), config).unwrap();
        let logged = Logged::spawn(
            svr_etl(dir)
                .args(["run", "--config", "svr-etl.toml"])
                .envs(env.iter().copied()),
        );
        Daemon {
            logged,
            dir: dir.to_path_buf(),
        }
    }

    fn signal(&self, signal: Signal) {
        self.logged.signal(signal).unwrap();
    }

    fn log_lines(&self) -> Vec<String> {
        self.logged.lines()
    }

    fn count_log(&self, needle: &str) -> usize {
        self.log_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn wait_log(&self, needle: &str, count: usize) {
        wait_for(
            DEADLINE,
            &format!("{count} log lines with {needle:?}"),
            || self.count_log(needle) >= count,
        );
    }

    /// The hyper records written so far, oldest first.
    fn trials(&self) -> Vec<Value> {
        let root = self.dir.join("svr-etl-output");
        // Hidden names are uploads in progress, renamed when complete.
        let mut records: Vec<Value> = files_under(&root)
            .iter()
            .filter(|f| f.starts_with("hyper/") && !f.contains("/."))
            .flat_map(|f| ndjson(&std::fs::read_to_string(root.join(f)).unwrap()))
            .collect();
        records.sort_by_key(|r| r["hyper_id"].as_i64());
        records
    }

    fn wait_trials(&self, n: usize) -> Vec<Value> {
        wait_for(DEADLINE, &format!("{n} trials"), || {
            self.trials().len() >= n
        });
        self.trials()
    }

    /// Waits for the daemon to exit, and then for its last lines to be collected.
    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if self.logged.child.try_wait().unwrap().is_some() {
                return self.logged.wait();
            }
            assert!(start.elapsed() < DEADLINE, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn every_second(extra: &str) -> String {
    format!("[schedule]\ncron = \"* * * * * *\"\n{extra}")
}

fn created_ms(record: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(record["created_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// Every trial written is whole: its fact object has one line per data point.
fn assert_whole(dir: &Path) {
    let root = dir.join("svr-etl-output");
    let files = files_under(&root);
    assert!(
        files.iter().all(|f| !f.contains("/.")),
        "partial files: {files:?}"
    );
    for hyper in files.iter().filter(|f| f.starts_with("hyper/")) {
        let fact = hyper.replace("hyper/", "fact/");
        let lines = std::fs::read_to_string(root.join(&fact))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, 442, "{fact}");
    }
}

#[test]
fn trials_land_once_a_second_on_a_one_second_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &every_second(""), &[]);
    let trials = d.wait_trials(4);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit().success(), "{:?}", d.log_lines());
    let times: Vec<i64> = trials.iter().map(created_ms).collect();
    for pair in times.windows(2) {
        // One run per tick: trials of consecutive ticks lie about a second apart.
        let gap = pair[1] - pair[0];
        assert!((500..=3000).contains(&gap), "{times:?}");
    }
    assert!(trials.iter().all(|t| t["status"] == "ok"));
    assert_eq!(d.count_log("trial ok"), d.trials().len());
    assert_whole(dir.path());
}

#[test]
fn sighup_applies_new_ranges_and_refuses_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let low = every_second("[search]\ngamma = [-2.0, -1.9]\n");
    let high = every_second("[search]\ngamma = [1.9, 2.0]\n");
    let d = Daemon::start(dir.path(), &low, &[]);
    d.wait_trials(2);

    std::fs::write(dir.path().join("svr-etl.toml"), &high).unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_log("config reloaded", 1);
    assert!(d
        .log_lines()
        .iter()
        .any(|l| l.contains("config reloaded") && l.contains("search.gamma")));
    let n = d.trials().len();
    let trials = d.wait_trials(n + 2);
    let is_low = |t: &Value| t["gamma"].as_f64().unwrap() < 0.013;
    let is_high = |t: &Value| t["gamma"].as_f64().unwrap() > 79.0;
    // Old ranges before the reload, new ones after, nothing else.
    let switch = trials
        .iter()
        .position(is_high)
        .expect("trials in the new range");
    assert!(trials[..switch].iter().all(is_low), "{trials:?}");
    assert!(trials[switch..].iter().all(is_high), "{trials:?}");
    assert_ne!(
        trials[0]["study"], trials[switch]["study"],
        "new ranges, new study"
    );

    std::fs::write(
        dir.path().join("svr-etl.toml"),
        "[search]\ngamma = [3.0, 1.0]\n",
    )
    .unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_log("config reload refused", 1);
    assert!(d
        .log_lines()
        .iter()
        .any(|l| l.contains("config reload refused") && l.contains("`search.gamma`")));
    let n = d.trials().len();
    let trials = d.wait_trials(n + 2);
    assert!(
        trials[n..].iter().all(is_high),
        "still running on the last good config"
    );
}

#[test]
fn sigterm_lets_the_run_in_flight_finish() {
    // Overlap and skipped ticks are covered in-process with paused time
    // (daemon_loop.rs); this is the real signal path.
    let dir = tempfile::tempdir().unwrap();
    let config = every_second(
        "trials_per_run = 96\nshutdown_grace_secs = 60\n[search]\nc = [1.9, 2.0]\ngamma = [1.0, 1.5]\nepsilon = [-2.0, -1.9]\n",
    );
    let mut d = Daemon::start(dir.path(), &config, &[]);
    d.wait_log("run started", 1);
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit();
    assert!(status.success(), "{status:?} {:?}", d.log_lines());
    let log = d.log_lines();
    let stop = log
        .iter()
        .position(|l| l.contains("stopping: no new runs"))
        .unwrap();
    assert!(
        log[stop..].iter().any(|l| l.contains("run finished")),
        "{log:?}"
    );
    assert!(
        !log[stop..].iter().any(|l| l.contains("run started")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("abandoned")));
    assert_eq!(d.trials().len() % 96, 0, "runs complete whole");
    assert_whole(dir.path());
}

#[test]
fn systemd_hears_ready_status_watchdog_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &every_second(""),
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut messages: Vec<String> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut receive = |messages: &mut Vec<String>| {
        let n = socket.recv(&mut buf).expect("a notification");
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    };
    // Until a status that reports a trial and a watchdog ping after it.
    while !(messages.iter().any(|m| m.contains("STATUS=last"))
        && messages.last().is_some_and(|m| m.contains("WATCHDOG=1")))
    {
        receive(&mut messages);
    }
    d.signal(Signal::SIGTERM);
    while !messages.last().unwrap().contains("STOPPING=1") {
        receive(&mut messages);
    }
    assert!(d.wait_exit().success());

    let first = |needle: &str| messages.iter().position(|m| m.contains(needle)).unwrap();
    assert!(messages[0].contains("READY=1"), "{messages:?}");
    assert!(messages[0].contains("STATUS=no trial yet"), "{messages:?}");
    assert!(first("READY=1") < first("WATCHDOG=1"));
    assert!(first("STATUS=last") > first("READY=1"));
    assert!(messages
        .iter()
        .any(|m| m.contains("best ") && m.contains("test_r2=")));
    assert_eq!(first("STOPPING=1"), messages.len() - 1);
}

#[test]
fn past_the_grace_period_the_run_is_abandoned_leaving_nothing_half_visible() {
    let dir = tempfile::tempdir().unwrap();
    // A run far longer than the grace period, however fast the fits: 1,024 trials of C
    // near 1,000 (96 trials of C near 100 once took 0.22 s, as long as the grace).
    let config = every_second(
        "trials_per_run = 1024\nshutdown_grace_secs = 0.2\n[search]\nc = [3.0, 3.1]\ngamma = [1.0, 1.5]\nepsilon = [-2.0, -1.9]\n",
    );
    let mut d = Daemon::start(dir.path(), &config, &[]);
    d.wait_log("run started", 1);
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit();
    assert!(status.success(), "{status:?} {:?}", d.log_lines());
    assert_eq!(
        d.count_log("run abandoned after the grace period"),
        1,
        "{:?}",
        d.log_lines()
    );
    // Whatever was cut short is invisible: every visible hyper record has all its facts,
    // and every visible fact object is whole.
    let root = dir.path().join("svr-etl-output");
    let visible: Vec<String> = files_under(&root)
        .into_iter()
        .filter(|f| !f.rsplit('/').next().unwrap().starts_with('.'))
        .collect();
    for f in visible.iter().filter(|f| f.starts_with("fact/")) {
        let lines = std::fs::read_to_string(root.join(f))
            .unwrap()
            .lines()
            .count();
        assert_eq!(lines, 442, "{f}");
    }
    for f in visible.iter().filter(|f| f.starts_with("hyper/")) {
        assert!(visible.contains(&f.replace("hyper/", "fact/")), "{f}");
    }
}

/// Collects sd_notify datagrams with their arrival times.
fn notifications(socket: UnixDatagram) -> Arc<Mutex<Vec<(Instant, String)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends when the test drops its handle.
        while Arc::strong_count(&sink) > 1 {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_to_a_frozen_s3_sink_keeps_pings_and_runs_going() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let seen = notifications(UnixDatagram::bind(&socket_path).unwrap());
    let endpoint = moto.endpoint();
    let env = [
        ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "4000000"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("SVR_ETL__S3__ENDPOINT_URL", endpoint.as_str()),
        ("SVR_ETL__S3__FORCE_PATH_STYLE", "true"),
        ("SVR_ETL__S3__REGION", "us-east-1"),
    ];
    let grace = 5.0;
    let mut d = Daemon::start(
        dir.path(),
        &every_second(&format!("shutdown_grace_secs = {grace}\n")),
        &env,
    );
    d.wait_trials(2);

    let moto_pid = Pid::from_raw(moto.pid() as i32);
    kill(moto_pid, Signal::SIGSTOP).unwrap();
    std::fs::write(
        dir.path().join("svr-etl.toml"),
        every_second(&format!(
            "shutdown_grace_secs = {grace}\n[sink]\nurl = \"s3://{bucket}/p\"\n"
        )),
    )
    .unwrap();
    let before = d.trials().len();
    let hup = Instant::now();
    d.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_secs(10));
    let during = d.trials().len() - before;

    d.signal(Signal::SIGTERM);
    let term = Instant::now();
    let status = d.wait_exit();
    let exit_secs = term.elapsed().as_secs_f64();
    kill(moto_pid, Signal::SIGCONT).unwrap();
    assert!(status.success(), "{status:?} {:?}", d.log_lines());

    let pings: Vec<Instant> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    let gaps: Vec<f64> = pings
        .windows(2)
        .filter(|w| w[1] > hup)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let longest = gaps.iter().copied().fold(0.0, f64::max);
    println!(
        "reload to a frozen sink: {} pings after SIGHUP, longest gap {longest:.2} s; {during} trials in 10 s on the old sink; exit {exit_secs:.2} s after SIGTERM",
        gaps.len()
    );
    assert!(gaps.len() >= 4 && longest < 4.0, "{gaps:?}");
    assert!(during >= 5, "{during} trials while the reload hung");
    assert!(exit_secs < grace + 2.0, "{exit_secs}");
    let log = d.log_lines();
    assert!(
        log.iter().any(|l| l.contains("reload abandoned")),
        "{log:?}"
    );
    let stop = log
        .iter()
        .position(|l| l.contains("stopping: no new runs"))
        .unwrap();
    assert!(
        !log[stop..].iter().any(|l| l.contains("run started")),
        "{log:?}"
    );
}

#[test]
fn two_daemons_on_one_sink_share_the_study_and_leave_no_markers() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        every_second("trials_per_run = 2\n[search]\nsampler = \"tpe\"\nconstant_liar = true\n");
    let mut a = Daemon::start(dir.path(), &config, &[]);
    let mut b = Daemon::start(dir.path(), &config, &[]);
    let trials = a.wait_trials(40);
    for d in [&a, &b] {
        d.signal(Signal::SIGTERM);
    }
    assert!(a.wait_exit().success(), "{:?}", a.log_lines());
    assert!(b.wait_exit().success(), "{:?}", b.log_lines());
    let trials = {
        let after = a.trials();
        assert!(after.len() >= trials.len());
        after
    };
    assert!(trials
        .iter()
        .all(|t| t["sampler"] == "tpe" && t["status"] == "ok"));
    assert!(trials.iter().all(|t| t["study"] == trials[0]["study"]));
    // Trials of each process, told apart by the node bits of their ids.
    let node = |t: &Value| t["hyper_id"].as_i64().unwrap() & ((1 << 22) - 1);
    let nodes: std::collections::BTreeSet<i64> = trials.iter().map(node).collect();
    assert_eq!(nodes.len(), 2, "two writers");
    // Each process's sampler saw the other's trials: more history than its own.
    for n in &nodes {
        let own: Vec<&Value> = trials.iter().filter(|t| node(t) == *n).collect();
        let saw_others = own
            .iter()
            .enumerate()
            .any(|(i, t)| t["n_history"].as_u64().unwrap() > i as u64);
        assert!(
            saw_others,
            "node {n}: {:?}",
            own.iter().map(|t| &t["n_history"]).collect::<Vec<_>>()
        );
    }
    let root = dir.path().join("svr-etl-output");
    let markers: Vec<String> = files_under(&root)
        .into_iter()
        .filter(|f| f.starts_with("running/"))
        .collect();
    assert!(markers.is_empty(), "markers left: {markers:?}");
    assert_whole(dir.path());
}
