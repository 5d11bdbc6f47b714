//! Where the local sink runs a write: on the task that asks for it while this sink's
//! writes have been quick, on a blocking thread once one has not been.
//!
//! Handing a write to a blocking thread wakes that thread and then the task again. On
//! a machine whose cores are all fitting, each wake-up preempts a fit, on another core
//! through an interrupt: with the sink on a memory file system, four such hand-offs a
//! trial cost a daemon on 2 cores more CPU time than the writes themselves. A write
//! that waits on a disk (a sync on a network volume takes milliseconds) would hold a
//! runtime worker as long, so every write is timed and a slow one sends the next ones
//! to blocking threads. A sink's first writes run on the asking task: handing off
//! those of the first trials in flight until one was timed started four threads that
//! stayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Writes of a sink whose recent writes took less than this run on the asking task.
pub(super) const QUICK: Duration = Duration::from_micros(500);

/// How long this sink's recent writes took: each write moves the figure an eighth of
/// the way to its own time. A 50 ms write hands off the next ones at once, and writes
/// of 60 µs then take about 20 to bring the figure back under [`QUICK`]; on a volume
/// whose syncs take 2 ms, the fourth write is handed off. The first write of a day
/// creates its folders and took up to 0.66 ms on tmpfs; it does not hand off the rest.
/// An object's size is not known before it is written, so a large one (a compacted
/// day's part, encoded beforehand) runs here when the writes before it were quick, and
/// hands off the next ones if it was not.
#[derive(Debug)]
pub(super) struct WriteTimes {
    recent_ns: AtomicU64,
}

impl WriteTimes {
    pub(super) fn new() -> WriteTimes {
        WriteTimes {
            recent_ns: AtomicU64::new(0),
        }
    }

    /// Whether the next write may run on the task that asks for it.
    pub(super) fn quick(&self) -> bool {
        self.recent_ns.load(Ordering::Relaxed) < QUICK.as_nanos() as u64
    }

    pub(super) fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let next = |old: u64| Some(old - old / 8 + ns / 8);
        let _ = self
            .recent_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MICROS: fn(u64) -> Duration = Duration::from_micros;

    /// How many writes of `took` it takes for `times` to allow writes here again.
    fn writes_until_quick(times: &WriteTimes, took: Duration) -> usize {
        (1..1000)
            .find(|_| {
                times.record(took);
                times.quick()
            })
            .expect("quick writes never brought the figure down")
    }

    #[test]
    fn a_slow_write_hands_off_the_next_ones_until_quick_ones_bring_the_figure_down() {
        let times = WriteTimes::new();
        assert!(
            times.quick(),
            "the first writes run where they are asked for"
        );
        times.record(MICROS(660));
        assert!(times.quick(), "one write a little slow hands off nothing");
        times.record(Duration::from_millis(50));
        assert!(!times.quick(), "a stall hands off the next write at once");
        let n = writes_until_quick(&times, MICROS(60));
        assert!((15..=25).contains(&n), "{n}");
    }

    #[test]
    fn a_volume_whose_writes_are_all_slow_gets_them_handed_off_from_the_fourth() {
        let times = WriteTimes::new();
        let here: Vec<bool> = (0..5)
            .map(|_| {
                let quick = times.quick();
                times.record(Duration::from_millis(2));
                quick
            })
            .collect();
        assert_eq!(here, [true, true, true, false, false]);
    }
}
