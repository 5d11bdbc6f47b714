//! The report as one HTML page: the summary, the top 10 and the charts, in that order.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::charts::{landscape_chart, parameter_chart, progress_chart};
use super::contour::{contour_chart, PAIRS};
use super::importance::{importances, MIN_TRIALS};
use super::timeline::timeline_chart;
use super::ReportData;
use crate::model::records::TrialStatus;
use crate::study::leaderboard::Entry;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The y range shown for R^2: down to the worst score, but no lower than one below
/// the best, so that a few hopeless trials do not flatten the chart.
fn summary(data: &ReportData) -> String {
    let ok = data
        .trials
        .iter()
        .filter(|r| r.status == TrialStatus::Ok)
        .count();
    let failed = data.trials.len() - ok;
    let hosts: BTreeSet<&str> = data.trials.iter().map(|r| r.host.as_str()).collect();
    let first = data.trials.first().map_or("", |r| r.created_at.as_str());
    let last = data.trials.last().map_or("", |r| r.created_at.as_str());
    let samplers: BTreeSet<String> = data
        .trials
        .iter()
        .map(|r| {
            r.sampler
                .map_or("given".into(), |s| format!("{s:?}").to_lowercase())
        })
        .collect();
    format!(
        "<p>Study <code>{}</code>: <b>{ok}</b> ok and <b>{failed}</b> failed trials from {} host{} ({}), {} to {}; sampler {}.</p>",
        escape(&data.study),
        hosts.len(),
        if hosts.len() == 1 { "" } else { "s" },
        escape(&hosts.into_iter().collect::<Vec<_>>().join(", ")),
        escape(first),
        escape(last),
        escape(&samplers.into_iter().collect::<Vec<_>>().join(", ")),
    )
}

fn top_table(top: &[Entry]) -> String {
    let mut out = String::from(
        "<table><tr><th>rank</th><th>hyper_id</th><th>gamma</th><th>C</th><th>epsilon</th><th>cv_r2</th><th>test R^2</th></tr>",
    );
    for (i, e) in top.iter().take(10).enumerate() {
        let cv = e.cv_r2.map_or("-".to_string(), |v| format!("{v:.6}"));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.6}</td><td>{:.6}</td><td>{:.6}</td><td>{cv}</td><td>{:.6}</td></tr>",
            i + 1,
            e.hyper_id,
            e.gamma,
            e.c,
            e.epsilon,
            e.test_r2
        );
    }
    out.push_str("</table>");
    out
}

/// The whole page.
pub fn render(data: &ReportData) -> Result<String, String> {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>svr-etl report</title><style>body{font-family:sans-serif;margin:24px;max-width:1000px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.row{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>\n<h1>svr-etl report</h1>\n",
    );
    html.push_str(&summary(data));
    if let Some(best) = data.top.first() {
        let _ = write!(
            html,
            "<p>Best trial: <b>{}</b> (gamma {}, C {}, epsilon {}): cv_r2 {}, test R^2 {:.6}.</p>",
            best.hyper_id,
            best.gamma,
            best.c,
            best.epsilon,
            best.cv_r2.map_or("-".to_string(), |v| format!("{v:.6}")),
            best.test_r2
        );
    }
    html.push_str("<h2>Top 10</h2>\n");
    html.push_str(&top_table(&data.top));
    html.push_str("\n<h2>Search</h2>\n");
    html.push_str(&progress_chart(&data.trials)?);
    html.push_str(&landscape_chart(&data.trials)?);
    html.push_str("\n<h2>Each parameter (blue cv_r2, orange test R^2)</h2>\n<div class=\"row\">");
    html.push_str(&parameter_chart(&data.trials, "gamma", |r| r.gamma)?);
    html.push_str(&parameter_chart(&data.trials, "C", |r| r.c)?);
    html.push_str(&parameter_chart(&data.trials, "epsilon", |r| r.epsilon)?);
    html.push_str("</div>\n");
    html.push_str(&importance_section(data));
    html.push_str("<h2>The score over each pair of parameters</h2>\n<div class=\"row\">");
    for pair in PAIRS {
        html.push_str(&contour_chart(&data.trials, pair)?);
    }
    html.push_str("</div>\n<h2>Timeline</h2>\n");
    html.push_str(&timeline_chart(&data.trials)?);
    html.push_str("\n</body></html>\n");
    Ok(html)
}

/// Each parameter's importance as a bar of its share, with how it was computed.
fn importance_section(data: &ReportData) -> String {
    let mut html = String::from("<h2>Parameter importance</h2>\n");
    let found = importances(&data.trials);
    if found.is_empty() {
        let _ = writeln!(html, "<p>Needs at least {MIN_TRIALS} scored trials.</p>");
        return html;
    }
    html.push_str("<table><tr><th>parameter</th><th>explains</th><th></th></tr>");
    for i in &found {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{:.1} %</td><td style=\"text-align:left\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"12\"><rect width=\"{:.0}\" height=\"12\" fill=\"#3465a4\"/></svg></td></tr>",
            i.name,
            i.explained * 100.0,
            i.explained * 200.0
        );
    }
    html.push_str(
        "</table>\n<p>The share of the variance of the score's ranks (cv_r2, or test R^2 without folds) that lies between 10 equal-count bins of the parameter (5 or more trials a bin), adjusted for what bins of noise would show: each parameter's effect alone, as fANOVA's main effects are; interactions are not counted.</p>\n",
    );
    html
}
