//! Hundreds of broken configuration files against the real binary: wrong types,
//! unknown keys, impossible values, truncated and binary files, repeated keys, deep
//! nesting. Each is refused with one line naming the key or the line, or accepted and
//! then also accepted by `run`; none panics or hangs. A running daemon refuses them on
//! SIGHUP and keeps its config.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::helper::{stderr, svr_etl, wait_for};

const DEFAULT: &str = include_str!("../config/svr-etl.toml");

/// `(section, key)` of every key in the default file.
fn keys() -> Vec<(String, String)> {
    let table: toml::Table = toml::from_str(DEFAULT).unwrap();
    let mut keys = Vec::new();
    for (section, values) in &table {
        for key in values.as_table().unwrap().keys() {
            keys.push((section.clone(), key.clone()));
        }
    }
    keys.push(("search".into(), "seed".into()));
    keys
}

/// The corpus: each file's text, and the key it breaks if it breaks one.
fn corpus() -> Vec<(String, Option<String>)> {
    let bad_values = [
        "true",
        "3.5",
        "-1",
        "0",
        "\"\"",
        "\"x\"",
        "[1, 2, 3]",
        "{ a = 1 }",
        "nan",
        "inf",
        "99999999999999999999",
        "\"\\u0000\"",
        "[\"1\", \"2\"]",
        "1979-05-27T07:32:00Z",
    ];
    let mut files = Vec::new();
    for (section, key) in keys() {
        for value in bad_values {
            files.push((
                format!("[{section}]\n{key} = {value}\n"),
                Some(format!("{section}.{key}")),
            ));
        }
        files.push((
            format!("[{section}]\n{key}_typo = 1\n"),
            Some(section.clone()),
        ));
        files.push((format!("[{section}]\n{key} = 1\n{key} = 2\n"), None));
    }
    for (extra, key) in [
        ("[schedule]\ncron = \"0 0 0 30 2 *\"\n", "schedule.cron"),
        ("[schedule]\ncron = \"* * * * * * *\"\n", "schedule.cron"),
        ("[schedule]\ncron = \"*/0 * * * * *\"\n", "schedule.cron"),
        (
            "[schedule]\ntimezone = \"Europe/Atlantis\"\n",
            "schedule.timezone",
        ),
        ("[schedule]\ntimezone = \"UTC+2\"\n", "schedule.timezone"),
        (
            "[schedule]\ntrials_per_run = 1025\n",
            "schedule.trials_per_run",
        ),
        (
            "[schedule]\nshutdown_grace_secs = 86401\n",
            "schedule.shutdown_grace_secs",
        ),
        ("[sink]\nurl = \"s3://\"\n", "sink.url"),
        ("[sink]\nurl = \"s3:/b/p\"\n", "sink.url"),
        ("[sink]\nurl = \"file://relative\"\n", "sink.url"),
        ("[sink]\nurl = \"gs://b/p\"\n", "sink.url"),
        ("[sink]\npart_size_mib = 4.9\n", "sink.part_size_mib"),
        ("[sink]\npart_size_mib = 5120\n", "sink.part_size_mib"),
        (
            "[sink]\nupload_timeout_secs = 0\n",
            "sink.upload_timeout_secs",
        ),
        ("[s3]\nendpoint_url = \"http://\"\n", "s3.endpoint_url"),
        ("[s3]\nendpoint_url = \"https://[::1\"\n", "s3.endpoint_url"),
        (
            "[s3]\nendpoint_url = \"http://127.0.0.1:99999\"\n",
            "s3.endpoint_url",
        ),
        (
            "[s3]\nendpoint_url = \"localhost:9000\"\n",
            "s3.endpoint_url",
        ),
        ("[compaction]\nsettle_secs = 60\n", "compaction.settle_secs"),
        (
            "[compaction]\nmax_object_mib = 0\n",
            "compaction.max_object_mib",
        ),
        ("[compaction]\ncron = \"0 0 0 * *\"\n", "compaction.cron"),
        ("[compaction]\ncron = \"0 0 0 30 2 *\"\n", "compaction.cron"),
        ("[compaction]\nenabled = \"yes\"\n", "compaction.enabled"),
        ("[search]\ngamma = [2.0, -2.0]\n", "search.gamma"),
        ("[search]\nc = [0.0, 300.0]\n", "search.c"),
        ("[search]\nepsilon = [-9.0, 0.0]\n", "search.epsilon"),
        ("[solver]\nmax_fit_mib = 0\n", "solver.max_fit_mib"),
        ("[log]\nlevel = \"verbose\"\n", "log.level"),
        ("[log]\nlevel = \"information\"\n", "log.level"),
        ("[athena]\ndatabase = \"Bad-Name\"\n", "athena.database"),
        ("[dataset]\npath = \"/nonexistent/rows.json\"\n", "dataset"),
    ] {
        files.push((extra.to_string(), Some(key.to_string())));
    }
    for cut in (1..DEFAULT.len()).step_by(DEFAULT.len() / 25) {
        files.push((DEFAULT[..cut].to_string(), None));
    }
    for garbage in [
        &[0xff, 0xfe, 0x00, 0x01][..],
        b"\x00\x00\x00",
        b"[schedule\n",
        b"= 1\n",
        b"\xef\xbb\xbf[log]\nlevel = 3\n",
    ] {
        files.push((String::from_utf8_lossy(garbage).into_owned(), None));
    }
    files.push(("[a.b.c.d.e.f.g.h]\nx = 1\n".into(), None));
    files.push((
        format!(
            "[search]\ngamma = {}1{}\n",
            "[".repeat(200),
            "]".repeat(200)
        ),
        None,
    ));
    files.push(("x = { y = { z = { w = 1 } } }\n".into(), None));
    files
}

/// Runs `cmd` to its end, killing it after 30 s (a hang fails the test).
fn run_bounded(mut child: Child) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("hung: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn check_config(dir: &Path) -> Output {
    let child = svr_etl(dir)
        .args(["check-config", "--config", "c.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run_bounded(child)
}

/// Starts `run` and waits for it to start, or to exit; `None` when it started.
fn run_starts(dir: &Path) -> Option<Output> {
    let mut child = svr_etl(dir)
        .args(["run", "--config", "c.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap());
    for line in lines.lines().map_while(Result::ok) {
        if line.contains("started") {
            kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
            assert!(run_bounded(child).status.success());
            return None;
        }
    }
    Some(run_bounded(child))
}

#[test]
fn three_hundred_broken_configs_are_refused_by_name_and_never_crash() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus();
    assert!(files.len() >= 300, "{} files", files.len());
    let (mut refused, mut accepted) = (0, 0);
    for (text, key) in &files {
        std::fs::write(dir.path().join("c.toml"), text).unwrap();
        let out = check_config(dir.path());
        let err = stderr(&out);
        match out.status.code() {
            Some(0) => {
                accepted += 1;
                if let Some(out) = run_starts(dir.path()) {
                    let code = out.status.code();
                    assert!(
                        !matches!(code, Some(65 | 78)),
                        "check-config accepted what run refuses:\n{text}\n{}",
                        stderr(&out)
                    );
                }
            }
            Some(78 | 65) => {
                refused += 1;
                assert_eq!(err.lines().count(), 1, "{text}\n{err}");
                // The key at fault, or, where the file does not parse, the line; or
                // the data set file the key names (exit 65).
                let named = err.contains(" line ")
                    || (out.status.code() == Some(65) && err.starts_with("error: data set "))
                    || key
                        .as_ref()
                        .map_or(err.contains("key `"), |k| err.contains(k.as_str()));
                assert!(named, "{text}\n{err}");
            }
            other => panic!("exit {other:?} for\n{text}\n{err}"),
        }
    }
    println!(
        "{} configs: {refused} refused naming the key or line, {accepted} accepted and started",
        files.len()
    );
}

#[test]
fn sighup_to_thirty_broken_configs_keeps_the_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[schedule]\ncron = \"* * * * * *\"\n[search]\ngamma = [-2.0, -1.9]\n";
    std::fs::write(dir.path().join("c.toml"), good).unwrap();
    let mut child = svr_etl(dir.path())
        .args(["run", "--config", "c.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let count = |needle: &str| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };
    wait_for(Duration::from_secs(60), "the first trial", || {
        count("trial ok") >= 1
    });
    // Thirty from across the corpus that check-config refuses.
    let probe = tempfile::tempdir().unwrap();
    // Each with the error check-config gives, which the refusal must give too.
    let broken: Vec<(String, String)> = corpus()
        .into_iter()
        .step_by(5)
        .filter_map(|(text, _)| {
            std::fs::write(probe.path().join("c.toml"), &text).unwrap();
            let out = check_config(probe.path());
            let error = String::from_utf8_lossy(&out.stderr);
            let error = error.trim().strip_prefix("error: ")?.to_string();
            (out.status.code() == Some(78)).then_some((text, error))
        })
        .take(30)
        .collect();
    assert_eq!(broken.len(), 30);
    for (i, (text, _)) in broken.iter().enumerate() {
        std::fs::write(dir.path().join("c.toml"), text).unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).unwrap();
        let waited = Instant::now();
        while count("config reload refused") <= i {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "no refusal of\n{text}\n{:?}",
                log.lock().unwrap().iter().rev().take(5).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Each refusal says why on its own line, as check-config does: the file, the key
    // or line, and the reason.
    let refusals: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("config reload refused"))
        .cloned()
        .collect();
    for ((_, error), line) in broken.iter().zip(&refusals) {
        assert!(
            line.contains(error.as_str()),
            "{line}\nshould name: {error}"
        );
    }
    let trials = count("trial ok");
    wait_for(Duration::from_secs(30), "trials after the reloads", || {
        count("trial ok") >= trials + 2
    });
    // The old ranges stay in force: every trial drew gamma from 10^[-2, -1.9).
    let lines = log.lock().unwrap().clone();
    for line in lines.iter().filter(|l| l.contains("trial ok")) {
        let gamma: f64 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("gamma="))
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.01..0.0126).contains(&gamma), "{line}");
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(count("config reloaded"), 0);
}
