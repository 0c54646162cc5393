//! Figures, drawn with plotters as SVG and PNG from the same description.
//!
//! Text uses DejaVu Sans, embedded in the binary and registered with
//! plotters, so figures look the same on a machine without fonts. Rates are
//! always categories, never a continuous axis.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The width and height of every figure, in pixels.
pub const SIZE: (u32, u32) = (960, 480);

const FONT: &str = "sans-serif";

/// One point of a category figure: a value (with an optional range) for one
/// group within one category.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryItem {
    /// Index into the figure's categories.
    pub category: usize,
    /// Index into the figure's groups (the colour).
    pub group: usize,
    /// The value drawn as a dot.
    pub value: f64,
    /// An optional range drawn as a vertical line (for example p50 to max).
    pub range: Option<(f64, f64)>,
}

/// What a figure shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// Lines over time, one per labelled series.
    Lines {
        /// The title.
        title: String,
        /// The y axis' label.
        y_label: String,
        /// (label, points (seconds, value)).
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Dots (and ranges) in categories, side by side per group.
    Categories {
        /// The title.
        title: String,
        /// The y axis' label.
        y_label: String,
        /// The category names, left to right.
        categories: Vec<String>,
        /// The group names (legend).
        groups: Vec<String>,
        /// Every item; several items may share a category and group.
        items: Vec<CategoryItem>,
    },
    /// Stacked bars of shares.
    Stacked {
        /// The title.
        title: String,
        /// One label per bar.
        bars: Vec<String>,
        /// The part names (legend), bottom to top.
        parts: Vec<String>,
        /// For each bar, one value per part.
        values: Vec<Vec<f64>>,
    },
}

/// The colour of series number `idx`.
fn colour(idx: usize) -> RGBColor {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    COLOURS[idx % COLOURS.len()]
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [(FontStyle::Normal, dejavu::sans::regular()), (FontStyle::Bold, dejavu::sans::bold())] {
            // The embedded font is valid by construction; a failure is a bug of the build.
            assert!(plotters::style::register_font(FONT, style, bytes).is_ok(), "the embedded font loads");
        }
    });
}

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {what}: {message}")]
pub struct DrawError {
    /// Which figure.
    pub what: String,
    /// What plotters said.
    pub message: String,
}

/// Draws `figure` as SVG text.
pub fn to_svg(figure: &Figure) -> Result<String, DrawError> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, figure).map_err(|message| DrawError { what: title(figure).to_string(), message })?;
        root.present().map_err(|e| DrawError { what: title(figure).to_string(), message: e.to_string() })?;
    }
    Ok(svg)
}

/// Draws `figure` as a PNG file at `path`.
pub fn to_png(figure: &Figure, path: &Path) -> Result<(), DrawError> {
    register_font();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(&root, figure).map_err(|message| DrawError { what: title(figure).to_string(), message })?;
    root.present().map_err(|e| DrawError { what: title(figure).to_string(), message: e.to_string() })
}

fn title(figure: &Figure) -> &str {
    match figure {
        Figure::Lines { title, .. } | Figure::Categories { title, .. } | Figure::Stacked { title, .. } => title,
    }
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match figure {
        Figure::Lines { title, y_label, series } => draw_lines(root, title, y_label, series),
        Figure::Categories { title, y_label, categories, groups, items } => {
            draw_categories(root, title, y_label, categories, groups, items)
        }
        Figure::Stacked { title, bars, parts, values } => draw_stacked(root, title, bars, parts, values),
    }
    .map_err(|e| e.to_string())
}

/// An axis label without needless decimals: `50`, `2.5`, `0.25`.
fn tick_label(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{}", value.round())
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn upper(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0, f64::max);
    if max <= 0.0 { 1.0 } else { max * 1.08 }
}

/// The points of a step function: every series drawn over time (a logical
/// clock, a drift, a queue length) keeps its value until the next change, so
/// a sloped segment between two samples would show values it never had.
fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (idx, &(x, y)) in points.iter().enumerate() {
        if idx > 0 {
            out.push((x, points[idx - 1].1));
        }
        out.push((x, y));
    }
    out
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> DrawResult<DB> {
    let x_max = upper(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)));
    let y_max = upper(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time since the run started (s)")
        .y_desc(y_label)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()?;
    for (idx, (label, points)) in series.iter().enumerate() {
        let style = ShapeStyle::from(colour(idx)).stroke_width(2);
        chart
            .draw_series(LineSeries::new(steps(points), style))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The legend every figure draws the same way: a light box in a corner.
fn draw_legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
}

/// A chart on plain `f64` axes.
type FloatChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart whose x axis holds `n` categories at 0, 1, …, n − 1.
fn category_axes<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    n: usize,
    y_max: f64,
) -> Result<FloatChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(75)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..y_max)
}

/// The name of the category at `x`, or nothing between categories.
fn category_name(names: &[String], x: f64) -> String {
    let idx = x.round();
    if (x - idx).abs() < 1e-6 && idx >= 0.0 {
        names.get(idx as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

fn draw_categories<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    categories: &[String],
    groups: &[String],
    items: &[CategoryItem],
) -> DrawResult<DB> {
    let y_max = upper(items.iter().map(|i| i.range.map_or(i.value, |r| r.1.max(i.value))));
    let n = categories.len().max(1);
    let mut chart = category_axes(root, title, n, y_max)?;
    let category_label = |x: &f64| category_name(categories, *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&category_label)
        .y_label_formatter(&|v| tick_label(*v))
        .y_desc(y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    // Separators between categories, so that no one reads the axis as continuous.
    for boundary in 1..n {
        let x = boundary as f64 - 0.5;
        chart.draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, y_max)], BLACK.mix(0.15))))?;
    }
    let n_groups = groups.len().max(1);
    // Within a category, each group has its own slot; items of one group and
    // category spread across the slot so that none hides another.
    let slot = 0.8 / n_groups as f64;
    for (group_idx, group) in groups.iter().enumerate() {
        let style = ShapeStyle::from(colour(group_idx)).filled();
        let mut placed: Vec<(f64, &CategoryItem)> = Vec::new();
        for category in 0..n {
            let here: Vec<&CategoryItem> =
                items.iter().filter(|i| i.group == group_idx && i.category == category).collect();
            for (k, item) in here.iter().enumerate() {
                let within = (k as f64 + 0.5) / here.len() as f64;
                let x = category as f64 - 0.4 + slot * (group_idx as f64 + 0.15 + 0.7 * within);
                placed.push((x, item));
            }
        }
        chart.draw_series(placed.iter().filter_map(|(x, item)| {
            item.range.map(|(low, high)| {
                PathElement::new(vec![(*x, low), (*x, high)], ShapeStyle::from(colour(group_idx)).stroke_width(2))
            })
        }))?;
        chart
            .draw_series(placed.iter().map(|(x, item)| Circle::new((*x, item.value), 4, style)))?
            .label(group.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, style));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn draw_stacked<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    bars: &[String],
    parts: &[String],
    values: &[Vec<f64>],
) -> DrawResult<DB> {
    let n = bars.len().max(1);
    let mut chart = category_axes(root, title, n, 1.3)?;
    let bar_label = |x: &f64| category_name(bars, *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&bar_label)
        .x_label_style((FONT, 11))
        .y_desc("share of ticks")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    for (part_idx, part) in parts.iter().enumerate() {
        let style = ShapeStyle::from(colour(part_idx)).filled();
        chart
            .draw_series(values.iter().enumerate().map(|(bar, row)| {
                let total: f64 = row.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                let below: f64 = row[..part_idx].iter().sum::<f64>() / total;
                let top = below + row[part_idx] / total;
                Rectangle::new([(bar as f64 - 0.35, below), (bar as f64 + 0.35, top)], style)
            }))?
            .label(part.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_drawn_as_steps() {
        assert_eq!(steps(&[]), []);
        assert_eq!(steps(&[(0.0, 1.0)]), [(0.0, 1.0)]);
        assert_eq!(
            steps(&[(0.0, 1.0), (2.0, 5.0), (3.0, 4.0)]),
            [(0.0, 1.0), (2.0, 1.0), (2.0, 5.0), (3.0, 5.0), (3.0, 4.0)]
        );
    }
}
