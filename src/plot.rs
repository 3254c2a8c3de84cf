//! Training curves from history.csv as one SVG: a panel per metric family
//! (loss, accuracy, auc, ...), train solid and validation dashed, one colour
//! per run so several runs compare on the same chart.

use plotters::element::DashedPathElement;
use plotters::prelude::*;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlotError {
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
        let header = lines.next().map_or("", |(_, l)| l);
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        if names.len() < 2 || names[0] != "epoch" || names.iter().any(|n| n.is_empty()) {
            return Err(PlotError::BadHeader(header.to_string()));
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

    /// (epoch, value) points of one column, skipping empty and non-finite cells.
    fn series(&self, col: usize) -> Vec<(f64, f64)> {
        self.epochs.iter().zip(&self.rows).filter_map(|(&e, r)| r[col].filter(|v| v.is_finite()).map(|v| (e, v))).collect()
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
    for f in runs.iter().flat_map(|(_, h)| h.columns.iter().map(|n| family(n))) {
        if !panels.contains(&f) {
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

    let points = lines.iter().flat_map(|l| &l.3);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0); // no points in this panel
    }
    if x1 - x0 < 1.0 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5); // a single epoch still gets a visible x range
    }
    let pad = if y1 > y0 { (y1 - y0) * 0.05 } else { y0.abs().max(1e-3) * 0.1 };
    let (y0, y1) = (y0 - pad, y1 + pad);
    // The legend sits at the right, away from where the curves end (rising metrics end high).
    let ends: Vec<f64> = lines.iter().filter_map(|l| l.3.last().map(|p| p.1)).collect();
    let high = !ends.is_empty() && ends.iter().sum::<f64>() / ends.len() as f64 > (y0 + y1) / 2.0;

    let mut chart = ChartBuilder::on(area)
        .caption(family_name, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(10)
        .x_label_formatter(&|x| if x.fract() == 0.0 { format!("{x:.0}") } else { String::new() })
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
        for text in ["", "loss,accuracy\n1,2\n", "epoch\n", "epoch,,loss\n1,2,3\n"] {
            assert!(matches!(History::parse(text), Err(PlotError::BadHeader(_))), "{text:?}");
        }
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

    #[test]
    fn ticks() {
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(0.0001), "1.0e-4");
        assert_eq!(tick(0.0), "0");
    }
}
