//! A whole trial on one core: the fit, predictions for every row and 5-fold
//! cross-validation, against scikit-learn computing the same (fit, predict,
//! `cross_val_score(cv=5)`; benches/sklearn_trial_peer.py) and against the floor, the
//! time to compute the trial's kernel of the training rows once, and against that with
//! the trial's prediction kernel as well: a trial computes both kernels whatever its
//! solvers' iterations cost, and neither stands in for the other. Same configurations,
//! same run, the process and its peer pinned to one CPU.
//!
//!     pip install scikit-learn==1.9.1
//!     cargo bench --bench whole_trial
//!
//! svr-etl is measured three ways: its compute alone (the trainer's fit and folds on
//! one thread, sharing the trial's kernel), and whole trials written to a local sink,
//! one after another or each fitted while the one before is written (as `svr-etl once
//! --trials N` runs them). The written runs report the mean over the configurations.
//! Under `cargo test` it runs three configurations of each as a smoke test.

mod support;

use support::{configs, median};

use std::sync::Arc;
use std::time::Instant;

use svr_etl::config::Settings;
use svr_etl::dataset::Dataset;
use svr_etl::model::id::HyperIdGenerator;
use svr_etl::model::params::TrialParams;
use svr_etl::sink::Connector;
use svr_etl::trial::trainer::{Engine, Trainer};
use svr_etl::trial::{system_clock, Draw, FittedTrial, Pipeline};
use tokio_util::sync::CancellationToken;

const REPEATS: usize = 5;
const FOLDS: usize = 5;

/// Median over `repeats` of `work`'s seconds.
fn timed(repeats: usize, mut work: impl FnMut()) -> f64 {
    let times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64()
        })
        .collect();
    median(&times)
}

fn trainer() -> Trainer {
    Trainer::new(
        Arc::new(Dataset::embedded()),
        support::solver(Engine::Exact, 4096),
    )
    .unwrap()
    .with_folds(FOLDS)
    .unwrap()
}

/// Seconds per trial of each configuration: fit, predictions and folds, one thread,
/// the fits sharing the trial's kernel or (`share` false) each computing its own.
fn compute(configs: &[[f64; 3]], repeats: usize, share: bool) -> Vec<f64> {
    let trainer = trainer();
    let cancel = CancellationToken::new();
    configs
        .iter()
        .map(|[g, c, e]| {
            let params = TrialParams::new(*g, *c, *e).unwrap();
            timed(repeats, || {
                let kernel = if share {
                    trainer.kernel_for(&params)
                } else {
                    Default::default()
                };
                trainer.fit(&params, &kernel, &cancel).unwrap();
                for k in 0..FOLDS {
                    trainer.fit_fold(k, &params, &kernel, &cancel).unwrap();
                }
            })
        })
        .collect()
}

/// Seconds per trial of each configuration for computing its kernel of the training
/// rows once, the floor of what a trial must compute; with `predictions`, the
/// prediction kernel of all rows against the training rows as well: what a trial
/// computes besides its solvers' iterations, for the reference's bits (libsvm
/// computes a prediction's kernel another way than the training kernel's, so neither
/// stands in for the other).
fn kernels(configs: &[[f64; 3]], repeats: usize, predictions: bool) -> Vec<f64> {
    let data = Dataset::embedded();
    let train: Vec<usize> = data.train_indices().collect();
    let others: Vec<usize> = data.test_indices().collect();
    let train_x = data.features().select(ndarray::Axis(0), &train);
    let full = svr_exact::Distances::new(&train_x, data.features(), u128::MAX);
    configs
        .iter()
        .map(|[g, _, _]| {
            timed(repeats, || {
                let kernel = svr_exact::SharedKernel::new(&full, *g);
                kernel.fill(&full);
                if predictions {
                    kernel.fill_predictions(&full, &others);
                }
                std::hint::black_box(&kernel);
            })
        })
        .collect()
}

/// Seconds per trial, the configurations run in turn and written to a local sink: one
/// trial after another (`overlap` false), or each fitted while the one before is
/// written, as `svr-etl once --trials N` runs them.
fn written(configs: &[[f64; 3]], overlap: bool) -> f64 {
    let out = tempfile::tempdir().unwrap();
    std::env::set_var("SVR_ETL__SINK__URL", out.path());
    std::env::set_var("SVR_ETL__LOG__LEVEL", "warn");
    let settings = Settings::load(None).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let (pipeline, _) = Pipeline::open(
            &settings.pipeline(),
            &Connector,
            Arc::new(HyperIdGenerator::new()),
            system_clock(),
            &cancel,
        )
        .await
        .unwrap();
        let draws = configs
            .iter()
            .map(|[g, c, e]| Draw::Given(TrialParams::new(*g, *c, *e).unwrap()));
        let start = Instant::now();
        let mut writing: Option<FittedTrial> = None;
        for draw in draws {
            if !overlap {
                assert!(pipeline.run_trial(draw, &cancel).await.is_ok());
                continue;
            }
            let previous = async {
                if let Some(trial) = writing.take() {
                    assert!(trial.write(&cancel).await.is_ok());
                }
            };
            let (fitted, ()) = tokio::join!(pipeline.fit_trial(draw, &cancel), previous);
            writing = Some(fitted);
        }
        if let Some(trial) = writing {
            assert!(trial.write(&cancel).await.is_ok());
        }
        start.elapsed().as_secs_f64() / configs.len() as f64
    })
}

fn sklearn(configs: &[[f64; 3]], repeats: usize) -> Vec<f64> {
    let job =
        serde_json::json!({"path": "assets/diabetes.json", "configs": configs, "repeats": repeats});
    support::python_peer(
        "benches/sklearn_trial_peer.py",
        &job,
        "pip install scikit-learn==1.9.1",
    )
}

/// Pins this process, and the peer it starts, to the first CPU it may use.
fn one_core() -> usize {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let cpu = (0..CpuSet::count())
        .find(|c| allowed.is_set(*c).unwrap_or(false))
        .unwrap();
    let mut one = CpuSet::new();
    one.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(0), &one).unwrap();
    cpu
}

fn main() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let cpu = one_core();
    if !std::env::args().any(|a| a == "--bench") {
        let few = configs([(-2.0, 2.0), (-2.0, 2.0), (-2.0, 0.0)], 3, 1);
        println!(
            "smoke: compute {:.4} s, floor {:.5} s, both kernels {:.5} s, written {:.4} s, overlapped {:.4} s per trial",
            median(&compute(&few, 1, true)),
            median(&kernels(&few, 1, false)),
            median(&kernels(&few, 1, true)),
            written(&few, false),
            written(&few, true)
        );
        return;
    }
    let bands = [
        ("default", [(-2.0, 2.0), (-2.0, 2.0), (-2.0, 0.0)]),
        ("wide", [(-4.0, 3.0), (-3.0, 4.0), (-4.0, 1.0)]),
    ];
    println!(
        "whole trial (fit on 353 rows, predict 442, {FOLDS}-fold CV), medians over configurations, pinned to CPU {cpu}; exp path {:?}",
        svr_exact::exp_path()
    );
    for (i, (band, ranges)) in bands.into_iter().enumerate() {
        let cfgs = configs(ranges, 100, 20 + i as u64);
        let sk = sklearn(&cfgs, REPEATS);
        let ours = compute(&cfgs, REPEATS, true);
        let unshared = compute(&cfgs, REPEATS, false);
        let kernel = kernels(&cfgs, REPEATS, false);
        let both = kernels(&cfgs, REPEATS, true);
        let with_writes = written(&cfgs, false);
        let overlapped = written(&cfgs, true);
        let ratios =
            |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a / b).collect() };
        let faster = ratios(&sk, &ours);
        let over_floor = ratios(&ours, &kernel);
        println!(
            "{band:<8} medians: scikit-learn {:.2} ms; svr-etl compute {:.3} ms ({:.1}x faster, slowest config {:.1}x; each fit its own kernel {:.3} ms); floor {:.3} ms (compute is {:.1}x it); with the prediction kernel {:.3} ms ({:.1}x the floor; compute is {:.1}x both)",
            median(&sk) * 1e3,
            median(&ours) * 1e3,
            median(&faster),
            faster.iter().copied().fold(f64::INFINITY, f64::min),
            median(&unshared) * 1e3,
            median(&kernel) * 1e3,
            median(&over_floor),
            median(&both) * 1e3,
            median(&ratios(&both, &kernel)),
            median(&ratios(&ours, &both)),
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "{band:<8} means:   scikit-learn {:.2} ms; svr-etl compute {:.3} ms ({:.1}x), written to a local sink one trial after another {:.3} ms ({:.1}x), each fitted while the one before is written {:.3} ms ({:.1}x)",
            mean(&sk) * 1e3,
            mean(&ours) * 1e3,
            mean(&sk) / mean(&ours),
            with_writes * 1e3,
            mean(&sk) / with_writes,
            overlapped * 1e3,
            mean(&sk) / overlapped,
        );
    }
}
