//! What a compaction did, as the command prints it and the daemon logs it.

use std::fmt;

use chrono::NaiveDate;

/// What compacting one table of one day did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOutcome {
    /// Parts there were before.
    pub parts_before: usize,
    /// The locations of the parts written now.
    pub written: Vec<String>,
    /// Trials the new parts hold.
    pub trials: usize,
    /// Rows the new parts hold.
    pub rows: usize,
    /// Whether another writer took a part key first (then it compacted those trials).
    pub raced: bool,
}

/// What compacting one day did.
#[derive(Debug, Clone, PartialEq)]
pub struct DayOutcome {
    pub day: NaiveDate,
    pub hyper: TableOutcome,
    pub fact: TableOutcome,
}

impl DayOutcome {
    /// Whether nothing was written: every trial of the day was compacted already.
    pub fn nothing_new(&self) -> bool {
        self.hyper.written.is_empty() && self.fact.written.is_empty()
    }
}

impl fmt::Display for DayOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, x) = (&self.hyper, &self.fact);
        if self.nothing_new() && h.parts_before + x.parts_before == 0 {
            return write!(f, "{}: no trials to compact", self.day);
        }
        if self.nothing_new() {
            let by = if h.raced || x.raced {
                "by another writer just now"
            } else {
                "before"
            };
            return write!(
                f,
                "{}: already compacted {by} ({} hyper and {} fact parts), nothing new",
                self.day, h.parts_before, x.parts_before
            );
        }
        let late = if h.parts_before + x.parts_before > 0 {
            " (late objects, as further parts)"
        } else {
            ""
        };
        write!(
            f,
            "{}: compacted {} trials{late}: {} hyper rows in {}, {} predictions in {}",
            self.day,
            h.trials.max(x.trials),
            h.rows,
            list(&h.written),
            x.rows,
            list(&x.written),
        )
    }
}

fn list(locations: &[String]) -> String {
    if locations.is_empty() {
        "no new part".to_string()
    } else {
        locations.join(", ")
    }
}
