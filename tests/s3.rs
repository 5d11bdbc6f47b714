//! The S3 sink against a real S3-compatible server (moto) on loopback.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use svr_etl::sink::{BodyWriter, Deadline, S3Settings, S3Sink, Sink, SinkError};

use crate::helper::{
    field, file_path, ndjson, set_fake_credentials, stderr, stdout, svr_etl, svr_etl_at,
    FaultProxy, Moto,
};

const MIB: usize = 1024 * 1024;
fn t() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

async fn sink(moto: &Moto, bucket: &str, part_size: usize) -> S3Sink {
    set_fake_credentials();
    let settings = S3Settings::new("us-east-1", &moto.endpoint(), true).unwrap();
    S3Sink::new(bucket.into(), "p".into(), &settings, part_size).await
}

/// A body of `n` bytes of numbered lines; `hook` runs after each MiB written.
fn lines(
    n: usize,
    hook: impl Fn(usize) -> std::io::Result<()> + Send + Sync + 'static,
) -> BodyWriter {
    std::sync::Arc::new(move |w: &mut dyn Write| {
        let mut written = 0;
        let mut i = 0u64;
        while written < n {
            let line = format!("{{\"i\":{i}}}\n");
            let take = line.len().min(n - written);
            w.write_all(&line.as_bytes()[..take])?;
            let before = written / MIB;
            written += take;
            if written / MIB > before {
                hook(written / MIB)?;
            }
            i += 1;
        }
        Ok(())
    })
}

fn expected_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    lines(n, |_| Ok(()))(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn large_objects_stream_as_multipart_and_small_ones_in_one_put() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;

    let big = 12 * MIB + 123;
    let w = s3
        .create("big.json", lines(big, |_| Ok(())), &t())
        .await
        .unwrap();
    assert_eq!(w.bytes, big as u64);
    assert_eq!(moto.get(&bucket, "p/big.json").await, expected_bytes(big));
    // A multipart object's ETag ends in -<number of parts>.
    let etag = moto.etag(&bucket, "p/big.json").await;
    assert!(etag.ends_with("-3"), "{etag}");

    // Exactly a whole number of parts: no empty trailing part is sent.
    s3.create("even.json", lines(10 * MIB, |_| Ok(())), &t())
        .await
        .unwrap();
    assert_eq!(
        moto.get(&bucket, "p/even.json").await,
        expected_bytes(10 * MIB)
    );

    s3.create("small.json", lines(1000, |_| Ok(())), &t())
        .await
        .unwrap();
    let etag = moto.etag(&bucket, "p/small.json").await;
    assert!(
        !etag.contains('-') && !etag.is_empty(),
        "one PutObject: {etag}"
    );
    assert_eq!(moto.open_uploads(&bucket).await, 0);

    // Create-once, for both paths: other bytes never replace an object.
    for (key, n) in [("big.json", big + 1), ("small.json", 10)] {
        let err = s3
            .create(key, lines(n, |_| Ok(())), &t())
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Exists { .. }), "{err}");
    }
    assert_eq!(
        moto.get(&bucket, "p/small.json").await,
        expected_bytes(1000)
    );
    assert_eq!(moto.open_uploads(&bucket).await, 0);
}

#[tokio::test]
async fn a_small_body_is_written_on_the_uploading_task_and_a_larger_one_on_another_thread() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;
    let here = std::thread::current().id();
    for (key, n) in [("small.json", 200 * 1024), ("larger.json", 300 * 1024)] {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (seen, inner) = (threads.clone(), lines(n, |_| Ok(())));
        let body: BodyWriter = Arc::new(move |w: &mut dyn Write| {
            seen.lock().unwrap().push(std::thread::current().id());
            inner(w)
        });
        s3.create(key, body, &t()).await.unwrap();
        assert_eq!(
            moto.get(&bucket, &format!("p/{key}")).await,
            expected_bytes(n)
        );
        let threads = threads.lock().unwrap().clone();
        if n <= 256 * 1024 {
            assert_eq!(threads, [here], "{key}");
        } else {
            // Started here, then over on a blocking thread once past the limit.
            assert!(threads.len() == 2 && threads[0] == here && threads[1] != here);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_key_holding_our_bytes_is_our_write_and_other_bytes_conflict() {
    // What a retried request sees when its first attempt landed after all.
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;
    for (key, size) in [("one.json", 1000), ("parts.json", 12 * MIB + 7)] {
        let first = s3.create(key, lines(size, |_| Ok(())), &t()).await.unwrap();
        let again = s3.create(key, lines(size, |_| Ok(())), &t()).await.unwrap();
        assert_eq!(again, first, "{key}");
        let err = s3
            .create(key, lines(size + 1, |_| Ok(())), &t())
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Exists { .. }), "{key}: {err}");
        assert_eq!(
            moto.get(&bucket, &format!("p/{key}")).await,
            expected_bytes(size)
        );
    }
    assert_eq!(moto.open_uploads(&bucket).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_a_crash_left_open_under_our_prefix_are_aborted() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;
    let open = |key: &'static str| {
        let client = moto.client();
        let bucket = bucket.clone();
        async move {
            client
                .create_multipart_upload()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
        }
    };
    open("p/fact/dt=2026-01-01/1.json").await;
    open("other/2.json").await;
    // moto reports every upload as initiated in 2010, so whether an upload is old
    // enough is not tested here; that the prefix is respected is.
    assert_eq!(s3.clean_stale(Duration::from_secs(2)).await.unwrap(), 1);
    assert_eq!(moto.open_uploads(&bucket).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_mid_upload_leaves_no_object_and_no_open_upload() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;

    let failing = lines(20 * MIB, |mib| {
        if mib == 11 {
            Err(std::io::Error::other("serializer broke"))
        } else {
            Ok(())
        }
    });
    let err = s3.create("broken.json", failing, &t()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("s3://") && msg.contains("p/broken.json"),
        "{msg}"
    );
    assert!(msg.contains("serializer broke"), "{msg}");

    let small = lines(2 * MIB, |_| Err(std::io::Error::other("early")));
    assert!(s3.create("small.json", small, &t()).await.is_err());
    let panicking: BodyWriter = Arc::new(|_: &mut dyn Write| panic!("serializer panicked"));
    let err = s3.create("tiny.json", panicking, &t()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("p/tiny.json") && msg.contains("serializer panicked"),
        "{msg}"
    );

    assert_eq!(moto.keys(&bucket, "").await, Vec::<String>::new());
    assert_eq!(moto.open_uploads(&bucket).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_stopped_mid_upload_fails_cleanly_and_the_next_write_succeeds() {
    let first = Moto::start();
    let (port, bucket) = (first.port, first.bucket().await);
    let s3 = sink(&first, &bucket, 5 * MIB).await;
    let moto = Arc::new(Mutex::new(first));

    let killer = moto.clone();
    let body = lines(15 * MIB, move |mib| {
        if mib == 7 {
            killer.lock().unwrap().kill();
        }
        Ok(())
    });
    let result = tokio::time::timeout(Duration::from_secs(120), s3.create("k.json", body, &t()))
        .await
        .expect("a dead server makes the write fail, not hang");
    let err = result.unwrap_err();
    assert!(err.to_string().contains("p/k.json"), "{err}");

    // The server comes back (empty: moto keeps no state across restarts).
    let back = Moto::start_on(port);
    back.client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    s3.create("k.json", lines(6 * MIB, |_| Ok(())), &t())
        .await
        .unwrap();
    assert_eq!(back.get(&bucket, "p/k.json").await, expected_bytes(6 * MIB));
    *moto.lock().unwrap() = back;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_multipart_upload_is_aborted() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;
    let deadline = t();
    // The body stalls after its first part until the test has seen the upload open.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<()>();
    let opened_rx = Mutex::new(opened_rx);
    let body = lines(20 * MIB, move |mib| {
        if mib == 6 {
            let _ = opened_rx.lock().unwrap().recv();
        }
        Ok(())
    });
    let create = s3.create("cut.json", body, &deadline);
    let cancel = async {
        while moto.open_uploads(&bucket).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        deadline.cancel.cancel();
        drop(opened_tx);
    };
    let (result, ()) = tokio::join!(create, cancel);
    let err = result.unwrap_err();
    assert!(matches!(err, SinkError::Cancelled { .. }), "{err}");
    assert_eq!(moto.open_uploads(&bucket).await, 0);
    assert!(moto.keys(&bucket, "p/").await.is_empty());
}

/// A write cut off while S3's answer to the request creating its multipart upload is
/// still on the way (a proxy holds it back): the upload S3 opened is aborted all the
/// same, once the answer comes, rather than left open with its id unknown.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_cut_off_while_its_upload_is_created_aborts_that_upload() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let proxy = FaultProxy::start(moto.port);
    proxy.set(serde_json::json!({
        "rules": [{"op": "CreateMultipartUpload", "fault": "late"}],
        "late_secs": 1.0,
    }));
    set_fake_credentials();
    let settings = S3Settings::new("us-east-1", &proxy.endpoint(), true).unwrap();
    let s3 = S3Sink::new(bucket.clone(), "p".into(), &settings, 5 * MIB).await;
    let deadline = t();
    let create = s3.create("cut.json", lines(20 * MIB, |_| Ok(())), &deadline);
    let cancel = async {
        // The server has opened the upload; its answer is still held back.
        while moto.open_uploads(&bucket).await == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        deadline.cancel.cancel();
    };
    let (result, ()) = tokio::join!(create, cancel);
    let err = result.unwrap_err();
    assert!(matches!(err, SinkError::Cancelled { .. }), "{err}");
    assert_eq!(proxy.injected("late"), 1);
    assert_eq!(moto.open_uploads(&bucket).await, 0);
    assert!(moto.keys(&bucket, "p/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_server_hits_the_upload_deadline() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let s3 = sink(&moto, &bucket, 5 * MIB).await;
    let pid = nix::unistd::Pid::from_raw(moto.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        s3.create(
            "frozen.json",
            lines(1000, |_| Ok(())),
            &Deadline::after(Duration::from_secs(2)),
        ),
    )
    .await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let err = result.expect("the sink's deadline fires").unwrap_err();
    assert!(matches!(err, SinkError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("p/frozen.json"), "{err}");
}

fn once(moto: &Moto, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = svr_etl(dir);
    moto.env(&mut cmd);
    cmd.arg("once").args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trial_on_s3_holds_the_same_records_as_on_the_local_sink() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let params = [
        "--gamma",
        "7.232814",
        "--c",
        "84.60531",
        "--epsilon",
        "0.7640564",
    ];

    let s3_url = format!("s3://{bucket}/lake");
    let out = once(
        &moto,
        dir.path(),
        &[&["--sink", s3_url.as_str()][..], &params].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let s3_line = stdout(&out);
    let local_url = format!("file://{}/local", dir.path().display());
    let out = once(
        &moto,
        dir.path(),
        &[&["--sink", local_url.as_str()][..], &params].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let local_line = stdout(&out);

    let key = |loc: &str| {
        loc.strip_prefix(&format!("s3://{bucket}/"))
            .unwrap()
            .to_string()
    };
    let s3_hyper = ndjson(
        &String::from_utf8(moto.get(&bucket, &key(field(&s3_line, "hyper"))).await).unwrap(),
    );
    let s3_fact =
        ndjson(&String::from_utf8(moto.get(&bucket, &key(field(&s3_line, "fact"))).await).unwrap());
    let local_hyper =
        ndjson(&std::fs::read_to_string(file_path(field(&local_line, "hyper"))).unwrap());
    let local_fact =
        ndjson(&std::fs::read_to_string(file_path(field(&local_line, "fact"))).unwrap());

    let per_run = ["hyper_id", "created_at", "fit_ms", "cv_ms"];
    let strip = |v: &Value| {
        let mut v = v.as_object().unwrap().clone();
        for k in per_run {
            v.remove(k);
        }
        v
    };
    assert_eq!(strip(&s3_hyper[0]), strip(&local_hyper[0]));
    assert_eq!(s3_fact.len(), 442);
    let preds = |facts: &[Value]| -> Vec<(i64, f64)> {
        facts
            .iter()
            .map(|f| {
                (
                    f["point_id"].as_i64().unwrap(),
                    f["y_pred"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(preds(&s3_fact), preds(&local_fact));
    let local_data = std::fs::read(dir.path().join("local/data/data.json")).unwrap();
    assert_eq!(moto.get(&bucket, "lake/data/data.json").await, local_data);

    // The leaderboard reads S3 as it reads a directory.
    let mut cmd = svr_etl(dir.path());
    moto.env(&mut cmd);
    let out = cmd
        .args(["leaderboard", "--format", "json", "--sink", &s3_url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let board: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(board.len(), 1);
    assert_eq!(board[0]["hyper_id"], s3_hyper[0]["hyper_id"]);
    let r2 = board[0]["test_r2"].as_f64().unwrap();
    assert!((r2 - s3_hyper[0]["test_r2"].as_f64().unwrap()).abs() <= 1e-9);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_set_is_written_once_and_a_different_one_is_refused() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let client = moto.client();
    client
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}/p");
    for _ in 0..2 {
        let out = once(&moto, dir.path(), &["--sink", &url]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let versions = client
        .list_object_versions()
        .bucket(&bucket)
        .prefix("p/data/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "the data set was written once"
    );

    let other = dir.path().join("other.json");
    let rows: String = (0..10)
        .map(|i| {
            format!(
                "{{\"point_id\":{i},\"is_train\":{},\"a\":{i},\"y_true\":{}}}\n",
                i < 6,
                i * i
            )
        })
        .collect();
    std::fs::write(&other, rows).unwrap();
    let mut cmd = svr_etl(dir.path());
    moto.env(&mut cmd);
    let out = cmd
        .args(["once", "--sink", &url])
        .env("SVR_ETL__DATASET__PATH", &other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "s3://{bucket}/p/data/data.json holds a different data set"
        )),
        "{err}"
    );
    let versions = client
        .list_object_versions()
        .bucket(&bucket)
        .prefix("p/data/")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1, "and never overwritten");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_writing_one_bucket_make_200_distinct_whole_trials() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}/p");
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = svr_etl(dir.path());
            moto.env(&mut cmd);
            cmd.args(["once", "--trials", "100", "--sink", &url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), 100);
    }

    let hyper_keys = moto.keys(&bucket, "p/hyper/").await;
    let fact_keys = moto.keys(&bucket, "p/fact/").await;
    assert_eq!(hyper_keys.len(), 200);
    assert_eq!(fact_keys.len(), 200);
    let mut ids = HashSet::new();
    let mut hosts: HashMap<String, usize> = HashMap::new();
    for key in &hyper_keys {
        let record = ndjson(&String::from_utf8(moto.get(&bucket, key).await).unwrap()).remove(0);
        assert_eq!(record["status"], "ok", "{record}");
        let id = record["hyper_id"].as_i64().unwrap();
        assert!(ids.insert(id), "duplicate hyper_id {id}");
        *hosts.entry(record["host"].to_string()).or_default() += 1;
        let fact_key = key.replace("p/hyper/", "p/fact/");
        let facts = ndjson(&String::from_utf8(moto.get(&bucket, &fact_key).await).unwrap());
        assert_eq!(facts.len(), 442, "{fact_key}");
        assert!(facts.iter().all(|f| f["hyper_id"].as_i64() == Some(id)));
    }
    assert_eq!(ids.len(), 200);
    assert_eq!(moto.open_uploads(&bucket).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn tpe_on_s3_reads_the_history_back_and_removes_its_markers() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}/p");
    // Two processes in turn: the second learns from the first's records in the bucket.
    for trials in ["12", "3"] {
        let mut cmd = svr_etl(dir.path());
        moto.env(&mut cmd);
        let out = cmd
            .args(["once", "--trials", trials, "--sink", &url])
            .env("SVR_ETL__SEARCH__SAMPLER", "tpe")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut records = Vec::new();
    for key in moto.keys(&bucket, "p/hyper/").await {
        records.extend(ndjson(
            &String::from_utf8(moto.get(&bucket, &key).await).unwrap(),
        ));
    }
    records.sort_by_key(|r| r["hyper_id"].as_i64());
    let seen: Vec<u64> = records
        .iter()
        .map(|r| r["n_history"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, (0..15).collect::<Vec<u64>>());
    assert!(records
        .iter()
        .all(|r| r["sampler"] == "tpe" && r["cv_r2"].is_f64()));
    assert!(
        moto.keys(&bucket, "p/running/").await.is_empty(),
        "markers deleted through DeleteObject"
    );
}

#[tokio::test]
async fn compaction_on_s3_writes_each_day_once_and_the_leaderboard_reads_it() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}/p");
    let run = |faked: Option<&str>, args: &[&str]| {
        let mut cmd = match faked {
            Some(when) => svr_etl_at(dir.path(), when),
            None => svr_etl(dir.path()),
        };
        moto.env(&mut cmd);
        let out = cmd.args(args).args(["--sink", &url]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    // Gzipped JSON, read back by compaction and by the leaderboard alike.
    std::fs::write(
        dir.path().join("gzip.toml"),
        "[sink]\ncompression = \"gzip\"\n",
    )
    .unwrap();
    let gzip = ["--config", "gzip.toml"];
    run(
        Some("2025-06-02 10:00:00"),
        &[&gzip[..], &["once", "--trials", "4"]].concat(),
    );
    run(
        Some("2025-06-03 10:00:00"),
        &[&gzip[..], &["once", "--trials", "3"]].concat(),
    );
    let board = || run(None, &["leaderboard", "--format", "json"]);
    let before = board();

    let first = run(None, &["compact", "--day", "2025-06-02"]);
    assert!(first.contains("compacted 4 trials"), "{first}");
    assert!(first.contains(&format!("s3://{bucket}/p/hyper_parquet/dt=2025-06-02/")));
    let again = run(None, &["compact", "--day", "2025-06-02"]);
    assert!(again.contains("already compacted"), "{again}");
    run(None, &["compact", "--day", "2025-06-03"]);
    let mut parts = moto.keys(&bucket, "p/hyper_parquet/").await;
    parts.extend(moto.keys(&bucket, "p/fact_parquet/").await);
    parts.sort();
    assert_eq!(
        parts,
        [
            "p/fact_parquet/dt=2025-06-02/part-00000.parquet",
            "p/fact_parquet/dt=2025-06-03/part-00000.parquet",
            "p/hyper_parquet/dt=2025-06-02/part-00000.parquet",
            "p/hyper_parquet/dt=2025-06-03/part-00000.parquet",
        ]
    );
    assert!(moto
        .keys(&bucket, "p/hyper/dt=2025-06-02/")
        .await
        .iter()
        .all(|k| k.ends_with(".json.gz")));
    let part = moto
        .get(&bucket, "p/fact_parquet/dt=2025-06-02/part-00000.parquet")
        .await;
    assert_eq!(&part[..4], b"PAR1");
    // Both days are over a week old: the leaderboard reads them from Parquet only.
    assert_eq!(board(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_published_report_is_one_html_object_rewritten_whole() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}/lake");
    let publish = || {
        let mut cmd = svr_etl(dir.path());
        moto.env(&mut cmd);
        let out = cmd
            .args(["report", "--publish", "--sink", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    for (trials, expected) in [("3", "3"), ("1", "4")] {
        let out = once(&moto, dir.path(), &["--trials", trials, "--sink", &url]);
        assert!(out.status.success(), "{}", stderr(&out));
        let line = publish();
        assert_eq!(
            line.trim(),
            format!("{url}/report/latest.html: {expected} trials")
        );
        let page = String::from_utf8(moto.get(&bucket, "lake/report/latest.html").await).unwrap();
        assert!(page.contains(&format!("<b>{expected}</b> ok")), "{page}");
        assert!(page.trim_end().ends_with("</html>"));
    }
    let head = moto
        .client()
        .head_object()
        .bucket(&bucket)
        .key("lake/report/latest.html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/html; charset=utf-8"));
    // Nothing but the report was written outside the record prefixes.
    let keys = moto.keys(&bucket, "lake/report/").await;
    assert_eq!(keys, ["lake/report/latest.html"]);
}
