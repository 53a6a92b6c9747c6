//! The report as a picture: three charts on one time axis (the percentage as a step line
//! over named stage bands, then stable and canary error rate, then p99, with the gate
//! thresholds dashed), every audit event as a marker line labelled with its kind and actor,
//! and the summary below. SVG or PNG, by the file's extension.
//!
//! Text is laid out with DejaVu Sans, bundled (assets/fonts, with its licence) and
//! registered with plotters, so a PNG renders on a host without any system font.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use super::{MetricPoint, Report, SidePoint, marker_label};
use crate::present::{MarkKind, escape};

/// Each series has its own colour, named in the legend (tests find the series by it).
pub const PERCENT_COLOR: RGBColor = RGBColor(20, 20, 20);
pub const STABLE_ERROR_COLOR: RGBColor = RGBColor(31, 119, 180);
pub const CANARY_ERROR_COLOR: RGBColor = RGBColor(214, 39, 40);
pub const STABLE_P99_COLOR: RGBColor = RGBColor(44, 160, 44);
pub const CANARY_P99_COLOR: RGBColor = RGBColor(255, 127, 14);
pub const CANARY_SHARE_COLOR: RGBColor = RGBColor(148, 103, 189);
const THRESHOLD_COLOR: RGBColor = RGBColor(110, 110, 110);
const BAND_COLORS: [RGBColor; 2] = [RGBColor(238, 242, 248), RGBColor(250, 250, 250)];
const ROLLED_BACK_BAND: RGBColor = RGBColor(252, 228, 228);
const LIGHT_LINE: RGBColor = RGBColor(242, 242, 242);
const GAP_COLOR: RGBColor = RGBColor(225, 225, 225);

pub const DEFAULT_WIDTH: u32 = 1600;
pub const DEFAULT_HEIGHT: u32 = 1100;
/// Smaller pictures cannot hold the charts and a readable summary.
pub const MIN_WIDTH: u32 = 640;
pub const MIN_HEIGHT: u32 = 480;
/// Larger ones are a mistake (a PNG this big is over 100 MB of pixels).
pub const MAX_SIDE: u32 = 8000;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format a file name asks for.
    pub fn of(path: &Path) -> Result<Format, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(format!(
                "cannot tell the picture format of {}: the file name must end in .svg or .png",
                escape(&path.display().to_string())
            )),
        }
    }
}

/// Checks a picture size asked for.
pub fn check_size(width: u32, height: u32) -> Result<(), String> {
    if !(MIN_WIDTH..=MAX_SIDE).contains(&width) || !(MIN_HEIGHT..=MAX_SIDE).contains(&height) {
        return Err(format!(
            "a report picture is {MIN_WIDTH}..{MAX_SIDE} pixels wide and {MIN_HEIGHT}..{MAX_SIDE} high (asked {width}x{height})"
        ));
    }
    Ok(())
}

fn register() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| "the bundled font could not be read".to_string())
    })
    .clone()
}

/// The report as SVG text.
pub fn svg(report: &Report, width: u32, height: u32) -> Result<String, String> {
    register()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(report, &root).map_err(|e| format!("drawing the report: {e}"))?;
        root.present()
            .map_err(|e| format!("drawing the report: {e}"))?;
    }
    Ok(out)
}

/// The report as PNG bytes.
pub fn png(report: &Report, width: u32, height: u32) -> Result<Vec<u8>, String> {
    register()?;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(report, &root).map_err(|e| format!("drawing the report: {e}"))?;
        root.present()
            .map_err(|e| format!("drawing the report: {e}"))?;
    }
    let mut bytes = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(::png::ColorType::Rgb);
    encoder.set_depth(::png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| format!("encoding the PNG: {e}"))?;
    Ok(bytes)
}

/// Renders the report into `path` (format by its extension). Written to a temporary file
/// beside it and renamed, so a failure never leaves half a picture under the name.
pub fn write(report: &Report, path: &Path, width: u32, height: u32) -> Result<(), String> {
    let bytes = match Format::of(path)? {
        Format::Svg => svg(report, width, height)?.into_bytes(),
        Format::Png => png(report, width, height)?,
    };
    let shown = escape(&path.display().to_string()).into_owned();
    let name = path
        .file_name()
        .ok_or_else(|| format!("{shown} is not a file name"))?;
    let mut partial = name.to_os_string();
    partial.push(format!(".{}.partial", std::process::id()));
    let partial = path.with_file_name(partial);
    std::fs::write(&partial, &bytes).map_err(|e| format!("cannot write {shown}: {e}"))?;
    std::fs::rename(&partial, path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        format!("cannot write {shown}: {e}")
    })
}

type Area<'a, DB> = DrawingArea<DB, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

fn secs(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

fn draw<DB: DrawingBackend>(report: &Report, root: &Area<'_, DB>) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (w, h) = root.dim_in_pixel();
    let title = format!(
        "{} {}: {}",
        escape(&report.rollout.id),
        escape(&report.rollout.version),
        report.outcome()
    );
    root.draw_text(&title, &font(20.0), (16, 10))?;
    let body = root.margin(40, 8, 8, 8);
    let charts_height = (f64::from(h) * 0.58) as u32;
    let (charts, summary) = body.split_vertically(charts_height);
    let panels = charts.split_evenly((3, 1));
    let x_range = secs(report.from)..secs(report.to);
    let long = report.long();
    let x_label = move |x: &f64| {
        DateTime::from_timestamp_millis((*x * 1000.0) as i64)
            .map_or_else(String::new, |t| super::when(t, long))
    };
    percent_panel(report, &panels[0], x_range.clone(), &x_label)?;
    error_panel(report, &panels[1], x_range.clone(), &x_label)?;
    p99_panel(report, &panels[2], x_range, &x_label)?;
    summary_block(report, &summary, w)?;
    Ok(())
}

/// Pixels left of each plot for its value labels.
const Y_LABELS: u32 = 70;

/// Time labels at most a minute apart (they are written to the minute).
fn x_labels(report: &Report) -> usize {
    ((report.to - report.from).num_minutes().max(1) as usize + 1).min(10)
}

/// A chart on the report's time axis with `y` for its values.
fn chart_on<'a, DB: DrawingBackend>(
    area: &'a Area<'a, DB>,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    caption: &str,
) -> Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    Box<dyn std::error::Error>,
>
where
    DB::ErrorType: 'static,
{
    // The caption sits left, the legend right, on the row above the plot.
    area.draw_text(caption, &font(14.0), (Y_LABELS as i32 + 4, 2))?;
    Ok(ChartBuilder::on(area)
        .margin_top(22)
        .margin_right(24)
        .x_label_area_size(22)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(x, y)?)
}

fn legend<DB: DrawingBackend>(area: &Area<'_, DB>, items: &[(RGBColor, &str)]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let mut x = w as i32 - 12;
    for (color, text) in items.iter().rev() {
        let (tw, _) = area.estimate_text_size(text, &font(13.0))?;
        x -= tw as i32 + 26;
        area.draw(&Rectangle::new([(x, 6), (x + 16, 14)], color.filled()))?;
        area.draw_text(text, &font(13.0), (x + 20, 2))?;
        x -= 10;
    }
    Ok(())
}

fn percent_panel<DB: DrawingBackend>(
    report: &Report,
    area: &Area<'_, DB>,
    x: std::ops::Range<f64>,
    x_label: &dyn Fn(&f64) -> String,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let mut chart = chart_on(area, x.clone(), 0.0..110.0, "rollout percentage and stages")?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(x_labels(report))
        .x_label_formatter(x_label)
        .light_line_style(LIGHT_LINE)
        .y_labels(6)
        .y_label_formatter(&|y| format!("{y:.0} %"))
        .label_style(font(12.0))
        .draw()?;
    let end = |i: usize| {
        report
            .segments
            .get(i + 1)
            .map_or(report.to, |n| n.from)
            .max(report.from)
    };
    // Stage bands, named at their top where there is room.
    for (i, s) in report.segments.iter().enumerate() {
        let (a, b) = (secs(s.from).max(x.start), secs(end(i)).min(x.end));
        if b <= a {
            continue;
        }
        let band = if s.rolled_back {
            ROLLED_BACK_BAND
        } else {
            BAND_COLORS[i % 2]
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(a, 0.0), (b, 110.0)],
            band.filled(),
        )))?;
        let name = crate::present::stage_name(&report.rollout, s.stage, s.percent);
        let from_px = chart.backend_coord(&(a, 0.0)).0;
        let to_px = chart.backend_coord(&(b, 0.0)).0;
        let (tw, _) = area.estimate_text_size(&name, &font(12.0))?;
        if (to_px - from_px) as u32 > tw + 6 {
            chart.draw_series(std::iter::once(Text::new(
                name,
                (a, 108.0),
                font(12.0).pos(Pos::new(HPos::Left, VPos::Top)),
            )))?;
        }
    }
    // The percentage as a step line: flat through each stretch, up or down at its start.
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (i, s) in report.segments.iter().enumerate() {
        let (a, b) = (secs(s.from).max(x.start), secs(end(i)).min(x.end));
        if b < a {
            continue;
        }
        let p = s.percent.as_f64();
        steps.push((a, p));
        steps.push((b, p));
    }
    chart.draw_series(LineSeries::new(steps, PERCENT_COLOR.stroke_width(2)))?;
    // What the canary really served, beside what was set: the exposure over time.
    for run in share_runs(&report.points) {
        line(&mut chart, run, CANARY_SHARE_COLOR)?;
    }
    markers(report, &mut chart, area, 0.0..110.0, true)?;
    legend(
        area,
        &[
            (PERCENT_COLOR, "percentage"),
            (CANARY_SHARE_COLOR, "canary share of requests"),
        ],
    )?;
    Ok(())
}

/// A vertical line at every audit event; on the top chart, its kind and actor too, set
/// on rows in turn so neighbours do not overwrite each other.
fn markers<DB: DrawingBackend>(
    report: &Report,
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    area: &Area<'_, DB>,
    y: std::ops::Range<f64>,
    labelled: bool,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    const ROWS: usize = 4;
    for (i, e) in report.events.iter().enumerate() {
        let kind = MarkKind::of(e.kind);
        let color = mark_color(kind);
        let at = secs(e.at);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(at, y.start), (at, y.end)],
            color.stroke_width(1),
        )))?;
        if labelled {
            // An automatic decision carries its gates' verdict.
            let verdict = super::gate_report(e)
                .map(|g| format!(" · gates {}", crate::present::verdict_word(g.verdict)))
                .unwrap_or_default();
            let label = format!(
                "{} {} · {}{verdict}",
                kind.symbol(),
                marker_label(e),
                escape(&e.actor)
            );
            let (px, py) = local(area, chart.backend_coord(&(at, y.end)));
            let (tw, th) = area.estimate_text_size(&label, &font(11.0))?;
            let row = (i % ROWS) as i32;
            let top = py + 18 + row * (th as i32 + 2);
            // Near the right edge the label ends at its line instead of starting there.
            let (width, _) = area.dim_in_pixel();
            let x = if px + 3 + tw as i32 > width as i32 - 4 {
                px - 3 - tw as i32
            } else {
                px + 3
            };
            area.draw(&Text::new(label, (x, top), font(11.0).color(&color)))?;
        }
    }
    Ok(())
}

/// A backend pixel as a position inside `area` (what `area.draw` takes).
fn local<DB: DrawingBackend>(area: &Area<'_, DB>, (x, y): (i32, i32)) -> (i32, i32) {
    let (bx, by) = area.get_base_pixel();
    (x - bx, y - by)
}

fn mark_color(kind: MarkKind) -> RGBColor {
    match kind {
        MarkKind::Rollback => RGBColor(200, 0, 0),
        MarkKind::Halt => RGBColor(190, 120, 0),
        MarkKind::Advance | MarkKind::Resume => RGBColor(0, 110, 60),
        MarkKind::Operator => RGBColor(90, 90, 160),
    }
}

/// The runs of consecutive points that have a value: each is drawn as its own line, so a
/// gap stays a gap.
fn runs(
    points: &[MetricPoint],
    value: impl Fn(&SidePoint) -> Option<f64>,
    side: usize,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for p in points {
        match p.sides[side].as_ref().and_then(&value) {
            Some(v) if v.is_finite() => current.push((secs(p.at), v)),
            _ => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The canary's share of all requests at each point, in runs where both sides answered.
fn share_runs(points: &[MetricPoint]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for p in points {
        let share = match p.sides {
            [Some(s), Some(c)] if s.requests + c.requests > 0 => {
                Some(100.0 * c.requests as f64 / (s.requests + c.requests) as f64)
            }
            _ => None,
        };
        match share {
            Some(v) => current.push((secs(p.at), v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn top_of(values: impl Iterator<Item = f64>, floor: f64) -> f64 {
    values.filter(|v| v.is_finite()).fold(floor, f64::max) * 1.15
}

/// Greys the gaps of one side on a chart and names them where there is room.
fn gaps<DB: DrawingBackend>(
    report: &Report,
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    area: &Area<'_, DB>,
    y: std::ops::Range<f64>,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let half = report.step.as_secs_f64() / 2.0;
    for (i, g) in report.gaps.iter().enumerate() {
        let (a, b) = (
            (secs(g.from) - half).max(secs(report.from)),
            (secs(g.to) + half).min(secs(report.to)),
        );
        let band = if g.side == 0 { 0.5..1.0 } else { 0.0..0.5 };
        let span = y.end - y.start;
        let (lo, hi) = (y.start + span * band.start, y.start + span * band.end);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(a, lo), (b, hi)],
            GAP_COLOR.mix(0.6).filled(),
        )))?;
        let label = g.label(report.long());
        let (tw, th) = area.estimate_text_size(&label, &font(11.0))?;
        let (pa, ph) = local(area, chart.backend_coord(&(a, hi)));
        let pb = local(area, chart.backend_coord(&(b, hi))).0;
        if (pb - pa) as u32 > tw / 2 {
            let row = (i % 2) as i32;
            area.draw(&Text::new(
                label,
                (pa + 2, ph + 2 + row * th as i32),
                font(11.0).color(&RGBColor(80, 80, 80)),
            ))?;
        }
    }
    Ok(())
}

fn threshold<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x: &std::ops::Range<f64>,
    value: f64,
    label: String,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    chart.draw_series(DashedLineSeries::new(
        vec![(x.start, value), (x.end, value)],
        6,
        4,
        THRESHOLD_COLOR.stroke_width(1),
    ))?;
    chart.draw_series(std::iter::once(Text::new(
        label,
        (x.start, value),
        font(11.0)
            .color(&THRESHOLD_COLOR)
            .pos(Pos::new(HPos::Left, VPos::Bottom)),
    )))?;
    Ok(())
}

fn error_panel<DB: DrawingBackend>(
    report: &Report,
    area: &Area<'_, DB>,
    x: std::ops::Range<f64>,
    x_label: &dyn Fn(&f64) -> String,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let g = &report.gates;
    let limits = [g.max_error_rate, g.severe_error_rate]
        .into_iter()
        .flatten()
        .map(|v| v * 100.0);
    let observed = report
        .points
        .iter()
        .flat_map(|p| p.sides.iter().flatten().map(|s| s.error_rate * 100.0));
    let top = top_of(observed.chain(limits), 0.5);
    let mut chart = chart_on(area, x.clone(), 0.0..top, "error rate, stable and canary")?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(x_labels(report))
        .x_label_formatter(x_label)
        .light_line_style(LIGHT_LINE)
        .y_labels(5)
        .y_label_formatter(&|y| format!("{y:.2} %"))
        .label_style(font(12.0))
        .draw()?;
    gaps(report, &mut chart, area, 0.0..top)?;
    if let Some(v) = g.max_error_rate {
        threshold(
            &mut chart,
            &x,
            v * 100.0,
            format!("gate: canary error rate <= {:.2} %", v * 100.0),
        )?;
    }
    if let Some(v) = g.severe_error_rate {
        threshold(
            &mut chart,
            &x,
            v * 100.0,
            format!("severe: {:.2} %", v * 100.0),
        )?;
    }
    for (side, color) in [(0, STABLE_ERROR_COLOR), (1, CANARY_ERROR_COLOR)] {
        for run in runs(&report.points, |s| Some(s.error_rate * 100.0), side) {
            line(&mut chart, run, color)?;
        }
    }
    markers(report, &mut chart, area, 0.0..top, false)?;
    legend(
        area,
        &[
            (STABLE_ERROR_COLOR, "stable error rate"),
            (CANARY_ERROR_COLOR, "canary error rate"),
        ],
    )?;
    Ok(())
}

fn p99_panel<DB: DrawingBackend>(
    report: &Report,
    area: &Area<'_, DB>,
    x: std::ops::Range<f64>,
    x_label: &dyn Fn(&f64) -> String,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let g = &report.gates;
    let observed = report
        .points
        .iter()
        .flat_map(|p| p.sides.iter().flatten().filter_map(|s| s.p99_ms));
    let ratio_limit = report
        .points
        .iter()
        .filter_map(|p| p.sides[0]?.p99_ms)
        .map(|v| v * g.max_p99_ratio.unwrap_or(0.0));
    let top = top_of(observed.chain(g.max_p99_ms).chain(ratio_limit), 10.0);
    let mut chart = chart_on(area, x.clone(), 0.0..top, "p99 latency, stable and canary")?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(x_labels(report))
        .x_label_formatter(x_label)
        .light_line_style(LIGHT_LINE)
        .y_labels(5)
        .y_label_formatter(&|y| format!("{y:.0} ms"))
        .label_style(font(12.0))
        .draw()?;
    gaps(report, &mut chart, area, 0.0..top)?;
    if let Some(v) = g.max_p99_ms {
        threshold(&mut chart, &x, v, format!("gate: canary p99 <= {v:.0} ms"))?;
    }
    if let Some(k) = g.max_p99_ratio {
        // Relative to stable: the limit follows stable's p99, and stops where it does.
        let mut named = false;
        for run in runs(&report.points, |s| s.p99_ms.map(|v| v * k), 0) {
            let first = run[0];
            chart.draw_series(DashedLineSeries::new(
                run,
                6,
                4,
                THRESHOLD_COLOR.stroke_width(1),
            ))?;
            if !named {
                named = true;
                chart.draw_series(std::iter::once(Text::new(
                    format!("gate: canary p99 <= {k}x stable p99"),
                    first,
                    font(11.0)
                        .color(&THRESHOLD_COLOR)
                        .pos(Pos::new(HPos::Left, VPos::Bottom)),
                )))?;
            }
        }
    }
    for (side, color) in [(0, STABLE_P99_COLOR), (1, CANARY_P99_COLOR)] {
        for run in runs(&report.points, |s| s.p99_ms, side) {
            line(&mut chart, run, color)?;
        }
    }
    markers(report, &mut chart, area, 0.0..top, false)?;
    legend(
        area,
        &[
            (STABLE_P99_COLOR, "stable p99"),
            (CANARY_P99_COLOR, "canary p99"),
        ],
    )?;
    Ok(())
}

/// One run of a series; a run of one point gets a dot, which a line of one point lacks.
fn line<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    run: Vec<(f64, f64)>,
    color: RGBColor,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    if let [only] = run.as_slice() {
        chart.draw_series(std::iter::once(Circle::new(*only, 2, color.filled())))?;
    }
    chart.draw_series(LineSeries::new(run, color.stroke_width(2)))?;
    Ok(())
}

/// The summary in columns under the charts; what does not fit is counted, not cut silently.
fn summary_block<DB: DrawingBackend>(report: &Report, area: &Area<'_, DB>, width: u32) -> Drawn
where
    DB::ErrorType: 'static,
{
    let lines = report.summary_lines();
    let (_, h) = area.dim_in_pixel();
    let size = 12.0;
    let (_, line_h) = area.estimate_text_size("Ag", &font(size))?;
    let line_h = line_h as i32 + 3;
    let rows = ((h as i32 - 20) / line_h).max(1) as usize;
    let columns = if width >= 1200 { 2 } else { 1 };
    let column_w = (width as i32 - 24) / columns as i32;
    let capacity = rows * columns;
    let (shown, hidden) = if lines.len() > capacity {
        (capacity - 1, lines.len() - (capacity - 1))
    } else {
        (lines.len(), 0)
    };
    let mut all: Vec<String> = lines.into_iter().take(shown).collect();
    if hidden > 0 {
        all.push(format!(
            "... and {hidden} more lines: `rollout-tui report {}` prints them all",
            escape(&report.rollout.id)
        ));
    }
    for (i, text) in all.iter().enumerate() {
        let (col, row) = (i / rows, i % rows);
        let fitted = fit(area, text, size, column_w - 8)?;
        area.draw_text(
            &fitted,
            &font(size),
            (8 + col as i32 * column_w, 10 + row as i32 * line_h),
        )?;
    }
    Ok(())
}

/// `text` cut with an ellipsis to fit `width` pixels.
fn fit<DB: DrawingBackend>(
    area: &Area<'_, DB>,
    text: &str,
    size: f64,
    width: i32,
) -> Result<String, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let fits = |t: &str| -> Result<bool, Box<dyn std::error::Error>> {
        Ok(area.estimate_text_size(t, &font(size))?.0 as i32 <= width)
    };
    if fits(text)? {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().collect::<String>() + "…";
        if fits(&candidate)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(chars[..lo].iter().collect::<String>() + "…")
}
