//! Figures, drawn with plotters as SVG and PNG from the same description.
//!
//! A [`Figure`] is data: a title and a [`Plot`] (time panels, a scatter,
//! bars, or dots in categories). `draw` turns it into pixels the same way
//! for every kind, so that every figure follows the same rules:
//! - text is DejaVu Sans, embedded in the binary and registered with
//!   plotters, at sizes that stay at least 10 px high when a figure is shown
//!   at its own width or a little below (see [`TEXT_SIZE`]);
//! - the legend sits in a column right of the plot, never over the data;
//! - integer quantities get integer ticks, shares end at 1, time axes end at
//!   the run's end;
//! - series of one panel differ by colour, width and dash, so two machines
//!   with identical lines still show both;
//! - the size of the output is bounded whatever the data: series are thinned
//!   to [`MAX_LINE_POINTS`] points, large scatters are binned.

#[cfg(test)]
mod checks;
mod draw;
mod raster;

use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// The width of every figure, in pixels (its height depends on its kind).
pub const WIDTH: u32 = 960;

/// The font family figures name, registered with plotters from the embedded
/// DejaVu Sans; `report.html` embeds the same font once under this name.
pub const FONT_FAMILY: &str = "DejaVu Sans";

/// The size of tick labels, legends and axis descriptions, in plotters'
/// units. Plotters writes `font-size = size / 1.24` into SVG, so 16 gives
/// 12.9 px: at least 10 px down to a figure shown at 78% of its width.
pub const TEXT_SIZE: u32 = 16;

/// The size of a figure's title (16.1 px in SVG).
pub const TITLE_SIZE: u32 = 20;

/// At most this many points of one line are drawn; more are merged (keeping
/// each stretch's largest value, so peaks survive).
pub const MAX_LINE_POINTS: usize = 600;

/// A scatter group with more points than this is drawn binned along x: the
/// mean of each bin as a mark, its range as a line.
pub const MAX_SCATTER_POINTS: usize = 400;

/// A figure: a title and what it plots.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The title, drawn at the top (wrapped over two lines when long).
    pub title: String,
    /// What it plots.
    pub plot: Plot,
}

/// The kinds of figure.
#[derive(Clone, Debug, PartialEq)]
pub enum Plot {
    /// Panels stacked over one time axis.
    Panels(Panels),
    /// Marks at (x, y), in groups, with reference lines.
    Scatter(Scatter),
    /// Bars in categories, grouped side by side or stacked.
    Bars(Bars),
    /// Dots (with optional ranges) in categories, one slot per group.
    Dots(Dots),
}

/// What kind of quantity an axis shows, which decides its ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// A count: integer ticks, from 0.
    Count,
    /// A share: from 0 to exactly 1.
    Share,
    /// A non-negative real number, from 0.
    NonNegative,
    /// Any real number (a slope may be negative).
    Signed,
}

/// The shape of a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A circle.
    Circle,
    /// A triangle.
    Triangle,
    /// A square.
    Square,
    /// A diamond.
    Diamond,
    /// A cross.
    Cross,
}

impl Shape {
    /// The shape of group number `idx`.
    pub fn nth(idx: usize) -> Shape {
        [Shape::Circle, Shape::Triangle, Shape::Square, Shape::Diamond, Shape::Cross][idx % 5]
    }
}

/// How one group of marks looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Palette index ([`colour`]).
    pub colour: usize,
    /// Its shape.
    pub shape: Shape,
    /// Drawn as an outline (for runs left out of the aggregates).
    pub hollow: bool,
}

/// Panels over one time axis, from 0 to the run's end.
#[derive(Clone, Debug, PartialEq)]
pub struct Panels {
    /// The end of the time axis, in seconds: the run's end.
    pub x_end_s: f64,
    /// The legend's label of each line, by line index (shared by the panels).
    pub lines: Vec<String>,
    /// The panels, top to bottom.
    pub panels: Vec<Panel>,
    /// Windows of time shaded on every panel (the fault plan's), each in the legend.
    pub windows: Vec<Window>,
}

/// A window of time shaded on a time axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Its start, in seconds.
    pub from_s: f64,
    /// Its end, in seconds (equal to its start for an instant).
    pub to_s: f64,
    /// The legend's label.
    pub label: String,
}

/// One panel of [`Panels`].
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The y axis' description (short: it is written along a short axis).
    pub y_label: String,
    /// What the values are.
    pub quantity: Quantity,
    /// (line index, points (seconds, value)) of step functions.
    pub series: Vec<(usize, Vec<(f64, f64)>)>,
    /// (line index, points (seconds, low, high)): a band between two step
    /// functions, for many machines drawn as one group.
    pub bands: Vec<(usize, Band)>,
    /// A horizontal dashed reference line: (value, legend label).
    pub reference: Option<(f64, String)>,
}

/// The points of a band: (seconds, low, high).
pub type Band = Vec<(f64, f64, f64)>;

/// Marks at (x, y).
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    /// The x axis' description.
    pub x_label: String,
    /// The y axis' description.
    pub y_label: String,
    /// What x is.
    pub x_quantity: Quantity,
    /// What y is.
    pub y_quantity: Quantity,
    /// The groups of marks.
    pub groups: Vec<ScatterGroup>,
    /// Reference lines in data coordinates (a model's prediction), dashed.
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
    /// Vertical reference lines: (x, legend label).
    pub verticals: Vec<(f64, String)>,
}

/// One group of a [`Scatter`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterGroup {
    /// The legend's label.
    pub label: String,
    /// How its marks look.
    pub mark: Mark,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// Whether the legend names it (a variant of another group's marks may
    /// be explained by one key entry instead).
    pub in_legend: bool,
}

/// Bars in categories.
#[derive(Clone, Debug, PartialEq)]
pub struct Bars {
    /// The x axis' description.
    pub x_label: String,
    /// The y axis' description.
    pub y_label: String,
    /// What the values are.
    pub quantity: Quantity,
    /// The category names, left to right.
    pub categories: Vec<String>,
    /// The group names (legend).
    pub groups: Vec<String>,
    /// `values[category][group]`.
    pub values: Vec<Vec<f64>>,
    /// Names written under runs of consecutive categories (name, how many
    /// categories), for categories that belong to larger ones.
    pub spans: Vec<(String, usize)>,
    /// Stacked (shares adding up within a category) rather than side by side.
    pub stacked: bool,
}

/// One dot of [`Dots`]: a value (with an optional range) for one group
/// within one category.
#[derive(Clone, Debug, PartialEq)]
pub struct DotItem {
    /// Index into the categories.
    pub category: usize,
    /// Index into the groups.
    pub group: usize,
    /// The value drawn as a dot.
    pub value: f64,
    /// A range drawn as a vertical line.
    pub range: Option<(f64, f64)>,
}

/// Dots in categories, each group in its own slot.
#[derive(Clone, Debug, PartialEq)]
pub struct Dots {
    /// The y axis' description.
    pub y_label: String,
    /// What the values are.
    pub quantity: Quantity,
    /// The category names, left to right.
    pub categories: Vec<String>,
    /// The group names (legend).
    pub groups: Vec<String>,
    /// The dots.
    pub items: Vec<DotItem>,
}

/// The colour of palette entry `idx`: ten colours that stay apart for
/// readers with the common colour-vision deficiencies (Tableau 10).
pub fn colour(idx: usize) -> RGBColor {
    const COLOURS: [RGBColor; 10] = [
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
    COLOURS[idx % COLOURS.len()]
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Bold titles would need a second font in the report; every text is regular.
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The embedded font is valid by construction; a failure is a bug of the build.
            assert!(
                plotters::style::register_font(FONT_FAMILY, style, dejavu::sans::regular()).is_ok(),
                "the embedded font loads"
            );
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

impl Figure {
    /// Its height in pixels.
    pub fn height(&self) -> u32 {
        match &self.plot {
            Plot::Panels(panels) => 70 + 190 * panels.panels.len().max(1) as u32 + 40,
            Plot::Scatter(_) | Plot::Bars(_) | Plot::Dots(_) => 500,
        }
    }

    /// Draws it as SVG text.
    pub fn to_svg(&self) -> Result<String, DrawError> {
        register_font();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, self.height())).into_drawing_area();
            draw::draw(&root, self).map_err(|message| self.error(message))?;
            root.present().map_err(|e| self.error(e.to_string()))?;
        }
        Ok(svg)
    }

    /// Draws it as a PNG image: the file's bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, DrawError> {
        self.to_png_in(&mut Vec::new())
    }

    /// Draws it as a PNG image (the file's bytes), with `pixels` as the
    /// canvas: a buffer kept from one figure to the next. A figure's pixels
    /// are megabytes; allocated afresh for each figure, they left the memory
    /// allocator holding several such blocks, which counted in the
    /// analysis' peak memory.
    pub fn to_png_in(&self, pixels: &mut Vec<u8>) -> Result<Vec<u8>, DrawError> {
        use image::ImageEncoder as _;
        register_font();
        let (width, height) = (WIDTH, self.height());
        // What the canvas held from the figure before does not matter:
        // `draw::draw` starts by painting all of it white.
        pixels.resize(3 * width as usize * height as usize, 0);
        {
            let root = raster::Raster::new(pixels, (width, height)).into_drawing_area();
            draw::draw(&root, self).map_err(|message| self.error(message))?;
            root.present().map_err(|e| self.error(e.to_string()))?;
        }
        // What plotters does with a file as its target: the same encoder,
        // with the same settings, so the same bytes. The caller writes them
        // as it writes every output.
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(pixels, width, height, image::ColorType::Rgb8)
            .map_err(|e| self.error(e.to_string()))?;
        Ok(png)
    }

    fn error(&self, message: String) -> DrawError {
        DrawError { what: self.title.clone(), message }
    }
}

/// The points of a step function: every series drawn over time (a logical
/// clock, a lag, a queue length) keeps its value until the next change, so a
/// sloped segment between two samples would show values it never had.
pub fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (idx, &(x, y)) in points.iter().enumerate() {
        if idx > 0 {
            out.push((x, points[idx - 1].1));
        }
        out.push((x, y));
    }
    out
}

/// At most `max` points of a series, each the largest value of a stretch of
/// equal width in time, so that a spike is never thinned away.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else { return Vec::new() };
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let width = (last.0 - first.0) / max as f64;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(max + 1);
    let mut current: Option<(usize, (f64, f64))> = None;
    for &(x, y) in points {
        let bucket = if width > 0.0 { (((x - first.0) / width) as usize).min(max - 1) } else { 0 };
        current = match current {
            Some((b, (bx, by))) if b == bucket => Some((b, (bx, by.max(y)))),
            Some((_, point)) => {
                out.push(point);
                Some((bucket, (x, y)))
            }
            None => Some((bucket, (x, y))),
        };
    }
    out.extend(current.map(|(_, point)| point));
    out
}

/// The series cut at `x_end`: a step function's value at the end is the last
/// value before it.
pub fn cut(points: &[(f64, f64)], x_end: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 <= x_end).collect();
    if let Some(&(_, y)) = out.last() {
        out.push((x_end, y));
    }
    out
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

    #[test]
    fn thinning_keeps_the_peaks_and_bounds_the_points() {
        let points: Vec<(f64, f64)> =
            (0..100_000).map(|i| (i as f64 / 100.0, if i == 54_321 { 1e6 } else { (i % 7) as f64 })).collect();
        let thinned = thin(&points, MAX_LINE_POINTS);
        assert!(thinned.len() <= MAX_LINE_POINTS, "{}", thinned.len());
        assert!(thinned.iter().any(|p| p.1 == 1e6));
        assert_eq!(thin(&points[..10], MAX_LINE_POINTS), points[..10]);
    }

    #[test]
    fn series_end_at_the_run_end() {
        assert_eq!(cut(&[(0.0, 1.0), (5.0, 2.0), (10.05, 3.0)], 10.0), [(0.0, 1.0), (5.0, 2.0), (10.0, 2.0)]);
        assert_eq!(cut(&[], 10.0), []);
    }
}
