//! Faults a daemon meets over months, against the real binary and a real S3 server:
//! the store unreachable, and the store frozen. Every trial that ran must end in the
//! bucket as an ok hyper record with all its facts.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::helper::{ndjson, svr_etl, wait_for, Logged, Moto, Proxy};

/// `svr-etl run` on a one-second schedule writing to `s3://bucket/p` through
/// `endpoint`, with its stderr collected.
struct Daemon {
    logged: Logged,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(bucket: &str, endpoint: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[schedule]\ncron = \"* * * * * *\"\nshutdown_grace_secs = 60\n[sink]\nurl = \"s3://{bucket}/p\"\n"
        );
        std::fs::write(dir.path().join("svr-etl.toml"), config).unwrap();
        let daemon = Logged::spawn(
            svr_etl(dir.path())
                .args(["run", "--config", "svr-etl.toml"])
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("SVR_ETL__S3__ENDPOINT_URL", endpoint)
                .env("SVR_ETL__S3__FORCE_PATH_STYLE", "true")
                .env("SVR_ETL__S3__REGION", "us-east-1"),
        );
        Daemon {
            logged: daemon,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.logged.lines()
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
        self.logged.signal(Signal::SIGTERM).unwrap();
        let status = self.logged.wait();
        assert!(status.success(), "{status:?}");
        self.lines()
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

/// What a kill waits for, in the order a daemon reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Moment {
    Ready,
    Run,
    TrialOk,
}

/// A data set whose fact objects span two 5 MiB parts: many test rows, few training
/// rows, so fits stay fast.
pub fn large_data_set(path: &std::path::Path, rows: usize) {
    let mut text = String::new();
    for i in 0..rows {
        let x = i as f64 / rows as f64;
        text.push_str(&format!(
            "{{\"point_id\":{i},\"is_train\":{},\"a\":{x},\"b\":{},\"y_true\":{}}}\n",
            i % 500 == 0,
            (x * 7.0).sin(),
            (x * 3.0).cos() * 100.0
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// Checks every visible object of one sink: each fact object whole, each hyper record
/// parses, and each ok one has its fact object. Returns the number of ok trials.
fn check_visible(objects: &[(String, String)], rows: usize) -> usize {
    let keys: BTreeSet<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    let mut ok = 0;
    for (key, text) in objects {
        let name = key.rsplit('/').next().unwrap();
        assert!(!name.starts_with('.'), "partial file visible: {key}");
        if key.contains("fact/") {
            assert_eq!(ndjson(text).len(), rows, "{key} is cut short");
        } else if key.contains("hyper/") {
            let record = ndjson(text).remove(0);
            if record["status"] == "ok" {
                let fact = key.replacen("hyper/", "fact/", 1);
                assert!(keys.contains(fact.as_str()), "{key} without {fact}");
                ok += 1;
            }
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_kill_9s_leave_nothing_half_visible() {
    use rand::{Rng, SeedableRng};
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = 110_000;
    large_data_set(&dir.path().join("rows.json"), rows);
    let local = dir.path().join("out");
    let config = |sink: &str, upload_timeout: u32| {
        format!(
            "[schedule]\ncron = \"* * * * * *\"\ntrials_per_run = 2\n[dataset]\npath = \"rows.json\"\n[sink]\nurl = \"{sink}\"\npart_size_mib = 5\nupload_timeout_secs = {upload_timeout}\n"
        )
    };
    let start = |sink: &str, upload_timeout: u32| {
        std::fs::write(
            dir.path().join("svr-etl.toml"),
            config(sink, upload_timeout),
        )
        .unwrap();
        let mut cmd = svr_etl(dir.path());
        moto.env(&mut cmd);
        cmd.args(["run", "--config", "svr-etl.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let s3_url = format!("s3://{bucket}/p");
    let local_url = local.display().to_string();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    // Kills after a trial was reported ok, on the local sink and on S3.
    let mut reported_ok = [0; 2];
    for i in 0..100 {
        let sink = if i % 2 == 0 { &local_url } else { &s3_url };
        let mut child = start(sink, 120);
        // Start-up takes its time under load; the kills count from readiness. Half
        // land at any moment of running, half while a run writes: of those, every
        // other one once a trial has been reported ok, so that each sink holds such
        // trials to check however slow the machine is.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let moment = if line.contains("trial ok") {
                    Moment::TrialOk
                } else if line.contains("run started") {
                    Moment::Run
                } else if line.contains(" started ") {
                    Moment::Ready
                } else {
                    continue;
                };
                let _ = tx.send(moment);
            }
        });
        let wait_for = match i % 8 {
            0 | 1 | 4 | 5 => Moment::Ready,
            2 | 3 => Moment::Run,
            _ => Moment::TrialOk,
        };
        if wait_for == Moment::TrialOk {
            reported_ok[i % 2] += 1;
        }
        while let Ok(moment) = rx.recv_timeout(Duration::from_secs(60)) {
            if moment >= wait_for {
                break;
            }
        }
        let pause = if wait_for == Moment::Ready {
            0..2500
        } else {
            0..900
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(pause)));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    let mut objects = Vec::new();
    for key in crate::helper::files_under(&local) {
        let text = std::fs::read_to_string(local.join(&key)).unwrap();
        objects.push((key, text));
    }
    let partials_before = objects.iter().filter(|(k, _)| k.contains("/.")).count();
    objects.retain(|(k, _)| !k.contains("/."));
    let local_ok = check_visible(&objects, rows);
    let mut objects = Vec::new();
    for key in moto.keys(&bucket, "p/").await {
        let text = String::from_utf8(moto.get(&bucket, &key).await).unwrap();
        objects.push((key, text));
    }
    let s3_ok = check_visible(&objects, rows);
    let open_before = moto.open_uploads(&bucket).await;

    // One clean start on each sink removes what the kills left behind.
    std::thread::sleep(Duration::from_millis(1100));
    for sink in [&local_url, &s3_url] {
        let mut child = start(sink, 1);
        let stderr = BufReader::new(child.stderr.take().unwrap());
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("started") {
                break;
            }
        }
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        assert!(child.wait().unwrap().success());
    }
    let partials_after: Vec<String> = crate::helper::files_under(&local)
        .into_iter()
        .filter(|k| k.contains("/."))
        .collect();
    println!(
        "100 kill -9s: {local_ok} ok trials on the local sink, {s3_ok} on S3, all whole ({} and {} kills came just after a trial was reported ok); {partials_before} partial files and {open_before} open uploads left, none after a clean start",
        reported_ok[0], reported_ok[1]
    );
    // Every trial reported ok before a kill is there, whole.
    let [local_reported, s3_reported] = reported_ok;
    assert!(
        local_ok >= local_reported && s3_ok >= s3_reported,
        "{local_ok} of {local_reported} and {s3_ok} of {s3_reported}"
    );
    assert!(partials_after.is_empty(), "{partials_after:?}");
    assert_eq!(moto.open_uploads(&bucket).await, 0);
}
