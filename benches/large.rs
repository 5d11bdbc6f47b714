//! Large training sets: the exact engine against scikit-learn's SVR on Friedman's
//! first function (five uniform features and noise) with 5,000 and 10,000 training
//! rows (gamma 0.1, C 1, epsilon 0.1), fit and predict every row, then the same with
//! 5-fold cross-validation (`cross_val_score(cv=5)` on the peer's side, the trial's
//! folds sharing its kernel on ours), one thread, each side in a process of its own
//! for its peak memory. Each row is measured three times, the two sides alternating,
//! and reports the medians and the range of the three runs' ratios: one run of each
//! side moved the ratio by a tenth between invocations on the same machine.
//!
//!     pip install scikit-learn==1.9.1
//!     cargo bench --bench large
//!
//! Under `cargo test` it fits 400 rows as a smoke test.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use svr_etl::dataset::Dataset;
use svr_etl::model::params::TrialParams;
use svr_etl::trial::trainer::{Engine, Trainer};
use tokio_util::sync::CancellationToken;

/// Fits the data set at `path` here; seconds (fit and predict, after loading) and
/// peak MiB.
fn ours(path: &str, max_fit_mib: u64, folds: usize) -> (f64, f64) {
    let data = Arc::new(Dataset::from_file(path.as_ref()).unwrap());
    let solver = support::solver(Engine::Exact, max_fit_mib);
    let start = Instant::now();
    let trainer = Trainer::new(data, solver)
        .unwrap()
        .with_folds(folds)
        .unwrap();
    let params = TrialParams::new(0.1, 1.0, 0.1).unwrap();
    // As a thread of the daemon's fit queue does, one fit's row storage is the next's.
    let _rows = svr_exact::KeepRows::new();
    let (kernel, cancel) = (trainer.kernel_for(&params), CancellationToken::new());
    trainer.fit(&params, &kernel, &cancel).unwrap();
    for k in 0..folds {
        trainer.fit_fold(k, &params, &kernel, &cancel).unwrap();
    }
    (start.elapsed().as_secs_f64(), support::peak_rss_mib())
}

/// Friedman's first benchmark function, five uniform features with noise: `n`
/// training rows and a quarter as many test rows, in the data set layout.
fn write_friedman1(n: usize, path: &str) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut text = String::new();
    for i in 0..n + n / 4 {
        let x: Vec<f64> = (0..5).map(|_| rng.gen::<f64>()).collect();
        let noise: f64 = (0..12).map(|_| rng.gen::<f64>()).sum::<f64>() - 6.0;
        let y = 10.0 * (std::f64::consts::PI * x[0] * x[1]).sin()
            + 20.0 * (x[2] - 0.5).powi(2)
            + 10.0 * x[3]
            + 5.0 * x[4]
            + noise;
        let features: String = x
            .iter()
            .enumerate()
            .map(|(j, v)| format!("\"x{j}\":{v},"))
            .collect();
        text.push_str(&format!(
            "{{\"point_id\":{i},\"is_train\":{},{features}\"y_true\":{y}}}\n",
            i < n
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn peer(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("benches/large_peer.py")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the peer failed (pip install scikit-learn)"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs of each side per row of the table.
const RUNS: usize = 3;

/// The medians of the runs' seconds and of their peak MiB.
fn medians(runs: &[(f64, f64)]) -> (f64, f64) {
    let (secs, mib): (Vec<f64>, Vec<f64>) = runs.iter().copied().unzip();
    (support::median(&secs), support::median(&mib))
}

fn child(path: &str, max_fit_mib: u64, folds: usize) -> (f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--child",
            path,
            &max_fit_mib.to_string(),
            &folds.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (secs, mib) = ours(&args[2], args[3].parse().unwrap(), args[4].parse().unwrap());
        println!("{secs} {mib}");
        return;
    }
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let full = args.iter().any(|a| a == "--bench");
    // The default solver.max_fit_mib, and a kernel cache near scikit-learn's 200 MB.
    let runs: &[(usize, u64, usize)] = if full {
        &[
            (5_000, 2048, 0),
            (10_000, 2048, 0),
            (10_000, 256, 0),
            (5_000, 2048, 5),
            (10_000, 2048, 5),
            (10_000, 256, 5),
        ]
    } else {
        &[(400, 2048, 5)]
    };
    println!("training rows  max_fit_mib  folds   scikit-learn s  MiB    exact s  MiB    faster  (each run)    memory ratio");
    for &(n, max_fit_mib, folds) in runs {
        let path = dir.path().join(format!("friedman-{n}.json"));
        let path = path.to_str().unwrap();
        write_friedman1(n, path);
        if !full {
            let (ours_s, ours_mib) = child(path, max_fit_mib, folds);
            println!("smoke: {n} rows in {ours_s:.3} s, {ours_mib:.1} MiB");
            continue;
        }
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(child(path, max_fit_mib, folds));
            let peer_run: Vec<f64> = peer(&["fit", path, &folds.to_string()])
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            theirs.push((peer_run[0], peer_run[1]));
        }
        let ratios: Vec<f64> = theirs.iter().zip(&ours).map(|(t, o)| t.0 / o.0).collect();
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(0.0, f64::max);
        let ((ours_s, ours_mib), (theirs_s, theirs_mib)) = (medians(&ours), medians(&theirs));
        println!(
            "{n:>13}  {max_fit_mib:>11}  {folds:>5}   {theirs_s:>14.2} {theirs_mib:>5.0}    {ours_s:>7.2} {ours_mib:>5.0}    {:>5.1}x  ({low:.1}-{high:.1}x)  {:>12.2}",
            theirs_s / ours_s,
            ours_mib / theirs_mib
        );
    }
}
