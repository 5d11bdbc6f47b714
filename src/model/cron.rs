//! Cron expressions: checked and normalised at the config's serde boundary, and read
//! in a time zone. A five-field expression gets second 0, since tokio-cron-scheduler
//! requires the seconds field. Ticking on them is the daemon's business.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use serde::{Deserialize, Serialize};

/// A cron expression that parses, in seconds-first six-field form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CronExpr {
    expr: String,
    cron: Cron,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}

impl TryFrom<String> for CronExpr {
    type Error = String;
    fn try_from(expr: String) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        let expr = match fields {
            5 => format!("0 {}", expr.trim()),
            6 => expr.split_whitespace().collect::<Vec<_>>().join(" "),
            _ => {
                return Err(format!(
                    "{expr:?} has {fields} fields; expected 6 (sec min hour dom month dow) or 5"
                ))
            }
        };
        // The same parser settings tokio-cron-scheduler uses, so what passes here is
        // accepted there.
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&expr)
            .map_err(|e| format!("{expr:?}: {e}"))?;
        Ok(CronExpr { expr, cron })
    }
}

impl From<CronExpr> for String {
    fn from(c: CronExpr) -> String {
        c.expr
    }
}

impl CronExpr {
    /// The six-field expression.
    pub fn as_str(&self) -> &str {
        &self.expr
    }
}

/// A cron expression read in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSchedule {
    cron: CronExpr,
    tz: Tz,
}

impl CronSchedule {
    pub fn new(cron: CronExpr, tz: Tz) -> CronSchedule {
        CronSchedule { cron, tz }
    }

    /// The six-field expression.
    pub fn expr(&self) -> &str {
        self.cron.as_str()
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after`, if the expression ever fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .cron
            .find_next_occurrence(&after.with_timezone(&self.tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr(), self.tz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn schedule(expr: &str, tz: &str) -> Result<CronSchedule, String> {
        Ok(CronSchedule::new(
            CronExpr::try_from(expr.to_string())?,
            tz.parse().map_err(|e| format!("{e}"))?,
        ))
    }

    #[test]
    fn five_fields_get_second_zero() {
        let s = schedule("*/5 * * * *", "UTC").unwrap();
        assert_eq!(s.expr(), "0 */5 * * * *");
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 1, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap())
        );
    }

    #[test]
    fn every_second_is_allowed() {
        let s = schedule("* * * * * *", "UTC").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(s.next_after(t), Some(t + chrono::Duration::seconds(1)));
    }

    #[test]
    fn time_zone_shifts_ticks() {
        let s = schedule("0 0 9 * * *", "Europe/Paris").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap())
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        assert!(CronExpr::try_from("61 * * * * *".to_string()).is_err());
        assert!(CronExpr::try_from("* *".to_string()).is_err());
    }
}
