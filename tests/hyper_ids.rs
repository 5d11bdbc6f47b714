//! hyper_id uniqueness under concurrency and across generators.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use svr_etl::model::id::HyperIdGenerator;

#[test]
fn no_duplicates_among_100k_ids_from_8_threads() {
    let ids = Arc::new(HyperIdGenerator::new());
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let ids = ids.clone();
            std::thread::spawn(move || {
                (0..12_500)
                    .map(|_| ids.next(Utc::now()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 100_000);
    assert_eq!(distinct.len(), 100_000);
}

#[test]
fn two_generators_in_the_same_millisecond_do_not_collide() {
    // Two daemons (two generators) stamping the same instants.
    let now = Utc::now();
    let a = HyperIdGenerator::new();
    let b = HyperIdGenerator::new();
    let mut seen = HashSet::new();
    for _ in 0..10_000 {
        assert!(seen.insert(a.next(now)));
        assert!(seen.insert(b.next(now)));
    }
}
