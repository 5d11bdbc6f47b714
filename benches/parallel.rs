//! Parallel efficiency of trials: 1,024 trials of the exact engine on the embedded data
//! set, spread over 1, 2, 4, ... threads (as many as the machine has), each thread
//! taking the next trial as it finishes one. Efficiency on k threads is
//! T(1) / (k T(k)); peak resident memory is reported after each.
//!
//!     cargo bench --bench parallel [-- --trials N]
//!
//! Under `cargo test` it runs 16 trials on 1 and 2 threads as a smoke test.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use svr_etl::dataset::Dataset;
use svr_etl::model::params::TrialParams;
use svr_etl::trial::trainer::{Engine, Trainer};
use tokio_util::sync::CancellationToken;

/// Seconds to fit every configuration on `threads` threads.
fn run(trainer: &Trainer, configs: &[TrialParams], threads: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let cancel = CancellationToken::new();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(params) = configs.get(i) else { break };
                trainer.fit(params, &Default::default(), &cancel).unwrap();
            });
        }
    });
    start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(if full { 1024 } else { 16 });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let solver = support::solver(Engine::Exact, 2048);
    let trainer = Trainer::new(Arc::new(Dataset::embedded()), solver).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1024);
    let mut draw = |lo: f64, hi: f64| 10f64.powf(rng.gen_range(lo..hi));
    let configs: Vec<TrialParams> = (0..trials)
        .map(|_| TrialParams::new(draw(-2.0, 2.0), draw(-2.0, 2.0), draw(-2.0, 0.0)).unwrap())
        .collect();
    let mut levels: Vec<usize> = std::iter::successors(Some(1), |k| Some(k * 2))
        .take_while(|k| *k <= cores)
        .collect();
    if !full {
        levels.truncate(2);
    }
    println!("{trials} trials of the exact engine, {cores} cores");
    println!("threads  seconds  trials/s  efficiency  peak MiB");
    let mut one = None;
    for k in levels {
        let secs = run(&trainer, &configs, k);
        let base = *one.get_or_insert(secs);
        println!(
            "{k:>7}  {secs:>7.3}  {:>8.1}  {:>9.1} %  {:>8.1}",
            trials as f64 / secs,
            100.0 * base / (k as f64 * secs),
            support::peak_rss_mib()
        );
    }
}
