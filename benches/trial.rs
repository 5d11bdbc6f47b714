//! Cost per trial: svr-etl against the seed pipeline's per-tick job, in the same run.
//!
//!     pip install scikit-learn boto3   # the peer's own dependencies
//!     cargo bench --bench trial
//!
//! With moto's S3 server on loopback as the store, three ways of running a trial, each
//! measured in a child process of its own (wall time, CPU time, peak RSS per trial):
//! - peer: benches/seed_peer.py, a Python process fitting scikit-learn's SVR and two
//!   upload processes, as one cron tick of the replaced pipeline;
//! - `svr-etl once`: one process per trial, as cron would run it;
//! - daemon: trials in one long-lived process, as `svr-etl run` does.
//!
//! Under `cargo test` it runs two in-process trials as a smoke test.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use nix::sys::resource::{getrusage, UsageWho};
use svr_etl::config::Settings;
use svr_etl::model::id::HyperIdGenerator;
use svr_etl::model::params::SeedSource;
use svr_etl::sink::Connector;
use svr_etl::trial::{system_clock, Draw, Pipeline};
use tokio_util::sync::CancellationToken;

const PEER_RUNS: usize = 5;
const ONCE_RUNS: usize = 10;
const DAEMON_TRIALS: usize = 100;

fn cpu_secs(who: UsageWho) -> f64 {
    let u = getrusage(who).unwrap();
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 * 1e-6;
    t(u.user_time()) + t(u.system_time())
}

fn peak_rss_mib(who: UsageWho) -> f64 {
    getrusage(who).unwrap().max_rss() as f64 / 1024.0
}

/// Per-trial (wall s, CPU s, peak RSS MiB) of a mode, measured inside this child.
fn measure(mode: &str, endpoint: &str) -> (f64, f64, f64) {
    let env = |cmd: &mut Command| {
        cmd.env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SVR_ETL__S3__ENDPOINT_URL", endpoint)
            .env("SVR_ETL__S3__FORCE_PATH_STYLE", "true")
            .env("SVR_ETL__S3__REGION", "us-east-1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
    };
    let started = Instant::now();
    match mode {
        "peer" => {
            for _ in 0..PEER_RUNS {
                let ok = Command::new("python3")
                    .args(["benches/seed_peer.py", endpoint, "bench"])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "the peer failed (pip install scikit-learn boto3)");
            }
            let n = PEER_RUNS as f64;
            (
                started.elapsed().as_secs_f64() / n,
                cpu_secs(UsageWho::RUSAGE_CHILDREN) / n,
                peak_rss_mib(UsageWho::RUSAGE_CHILDREN),
            )
        }
        "once" => {
            for _ in 0..ONCE_RUNS {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_svr-etl"));
                env(&mut cmd);
                let ok = cmd
                    .args(["once", "--sink", "s3://bench/once"])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
            }
            let n = ONCE_RUNS as f64;
            (
                started.elapsed().as_secs_f64() / n,
                cpu_secs(UsageWho::RUSAGE_CHILDREN) / n,
                peak_rss_mib(UsageWho::RUSAGE_CHILDREN),
            )
        }
        _ => daemon(endpoint, DAEMON_TRIALS),
    }
}

/// Trials in this process, as the daemon runs them.
fn daemon(endpoint: &str, trials: usize) -> (f64, f64, f64) {
    // Settings come in as they would for the daemon: through the environment.
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("SVR_ETL__SINK__URL", "s3://bench/daemon"),
        ("SVR_ETL__S3__ENDPOINT_URL", endpoint),
        ("SVR_ETL__S3__REGION", "us-east-1"),
        ("SVR_ETL__S3__FORCE_PATH_STYLE", "true"),
    ] {
        std::env::set_var(key, value);
    }
    let settings = Settings::load(None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ids = Arc::new(HyperIdGenerator::new());
        let cancel = CancellationToken::new();
        let (pipeline, _) = Pipeline::open(
            &settings.pipeline(),
            &Connector,
            ids,
            system_clock(),
            &cancel,
        )
        .await
        .unwrap();
        let mut seeds = SeedSource::new(Some(1));
        let cpu0 = cpu_secs(UsageWho::RUSAGE_SELF);
        let started = Instant::now();
        for _ in 0..trials {
            let draw = Draw::Seeded {
                space: settings.search().space(),
                seed: seeds.next_seed(),
                sampler: settings.search().sampler,
            };
            assert!(pipeline.run_trial(draw, &cancel).await.is_ok());
        }
        let n = trials as f64;
        (
            started.elapsed().as_secs_f64() / n,
            (cpu_secs(UsageWho::RUSAGE_SELF) - cpu0) / n,
            peak_rss_mib(UsageWho::RUSAGE_SELF),
        )
    })
}

fn run_child(mode: &str, endpoint: &str) -> (f64, f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child", mode, endpoint])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{mode} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (wall, cpu, rss) = measure(&args[2], &args[3]);
        println!("{wall} {cpu} {rss}");
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();

    let (mut moto, endpoint) = support::start_moto();

    if full {
        let peer = run_child("peer", &endpoint);
        let once = run_child("once", &endpoint);
        let daemon = run_child("daemon", &endpoint);
        println!("per trial          wall s    CPU s  peak MiB");
        for (name, (w, c, m)) in [
            ("seed peer", peer),
            ("svr-etl once", once),
            ("svr-etl daemon", daemon),
        ] {
            println!("{name:<16} {w:>8.3} {c:>8.3} {m:>9.1}");
        }
        for (name, (w, c, m)) in [("once", once), ("daemon", daemon)] {
            println!(
                "{name} / peer: wall {:.3}, CPU {:.3}, peak memory {:.3}",
                w / peer.0,
                c / peer.1,
                m / peer.2
            );
        }
    } else {
        let (wall, _, _) = daemon(&endpoint, 2);
        println!("smoke: two trials, {wall:.3} s each");
    }
    let _ = moto.kill();
    let _ = moto.wait();
}
