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

/// Runs a Python peer `script` with `job` as JSON on stdin; its stdout, one number a
/// line. `install` says what the peer needs when it fails.
pub fn python_peer(script: &str, job: &serde_json::Value, install: &str) -> Vec<f64> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(job.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the peer failed ({install})");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// Configurations drawn log-uniform from `ranges` (log10 of gamma, C, epsilon).
pub fn configs(ranges: [(f64, f64); 3], n: usize, seed: u64) -> Vec<[f64; 3]> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| ranges.map(|(lo, hi)| 10f64.powf(rng.gen_range(lo..hi))))
        .collect()
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
