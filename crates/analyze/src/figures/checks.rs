//! Figures checked on what they draw: the PNG's pixels and the SVG's
//! elements, for the slips a reader saw (a legend naming a line the plot
//! lacked, marks filled where the legend says hollow, titles cut at the
//! canvas' edge, panels touching).

use super::*;

/// A scatter with one group of hollow diamonds, one of hollow triangles, and
/// a dashed diagonal whose ends lie beyond the plot.
fn scatter() -> Figure {
    let group = |label: &str, shape, colour| ScatterGroup {
        label: label.into(),
        mark: Mark { colour, shape, hollow: true },
        points: vec![(1.0, 1.0), (2.0, 1.8), (3.0, 2.5)],
        in_legend: true,
    };
    Figure {
        title: "A scatter".into(),
        plot: Plot::Scatter(Scatter {
            x_label: "rate ratio r_max / r".into(),
            y_label: "mean jump per tick".into(),
            x_quantity: Quantity::NonNegative,
            y_quantity: Quantity::NonNegative,
            groups: vec![group("diamonds", Shape::Diamond, 3), group("triangles", Shape::Triangle, 1)],
            lines: vec![("prediction".into(), vec![(0.0, 0.0), (3.3, 3.3)])],
            verticals: Vec::new(),
        }),
    }
}

/// Three stacked panels of steadily rising lines.
fn panels() -> Figure {
    let line = |slope: f64| (0..=60).map(|t| (f64::from(t), slope * f64::from(t))).collect::<Vec<_>>();
    let panel = |label: &str| Panel {
        y_label: label.into(),
        quantity: Quantity::Count,
        series: vec![(0, line(6.0)), (1, line(2.5))],
        bands: Vec::new(),
        reference: None,
    };
    Figure {
        title: "Three panels".into(),
        plot: Plot::Panels(Panels {
            x_end_s: 60.0,
            lines: vec!["machine 1 (rate 6)".into(), "machine 2 (rate 1)".into()],
            panels: vec![panel("logical clock"), panel("lag (ticks)"), panel("queue")],
            windows: Vec::new(),
        }),
    }
}

/// The figure's PNG pixels (RGB) and size.
fn png(figure: &Figure) -> (Vec<u8>, u32, u32) {
    let mut pixels = Vec::new();
    figure.to_png_in(&mut pixels).unwrap();
    (pixels, WIDTH, figure.height())
}

/// The darkness of pixel (x, y): 255 minus its darkest channel.
fn ink(pixels: &[u8], width: u32, x: u32, y: u32) -> u8 {
    let at = 3 * (y * width + x) as usize;
    255 - pixels[at..at + 3].iter().copied().min().unwrap()
}

/// The rotated y-axis titles lie whole on the canvas: nothing is drawn in
/// its two leftmost columns, and the titles are there beside them.
#[test]
fn rotated_axis_titles_are_not_cut_at_the_edge() {
    for figure in [scatter(), panels()] {
        let (pixels, width, height) = png(&figure);
        let edge = (0..height).flat_map(|y| [0, 1].map(|x| ink(&pixels, width, x, y))).max().unwrap();
        assert_eq!(edge, 0, "{}: the left edge is inked", figure.title);
        let titles =
            (0..height).flat_map(|y| (2..40).map(move |x| (x, y))).filter(|&(x, y)| ink(&pixels, width, x, y) > 128);
        assert!(titles.count() > 50, "{}: no y-axis title beside the edge", figure.title);
    }
}

/// Under every panel's x axis (a row dark across the plot) lie blank rows
/// before the next panel's y axis (a column dark down the plot) begins.
#[test]
fn stacked_panels_do_not_touch() {
    let figure = panels();
    let (pixels, width, height) = png(&figure);
    // Well inside the plot: right of the y axis, left of the legend.
    let columns = 150..650;
    let axis_rows: Vec<u32> =
        (0..height).filter(|&y| columns.clone().filter(|&x| ink(&pixels, width, x, y) > 150).count() > 450).collect();
    assert_eq!(axis_rows.len(), 3, "one x axis per panel: rows {axis_rows:?}");
    let y_axis = (40..150).max_by_key(|&x| (0..height).filter(|&y| ink(&pixels, width, x, y) > 150).count()).unwrap();
    for &row in &axis_rows[..2] {
        // Past the axis' tick marks, the y axis of the panel below resumes.
        let next_top = (row + 8..height).find(|&y| ink(&pixels, width, y_axis, y) > 150).unwrap();
        assert!(next_top - row >= 20, "the panel under the axis at row {row} starts {} rows below", next_top - row);
        let blank = (row + 8..next_top).flat_map(|y| columns.clone().map(move |x| (x, y)));
        assert_eq!(blank.filter(|&(x, y)| ink(&pixels, width, x, y) > 100).count(), 0, "ink between panels");
    }
}

/// The dashed line a legend names is drawn, although its ends lie beyond
/// the plot; hollow triangles and diamonds are outlines, not filled.
#[test]
fn legend_lines_are_drawn_and_hollow_marks_are_outlines() {
    let svg = scatter().to_svg().unwrap();
    // The reference line's grey: three legend dashes, and many in the plot.
    let dashes = svg.matches("stroke=\"#3C3C3C\"").count();
    assert!(dashes > 20, "{dashes} dashes: the diagonal is not drawn");
    for fill in ["#D62728", "#FF7F0E"] {
        assert!(!svg.contains(&format!("fill=\"{fill}\"")), "{fill} marks are filled");
        assert!(svg.matches(&format!("stroke=\"{fill}\"")).count() >= 4, "{fill} marks are missing");
    }
}
