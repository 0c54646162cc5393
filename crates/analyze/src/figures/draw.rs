//! Drawing a [`Figure`] on any plotters backend: the title on top, the plot
//! on the left, the legend in its own column on the right.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{
    Band, Bars, Dots, FONT_FAMILY, Figure, MAX_LINE_POINTS, MAX_SCATTER_POINTS, Mark, Panels, Plot, Quantity, Scatter,
    ScatterGroup, Shape, TEXT_SIZE, TITLE_SIZE, colour, cut, steps, thin,
};

type Area<DB> = DrawingArea<DB, Shift>;
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn = Result<(), String>;
/// A mark placed at (x, y), with the range drawn through it.
type Placed = (f64, f64, Option<(f64, f64)>);

/// What a legend entry shows beside its label.
#[derive(Clone, Copy, Debug)]
enum Swatch {
    /// A line of a series: colour index, width, dashed.
    Line(usize, u32, bool),
    /// A dashed grey reference line.
    Reference,
    /// A mark.
    Mark(Mark),
    /// A filled box.
    Box(usize),
    /// A shaded window of time.
    Shade,
}

/// The line style of line `idx` of `n`: lines drawn first are wider, so a
/// later line that covers an earlier one exactly leaves its edges visible.
fn line_look(idx: usize, n: usize) -> (u32, bool) {
    let width = if n <= 1 { 2 } else { (5 - (3 * idx / (n - 1)) as i64).max(2) as u32 };
    (width, idx >= 10)
}

fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT_FAMILY, size).into_font()).color(&BLACK)
}

fn err<E: std::fmt::Display>(error: E) -> String {
    error.to_string()
}

/// Draws `figure` on `root`.
pub(super) fn draw<DB: DrawingBackend>(root: &Area<DB>, figure: &Figure) -> Drawn {
    root.fill(&WHITE).map_err(err)?;
    let title_lines = wrap(root, &figure.title, root.dim_in_pixel().0 as i32 - 24)?;
    let title_height = 14 + 24 * title_lines.len() as u32;
    let (title_area, body) = root.split_vertically(title_height);
    for (idx, line) in title_lines.iter().enumerate() {
        title_area.draw_text(line, &text_style(TITLE_SIZE), (12, 8 + 24 * idx as i32)).map_err(err)?;
    }
    let legend = legend_of(&figure.plot);
    let legend_width = legend_width(root, &legend)?;
    let (plot, legend_area) = body.split_horizontally(root.dim_in_pixel().0 - legend_width);
    draw_legend(&legend_area, &legend)?;
    match &figure.plot {
        Plot::Panels(panels) => draw_panels(&plot, panels),
        Plot::Scatter(scatter) => draw_scatter(&plot, scatter),
        Plot::Bars(bars) => draw_bars(&plot, bars),
        Plot::Dots(dots) => draw_dots(&plot, dots),
    }
}

/// `text` broken into at most two lines that fit `width` pixels.
fn wrap<DB: DrawingBackend>(root: &Area<DB>, text: &str, width: i32) -> Result<Vec<String>, String> {
    let fits = |line: &str| {
        root.estimate_text_size(line, &text_style(TITLE_SIZE)).map(|(w, _)| w as i32 <= width).unwrap_or(true)
    };
    if fits(text) {
        return Ok(vec![text.to_string()]);
    }
    let words: Vec<&str> = text.split(' ').collect();
    for split in (1..words.len()).rev() {
        let first = words[..split].join(" ");
        if fits(&first) {
            return Ok(vec![first, words[split..].join(" ")]);
        }
    }
    Ok(vec![text.to_string()])
}

fn legend_of(plot: &Plot) -> Vec<(String, Swatch)> {
    match plot {
        Plot::Panels(panels) => {
            let n = panels.lines.len();
            let mut out: Vec<(String, Swatch)> = panels
                .lines
                .iter()
                .enumerate()
                .map(|(idx, label)| {
                    let (width, dashed) = line_look(idx, n);
                    (label.clone(), Swatch::Line(idx, width, dashed))
                })
                .collect();
            for panel in &panels.panels {
                if let Some((_, label)) = &panel.reference {
                    out.push((label.clone(), Swatch::Reference));
                }
            }
            out.extend(panels.windows.iter().map(|window| (window.label.clone(), Swatch::Shade)));
            out
        }
        Plot::Scatter(scatter) => {
            let mut out: Vec<(String, Swatch)> =
                scatter.groups.iter().filter(|g| g.in_legend).map(|g| (group_label(g), Swatch::Mark(g.mark))).collect();
            out.extend(scatter.lines.iter().map(|(label, _)| (label.clone(), Swatch::Reference)));
            out.extend(scatter.verticals.iter().map(|(_, label)| (label.clone(), Swatch::Reference)));
            out
        }
        Plot::Bars(bars) => bars.groups.iter().enumerate().map(|(idx, g)| (g.clone(), Swatch::Box(idx))).collect(),
        Plot::Dots(dots) => dots
            .groups
            .iter()
            .enumerate()
            .map(|(idx, g)| (g.clone(), Swatch::Mark(Mark { colour: idx, shape: Shape::Circle, hollow: false })))
            .collect(),
    }
}

fn group_label(group: &ScatterGroup) -> String {
    if group.points.len() > MAX_SCATTER_POINTS { format!("{} (binned)", group.label) } else { group.label.clone() }
}

/// The legend's column width: its longest label, within bounds.
fn legend_width<DB: DrawingBackend>(root: &Area<DB>, legend: &[(String, Swatch)]) -> Result<u32, String> {
    let mut widest = 0;
    for (label, _) in legend {
        widest = widest.max(root.estimate_text_size(label, &text_style(TEXT_SIZE)).map_err(err)?.0);
    }
    Ok((widest + 52).clamp(120, 330))
}

/// How many legend entries fit; the rest are summarised in one line.
const MAX_LEGEND_ROWS: usize = 18;

fn draw_legend<DB: DrawingBackend>(area: &Area<DB>, legend: &[(String, Swatch)]) -> Drawn {
    let width = area.dim_in_pixel().0 as i32;
    let shown = if legend.len() > MAX_LEGEND_ROWS { MAX_LEGEND_ROWS - 1 } else { legend.len() };
    for (row, (label, swatch)) in legend.iter().take(shown).enumerate() {
        let y = 18 + 24 * row as i32;
        draw_swatch(area, *swatch, (10, y))?;
        let text = shorten(area, label, width - 50)?;
        area.draw_text(&text, &text_style(TEXT_SIZE), (42, y - 8)).map_err(err)?;
    }
    if shown < legend.len() {
        let y = 18 + 24 * shown as i32;
        let more = format!("… and {} more", legend.len() - shown);
        area.draw_text(&more, &text_style(TEXT_SIZE), (42, y - 8)).map_err(err)?;
    }
    Ok(())
}

/// `label`, cut with an ellipsis to fit `width` pixels.
fn shorten<DB: DrawingBackend>(area: &Area<DB>, label: &str, width: i32) -> Result<String, String> {
    let fits = |text: &str| area.estimate_text_size(text, &text_style(TEXT_SIZE)).map(|(w, _)| w as i32 <= width);
    if fits(label).map_err(err)? {
        return Ok(label.to_string());
    }
    let chars: Vec<char> = label.chars().collect();
    for keep in (1..chars.len()).rev() {
        let text: String = chars[..keep].iter().collect::<String>() + "…";
        if fits(&text).map_err(err)? {
            return Ok(text);
        }
    }
    Ok("…".to_string())
}

fn draw_swatch<DB: DrawingBackend>(area: &Area<DB>, swatch: Swatch, (x, y): (i32, i32)) -> Drawn {
    match swatch {
        Swatch::Line(idx, width, dashed) => {
            let style = ShapeStyle::from(colour(idx)).stroke_width(width);
            if dashed {
                area.draw(&DashedPathElement::new(vec![(x, y), (x + 26, y)], 6, 4, style)).map_err(err)
            } else {
                area.draw(&PathElement::new(vec![(x, y), (x + 26, y)], style)).map_err(err)
            }
        }
        Swatch::Reference => {
            area.draw(&DashedPathElement::new(vec![(x, y), (x + 26, y)], 6, 4, reference_style())).map_err(err)
        }
        Swatch::Mark(mark) => draw_mark(area, mark, (x + 13, y)),
        Swatch::Box(idx) => {
            area.draw(&Rectangle::new([(x + 4, y - 7), (x + 22, y + 7)], colour(idx).filled())).map_err(err)
        }
        Swatch::Shade => area.draw(&Rectangle::new([(x + 4, y - 7), (x + 22, y + 7)], shade_style())).map_err(err),
    }
}

/// How a window of time is shaded.
fn shade_style() -> ShapeStyle {
    RGBColor(214, 69, 65).mix(0.16).filled()
}

fn reference_style() -> ShapeStyle {
    ShapeStyle::from(RGBColor(60, 60, 60)).stroke_width(2)
}

/// The corners of a triangle or a diamond mark, about its centre.
fn corners(shape: Shape) -> &'static [(i32, i32)] {
    match shape {
        Shape::Triangle => &[(0, -6), (6, 5), (-6, 5)],
        Shape::Diamond => &[(0, -7), (6, 0), (0, 7), (-6, 0)],
        _ => &[],
    }
}

/// The outline of a hollow triangle or diamond: a closed path (plotters'
/// polygon is always filled, whatever its style says).
fn outline(shape: Shape) -> Vec<(i32, i32)> {
    let corners = corners(shape);
    corners.iter().chain(corners.first()).copied().collect()
}

/// Draws a mark centred on a pixel.
fn draw_mark<DB: DrawingBackend>(area: &Area<DB>, mark: Mark, at: (i32, i32)) -> Drawn {
    let base = ShapeStyle::from(colour(mark.colour));
    let style = if mark.hollow { base.stroke_width(2) } else { base.filled() };
    let (x, y) = at;
    let moved = |points: Vec<(i32, i32)>| points.into_iter().map(|(dx, dy)| (x + dx, y + dy)).collect::<Vec<_>>();
    match mark.shape {
        Shape::Circle => area.draw(&Circle::new(at, 5, style)),
        Shape::Triangle | Shape::Diamond if mark.hollow => {
            area.draw(&PathElement::new(moved(outline(mark.shape)), style))
        }
        Shape::Triangle | Shape::Diamond => area.draw(&Polygon::new(moved(corners(mark.shape).to_vec()), style)),
        Shape::Square => area.draw(&Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], style)),
        Shape::Cross => area.draw(&Cross::new(at, 5, base.stroke_width(2))),
    }
    .map_err(err)
}

/// The y range and how many labels an axis gets for values from `low` to `high`.
fn y_range(quantity: Quantity, low: f64, high: f64) -> (f64, f64, usize) {
    let high = if high.is_finite() { high } else { 0.0 };
    let low = if low.is_finite() { low } else { 0.0 };
    match quantity {
        Quantity::Share => (0.0, 1.0, 6),
        Quantity::Count => {
            // Whole numbers only: at most one label per unit.
            let top = (high.max(0.0) * 1.05).ceil().max(high.max(0.0) + 1.0).max(1.0);
            (0.0, top, (top as usize + 1).min(8))
        }
        Quantity::NonNegative => (0.0, if high > 0.0 { high * 1.08 } else { 1.0 }, 8),
        Quantity::Signed => {
            let span = (high - low).abs().max(1e-9);
            let lo = if low < 0.0 { low - 0.08 * span } else { 0.0 };
            let hi = if high > 0.0 { high + 0.08 * span } else { 0.0 };
            if hi - lo < 1e-9 { (-1.0, 1.0, 5) } else { (lo, hi, 8) }
        }
    }
}

/// An axis label without needless decimals: `50`, `2.5`, `0.25`; empty for
/// a fraction on a count axis.
fn tick_label(value: f64, quantity: Quantity) -> String {
    let rounded = value.round();
    if (value - rounded).abs() < 1e-9 {
        // `-0` reads as a negative value.
        format!("{}", if rounded == 0.0 { 0.0 } else { rounded })
    } else if quantity == Quantity::Count {
        String::new()
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn x_labels_for(quantity: Quantity, high: f64) -> usize {
    match quantity {
        Quantity::Count => (high as usize + 1).clamp(2, 10),
        _ => 10,
    }
}

/// The blank rows between two stacked panels, in pixels.
const PANEL_GAP: u32 = 18;

fn draw_panels<DB: DrawingBackend>(area: &Area<DB>, panels: &Panels) -> Drawn {
    let n = panels.panels.len().max(1);
    let x_end = if panels.x_end_s > 0.0 { panels.x_end_s } else { 1.0 };
    let n_lines = panels.lines.len();
    let height = area.dim_in_pixel().1;
    let per_panel = (height.saturating_sub(40)) / n as u32;
    let mut rest = area.clone();
    for (idx, panel) in panels.panels.iter().enumerate() {
        let last = idx + 1 == n;
        let (here, below) = if last { (rest.clone(), rest.clone()) } else { rest.split_vertically(per_panel) };
        rest = below;
        let series: Vec<(usize, Vec<(f64, f64)>)> =
            panel.series.iter().map(|(line, points)| (*line, thin(&cut(points, x_end), MAX_LINE_POINTS))).collect();
        let bands: Vec<(usize, Band)> = panel
            .bands
            .iter()
            .map(|(line, points)| (*line, points.iter().copied().filter(|p| p.0 <= x_end).collect()))
            .collect();
        let values = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.1))
            .chain(bands.iter().flat_map(|(_, p)| p.iter().flat_map(|p| [p.1, p.2])))
            .chain(panel.reference.iter().map(|r| r.0));
        let (low, high) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (y_lo, y_hi, y_labels) = y_range(panel.quantity, low, high);
        let mut chart = ChartBuilder::on(&here)
            .margin_right(14)
            .margin_top(6)
            // A gap under every panel but the last, so that no panel's axis
            // touches the next one's top.
            .margin_bottom(if last { 0 } else { PANEL_GAP })
            .x_label_area_size(if last { 48 } else { 6 })
            .y_label_area_size(84)
            .build_cartesian_2d(0.0..x_end, y_lo..y_hi)
            .map_err(err)?;
        let quantity = panel.quantity;
        let y_format = |v: &f64| tick_label(*v, quantity);
        let x_format = |v: &f64| if last { tick_label(*v, Quantity::NonNegative) } else { String::new() };
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(panel.y_label.as_str())
            .y_labels(y_labels)
            .x_labels(10)
            .y_label_formatter(&y_format)
            .x_label_formatter(&x_format)
            .label_style(text_style(TEXT_SIZE))
            .axis_desc_style(text_style(TEXT_SIZE))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215));
        if last {
            mesh.x_desc("time since the run started (s)");
        }
        mesh.draw().map_err(err)?;
        for window in &panels.windows {
            // An instant (a clock step) gets a band of a 300th of the axis.
            let to = window.to_s.max(window.from_s + x_end / 300.0).min(x_end);
            if window.from_s < x_end {
                let corners = [(window.from_s.max(0.0), y_lo), (to, y_hi)];
                chart.draw_series(std::iter::once(Rectangle::new(corners, shade_style()))).map_err(err)?;
            }
        }
        for (line, points) in &bands {
            let style = colour(*line).mix(0.25).filled();
            let mut outline: Vec<(f64, f64)> = steps(&points.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
            let upper = steps(&points.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>());
            outline.extend(upper.into_iter().rev());
            chart.draw_series(std::iter::once(Polygon::new(outline, style))).map_err(err)?;
        }
        for (line, points) in &series {
            let (width, dashed) = line_look(*line, n_lines);
            let style = ShapeStyle::from(colour(*line)).stroke_width(width);
            if dashed {
                chart.draw_series(DashedLineSeries::new(steps(points), 8, 5, style)).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(steps(points), style)).map_err(err)?;
            }
        }
        if let Some((value, _)) = &panel.reference {
            chart
                .draw_series(DashedLineSeries::new(vec![(0.0, *value), (x_end, *value)], 8, 5, reference_style()))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn draw_scatter<DB: DrawingBackend>(area: &Area<DB>, scatter: &Scatter) -> Drawn {
    // Large groups are binned along x: the mean of a bin and its range.
    let groups: Vec<(Mark, Vec<Placed>)> = scatter.groups.iter().map(|g| (g.mark, bin(&g.points))).collect();
    let xs = groups.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)).chain(scatter.verticals.iter().map(|v| v.0));
    let (x_low, x_high) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let ys = groups.iter().flat_map(|(_, p)| p.iter().flat_map(|p| [Some(p.1), p.2.map(|r| r.0), p.2.map(|r| r.1)]));
    let (y_low, y_high) = ys.flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (x_lo, x_hi, _) = y_range(scatter.x_quantity, x_low.min(0.0), x_high);
    let (x_lo, x_hi) = if scatter.x_quantity == Quantity::Signed { (x_lo, x_hi) } else { (0.0, x_hi) };
    let (y_lo, y_hi, y_labels) = y_range(scatter.y_quantity, y_low.min(0.0), y_high);
    let mut chart = ChartBuilder::on(area)
        .margin_right(14)
        .margin_top(6)
        .x_label_area_size(48)
        .y_label_area_size(84)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(err)?;
    let (xq, yq) = (scatter.x_quantity, scatter.y_quantity);
    chart
        .configure_mesh()
        .x_desc(scatter.x_label.as_str())
        .y_desc(scatter.y_label.as_str())
        .x_labels(x_labels_for(xq, x_hi))
        .y_labels(y_labels)
        .x_label_formatter(&|v| tick_label(*v, xq))
        .y_label_formatter(&|v| tick_label(*v, yq))
        .label_style(text_style(TEXT_SIZE))
        .axis_desc_style(text_style(TEXT_SIZE))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)?;
    for (_, points) in &scatter.lines {
        for segment in points.windows(2) {
            if let Some(inside) = clip(segment[0], segment[1], (x_lo, x_hi), (y_lo, y_hi)) {
                chart.draw_series(DashedLineSeries::new(inside, 8, 5, reference_style())).map_err(err)?;
            }
        }
    }
    for (x, _) in &scatter.verticals {
        chart.draw_series(DashedLineSeries::new(vec![(*x, y_lo), (*x, y_hi)], 8, 5, reference_style())).map_err(err)?;
    }
    for (mark, points) in &groups {
        let line = ShapeStyle::from(colour(mark.colour)).stroke_width(2);
        chart
            .draw_series(
                points.iter().filter_map(|p| p.2.map(|(lo, hi)| PathElement::new(vec![(p.0, lo), (p.0, hi)], line))),
            )
            .map_err(err)?;
        draw_marks(&mut chart, *mark, points.iter().map(|p| (p.0, p.1)))?;
    }
    Ok(())
}

/// The part of the segment from `a` to `b` inside the rectangle `x` × `y`
/// (Liang and Barsky's clipping), or `None` when none of it is: a line
/// whose ends lie outside the plot still crosses it.
fn clip(a: (f64, f64), b: (f64, f64), x: (f64, f64), y: (f64, f64)) -> Option<Vec<(f64, f64)>> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut enter, mut leave) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - x.0), (dx, x.1 - a.0), (-dy, a.1 - y.0), (dy, y.1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                enter = enter.max(t);
            } else {
                leave = leave.min(t);
            }
        }
    }
    (enter < leave).then(|| vec![(a.0 + enter * dx, a.1 + enter * dy), (a.0 + leave * dx, a.1 + leave * dy)])
}

/// The points of a group, binned along x when there are too many.
fn bin(points: &[(f64, f64)]) -> Vec<Placed> {
    if points.len() <= MAX_SCATTER_POINTS {
        return points.iter().map(|&(x, y)| (x, y, None)).collect();
    }
    const BINS: usize = 80;
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let width = ((hi - lo) / BINS as f64).max(1e-12);
    // (sum x, sum y, n, min y, max y) per bin.
    let mut bins = vec![(0.0, 0.0, 0usize, f64::INFINITY, f64::NEG_INFINITY); BINS];
    for &(x, y) in points {
        let idx = (((x - lo) / width) as usize).min(BINS - 1);
        let b = &mut bins[idx];
        *b = (b.0 + x, b.1 + y, b.2 + 1, b.3.min(y), b.4.max(y));
    }
    bins.into_iter()
        .filter(|b| b.2 > 0)
        .map(|(sx, sy, n, min, max)| (sx / n as f64, sy / n as f64, Some((min, max))))
        .collect()
}

/// Marks at data coordinates.
fn draw_marks<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    mark: Mark,
    points: impl Iterator<Item = (f64, f64)>,
) -> Drawn {
    let base = ShapeStyle::from(colour(mark.colour));
    let style = if mark.hollow { base.stroke_width(2) } else { base.filled() };
    let points: Vec<(f64, f64)> = points.collect();
    let result = match mark.shape {
        Shape::Circle => chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, style))).map(|_| ()),
        Shape::Triangle | Shape::Diamond if mark.hollow => chart
            .draw_series(points.iter().map(|&p| EmptyElement::at(p) + PathElement::new(outline(mark.shape), style)))
            .map(|_| ()),
        Shape::Triangle | Shape::Diamond => chart
            .draw_series(
                points.iter().map(|&p| EmptyElement::at(p) + Polygon::new(corners(mark.shape).to_vec(), style)),
            )
            .map(|_| ()),
        Shape::Square => chart
            .draw_series(points.iter().map(|&p| EmptyElement::at(p) + Rectangle::new([(-5, -5), (5, 5)], style)))
            .map(|_| ()),
        Shape::Cross => chart.draw_series(points.iter().map(|&p| Cross::new(p, 5, base.stroke_width(2)))).map(|_| ()),
    };
    result.map_err(err)
}

/// A chart whose x axis holds `n` categories at 0, 1, …, n − 1. Their names
/// are written centred under them, on two staggered rows when one row would
/// make them collide (and every other name past that); `spans` name runs of
/// categories on a row below.
#[allow(clippy::too_many_arguments)] // The axes' texts and ranges; a struct would only rename them.
fn category_chart<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    categories: &[String],
    spans: &[(String, usize)],
    x_label: &str,
    y_label: &str,
    quantity: Quantity,
    high: f64,
) -> Result<Chart<'a, DB>, String> {
    const Y_LABEL_AREA: u32 = 84;
    const ROW: i32 = 22;
    let n = categories.len().max(1);
    let widths: Vec<u32> = categories
        .iter()
        .map(|c| area.estimate_text_size(c, &text_style(TEXT_SIZE)).map(|s| s.0))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    let widest = f64::from(widths.iter().copied().max().unwrap_or(0)) + 8.0;
    let slot = f64::from(area.dim_in_pixel().0.saturating_sub(Y_LABEL_AREA + 14)) / n as f64;
    let (rows, stride) = if widest <= slot { (1, 1) } else { (2, ((widest / (2.0 * slot)).ceil() as usize).max(1)) };
    let span_rows = i32::from(!spans.is_empty());
    let desc = if x_label.is_empty() { 0 } else { 26 };
    let (y_lo, y_hi, y_labels) = y_range(quantity, 0.0, high);
    let mut chart = ChartBuilder::on(area)
        .margin_right(14)
        .margin_top(6)
        .x_label_area_size(12 + ROW as u32 * (rows + span_rows as u32) + desc)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y_lo..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| tick_label(*v, quantity))
        .y_labels(y_labels)
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(text_style(TEXT_SIZE))
        .axis_desc_style(text_style(TEXT_SIZE))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)?;
    let base = area.get_base_pixel();
    let at = |x: f64| {
        let (px, py) = chart.backend_coord(&(x, y_lo));
        (px - base.0, py - base.1)
    };
    for (k, (name, width)) in categories.iter().zip(&widths).enumerate() {
        if k % stride != 0 {
            continue;
        }
        let row = ((k / stride) % rows as usize) as i32;
        let (x, y) = at(k as f64);
        area.draw_text(name, &text_style(TEXT_SIZE), (x - *width as i32 / 2, y + 8 + ROW * row)).map_err(err)?;
    }
    let mut first = 0usize;
    let mut separators = Vec::new();
    for (name, len) in spans {
        let (x, y) = at(first as f64 + (*len as f64 - 1.0) / 2.0);
        let width = area.estimate_text_size(name, &text_style(TEXT_SIZE)).map_err(err)?.0 as i32;
        area.draw_text(name, &text_style(TEXT_SIZE), (x - width / 2, y + 8 + ROW * rows as i32)).map_err(err)?;
        if first > 0 {
            separators.push(first as f64 - 0.5);
        }
        first += len;
    }
    let line = BLACK.mix(0.35);
    chart
        .draw_series(separators.into_iter().map(|x| PathElement::new(vec![(x, y_lo), (x, y_hi)], line)))
        .map_err(err)?;
    Ok(chart)
}

fn draw_bars<DB: DrawingBackend>(area: &Area<DB>, bars: &Bars) -> Drawn {
    let high = if bars.stacked {
        bars.values.iter().map(|row| row.iter().sum::<f64>()).fold(0.0, f64::max)
    } else {
        bars.values.iter().flatten().copied().fold(0.0, f64::max)
    };
    let mut chart =
        category_chart(area, &bars.categories, &bars.spans, &bars.x_label, &bars.y_label, bars.quantity, high)?;
    let n_groups = bars.groups.len().max(1);
    for group in 0..bars.groups.len() {
        let style = colour(group).filled();
        let rectangles = bars.values.iter().enumerate().map(|(category, row)| {
            let x = category as f64;
            let value = row.get(group).copied().unwrap_or(0.0);
            if bars.stacked {
                let below: f64 = row[..group.min(row.len())].iter().sum();
                Rectangle::new([(x - 0.36, below), (x + 0.36, below + value)], style)
            } else {
                let slot = 0.8 / n_groups as f64;
                let left = x - 0.4 + slot * group as f64;
                Rectangle::new([(left + slot * 0.08, 0.0), (left + slot * 0.92, value)], style)
            }
        });
        chart.draw_series(rectangles).map_err(err)?;
    }
    Ok(())
}

fn draw_dots<DB: DrawingBackend>(area: &Area<DB>, dots: &Dots) -> Drawn {
    let high = dots.items.iter().map(|i| i.range.map_or(i.value, |r| r.1.max(i.value))).fold(0.0, f64::max);
    let mut chart = category_chart(area, &dots.categories, &[], "", &dots.y_label, dots.quantity, high)?;
    let n = dots.categories.len().max(1);
    for boundary in 1..n {
        // Separators, so that no one reads the categories as a continuous axis.
        let x = boundary as f64 - 0.5;
        let (_, y_hi, _) = y_range(dots.quantity, 0.0, high);
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(x, 0.0), (x, y_hi)], BLACK.mix(0.15))))
            .map_err(err)?;
    }
    let slot = 0.8 / dots.groups.len().max(1) as f64;
    for group in 0..dots.groups.len() {
        let mut placed: Vec<Placed> = Vec::new();
        for category in 0..n {
            let here: Vec<_> = dots.items.iter().filter(|i| i.group == group && i.category == category).collect();
            for (k, item) in here.iter().enumerate() {
                // Items of one group and category spread across its slot, so none hides another.
                let within = (k as f64 + 0.5) / here.len() as f64;
                let x = category as f64 - 0.4 + slot * (group as f64 + 0.15 + 0.7 * within);
                placed.push((x, item.value, item.range));
            }
        }
        let line = ShapeStyle::from(colour(group)).stroke_width(2);
        chart
            .draw_series(
                placed.iter().filter_map(|p| p.2.map(|(lo, hi)| PathElement::new(vec![(p.0, lo), (p.0, hi)], line))),
            )
            .map_err(err)?;
        let mark = Mark { colour: group, shape: Shape::Circle, hollow: false };
        draw_marks(&mut chart, mark, placed.iter().map(|p| (p.0, p.1)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_axes_have_whole_ticks_and_shares_end_at_one() {
        assert_eq!(y_range(Quantity::Share, 0.0, 0.4), (0.0, 1.0, 6));
        let (lo, hi, labels) = y_range(Quantity::Count, 0.0, 4.0);
        assert_eq!((lo, hi), (0.0, 5.0));
        assert!(labels <= 6, "{labels}: a label per unit at most");
        assert_eq!(tick_label(0.4, Quantity::Count), "");
        assert_eq!(tick_label(2.0, Quantity::Count), "2");
        assert_eq!(tick_label(-0.0, Quantity::Signed), "0");
        assert_eq!(tick_label(0.25, Quantity::NonNegative), "0.25");
        let (lo, _, _) = y_range(Quantity::NonNegative, -3.0, 4.0);
        assert_eq!(lo, 0.0, "a non-negative axis never starts below 0");
    }

    #[test]
    fn lines_drawn_first_are_wider() {
        assert_eq!(line_look(0, 1), (2, false));
        let widths: Vec<u32> = (0..3).map(|idx| line_look(idx, 3).0).collect();
        assert_eq!(widths, [5, 4, 2]);
        assert!(line_look(11, 12).1, "past the palette, lines are dashed");
    }

    #[test]
    fn a_line_is_clipped_to_the_plot_not_dropped() {
        // The prediction's diagonal ends beyond the plot: its part inside is kept.
        let inside = clip((0.0, 0.0), (6.3, 6.3), (0.0, 6.5), (0.0, 5.9)).unwrap();
        assert_eq!(inside, [(0.0, 0.0), (5.9, 5.9)]);
        assert_eq!(clip((7.0, 0.0), (8.0, 1.0), (0.0, 6.0), (0.0, 6.0)), None);
        let crossing = clip((-1.0, 3.0), (7.0, 3.0), (0.0, 6.0), (0.0, 6.0)).unwrap();
        assert_eq!(crossing, [(0.0, 3.0), (6.0, 3.0)]);
    }

    #[test]
    fn large_scatters_are_binned() {
        let points: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 13) as f64)).collect();
        let binned = bin(&points);
        assert!(binned.len() <= 80);
        assert!(binned.iter().all(|b| b.2.is_some_and(|(lo, hi)| lo <= b.1 && b.1 <= hi)));
        assert_eq!(bin(&points[..3]).len(), 3);
    }
}
