//! Trial ids: 63-bit integers, unique across hosts and processes, ordered by time.
//!
//! Layout, high to low: 41 bits of milliseconds since 2025-01-01T00:00Z (good until
//! 2094), then a 22-bit node number drawn at random when the generator is made. Within
//! a process ids strictly increase: when two are made in the same millisecond, the
//! later one takes the next millisecond. Two processes can only collide if they drew
//! the same node number (1 in 4,194,304) *and* stamp the same millisecond; the sinks
//! write create-once, so even then nothing is overwritten.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Milliseconds from the Unix epoch to 2025-01-01T00:00:00Z.
const EPOCH_MS: u64 = 1_735_689_600_000;
const NODE_BITS: u32 = 22;
const TIME_BITS: u32 = 41;

/// One trial's id; a JSON number and an Athena `bigint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HyperId(i64);

impl HyperId {
    pub fn get(self) -> i64 {
        self.0
    }

    /// The id with this number, as read back from a key or a record.
    pub fn from_raw(raw: i64) -> HyperId {
        HyperId(raw)
    }

    /// The millisecond the id was stamped with.
    pub fn timestamp_ms(self) -> u64 {
        (self.0 as u64 >> NODE_BITS) + EPOCH_MS
    }
}

impl fmt::Display for HyperId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Makes ids; share one per process.
#[derive(Debug)]
pub struct HyperIdGenerator {
    node: u64,
    /// Milliseconds since [`EPOCH_MS`] of the last id handed out.
    last: AtomicU64,
}

impl HyperIdGenerator {
    pub fn new() -> HyperIdGenerator {
        HyperIdGenerator::with_node(rand::thread_rng().gen_range(0..1 << NODE_BITS))
    }

    pub fn with_node(node: u64) -> HyperIdGenerator {
        assert!(node < 1 << NODE_BITS, "node number has {NODE_BITS} bits");
        HyperIdGenerator {
            node,
            last: AtomicU64::new(0),
        }
    }

    /// Whether ids can be stamped at `now`: from 2025-01-01T00:00Z for 2^41 ms (until
    /// 2094). A clock outside that is refused at start rather than failing each trial.
    pub fn check_clock(now: DateTime<Utc>) -> Result<(), String> {
        let ms = now.timestamp_millis();
        let first = EPOCH_MS as i64;
        let last = first + (1i64 << TIME_BITS) - 1;
        if (first..=last).contains(&ms) {
            return Ok(());
        }
        let bound = |ms: i64| {
            DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
        };
        Err(format!(
            "the clock reads {now}, outside the time hyper_ids can stamp ({} to {}); set the system clock",
            bound(first),
            bound(last)
        ))
    }

    /// The next id for a trial created at `now`.
    pub fn next(&self, now: DateTime<Utc>) -> HyperId {
        let now_ms = u64::try_from(now.timestamp_millis())
            .unwrap_or(0)
            .saturating_sub(EPOCH_MS);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let stamp = now_ms.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, stamp, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    assert!(stamp < 1 << TIME_BITS, "hyper_id time bits exhausted");
                    return HyperId(((stamp << NODE_BITS) | self.node) as i64);
                }
                Err(actual) => prev = actual,
            }
        }
    }
}

impl Default for HyperIdGenerator {
    fn default() -> Self {
        HyperIdGenerator::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_carry_their_time_and_increase() {
        let g = HyperIdGenerator::with_node(5);
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let a = g.next(t);
        let b = g.next(t);
        assert!(b > a);
        assert_eq!(a.timestamp_ms(), t.timestamp_millis() as u64);
        assert_eq!(b.timestamp_ms(), t.timestamp_millis() as u64 + 1);
        assert!(a.get() > 0);
    }

    #[test]
    fn clocks_outside_the_id_range_are_refused() {
        assert!(HyperIdGenerator::check_clock(Utc::now()).is_ok());
        for year in [1969, 2024, 2095, 2300] {
            let t = Utc.with_ymd_and_hms(year, 6, 1, 0, 0, 0).unwrap();
            let err = HyperIdGenerator::check_clock(t).unwrap_err();
            assert!(err.contains("set the system clock"), "{err}");
        }
    }

    #[test]
    fn later_times_give_larger_ids_across_nodes() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let early = HyperIdGenerator::with_node((1 << NODE_BITS) - 1).next(t);
        let late = HyperIdGenerator::with_node(0).next(t + chrono::Duration::milliseconds(1));
        assert!(late > early);
    }
}
