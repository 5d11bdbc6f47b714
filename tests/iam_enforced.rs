//! The shipped policy, enforced: moto checks every request against IAM, and the keys
//! hold only `config/iam-policy.json` (BUCKET and PREFIX filled in). Everything the
//! daemon and its commands do, multipart uploads included, must succeed with it, a write outside the prefix must
//! be refused, and without any one of its actions something must fail. On EC2 the same
//! policy sits on an instance role whose credentials rotate: a daemon on such
//! credentials, from a fake IMDSv2 over moto's STS, must lose no trial across
//! rotations.

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::helper::{stderr, svr_etl, svr_etl_at, Keys, Logged, LoopbackScript, Moto};

const PREFIX: &str = "p";
const UPLOAD_TIMEOUT_SECS: u64 = 2;

/// The environment of a command that signs with `keys` (none: the instance role).
fn as_user(cmd: &mut Command, moto: &Moto, keys: Option<&Keys>) {
    cmd.env("SVR_ETL__S3__ENDPOINT_URL", moto.endpoint())
        .env("SVR_ETL__S3__FORCE_PATH_STYLE", "true")
        .env("SVR_ETL__S3__REGION", "us-east-1")
        .env(
            "SVR_ETL__SINK__UPLOAD_TIMEOUT_SECS",
            UPLOAD_TIMEOUT_SECS.to_string(),
        )
        .env("SVR_ETL__SEARCH__SAMPLER", "tpe");
    if let Some(keys) = keys {
        cmd.env("AWS_ACCESS_KEY_ID", &keys.key)
            .env("AWS_SECRET_ACCESS_KEY", &keys.secret);
    }
}

/// `svr-etl run` on a one-second schedule until `done` holds of its log, then SIGTERM.
/// Returns its log.
fn run_daemon(
    cmd: &mut Command,
    done: impl Fn(&str) -> bool,
    within: Duration,
) -> Result<String, String> {
    let mut daemon = Logged::spawn(
        cmd.args(["run"])
            .env("SVR_ETL__SCHEDULE__CRON", "* * * * * *"),
    );
    let started = std::time::Instant::now();
    let outcome = loop {
        if done(&daemon.lines().join("\n")) {
            break Ok(());
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            break Err(format!("run exited with {status}"));
        }
        if started.elapsed() > within {
            break Err(format!("not done within {within:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = daemon.signal(Signal::SIGTERM);
    let status = daemon.wait();
    let log = daemon.lines().join("\n");
    outcome.map_err(|e| format!("{e}\n{log}"))?;
    if !status.success() {
        return Err(format!("run ended with {status}\n{log}"));
    }
    Ok(log)
}

/// What a user does, as that user: TPE trials on a past day, the daemon's start (which
/// aborts an upload a crash left open) and a trial of it, that day's compaction, the
/// leaderboard, the report and its publishing. Then checks what each step leaves. The first thing that
/// fails, with its log.
async fn everything_the_daemon_does(moto: &Moto, bucket: &str, keys: &Keys) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{bucket}/{PREFIX}");
    let logs = std::cell::RefCell::new(String::new());
    let step = |mut cmd: Command, args: &[&str]| -> Result<String, String> {
        as_user(&mut cmd, moto, Some(keys));
        let out = cmd.args(args).args(["--sink", &url]).output().unwrap();
        logs.borrow_mut().push_str(&stderr(&out));
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(format!("svr-etl {args:?} failed: {}", stderr(&out)))
        }
    };
    step(
        svr_etl_at(dir.path(), "2025-06-02 10:00:00"),
        &["once", "--trials", "3"],
    )?;

    // An upload a crash left open, old enough for the daemon's start to abort it.
    moto.client()
        .create_multipart_upload()
        .bucket(bucket)
        .key(format!("{PREFIX}/fact/dt=2025-06-02/crashed.json"))
        .send()
        .await
        .unwrap();
    std::thread::sleep(Duration::from_secs(UPLOAD_TIMEOUT_SECS + 1));
    let mut daemon = svr_etl(dir.path());
    as_user(&mut daemon, moto, Some(keys));
    daemon.env("SVR_ETL__SINK__URL", &url);
    let one_trial = |log: &str| log.contains("trial ok");
    let log = run_daemon(&mut daemon, one_trial, Duration::from_secs(60))?;
    logs.borrow_mut().push_str(&log);

    let compacted = step(svr_etl(dir.path()), &["compact", "--day", "2025-06-02"])?;
    if !compacted.contains("compacted 3 trials") {
        return Err(format!("compaction: {compacted}"));
    }
    let board = step(svr_etl(dir.path()), &["leaderboard", "--format", "json"])?;
    let ranked: Vec<Value> = serde_json::from_str(&board).map_err(|e| format!("{e}: {board}"))?;
    if ranked.len() < 4 {
        return Err(format!("leaderboard: {board}"));
    }
    step(svr_etl(dir.path()), &["report", "--out", "report.html"])?;
    // Twice: the second replaces the first, the one object that is overwritten.
    for _ in 0..2 {
        step(svr_etl(dir.path()), &["report", "--publish"])?;
    }

    let open = moto.open_uploads(bucket).await;
    let markers = moto.keys(bucket, &format!("{PREFIX}/running/")).await;
    let logs = logs.into_inner();
    if open > 0 || !markers.is_empty() {
        return Err(format!(
            "{open} uploads left open, markers left: {markers:?}\n{logs}"
        ));
    }
    if logs.contains("AccessDenied") {
        return Err(format!("a request was refused:\n{logs}"));
    }
    Ok(())
}

/// A bucket and a user holding the shipped policy for it, less `without`.
async fn user(moto: &Moto, name: &str, without: Option<&str>) -> (String, Keys) {
    let bucket = moto.bucket().await;
    let mut args = vec!["user", name, &bucket, PREFIX];
    if let Some(action) = without {
        args.extend(["--without", action]);
    }
    let keys = serde_json::from_value(moto.iam(&args)).unwrap();
    (bucket, keys)
}

fn policy_actions() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/iam-policy.json");
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut actions: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_policy_allows_all_the_daemon_does_and_nothing_outside_its_prefix() {
    let moto = Moto::start_enforcing();
    let (bucket, keys) = user(&moto, "svr-etl", None).await;
    everything_the_daemon_does(&moto, &bucket, &keys)
        .await
        .unwrap();

    // Objects past one part (a 90,000-row data set, 5 MiB parts): multipart uploads,
    // each of their calls, under the same policy.
    let (bucket_large, keys_large) = user(&moto, "svr-etl-large", None).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("large.ndjson");
    crate::faults::large_data_set(&data, 90_000);
    let mut large = svr_etl(dir.path());
    as_user(&mut large, &moto, Some(&keys_large));
    let out = large
        .env("SVR_ETL__DATASET__PATH", &data)
        .env("SVR_ETL__SINK__PART_SIZE_MIB", "5")
        .args(["once", "--sink", &format!("s3://{bucket_large}/{PREFIX}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let etag = moto
        .etag(&bucket_large, &format!("{PREFIX}/data/data.json"))
        .await;
    assert!(
        etag.contains('-'),
        "the data set went up in one part: {etag}"
    );

    let mut outside = svr_etl(dir.path());
    as_user(&mut outside, &moto, Some(&keys));
    let out = outside
        .args(["once", "--sink", &format!("s3://{bucket}/elsewhere")])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a write outside the prefix succeeded"
    );
    assert!(stderr(&out).contains("AccessDenied"), "{}", stderr(&out));
    assert!(moto.keys(&bucket, "elsewhere/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_action_of_the_policy_is_needed() {
    let moto = Moto::start_enforcing();
    let actions = policy_actions();
    assert_eq!(actions.len(), 6, "{actions:?}");
    for (n, action) in actions.iter().enumerate() {
        let (bucket, keys) = user(&moto, &format!("without-{n}"), Some(action)).await;
        let outcome = everything_the_daemon_does(&moto, &bucket, &keys).await;
        let why = outcome.expect_err(&format!("all succeeded without {action}"));
        eprintln!(
            "without {action}: {}",
            why.lines().next().unwrap_or_default()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_role_credentials_that_rotate_lose_no_trial() {
    let moto = Moto::start_enforcing();
    let bucket = moto.bucket().await;
    let role: Value = moto.iam(&["role", "svr-etl-instance", &bucket, PREFIX]);
    let admin = moto.admin().clone();
    let imds = LoopbackScript::start(
        "fake_imds.py",
        &[
            "--sts",
            &moto.endpoint(),
            "--role-arn",
            role["arn"].as_str().unwrap(),
            "--rotate",
            "30",
        ],
        &[("ADMIN_KEY", &admin.key), ("ADMIN_SECRET", &admin.secret)],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = svr_etl(dir.path());
    as_user(&mut daemon, &moto, None);
    daemon
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint())
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-credentials"),
        )
        .env("SVR_ETL__SINK__URL", format!("s3://{bucket}/{PREFIX}"));
    let issued = || -> usize {
        let state: Value = serde_json::from_str(&imds.request("GET", "/__imds__", "")).unwrap();
        state["keys"].as_array().unwrap().len()
    };
    // Four rotations: five keys, each fetched and used. The daemon runs on until the
    // fifth has signed a trial's writes.
    let log = run_daemon(&mut daemon, |_| issued() >= 5, Duration::from_secs(240)).unwrap();
    let ran = log.matches("trial ok").count();
    assert!(!log.contains("trial failed"), "{log}");
    assert!(!log.contains("trial queued"), "{log}");
    let landed = moto.keys(&bucket, &format!("{PREFIX}/hyper/")).await.len();
    assert_eq!(landed, ran, "{log}");
    assert!(ran >= 60, "{ran} trials in four rotations\n{log}");
}
