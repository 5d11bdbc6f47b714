//! `/metrics` of `svr-etl run` as a real process, scraped by a real Prometheus (the
//! Debian package) and linted by `promtool check metrics`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::helper::{files_under, svr_etl, wait_for, Logged};

const DEADLINE: Duration = Duration::from_secs(60);

/// The address in the daemon's "serving metrics at http://ADDR/metrics" lines, the
/// `n`th one (from 1).
fn served_at(daemon: &Logged, n: usize) -> String {
    let mut addr = None;
    wait_for(DEADLINE, "the metrics endpoint's log line", || {
        addr = daemon
            .lines()
            .iter()
            .filter_map(|l| l.split("serving metrics at http://").nth(1))
            .filter_map(|rest| rest.split('/').next())
            .nth(n - 1)
            .map(str::to_string);
        addr.is_some()
    });
    addr.unwrap()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-sS").args(args).output().unwrap();
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    /// Scrapes `target` every second.
    fn start(dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: svr-etl\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is installed (.ci/run installs it)");
        Prometheus { child, port }
    }

    /// The value of `query`'s first series, when there is one.
    fn query(&self, query: &str) -> Option<(Value, f64)> {
        let out = Command::new("curl")
            .args(["-sS", "--get", "--data-urlencode"])
            .arg(format!("query={query}"))
            .arg(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .output()
            .unwrap();
        let answer: Value = serde_json::from_slice(&out.stdout).ok()?;
        let first = answer["data"]["result"].get(0)?;
        let value = first["value"][1].as_str()?.parse().ok()?;
        Some((first["metric"].clone(), value))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_the_trial_count_and_promtool_accepts_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("svr-etl.toml");
    std::fs::write(
        &config,
        "[schedule]\ncron = \"* * * * * *\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut daemon = Logged::spawn(svr_etl(dir.path()).args(["run", "--config", "svr-etl.toml"]));
    let addr = served_at(&daemon, 1);
    let prometheus = Prometheus::start(dir.path(), &addr);

    let mut ok = 0.0;
    wait_for(DEADLINE, "Prometheus to hold 3 ok trials", || {
        ok = prometheus
            .query("svr_etl_trials_total{status=\"ok\"}")
            .map_or(0.0, |(_, v)| v);
        ok >= 3.0
    });
    let (labels, up) = prometheus.query("svr_etl_build_info").unwrap();
    assert_eq!(up, 1.0);
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    let (_, fits) = prometheus
        .query("svr_etl_fit_duration_seconds_count")
        .unwrap();
    assert!(fits >= ok, "{fits} fits timed for {ok} ok trials");

    // What curl gets is the classic format, which promtool lints.
    let text = curl(&[&format!("http://{addr}/metrics")]);
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(lint.status.success(), "promtool: {lint:?}\n{text}");

    daemon.signal(Signal::SIGTERM).unwrap();
    assert!(daemon.wait().success());
    let written = files_under(&dir.path().join("svr-etl-output"))
        .iter()
        .filter(|f| f.starts_with("hyper/"))
        .count();
    assert!(
        ok as usize <= written,
        "Prometheus counted {ok} ok trials, the sink holds {written}"
    );
}

/// Sends `request` and returns the status line, or "" when the server closed first.
fn status_line(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = stream.write_all(request.as_bytes());
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or("").to_string()
}

#[test]
fn the_endpoint_answers_get_metrics_only_to_a_bounded_number_of_clients_and_moves_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("svr-etl.toml");
    let write_config = |listen: &str| {
        std::fs::write(
            &config,
            format!("[schedule]\ncron = \"0 0 0 1 1 *\"\n[metrics]\nlisten = \"{listen}\"\n"),
        )
        .unwrap()
    };
    write_config("127.0.0.1:0");
    let mut daemon = Logged::spawn(svr_etl(dir.path()).args(["run", "--config", "svr-etl.toml"]));
    let addr = served_at(&daemon, 1);
    let close = "Connection: close\r\n\r\n";
    let ask = |method: &str, path: &str| {
        status_line(
            &addr,
            &format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{close}"),
        )
    };
    assert_eq!(ask("GET", "/metrics"), "HTTP/1.1 200 OK");
    assert_eq!(ask("GET", "/"), "HTTP/1.1 404 Not Found");
    assert_eq!(ask("GET", "/metrics/x"), "HTTP/1.1 404 Not Found");
    assert_eq!(ask("POST", "/metrics"), "HTTP/1.1 405 Method Not Allowed");

    // Eight idle clients hold every place; the ninth is closed unanswered.
    let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ask("GET", "/metrics"), "");
    drop(idle);
    wait_for(DEADLINE, "a place freed", || {
        ask("GET", "/metrics") == "HTTP/1.1 200 OK"
    });

    // A reload to another port moves the endpoint; the old port closes.
    let port = free_port();
    write_config(&format!("127.0.0.1:{port}"));
    daemon.signal(Signal::SIGHUP).unwrap();
    let moved = served_at(&daemon, 2);
    assert_eq!(moved, format!("127.0.0.1:{port}"));
    assert_eq!(
        status_line(
            &moved,
            &format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{close}")
        ),
        "HTTP/1.1 200 OK"
    );
    wait_for(DEADLINE, "the old port to close", || {
        TcpStream::connect(&addr).is_err()
    });

    daemon.signal(Signal::SIGTERM).unwrap();
    assert!(daemon.wait().success());
}

#[test]
fn the_documented_alerts_load_and_fire_as_their_tests_say() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "promtool {args:?}: {out:?}");
    }
}
