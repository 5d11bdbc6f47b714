//! Cost per trial of the fitting engines: the exact engine and linfa-svm against
//! scikit-learn's SVR (benches/sklearn_fit_peer.py), same data set, same
//! configurations, same run, one thread each. A trial here is a fit on the 353
//! training rows and predictions for all 442 rows.
//!
//!     pip install scikit-learn==1.9.1
//!     cargo bench --bench engines
//!
//! Under `cargo test` it fits three configurations with both engines as a smoke test.

mod support;

use support::{configs, median};

use std::sync::Arc;
use std::time::Instant;

use svr_etl::dataset::Dataset;
use svr_etl::model::params::TrialParams;
use svr_etl::trial::trainer::{Engine, Trainer};
use tokio_util::sync::CancellationToken;

const REPEATS: usize = 5;

/// Median seconds per trial of each configuration, on `engine`.
fn ours(engine: Engine, configs: &[[f64; 3]], repeats: usize) -> Vec<f64> {
    let trainer =
        Trainer::new(Arc::new(Dataset::embedded()), support::solver(engine, 4096)).unwrap();
    let cancel = CancellationToken::new();
    configs
        .iter()
        .map(|[g, c, e]| {
            let params = TrialParams::new(*g, *c, *e).unwrap();
            let mut times: Vec<f64> = (0..repeats)
                .map(|_| {
                    let start = Instant::now();
                    trainer.fit(&params, &Default::default(), &cancel).unwrap();
                    start.elapsed().as_secs_f64()
                })
                .collect();
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        })
        .collect()
}

fn sklearn(configs: &[[f64; 3]]) -> Vec<f64> {
    let job =
        serde_json::json!({"path": "assets/diabetes.json", "configs": configs, "repeats": REPEATS});
    support::python_peer(
        "benches/sklearn_fit_peer.py",
        &job,
        "pip install scikit-learn==1.9.1",
    )
}

fn main() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    if !std::env::args().any(|a| a == "--bench") {
        let few = configs([(-2.0, 2.0), (-2.0, 2.0), (-2.0, 0.0)], 3, 1);
        let exact = ours(Engine::Exact, &few, 1);
        let linfa = ours(Engine::LinfaSvm, &few, 1);
        println!(
            "smoke: exact {:.4} s, linfa-svm {:.4} s per trial",
            median(&exact),
            median(&linfa)
        );
        return;
    }
    let bands = [
        ("default", [(-2.0, 2.0), (-2.0, 2.0), (-2.0, 0.0)]),
        ("wide", [(-4.0, 3.0), (-3.0, 4.0), (-4.0, 1.0)]),
    ];
    println!(
        "per trial (fit on 353 rows + predict 442), median over configurations, one thread; exp path {:?}",
        svr_exact::exp_path()
    );
    for (i, (band, ranges)) in bands.into_iter().enumerate() {
        let cfgs = configs(ranges, 100, 10 + i as u64);
        let sk = sklearn(&cfgs);
        let exact = ours(Engine::Exact, &cfgs, REPEATS);
        let linfa = ours(Engine::LinfaSvm, &cfgs, REPEATS);
        let ratio = |a: &[f64]| {
            let r: Vec<f64> = sk.iter().zip(a).map(|(s, x)| s / x).collect();
            (median(&r), r.iter().copied().fold(f64::INFINITY, f64::min))
        };
        let (e_med, e_min) = ratio(&exact);
        let (l_med, l_min) = ratio(&linfa);
        println!(
            "{band:<8} scikit-learn {:.2} ms, exact {:.2} ms ({e_med:.1}x faster, slowest config {e_min:.1}x), linfa-svm {:.2} ms ({l_med:.2}x, slowest {l_min:.2}x)",
            median(&sk) * 1e3,
            median(&exact) * 1e3,
            median(&linfa) * 1e3
        );
    }
}
