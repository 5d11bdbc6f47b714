//! When each host ran its trials: one row per host, one mark per trial from its start
//! (its record's time less its fit and folds) to its end, blue when ok, red when
//! failed, as Optuna's timeline plot shows trials.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use plotters::prelude::*;

use super::charts::{Chart, BLUE};
use crate::model::records::{HyperRecord, TrialStatus};

const RED: RGBColor = RGBColor(204, 0, 0);

/// A trial's span in `unit_ms` after `origin`.
fn span(r: &HyperRecord, origin: DateTime<Utc>, unit_ms: f64) -> Option<(f64, f64)> {
    let end = DateTime::parse_from_rfc3339(&r.created_at)
        .ok()?
        .with_timezone(&Utc);
    let end_ms = (end - origin).num_milliseconds() as f64;
    let busy_ms = r.fit_ms.unwrap_or(0.0) + r.cv_ms.unwrap_or(0.0);
    Some(((end_ms - busy_ms) / unit_ms, end_ms / unit_ms))
}

/// The unit a time axis of `ms` reads best in, and its length in milliseconds.
fn unit(ms: f64) -> (&'static str, f64) {
    [("days", 8.64e7), ("hours", 3.6e6), ("minutes", 6e4)]
        .into_iter()
        .find(|(_, len)| ms >= 2.0 * len)
        .unwrap_or(("seconds", 1e3))
}

pub(super) fn timeline_chart(trials: &[HyperRecord]) -> Chart {
    let times: Vec<DateTime<Utc>> = trials
        .iter()
        .filter_map(|r| DateTime::parse_from_rfc3339(&r.created_at).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    let origin = times.iter().min().copied().unwrap_or_default();
    let last = times.iter().max().copied().unwrap_or_default();
    let (unit_name, unit_ms) = unit((last - origin).num_milliseconds() as f64);
    let length = ((last - origin).num_milliseconds() as f64 / unit_ms).max(1.0);
    let rows: BTreeMap<&str, usize> = trials
        .iter()
        .map(|r| r.host.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, h)| (h, i))
        .collect();
    // A trial of a few milliseconds stays visible on a chart of days.
    let min_width = length / 600.0;
    let height = 60 + 28 * rows.len().max(1) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, height.max(140))).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Trials per host from {} (blue ok, red failed)",
                    origin.format("%Y-%m-%d %H:%M UTC")
                ),
                ("sans-serif", 14),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(110)
            .build_cartesian_2d(
                -min_width..length + min_width,
                -0.5..rows.len() as f64 - 0.5,
            )
            .map_err(|e| e.to_string())?;
        let names: Vec<&str> = rows.keys().copied().collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(unit_name)
            .y_labels(rows.len().max(1))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).copied().unwrap_or("").to_string()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(trials.iter().filter_map(|r| {
                let (start, end) = span(r, origin, unit_ms)?;
                let row = rows[r.host.as_str()] as f64;
                let color = if r.status == TrialStatus::Ok {
                    BLUE
                } else {
                    RED
                };
                let end = end.max(start + min_width);
                Some(Rectangle::new(
                    [(start, row - 0.3), (end, row + 0.3)],
                    color.mix(0.7).filled(),
                ))
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_reads_in_a_unit_that_fits_the_study() {
        assert_eq!(unit(900.0).0, "seconds");
        assert_eq!(unit(5.0 * 6e4).0, "minutes");
        assert_eq!(unit(3.0 * 3.6e6).0, "hours");
        assert_eq!(unit(30.0 * 8.64e7).0, "days");
    }
}
