//! What one TPE suggestion costs over a history of 100, 1,000 and 10,000 completed
//! trials, against Optuna's `TPESampler` over the same history size in the same run
//! (`benches/tpe_peer.py`; `pip install optuna==5.0.0`). Both build the two Parzen
//! estimators from the whole history and score 24 candidates.
//!
//!     cargo bench --bench tpe
//!
//! Under `cargo test` it times a few suggestions over 200 trials, without the peer.

mod support;

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use svr_etl::config::Settings;
use svr_etl::search::bounds;
use svr_etl::search::tpe::{suggest, Scored};

const REPEATS: usize = 15;

/// Median seconds of one suggestion over `n` random completed trials.
fn ours(n: usize, repeats: usize) -> f64 {
    // The default ranges, as the peer's search space.
    let b = bounds(&Settings::load(None).unwrap().search().space());
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let history: Vec<Scored> = (0..n)
        .map(|i| Scored {
            order: i as i64,
            x: [0, 1, 2].map(|d| rng.gen_range(b.low[d]..b.high[d])),
            value: rng.gen_range(0.0..0.5),
        })
        .collect();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            let x = suggest(&history, &[], b, &mut rng);
            assert!(x.is_some());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn optuna(sizes: &[usize]) -> Vec<f64> {
    let job = serde_json::json!({"sizes": sizes, "repeats": REPEATS});
    support::python_peer("benches/tpe_peer.py", &job, "pip install optuna==5.0.0")
}

fn main() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "smoke: one suggestion over 200 trials {:.5} s",
            ours(200, 3)
        );
        return;
    }
    let sizes = [100, 1_000, 10_000];
    let peer = optuna(&sizes);
    println!("one TPE suggestion, median of {REPEATS}, one thread");
    println!(
        "{:>8}  {:>12}  {:>12}  ratio",
        "history", "Optuna", "svr-etl"
    );
    for (n, theirs) in sizes.iter().zip(peer) {
        let mine = ours(*n, REPEATS);
        println!(
            "{n:>8}  {:>9.2} ms  {:>9.3} ms  {:.3}x",
            theirs * 1e3,
            mine * 1e3,
            mine / theirs
        );
    }
}
