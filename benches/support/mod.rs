//! What the benchmarks share: an S3 server on loopback, peak memory, solver settings.
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's S3 server on a free loopback port with a bucket `bench`; the child and its
/// endpoint URL. Kill the child when done.
pub fn start_moto() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moto = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install -r .ci/requirements.txt)");
    let endpoint = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let put = format!(
        "import urllib.request as u; u.urlopen(u.Request('{endpoint}/bench', method='PUT'))"
    );
    assert!(Command::new("python3")
        .args(["-c", &put])
        .status()
        .unwrap()
        .success());
    (moto, endpoint)
}

/// This process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// Solver settings for a benchmark: tolerance 1e-3 and bounds that never refuse.
pub fn solver(
    engine: svr_etl::trial::trainer::Engine,
    max_fit_mib: u64,
) -> svr_etl::trial::trainer::SolverSettings {
    svr_etl::trial::trainer::SolverSettings {
        engine,
        tolerance: 1e-3.try_into().unwrap(),
        max_fit_secs: 3600.0.try_into().unwrap(),
        max_train_rows: 100_000.try_into().unwrap(),
        max_fit_mib: max_fit_mib.try_into().unwrap(),
    }
}
