//! Faults a daemon meets over months, against the real binary and a real S3 server:
//! the store unreachable, and the store frozen. Every trial that ran must end in the
//! bucket as an ok hyper record with all its facts.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::helper::{ndjson, svr_etl, wait_for, Moto, Proxy};

/// `svr-etl run` on a one-second schedule writing to `s3://bucket/p` through
/// `endpoint`, with its stderr collected.
struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(bucket: &str, endpoint: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[schedule]\ncron = \"* * * * * *\"\nshutdown_grace_secs = 60\n[sink]\nurl = \"s3://{bucket}/p\"\n"
        );
        std::fs::write(dir.path().join("svr-etl.toml"), config).unwrap();
        let mut child = svr_etl(dir.path())
            .args(["run", "--config", "svr-etl.toml"])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SVR_ETL__S3__ENDPOINT_URL", endpoint)
            .env("SVR_ETL__S3__FORCE_PATH_STYLE", "true")
            .env("SVR_ETL__S3__REGION", "us-east-1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            log,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// The hyper ids of the trials the daemon logged as `trial <word> <id>`.
    fn ids(&self, word: &str) -> BTreeSet<i64> {
        let needle = format!("trial {word} ");
        self.lines()
            .iter()
            .filter_map(|l| {
                let rest = &l[l.find(&needle)? + needle.len()..];
                rest.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    fn stop(mut self) -> Vec<String> {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        self.lines()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs never overlap: starts and finishes alternate in the log.
fn assert_runs_alternate(log: &[String]) {
    let events: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("run started") || l.contains("run finished"))
        .collect();
    for (i, e) in events.iter().enumerate() {
        let expected = ["run started", "run finished"][i % 2];
        assert!(e.contains(expected), "{events:?}");
    }
}

/// Every trial that ran is in the bucket: an ok hyper record and 442 facts.
async fn assert_all_landed(moto: &Moto, bucket: &str, ran: &BTreeSet<i64>) {
    let keys = moto.keys(bucket, "p/hyper/").await;
    let mut landed = BTreeSet::new();
    for key in &keys {
        let record = ndjson(&String::from_utf8(moto.get(bucket, key).await).unwrap()).remove(0);
        assert_eq!(record["status"], "ok", "{record}");
        let fact = key.replacen("p/hyper/", "p/fact/", 1);
        let facts = ndjson(&String::from_utf8(moto.get(bucket, &fact).await).unwrap());
        assert_eq!(facts.len(), 442, "{fact}");
        landed.insert(record["hyper_id"].as_i64().unwrap());
    }
    let lost: Vec<&i64> = ran.difference(&landed).collect();
    assert!(
        lost.is_empty(),
        "{} of {} trials lost: {lost:?}",
        lost.len(),
        ran.len()
    );
}

/// Every trial the daemon logged: written, queued or failed.
fn ran(d: &Daemon) -> BTreeSet<i64> {
    &(&d.ids("ok") | &d.ids("queued")) | &d.ids("failed")
}

/// Waits until `more` trials have been written after the fault, and every trial that
/// ran has been.
fn wait_written(d: &Daemon, before: usize, more: usize) {
    wait_for(Duration::from_secs(180), "the queue to drain", || {
        let ok = d.ids("ok");
        ok.len() >= before + more && ran(d).is_subset(&ok)
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_seconds_unreachable_loses_no_trial() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let proxy = Proxy::start(moto.port);
    let d = Daemon::start(&bucket, &proxy.endpoint());
    wait_for(Duration::from_secs(60), "trials before the outage", || {
        d.count("trial ok") >= 3
    });

    let before = d.ids("ok").len();
    proxy.refuse();
    let outage = Instant::now();
    std::thread::sleep(Duration::from_secs(30));
    proxy.accept();
    let queued = d.ids("queued").len();
    wait_written(&d, before, queued + 3);
    let ran = ran(&d);
    let log = d.stop();
    println!(
        "unreachable {:.0} s: {} trials ran, {queued} queued while it was down, all landed",
        outage.elapsed().as_secs_f64(),
        ran.len()
    );
    assert!(queued >= 3, "{log:?}");
    assert!(!log.iter().any(|l| l.contains("trial failed")), "{log:?}");
    assert_runs_alternate(&log);
    assert_all_landed(&moto, &bucket, &ran).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forty_seconds_frozen_misreports_no_trial() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let d = Daemon::start(&bucket, &moto.endpoint());
    wait_for(Duration::from_secs(60), "trials before the freeze", || {
        d.count("trial ok") >= 3
    });

    let before = d.ids("ok").len();
    let pid = Pid::from_raw(moto.pid() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(40));
    kill(pid, Signal::SIGCONT).unwrap();
    wait_written(&d, before, 3);
    let ran = ran(&d);
    let log = d.stop();
    println!("frozen 40 s: {} trials ran, all landed", ran.len());
    assert!(!log.iter().any(|l| l.contains("trial failed")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("already exists")), "{log:?}");
    assert_runs_alternate(&log);
    assert_all_landed(&moto, &bucket, &ran).await;
}
