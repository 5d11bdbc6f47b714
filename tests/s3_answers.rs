//! S3 as it answers a daemon left alone for months, which moto alone never does: busy
//! (503, 500), racing (409), losing the answer to a write that landed, encrypting with
//! KMS (opaque ETags, a refused key), on another clock. Each fault comes from a proxy
//! in front of moto, under `svr-etl once`; each must leave every trial whole and ok in
//! the bucket, no upload open, and one line in the log per fault.

use serde_json::{json, Value};

use crate::helper::{ndjson, stderr, svr_etl, FaultProxy, Moto};

/// `svr-etl once --trials N` writing to `s3://bucket/p` through the proxy, with `rows`
/// rows in its data set when given (enough, with 5 MiB parts, for multipart facts).
fn once_through(
    proxy: &FaultProxy,
    bucket: &str,
    trials: usize,
    rows: Option<usize>,
    extra_env: &[(&str, &str)],
) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = svr_etl(dir.path());
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("SVR_ETL__S3__ENDPOINT_URL", proxy.endpoint())
        .env("SVR_ETL__S3__FORCE_PATH_STYLE", "true")
        .env("SVR_ETL__S3__REGION", "us-east-1")
        .env("SVR_ETL__SINK__PART_SIZE_MIB", "5")
        .args(["once", "--trials", &trials.to_string()])
        .args(["--sink", &format!("s3://{bucket}/p")]);
    if let Some(rows) = rows {
        let path = dir.path().join("large.ndjson");
        crate::faults::large_data_set(&path, rows);
        cmd.env("SVR_ETL__DATASET__PATH", &path);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    (cmd.output().unwrap(), dir)
}

/// Every trial is in the bucket whole and ok, and no upload is left open.
async fn assert_whole(moto: &Moto, bucket: &str, trials: usize, rows: usize) {
    let keys = moto.keys(bucket, "p/hyper/").await;
    assert_eq!(keys.len(), trials, "{keys:?}");
    for key in &keys {
        let record = ndjson(&String::from_utf8(moto.get(bucket, key).await).unwrap()).remove(0);
        assert_eq!(record["status"], "ok", "{key}: {record}");
        let fact = key.replacen("p/hyper/", "p/fact/", 1);
        let facts = ndjson(&String::from_utf8(moto.get(bucket, &fact).await).unwrap());
        assert_eq!(facts.len(), rows, "{fact}");
    }
    assert_eq!(moto.open_uploads(bucket).await, 0, "open uploads left");
}

/// Lines of the log that contain `needle`.
fn lines_with(out: &std::process::Output, needle: &str) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Runs `once` under `faults` and checks what every scenario must show: each trial
/// whole and ok, nothing open, and as many log lines naming `needle` as faults of
/// `kind` were injected (at least one).
async fn scenario(faults: Value, kind: &str, needle: &str, rows: Option<usize>) {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let proxy = FaultProxy::start(moto.port);
    proxy.set(faults);
    let (out, _dir) = once_through(&proxy, &bucket, 3, rows, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole(&moto, &bucket, 3, rows.unwrap_or(442)).await;
    let injected = proxy.injected(kind);
    assert!(injected >= 1, "no {kind} was injected");
    let lines = lines_with(&out, needle);
    eprintln!("{kind}: {lines:#?}");
    assert_eq!(
        lines.len() as u64,
        injected,
        "{injected} {kind} faults, log lines: {lines:#?}\n{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_down_is_retried_and_logged() {
    let rule =
        json!({"rules": [{"op": "PutObject", "key": "/fact/", "fault": "slowdown", "count": 2}]});
    scenario(rule, "slowdown", "HTTP 503 SlowDown", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_errors_are_retried_and_logged() {
    let rule =
        json!({"rules": [{"op": "PutObject", "key": "/hyper/", "fault": "internal", "count": 1}]});
    scenario(rule, "internal", "HTTP 500 InternalError", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_on_completion_starts_the_upload_over() {
    let rule = json!({"rules": [{"op": "CompleteMultipartUpload", "key": "/fact/", "fault": "conflict", "count": 1}]});
    scenario(rule, "conflict", "a write raced this one", Some(90_000)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_to_a_put_is_our_write_though_etags_are_opaque() {
    let rule = json!({
        "opaque_etags": true,
        "rules": [{"op": "PutObject", "key": "/hyper/", "fault": "drop", "count": 1},
                  {"op": "PutObject", "key": "/fact/", "fault": "drop", "count": 1}]
    });
    scenario(rule, "drop", "already holds exactly what was sent", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_to_a_completion_is_our_write_though_etags_are_opaque() {
    let rule = json!({
        "opaque_etags": true,
        "rules": [{"op": "CompleteMultipartUpload", "key": "/fact/", "fault": "drop", "count": 1}]
    });
    // S3 completes an upload again when asked again (moto too): the retry succeeds.
    scenario(
        rule,
        "drop",
        "S3 gave no answer to CompleteMultipartUpload",
        Some(90_000),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_clock_thirty_minutes_ahead_is_followed() {
    scenario(
        json!({"skew_secs": 1800}),
        "skewed",
        "HTTP 403 RequestTimeTooSkewed",
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_without_checksums_falls_back_to_etags_and_says_so() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let proxy = FaultProxy::start(moto.port);
    proxy.set(json!({
        "no_checksums": true,
        "rules": [{"op": "PutObject", "key": "/hyper/", "fault": "drop", "count": 1}]
    }));
    let (out, _dir) = once_through(&proxy, &bucket, 2, None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_whole(&moto, &bucket, 2, 442).await;
    assert_eq!(lines_with(&out, "returns no CRC64NVME checksums").len(), 1);
    assert_eq!(
        lines_with(&out, "already holds exactly what was sent").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_kms_key_is_named_in_one_line_and_nothing_is_written() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let proxy = FaultProxy::start(moto.port);
    proxy.set(json!({"rules": [{"op": "PutObject", "fault": "kms_denied", "count": 1000}]}));
    let (out, _dir) = once_through(&proxy, &bucket, 1, None, &[]);
    assert!(!out.status.success());
    let lines = lines_with(&out, "the credentials lack kms:GenerateDataKey");
    assert_eq!(lines.len(), 1, "{}", stderr(&out));
    assert!(lines[0].contains("s3://"), "{}", lines[0]);
    assert!(moto.keys(&bucket, "p/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_kms_is_asked_for_on_every_write() {
    let moto = Moto::start();
    let bucket = moto.bucket().await;
    let proxy = FaultProxy::start(moto.port);
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let env = [
        ("SVR_ETL__S3__SSE", "aws:kms"),
        ("SVR_ETL__S3__KMS_KEY_ID", key),
    ];
    let (out, _dir) = once_through(&proxy, &bucket, 1, Some(90_000), &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = moto.keys(&bucket, "p/").await;
    assert!(keys.len() >= 3, "{keys:?}");
    for k in keys {
        let head = moto
            .client()
            .head_object()
            .bucket(&bucket)
            .key(&k)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption().map(|s| s.as_str()),
            Some("aws:kms"),
            "{k}"
        );
        assert_eq!(head.ssekms_key_id(), Some(key), "{k}");
    }
}
