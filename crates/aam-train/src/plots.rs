//! Evaluation plots with plotters, each written as `<stem>.png` (800×600) and
//! `<stem>.svg`. PNG text is drawn with the embedded DejaVu Sans (no system fonts
//! needed; licence in `crates/aam-train/assets/DejaVuSans-LICENSE.txt`).

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (800, 600);
const POINT: RGBColor = RGBColor(31, 119, 180);

/// A figure that draws on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Draws `figure` into `<stem>.png` and `<stem>.svg`.
fn both(stem: &Path, figure: &impl Figure) -> Result<()> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Fails only on a malformed font, which the embedded one is not.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    // Appended, not `with_extension`: a stem may contain dots (sample IDs).
    let with = |ext: &str| {
        let mut name = stem.as_os_str().to_owned();
        name.push(format!(".{ext}"));
        std::path::PathBuf::from(name)
    };
    let (png, svg) = (with("png"), with("svg"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        figure.draw(&root)?;
        root.present()
            .map_err(plot_err)
            .with_context(|| format!("cannot write {}", png.display()))?;
    }
    let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
    figure.draw(&root)?;
    root.present()
        .map_err(plot_err)
        .with_context(|| format!("cannot write {}", svg.display()))
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e}")
}

/// `(min, max)` of `values` widened by 5% on each side (±1 when constant).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

/// A titled chart with labelled f64 axes over `ranges` (x, y).
fn xy_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x_label, y_label): (&str, &str),
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
) -> Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// The reference line of a scatter plot.
enum Reference {
    /// y = x over the range (the same on both axes).
    Identity((f64, f64)),
    /// y = 0 across the x range.
    Zero,
}

struct Scatter<'a> {
    title: String,
    x_label: String,
    y_label: String,
    x: &'a [f64],
    y: &'a [f64],
    reference: Reference,
}

impl Figure for Scatter<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let (x0, x1, y0, y1) = match self.reference {
            Reference::Identity((lo, hi)) => (lo, hi, lo, hi),
            Reference::Zero => {
                let (x0, x1) = padded_range(self.x.iter().copied());
                let (y0, y1) = padded_range(self.y.iter().copied().chain([0.0]));
                (x0, x1, y0, y1)
            }
        };
        let mut chart = xy_chart(
            root,
            &self.title,
            (&self.x_label, &self.y_label),
            (x0..x1, y0..y1),
        )?;
        let line = match self.reference {
            Reference::Identity((lo, hi)) => vec![(lo, lo), (hi, hi)],
            Reference::Zero => vec![(x0, 0.0), (x1, 0.0)],
        };
        chart
            .draw_series(LineSeries::new(line, BLACK.mix(0.6).stroke_width(1)))
            .map_err(plot_err)?;
        chart
            .draw_series(
                self.x
                    .iter()
                    .zip(self.y)
                    .map(|(&a, &b)| Circle::new((a, b), 3, POINT.mix(0.7).filled())),
            )
            .map_err(plot_err)?;
        Ok(())
    }
}

/// Predicted against true values with the identity line.
pub fn predicted_vs_true(stem: &Path, truth: &[f64], pred: &[f64], column: &str) -> Result<()> {
    both(
        stem,
        &Scatter {
            title: format!("{column}: predicted vs true (n = {})", truth.len()),
            x_label: format!("true {column}"),
            y_label: format!("predicted {column}"),
            x: truth,
            y: pred,
            reference: Reference::Identity(padded_range(truth.iter().chain(pred).copied())),
        },
    )
}

/// Residuals (predicted − true) against the prediction, with the zero line.
pub fn residuals(stem: &Path, pred: &[f64], truth: &[f64], column: &str) -> Result<()> {
    let residual: Vec<f64> = pred.iter().zip(truth).map(|(p, t)| p - t).collect();
    both(
        stem,
        &Scatter {
            title: format!("{column}: residuals (n = {})", pred.len()),
            x_label: format!("predicted {column}"),
            y_label: "predicted − true".to_string(),
            x: pred,
            y: &residual,
            reference: Reference::Zero,
        },
    )
}

struct Heatmap<'a> {
    cm: &'a [Vec<usize>],
    classes: &'a [String],
}

impl Figure for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let (cm, classes) = (self.cm, self.classes);
        let n = classes.len() as i32;
        let max = cm.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
        let total: usize = cm.iter().flatten().sum();
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                classes.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("confusion matrix (n = {total})"),
                ("sans-serif", 24),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(120)
            // An integer range covers both ends: 0..n−1 gives the n class segments.
            .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(n as usize)
            .y_labels(n as usize)
            .x_label_formatter(&label)
            .y_label_formatter(&label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        for (t, row) in cm.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let (p, t) = (p as i32, t as i32);
                let shade = count as f64 / max;
                // White to the scatter plots' blue.
                let color = RGBColor(
                    (255.0 - 224.0 * shade) as u8,
                    (255.0 - 136.0 * shade) as u8,
                    (255.0 - 75.0 * shade) as u8,
                );
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(p), SegmentValue::Exact(t)),
                            (SegmentValue::Exact(p + 1), SegmentValue::Exact(t + 1)),
                        ],
                        color.filled(),
                    )))
                    .map_err(plot_err)?;
                let text_color = if shade > 0.5 { WHITE } else { BLACK };
                chart
                    .draw_series(std::iter::once(Text::new(
                        count.to_string(),
                        (SegmentValue::CenterOf(p), SegmentValue::CenterOf(t)),
                        ("sans-serif", 18).into_font().color(&text_color),
                    )))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    }
}

/// Confusion matrix heatmap (rows: true class, columns: predicted), counts in cells.
pub fn confusion_matrix(stem: &Path, cm: &[Vec<usize>], classes: &[String]) -> Result<()> {
    both(stem, &Heatmap { cm, classes })
}

struct Bars<'a> {
    title: &'a str,
    bars: &'a [(String, f64)],
}

impl Figure for Bars<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let n = self.bars.len().max(1) as i32;
        let (lo, hi) = padded_range(self.bars.iter().map(|b| b.1).chain([0.0]));
        let label = |v: &SegmentValue<i32>| match v {
            // Largest at the top: segment 0 is at the bottom.
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => self
                .bars
                .get((n - 1 - *i) as usize)
                .map(|b| b.0.clone())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(150)
            .build_cartesian_2d(lo..hi, (0..n - 1).into_segmented())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&label)
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(plot_err)?;
        for (k, (_, v)) in self.bars.iter().enumerate() {
            let y = n - 1 - k as i32;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(y)),
                        (*v, SegmentValue::Exact(y + 1)),
                    ],
                    POINT.filled(),
                )))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}

/// Horizontal bars, the first at the top (e.g. ASVs by importance).
pub fn importance_bars(stem: &Path, bars: &[(String, f64)], title: &str) -> Result<()> {
    both(stem, &Bars { title, bars })
}

/// One square map of a [`weight_panels`] figure: `values` row-major `[rows, cols]`.
pub struct Panel {
    /// Panel caption (e.g. `head 0`).
    pub caption: String,
    /// Row-major weights.
    pub values: Vec<f32>,
    /// Rows (queries).
    pub rows: usize,
    /// Columns (keys).
    pub cols: usize,
}

struct Panels<'a> {
    title: &'a str,
    axes: &'a str,
    panels: &'a [Panel],
}

/// White (0) to dark blue (the panel's largest weight).
fn weight_colour(v: f32, max: f32) -> RGBColor {
    let t = if max > 0.0 {
        (v / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |hi: u8| (255.0 - t * (255.0 - f32::from(hi))).round() as u8;
    RGBColor(mix(8), mix(48), mix(107))
}

impl Figure for Panels<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root
            .titled(self.title, ("sans-serif", 20))
            .map_err(plot_err)?;
        let n = self.panels.len().max(1);
        let cols = (n as f64).sqrt().ceil() as usize;
        let rows = n.div_ceil(cols);
        let areas = root.split_evenly((rows, cols));
        for (panel, area) in self.panels.iter().zip(&areas) {
            let (r, c) = (panel.rows.max(1), panel.cols.max(1));
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.caption, ("sans-serif", 14))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(36)
                .build_cartesian_2d(0..c as i32, 0..r as i32)
                .map_err(plot_err)?;
            // Row 0 (the first query) at the top.
            let top = r as i32;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc(self.axes)
                .x_labels(5)
                .y_labels(5)
                .y_label_formatter(&|y| (top - 1 - y).to_string())
                .label_style(("sans-serif", 11))
                .draw()
                .map_err(plot_err)?;
            let max = panel.values.iter().copied().fold(0.0f32, f32::max);
            chart
                .draw_series(panel.values.iter().enumerate().map(|(k, &v)| {
                    let (i, j) = ((k / c) as i32, (k % c) as i32);
                    Rectangle::new(
                        [(j, top - 1 - i), (j + 1, top - i)],
                        weight_colour(v, max).filled(),
                    )
                }))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}

/// Attention weights as a grid of heatmaps (one panel per head; rows: queries, columns:
/// keys, colour scaled to each panel's largest weight).
pub fn weight_panels(stem: &Path, title: &str, axes: &str, panels: &[Panel]) -> Result<()> {
    both(
        stem,
        &Panels {
            title,
            axes,
            panels,
        },
    )
}

struct Curves<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [(String, Vec<(f64, f64)>)],
}

const SERIES: [RGBColor; 4] = [
    POINT,
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

impl Figure for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(plot_err)?;
        let points = || self.series.iter().flat_map(|s| s.1.iter());
        let (x0, x1) = padded_range(points().map(|p| p.0));
        let (y0, y1) = padded_range(points().map(|p| p.1));
        let mut chart = xy_chart(
            root,
            self.title,
            (self.x_label, self.y_label),
            (x0..x1, y0..y1),
        )?;
        for (k, (name, pts)) in self.series.iter().enumerate() {
            let colour = SERIES[k % SERIES.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(plot_err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        Ok(())
    }
}

/// Line plot of named series of (x, y) points, with a legend.
pub fn curves(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<()> {
    both(
        stem,
        &Curves {
            title,
            x_label,
            y_label,
            series,
        },
    )
}
