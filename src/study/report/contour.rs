//! Filled contours of the score over each pair of log parameters, as Optuna's
//! contour plot shows them: the score between trials interpolated by inverse squared
//! distance (each axis scaled to [0, 1]) on a grid, drawn in 8 bands, the trials on top.

use plotters::prelude::*;

use super::charts::{heat, r2_range, Chart};
use super::importance::{score, Param, PARAMS};
use crate::model::records::HyperRecord;

const GRID: usize = 24;
const BANDS: f64 = 8.0;

pub(super) const PAIRS: [(Param, Param); 3] = [
    (PARAMS[0], PARAMS[1]),
    (PARAMS[0], PARAMS[2]),
    (PARAMS[1], PARAMS[2]),
];

/// `[min, max]` of `values`, widened when they are all one value.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if min < max {
        (min, max)
    } else {
        (min - 1.0, min + 1.0)
    }
}

/// The score at `(x, y)` from the trials' `points` (scaled coordinates and score).
fn interpolate(points: &[(f64, f64, f64)], x: f64, y: f64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for &(px, py, s) in points {
        let d2 = (px - x).powi(2) + (py - y).powi(2);
        if d2 < 1e-12 {
            return s;
        }
        num += s / d2;
        den += 1.0 / d2;
    }
    num / den
}

pub(super) fn contour_chart(trials: &[HyperRecord], (a, b): (Param, Param)) -> Chart {
    let by_cv = crate::study::cross_validated(trials);
    let scored: Vec<(f64, f64, f64)> = trials
        .iter()
        .filter_map(|r| Some((a.1(r).log10(), b.1(r).log10(), score(r, by_cv)?)))
        .collect();
    let (low, high) = r2_range(scored.iter().map(|p| p.2));
    let (x0, x1) = span(scored.iter().map(|p| p.0));
    let (y0, y1) = span(scored.iter().map(|p| p.1));
    let unit =
        |(x, y, s): (f64, f64, f64)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0), s.max(low));
    let points: Vec<(f64, f64, f64)> = scored.iter().copied().map(unit).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (320, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{} x {}", a.0, b.0), ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(format!("log10 {}", a.0))
            .y_desc(format!("log10 {}", b.0))
            .x_labels(5)
            .y_labels(5)
            .draw()
            .map_err(|e| e.to_string())?;
        if !points.is_empty() {
            let cell = |i: usize, lo: f64, hi: f64| lo + (hi - lo) * i as f64 / GRID as f64;
            let cells = (0..GRID).flat_map(|i| (0..GRID).map(move |j| (i, j)));
            chart
                .draw_series(cells.map(|(i, j)| {
                    let (u, v) = (
                        (i as f64 + 0.5) / GRID as f64,
                        (j as f64 + 0.5) / GRID as f64,
                    );
                    let t = (interpolate(&points, u, v) - low) / (high - low);
                    let band = (t * BANDS).floor().min(BANDS - 1.0) / (BANDS - 1.0);
                    let corners = [
                        (cell(i, x0, x1), cell(j, y0, y1)),
                        (cell(i + 1, x0, x1), cell(j + 1, y0, y1)),
                    ];
                    Rectangle::new(corners, heat(band).mix(0.85).filled())
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(
                scored
                    .iter()
                    .map(|&(x, y, _)| Circle::new((x, y), 2, BLACK.filled())),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_passes_through_the_trials_and_stays_between_them() {
        let points = [(0.0, 0.0, 0.1), (1.0, 1.0, 0.5)];
        assert_eq!(interpolate(&points, 0.0, 0.0), 0.1);
        assert_eq!(interpolate(&points, 1.0, 1.0), 0.5);
        let mid = interpolate(&points, 0.5, 0.5);
        assert!((mid - 0.3).abs() < 1e-12, "{mid}");
    }
}
