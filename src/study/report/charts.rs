//! The report's charts, each an inline SVG drawn with plotters: the best score so far
//! over trials, test R^2 over log gamma x log C, and each parameter against the scores.

use plotters::prelude::*;

use crate::model::records::{HyperRecord, TrialStatus};

pub(super) const BLUE: RGBColor = RGBColor(52, 101, 164);
pub(super) const ORANGE: RGBColor = RGBColor(230, 126, 34);

pub(super) fn r2_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    if v.is_empty() {
        return (0.0, 1.0);
    }
    let low = min.max(max - 1.0);
    let pad = ((max - low) * 0.05).max(1e-3);
    (low - pad, max + pad)
}

/// The running best of `values`, skipping gaps.
fn best_so_far(values: &[Option<f64>]) -> Vec<(f64, f64)> {
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            best = best.max(v);
        }
        if best.is_finite() {
            out.push(((i + 1) as f64, best));
        }
    }
    out
}

pub(super) type Chart = Result<String, String>;

pub(super) fn progress_chart(trials: &[HyperRecord]) -> Chart {
    let ok = |r: &HyperRecord| r.status == TrialStatus::Ok;
    let cv: Vec<Option<f64>> = trials.iter().map(|r| r.cv_r2.filter(|_| ok(r))).collect();
    let test: Vec<Option<f64>> = trials.iter().map(|r| r.test_r2.filter(|_| ok(r))).collect();
    let (cv_best, test_best) = (best_so_far(&cv), best_so_far(&test));
    let (low, high) = r2_range(cv_best.iter().chain(&test_best).map(|p| p.1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Best score so far", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(1f64..(trials.len().max(2) as f64), low..high)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("trial")
            .y_desc("R^2")
            .draw()
            .map_err(|e| e.to_string())?;
        for (points, color, name) in [(&cv_best, BLUE, "cv_r2"), (&test_best, ORANGE, "test R^2")] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A colour from red (low) to green (high) for `t` in [0, 1].
pub(super) fn heat(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (r, g, b) = HSLColor(t * 0.33, 0.75, 0.45).to_rgba().rgb();
    RGBColor(r, g, b)
}

pub(super) fn landscape_chart(trials: &[HyperRecord]) -> Chart {
    let ok: Vec<&HyperRecord> = trials
        .iter()
        .filter(|r| r.status == TrialStatus::Ok && r.test_r2.is_some())
        .collect();
    let (low, high) = r2_range(ok.iter().filter_map(|r| r.test_r2));
    let lg = |v: f64| v.log10();
    let span = |f: &dyn Fn(&HyperRecord) -> f64| {
        let v: Vec<f64> = trials.iter().map(f).collect();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if min < max {
            (min - 0.1, max + 0.1)
        } else {
            (min - 1.0, min + 1.0)
        }
    };
    let (gx, gy) = span(&|r| lg(r.gamma));
    let (cx, cy) = span(&|r| lg(r.c));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Test R^2 over log10 gamma x log10 C (red low, green high)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(gx..gy, cx..cy)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("log10 gamma")
            .y_desc("log10 C")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(ok.iter().map(|r| {
                let t = (r.test_r2.unwrap_or(low) - low) / (high - low);
                Circle::new((lg(r.gamma), lg(r.c)), 4, heat(t).filled())
            }))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

pub(super) fn parameter_chart(
    trials: &[HyperRecord],
    name: &str,
    value: fn(&HyperRecord) -> f64,
) -> Chart {
    let ok: Vec<&HyperRecord> = trials
        .iter()
        .filter(|r| r.status == TrialStatus::Ok)
        .collect();
    let xs: Vec<f64> = trials.iter().map(|r| value(r).log10()).collect();
    let x_min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let x_max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min < x_max {
        (x_min - 0.1, x_max + 0.1)
    } else {
        (x_min - 1.0, x_min + 1.0)
    };
    let scores = ok.iter().flat_map(|r| [r.cv_r2, r.test_r2]).flatten();
    let (low, high) = r2_range(scores);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (320, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{name} against the scores"), ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(x_min..x_max, low..high)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(format!("log10 {name}"))
            .x_labels(5)
            .y_labels(5)
            .draw()
            .map_err(|e| e.to_string())?;
        let inside = |v: f64| v >= low && v <= high;
        for (color, score) in [
            (
                ORANGE,
                (|r: &HyperRecord| r.test_r2) as fn(&HyperRecord) -> Option<f64>,
            ),
            (BLUE, |r: &HyperRecord| r.cv_r2),
        ] {
            chart
                .draw_series(ok.iter().filter_map(|r| {
                    let y = score(r).filter(|v| inside(*v))?;
                    Some(Circle::new((value(r).log10(), y), 2, color.filled()))
                }))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_best_skips_gaps() {
        let b = best_so_far(&[None, Some(0.1), None, Some(0.05), Some(0.3)]);
        assert_eq!(b, vec![(2.0, 0.1), (3.0, 0.1), (4.0, 0.1), (5.0, 0.3)]);
    }

    #[test]
    fn hopeless_scores_do_not_flatten_the_chart() {
        let (low, high) = r2_range([0.5, 0.4, -30.0].into_iter());
        assert!(low > -0.6 && low < -0.5, "{low}");
        assert!(high > 0.5, "{high}");
    }
}
