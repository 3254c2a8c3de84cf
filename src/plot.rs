//! Training curves from history.csv as one SVG: a panel per metric family
//! (loss, accuracy, auc, ...), train solid and validation dashed, one colour
//! per run so several runs compare on the same chart.
//!
//! history.csv may come from anywhere: values are any f64 text (`1e308`,
//! `NaN`, `inf`), and files can be long. plotters' tick search loops forever
//! on a range whose width is not finite, or too small to step through at its
//! magnitude, so every axis range goes through `axis` first; non-finite
//! values are gaps; long series are thinned to what the chart can show.

use plotters::element::DashedPathElement;
use plotters::prelude::*;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlotError {
    #[error("the file is empty; expected a header line such as 'epoch,loss' and a row per epoch")]
    Empty,
    #[error("the header must start with 'epoch' and name at least one metric, found '{0}'")]
    BadHeader(String),
    #[error("line {line}: {found} values where the header has {expected}")]
    Ragged { line: usize, expected: usize, found: usize },
    #[error("line {line}, column '{column}': '{value}' is not a number")]
    NotNumber { line: usize, column: String, value: String },
    #[error("run '{run}': {source}")]
    Run { run: String, source: Box<PlotError> },
    #[error("no run has any epochs to plot")]
    NoData,
    #[error("{0} metric columns are more than the {MAX_COLUMNS} a history may have")]
    TooManyColumns(usize),
    #[error("{0} metric families are more than the {MAX_PANELS} panels one chart draws")]
    TooManyPanels(usize),
    #[error("drawing the chart: {0}")]
    Draw(String),
}

/// A parsed history.csv: metric columns (without `epoch`), one row per epoch.
/// An empty cell (a metric missing that epoch) is None and leaves a gap.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub columns: Vec<String>,
    pub epochs: Vec<f64>,
    pub rows: Vec<Vec<Option<f64>>>,
}

impl History {
    pub fn parse(text: &str) -> Result<History, PlotError> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else { return Err(PlotError::Empty) };
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        if names.len() < 2 || names[0] != "epoch" || names.iter().any(|n| n.is_empty()) {
            return Err(PlotError::BadHeader(header.chars().take(200).collect()));
        }
        if names.len() - 1 > MAX_COLUMNS {
            return Err(PlotError::TooManyColumns(names.len() - 1));
        }
        let mut h = History { columns: names[1..].iter().map(|s| s.to_string()).collect(), epochs: vec![], rows: vec![] };
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                return Err(PlotError::Ragged { line: i + 1, expected: names.len(), found: cells.len() });
            }
            let num = |c: usize| {
                let v = cells[c];
                v.parse::<f64>().map_err(|_| PlotError::NotNumber { line: i + 1, column: names[c].to_string(), value: v.to_string() })
            };
            h.epochs.push(num(0)?);
            h.rows.push((1..cells.len()).map(|c| if cells[c].is_empty() { Ok(None) } else { num(c).map(Some) }).collect::<Result<_, _>>()?);
        }
        Ok(h)
    }

    /// (epoch, value) points of one column, skipping empty and non-finite
    /// cells (and epochs), thinned to at most `MAX_POINTS`.
    fn series(&self, col: usize) -> Vec<(f64, f64)> {
        let points: Vec<(f64, f64)> =
            self.epochs.iter().zip(&self.rows).filter(|(e, _)| e.is_finite()).filter_map(|(&e, r)| r[col].filter(|v| v.is_finite()).map(|v| (e, v))).collect();
        thin(points, MAX_POINTS)
    }
}

/// The panel a column belongs to: `val_x` joins `x`, and every `*_loss`
/// (per-output losses) joins `loss` so their scales compare.
fn family(column: &str) -> &str {
    let base = column.strip_prefix("val_").unwrap_or(column);
    if base.ends_with("_loss") { "loss" } else { base }
}

/// Parses each (label, history.csv text) and draws them on one chart.
pub fn history_svg(runs: &[(String, String)]) -> Result<String, PlotError> {
    let parsed = runs
        .iter()
        .map(|(label, text)| History::parse(text).map(|h| (label.clone(), h)).map_err(|e| PlotError::Run { run: label.clone(), source: Box::new(e) }))
        .collect::<Result<Vec<_>, _>>()?;
    render(&parsed)
}

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 300;
/// Metric columns of one history.csv.
pub const MAX_COLUMNS: usize = 4096;
/// Panels (metric families) one chart holds.
pub const MAX_PANELS: usize = 64;
/// Points drawn per series: a few per pixel of the chart's width.
const MAX_POINTS: usize = 4 * WIDTH as usize;
/// Values are drawn within ±LIMIT, so an axis's width (about 2.2 LIMIT at
/// most, with its margins) stays finite.
const LIMIT: f64 = 1e300;

fn clamp(v: f64) -> f64 {
    v.clamp(-LIMIT, LIMIT)
}

/// Keeps at most about `max` points: in each of `max / 2` equal runs of
/// points, the lowest and the highest, in order, so spikes stay visible.
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    let buckets = (max / 2).max(1);
    if points.len() <= max {
        return points;
    }
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(2 * buckets);
    for run in points.chunks(size) {
        let lo = (0..run.len()).fold(0, |b, i| if run[i].1 < run[b].1 { i } else { b });
        let hi = (0..run.len()).fold(0, |b, i| if run[i].1 > run[b].1 { i } else { b });
        out.push(run[lo.min(hi)]);
        if lo != hi {
            out.push(run[lo.max(hi)]);
        }
    }
    out
}

/// An axis range plotters can put ticks on in a few steps: finite, and at
/// least a millionth of its magnitude wide, so a tick step stays far above
/// the values' rounding. `lo <= hi` are finite and within ±LIMIT; `pad` is
/// the margin on each side as a fraction of the width; a range narrower
/// than `min_width` is widened to it around its middle.
fn axis(lo: f64, hi: f64, pad: f64, min_width: f64) -> (f64, f64) {
    debug_assert!(lo.is_finite() && hi.is_finite() && lo <= hi);
    let magnitude = lo.abs().max(hi.abs());
    // In halves: hi - lo itself can overflow.
    let half = hi / 2.0 - lo / 2.0;
    let mid = lo + half;
    let half = (half * (1.0 + 2.0 * pad)).max(min_width / 2.0).max(magnitude * 1e-6).max(f64::MIN_POSITIVE);
    (mid - half, mid + half)
}
// Matplotlib's tab10: distinct and colour-blind friendlier than plotters' primaries.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws already parsed histories; labels name runs in the legend when several.
pub fn render(runs: &[(String, History)]) -> Result<String, PlotError> {
    if runs.iter().all(|(_, h)| h.epochs.is_empty()) {
        return Err(PlotError::NoData);
    }
    // Panels in order of first appearance; learning_rate only if it changes in some run.
    let mut panels: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in runs.iter().flat_map(|(_, h)| h.columns.iter().map(|n| family(n))) {
        if seen.insert(f) {
            panels.push(f);
        }
    }
    panels.retain(|&f| {
        f != "learning_rate" || {
            let vals: Vec<f64> =
                runs.iter().flat_map(|(_, h)| h.columns.iter().enumerate().filter(|(_, n)| *n == f).flat_map(|(c, _)| h.series(c))).map(|p| p.1).collect();
            vals.iter().any(|v| *v != vals[0])
        }
    });
    if panels.len() > MAX_PANELS {
        return Err(PlotError::TooManyPanels(panels.len()));
    }

    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            draw_panel(area, panel, runs)?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// A series to draw: (legend label, colour, dashed, points).
type Line = (String, RGBColor, bool, Vec<(f64, f64)>);

/// One panel: every column of `family` from every run.
fn draw_panel(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, family_name: &str, runs: &[(String, History)]) -> Result<(), PlotError> {
    let mut lines: Vec<Line> = Vec::new();
    let mut colour = 0;
    for (label, h) in runs {
        // Train and val of one metric share a colour; distinct metrics (per-output
        // losses) and runs take the next.
        let mut bases: Vec<&str> = Vec::new();
        for (c, name) in h.columns.iter().enumerate().filter(|(_, n)| family(n) == family_name) {
            let base = name.strip_prefix("val_").unwrap_or(name);
            let idx = bases.iter().position(|b| *b == base).unwrap_or_else(|| {
                bases.push(base);
                bases.len() - 1
            });
            let text = if runs.len() > 1 { format!("{label}: {name}") } else { name.clone() };
            lines.push((text, PALETTE[(colour + idx) % PALETTE.len()], name.starts_with("val_"), h.series(c)));
        }
        colour += bases.len();
    }

    // Beyond ±LIMIT no axis could hold both signs; say so rather than hide it.
    let clamped = lines.iter().flat_map(|l| &l.3).any(|&(x, y)| x.abs() > LIMIT || y.abs() > LIMIT);
    for p in lines.iter_mut().flat_map(|l| &mut l.3) {
        *p = (clamp(p.0), clamp(p.1));
    }
    let caption = if clamped { format!("{family_name} (values beyond ±1e300 drawn at ±1e300)") } else { family_name.to_string() };
    let points = lines.iter().flat_map(|l| &l.3);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0); // no points in this panel
    }
    // A single epoch still gets a visible x range; a flat line a y range.
    let (x0, x1) = axis(x0, x1, 0.0, 1.0);
    let (y0, y1) = axis(y0, y1, 0.05, if y0 == y1 { y0.abs().max(1e-3) * 0.2 } else { 0.0 });
    // The legend sits at the right, away from where the curves end (rising metrics end high).
    let ends: Vec<f64> = lines.iter().filter_map(|l| l.3.last().map(|p| p.1)).collect();
    let high = !ends.is_empty() && ends.iter().sum::<f64>() / ends.len() as f64 > (y0 + y1) / 2.0;

    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(10)
        .x_label_formatter(&|x| match x.abs() {
            a if a >= 1e6 => format!("{x:.1e}"),
            _ if x.fract() == 0.0 => format!("{x:.0}"),
            _ => String::new(),
        })
        .y_label_formatter(&|y| tick(*y))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_err)?;
    for (text, colour, dashed, pts) in lines {
        let style = colour.stroke_width(2);
        if dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, style))
                .map_err(draw_err)?
                .label(text)
                .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 20, y)], 6, 4, style));
        } else {
            chart
                .draw_series(LineSeries::new(pts, style))
                .map_err(draw_err)?
                .label(text)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(if high { SeriesLabelPosition::LowerRight } else { SeriesLabelPosition::UpperRight })
        .background_style(WHITE.mix(0.8))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// Y tick text: plain for ordinary values, scientific for learning rates like 1e-4.
fn tick(y: f64) -> String {
    if y == 0.0 || (1e-2..1e4).contains(&y.abs()) { format!("{y:.3}").trim_end_matches('0').trim_end_matches('.').to_string() } else { format!("{y:.1e}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trimmed contents of every <text> element (plotters puts them on their own line).
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text").skip(1).filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.trim())).collect()
    }

    const A: &str = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n1,0.9,0.5,1.0,0.45,0.001\n2,0.6,0.7,0.8,0.6,0.001\n3,0.4,0.8,0.7,0.65,0.0005\n";

    #[test]
    fn parses_history() {
        let h = History::parse(A).unwrap();
        assert_eq!(h.columns, ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]);
        assert_eq!(h.epochs, [1.0, 2.0, 3.0]);
        assert_eq!(h.rows[2][4], Some(0.0005));
        // Empty cells are gaps, not errors.
        assert_eq!(History::parse("epoch,loss,val_loss\n1,0.5,\n").unwrap().rows[0], [Some(0.5), None]);
    }

    #[test]
    fn rejects_bad_header() {
        for text in ["loss,accuracy\n1,2\n", "epoch\n", "epoch,,loss\n1,2,3\n"] {
            assert!(matches!(History::parse(text), Err(PlotError::BadHeader(_))), "{text:?}");
        }
        assert_eq!(History::parse(""), Err(PlotError::Empty));
        assert_eq!(History::parse("\n  \n"), Err(PlotError::Empty));
    }

    #[test]
    fn rejects_ragged_rows() {
        let e = History::parse("epoch,loss,accuracy\n1,0.5,0.6\n2,0.4\n").unwrap_err();
        assert_eq!(e, PlotError::Ragged { line: 3, expected: 3, found: 2 });
    }

    #[test]
    fn rejects_non_numeric() {
        let e = History::parse("epoch,loss\n1,abc\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2, column 'loss': 'abc' is not a number");
        assert!(matches!(History::parse("epoch,loss\nx,0.5\n"), Err(PlotError::NotNumber { .. })));
    }

    #[test]
    fn families() {
        assert_eq!(family("val_loss"), "loss");
        assert_eq!(family("out1_loss"), "loss");
        assert_eq!(family("val_accuracy"), "accuracy");
        assert_eq!(family("auc"), "auc");
    }

    #[test]
    fn svg_has_a_panel_and_series_per_metric() {
        let svg = history_svg(&[("mlp".into(), A.into())]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for name in ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "epoch"] {
            assert!(texts(&svg).contains(&name), "no text {name}");
        }
        // One solid polyline per train series (loss, accuracy, learning_rate) plus legend
        // samples; dashed validation lines are drawn as many short segments.
        assert!(svg.matches("<polyline").count() >= 6);
        // Balanced tags: a cheap well-formedness check without an XML parser.
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn flat_learning_rate_gets_no_panel_and_runs_are_labelled() {
        let b = "epoch,loss,auc,learning_rate\n1,0.7,0.6,0.01\n2,0.5,0.7,0.01\n";
        let svg = history_svg(&[("one".into(), b.into()), ("two".into(), b.replace("0.5,", "0.4,"))]).unwrap();
        assert!(!texts(&svg).contains(&"learning_rate"));
        for label in ["one: loss", "two: loss", "one: auc", "two: auc"] {
            assert!(texts(&svg).contains(&label), "no legend {label}");
        }
    }

    #[test]
    fn errors_name_the_run_and_empty_histories_are_refused() {
        let e = history_svg(&[("bad".into(), "epoch,loss\n1\n".into())]).unwrap_err();
        assert!(e.to_string().starts_with("run 'bad': line 2"), "{e}");
        assert_eq!(history_svg(&[("empty".into(), "epoch,loss\n".into())]).unwrap_err(), PlotError::NoData);
    }

    /// Renders on a thread and fails if it takes more than `secs`: a hang is
    /// what these inputs used to cause.
    fn renders_within(text: &'static str, secs: u64) -> Result<String, PlotError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(history_svg(&[("run".into(), text.into())])));
        rx.recv_timeout(std::time::Duration::from_secs(secs)).unwrap_or_else(|_| panic!("plot of {text:?} did not finish in {secs} s"))
    }

    #[test]
    fn extreme_values_draw_in_bounded_time() {
        for text in [
            "epoch,loss\n1,1e308\n2,-1e308\n",
            "epoch,loss\n1,1.7976931348623157e308\n2,-1.7976931348623157e308\n",
            "epoch,loss\n1,1e20\n2,1.0000000000000002e20\n",
            "epoch,loss\n1,5e-324\n2,1e-323\n",
            "epoch,loss\n1,0\n2,1e-300\n",
            "epoch,loss\n1e16,0.5\n1.0000000000000002e16,0.6\n",
            "epoch,loss\n-1e308,0.5\n1e308,0.6\n",
            "epoch,loss\n1,NaN\n2,inf\n3,-inf\n4,0.5\n",
            "epoch,loss\nNaN,0.5\ninf,0.6\n3,0.7\n",
            "epoch,loss,val_loss\n1,1e308,-1e308\n",
        ] {
            let svg = renders_within(text, 10).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(svg.trim_end().ends_with("</svg>"), "{text:?}");
        }
        // Nothing finite at all: an empty panel, not a hang.
        assert!(renders_within("epoch,loss\n1,NaN\n", 10).is_ok());
    }

    #[test]
    fn axes_are_finite_and_wide_enough_to_step() {
        for (lo, hi) in [(-1e300, 1e300), (1e300, 1e300), (0.0, 0.0), (1e20, 1e20 + 16384.0), (5e-324, 5e-324), (-3.0, 7.0)] {
            let (a, b) = axis(lo, hi, 0.05, 0.0);
            assert!(a.is_finite() && b.is_finite() && (b - a).is_finite(), "{lo}..{hi}: {a}..{b}");
            assert!(a <= lo && hi <= b, "{lo}..{hi} inside {a}..{b}");
            assert!(b - a >= lo.abs().max(hi.abs()) * 1e-6, "{lo}..{hi}: {a}..{b} too narrow");
        }
        assert_eq!(axis(-3.0, 7.0, 0.05, 0.0), (-3.5, 7.5), "5% margins, as before");
        assert_eq!(axis(1.0, 1.0, 0.0, 1.0), (0.5, 1.5), "a single epoch");
    }

    #[test]
    fn long_series_are_thinned_keeping_extremes() {
        let points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, if i == 54_321 { 99.0 } else { (i % 7) as f64 })).collect();
        let thinned = thin(points, 1000);
        assert!(thinned.len() <= 1000, "{}", thinned.len());
        assert!(thinned.contains(&(54_321.0, 99.0)), "the spike survives");
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0), "in order");
        assert_eq!(thin(vec![(1.0, 2.0)], 1000), [(1.0, 2.0)]);
    }

    #[test]
    fn too_many_columns_are_refused_while_parsing() {
        let header: Vec<String> = (0..=MAX_COLUMNS).map(|i| format!("m{i}")).collect();
        assert_eq!(History::parse(&format!("epoch,{}\n", header.join(","))), Err(PlotError::TooManyColumns(MAX_COLUMNS + 1)));
    }

    #[test]
    fn too_many_panels_are_refused() {
        let header: Vec<String> = (0..=MAX_PANELS).map(|i| format!("m{i}")).collect();
        let row = vec!["1"; MAX_PANELS + 1].join(",");
        let text = format!("epoch,{}\n1,{row}\n", header.join(","));
        assert_eq!(history_svg(&[("r".into(), text)]), Err(PlotError::TooManyPanels(MAX_PANELS + 1)));
    }

    #[test]
    fn ticks() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(0.0001), "1.0e-4");
        assert_eq!(tick(0.0), "0");
    }
}
