//! Verdict words and badges, gate lines, and the numbers of the health views.

use chrono::{DateTime, Utc};

use crate::domain::health::{GateReport, GateResult, Verdict};
use crate::domain::text::escape;

/// The badge for a verdict: symbol and word, so it reads without colour. `None` is a
/// rollout with no report yet.
pub fn verdict_badge(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Pass) => "✔ pass",
        Some(Verdict::Fail) => "✖ FAIL",
        Some(Verdict::Inconclusive) => "? wait",
        None => "· none",
    }
}

/// One gate's verdict as a word (the badge without its symbol): pass, FAIL, wait.
pub fn gate_word(v: Verdict) -> &'static str {
    let badge = verdict_badge(Some(v));
    badge.split_once(' ').map_or(badge, |(_, word)| word)
}

/// A whole report's verdict as a word: an inconclusive report says so in full, since
/// "wait" would read as an instruction where it heads a section or a table cell.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Inconclusive => "inconclusive",
        _ => gate_word(v),
    }
}

/// The HEALTH cell of `status`: the verdict and, unless all pass, the gates behind it.
pub fn health_cell(report: &GateReport) -> String {
    let names: Vec<&str> = match report.verdict {
        Verdict::Pass => return verdict_word(Verdict::Pass).into(),
        Verdict::Fail => report.failing().map(|g| g.name.as_str()).collect(),
        Verdict::Inconclusive => report.inconclusive().map(|g| g.name.as_str()).collect(),
    };
    escape(&format!(
        "{} {}",
        verdict_word(report.verdict),
        names.join(",")
    ))
    .into_owned()
}

/// The health line of a confirmation dialog: what the operator decides on.
pub fn health_line(report: Option<&GateReport>) -> String {
    match report {
        None => "health: no data (advancing blind)".into(),
        Some(r) if r.verdict == Verdict::Pass => "health: all gates pass".into(),
        Some(r) => escape(&format!(
            "health: {}: {}",
            verdict_word(r.verdict),
            r.summary()
        ))
        .into_owned(),
    }
}

/// One gate as a line of its own: "✔ pass error-rate: canary error rate 0.08 % <= 1.00 %".
pub fn gate_line(g: &GateResult) -> String {
    escape(&format!(
        "{} {}: {}",
        verdict_badge(Some(g.verdict)),
        g.name,
        g.detail
    ))
    .into_owned()
}

/// A gate's detail, with how long a breach has lasted while it is not yet sustained.
pub fn gate_text(g: &GateResult, sample_taken_at: DateTime<Utc>) -> String {
    let text = g
        .breach_progress(sample_taken_at)
        .unwrap_or_else(|| g.detail.clone());
    escape(&text).into_owned()
}

/// An error rate (a fraction) in a table cell: "2.10%", or "-" without one.
pub fn rate_pct(rate: Option<f64>) -> String {
    match rate {
        Some(r) if r.is_finite() => format!("{:.2}%", r * 100.0),
        _ => "-".into(),
    }
}

/// A latency in a table cell: "812ms", or "-" without one.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.0}ms"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate(name: &str, verdict: Verdict, detail: &str) -> GateResult {
        GateResult {
            name: name.into(),
            verdict,
            detail: detail.into(),
            observed: None,
            threshold: None,
            severe: false,
            failing_since: None,
            sustained: false,
            required_for: Duration::from_secs(300),
            leaning: None,
        }
    }

    fn report(verdict: Verdict, gates: Vec<GateResult>) -> GateReport {
        let at = DateTime::UNIX_EPOCH;
        GateReport {
            evaluated_at: at,
            sample_taken_at: at,
            gates,
            verdict,
        }
    }

    #[test]
    fn verdict_words_and_badges() {
        assert_eq!(verdict_badge(Some(Verdict::Pass)), "✔ pass");
        assert_eq!(verdict_badge(Some(Verdict::Fail)), "✖ FAIL");
        assert_eq!(verdict_badge(Some(Verdict::Inconclusive)), "? wait");
        assert_eq!(verdict_badge(None), "· none");
        assert_eq!(gate_word(Verdict::Pass), "pass");
        assert_eq!(gate_word(Verdict::Fail), "FAIL");
        assert_eq!(gate_word(Verdict::Inconclusive), "wait");
        assert_eq!(verdict_word(Verdict::Pass), "pass");
        assert_eq!(verdict_word(Verdict::Fail), "FAIL");
        assert_eq!(verdict_word(Verdict::Inconclusive), "inconclusive");
    }

    #[test]
    fn health_cells_name_the_gates_behind_the_verdict() {
        let pass = report(Verdict::Pass, vec![gate("p99", Verdict::Pass, "ok")]);
        assert_eq!(health_cell(&pass), "pass");
        let fail = report(
            Verdict::Fail,
            vec![
                gate("error-rate", Verdict::Fail, "x"),
                gate("min-requests", Verdict::Inconclusive, "y"),
                gate("p99", Verdict::Fail, "z"),
            ],
        );
        assert_eq!(health_cell(&fail), "FAIL error-rate,p99");
        let wait = report(
            Verdict::Inconclusive,
            vec![gate("min-requests", Verdict::Inconclusive, "y")],
        );
        assert_eq!(health_cell(&wait), "inconclusive min-requests");
    }

    #[test]
    fn dialog_health_lines_keep_the_detail_as_written() {
        assert_eq!(health_line(None), "health: no data (advancing blind)");
        let pass = report(Verdict::Pass, vec![]);
        assert_eq!(health_line(Some(&pass)), "health: all gates pass");
        let fail = report(
            Verdict::Fail,
            vec![gate("error-rate", Verdict::Fail, "HTTP 503 \u{1b}[2J")],
        );
        assert_eq!(health_line(Some(&fail)), r"health: FAIL: HTTP 503 \x1b[2J");
        let wait = report(
            Verdict::Inconclusive,
            vec![gate("min-requests", Verdict::Inconclusive, "14 requests")],
        );
        assert_eq!(
            health_line(Some(&wait)),
            "health: inconclusive: 14 requests"
        );
    }

    #[test]
    fn gate_lines_and_texts_are_escaped() {
        let g = gate("error-rate", Verdict::Pass, "0.08 % <= 1.00 %");
        assert_eq!(gate_line(&g), "✔ pass error-rate: 0.08 % <= 1.00 %");
        let evil = gate("freshness", Verdict::Inconclusive, "source said \u{202e}x");
        assert_eq!(gate_line(&evil), r"? wait freshness: source said \u{202e}x");
        assert_eq!(
            gate_text(&evil, DateTime::UNIX_EPOCH),
            r"source said \u{202e}x"
        );
        let mut breach = gate("error-rate", Verdict::Fail, "2.10 % > 1.00 %");
        breach.failing_since = Some(DateTime::UNIX_EPOCH);
        let later = DateTime::UNIX_EPOCH + chrono::Duration::seconds(180);
        assert_eq!(gate_text(&breach, later), "2.10 % > 1.00 % for 3m of 5m");
        breach.sustained = true;
        assert_eq!(gate_text(&breach, later), "2.10 % > 1.00 %");
    }

    #[test]
    fn table_numbers() {
        assert_eq!(rate_pct(Some(0.021)), "2.10%");
        assert_eq!(rate_pct(Some(0.0)), "0.00%");
        assert_eq!(rate_pct(None), "-");
        assert_eq!(rate_pct(Some(f64::NAN)), "-");
        assert_eq!(ms(Some(812.4)), "812ms");
        assert_eq!(ms(Some(f64::INFINITY)), "-");
        assert_eq!(ms(None), "-");
    }
}
