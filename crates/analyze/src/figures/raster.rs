//! The PNG canvas: plotters' bitmap backend, with text laid out glyph by
//! glyph on a baseline.
//!
//! Plotters draws text on a bitmap by putting each glyph's inked box at the
//! pen position, without the glyph's left bearing, and centres the line on
//! half the font size, whatever the glyphs' ascent. So digits sat unevenly
//! ("35 0"), and a y-axis title, rotated, reached past the canvas' left
//! edge and was cut. Here a line's box is the font's ascent over its
//! descent, every glyph is placed at its own origin on the baseline (with
//! its bearing and the pair's kerning), and the box is anchored and turned
//! as plotters asks; everything else goes to the bitmap backend as it is.
//! The SVGs need none of this: a browser lays their text out.

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::backend::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};

type BitMapError = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

/// The embedded font, parsed once.
fn font() -> &'static FontRef<'static> {
    static FONT: std::sync::OnceLock<FontRef<'static>> = std::sync::OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(dejavu::sans::regular()).expect("the embedded font parses"))
}

/// A line of text: its width, its height (ascent over descent), its
/// ascent, and each glyph's origin on the pen's line.
struct Line {
    width: f32,
    height: f32,
    ascent: f32,
    glyphs: Vec<(ab_glyph::GlyphId, f32)>,
}

/// Lays `text` out at plotters' size `size` (the font's height in pixels,
/// as plotters scales it).
fn lay_out(text: &str, size: f64) -> Line {
    let font = font().as_scaled(size as f32);
    let mut pen = 0.0;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(previous) = previous {
            pen += font.kern(previous, id);
        }
        glyphs.push((id, pen));
        pen += font.h_advance(id);
        previous = Some(id);
    }
    Line { width: pen, height: font.ascent() - font.descent(), ascent: font.ascent(), glyphs }
}

/// Plotters' bitmap backend with its text drawn by [`lay_out`].
pub(super) struct Raster<'a> {
    inner: BitMapBackend<'a>,
}

impl std::fmt::Debug for Raster<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raster").field("size", &self.inner.get_size()).finish()
    }
}

impl<'a> Raster<'a> {
    /// A canvas of `size` over `pixels` (RGB, row by row).
    pub(super) fn new(pixels: &'a mut [u8], size: (u32, u32)) -> Raster<'a> {
        Raster { inner: BitMapBackend::with_buffer(pixels, size) }
    }
}

impl DrawingBackend for Raster<'_> {
    type ErrorType = BitMapError;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<BitMapError>> {
        let line = lay_out(text, style.size());
        Ok((line.width.ceil() as u32, line.height.ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<BitMapError>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let line = lay_out(text, style.size());
        // Where the line's box starts, before it turns about `pos`.
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Right => -line.width,
            HPos::Center => -line.width / 2.0,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -line.height / 2.0,
            VPos::Bottom => -line.height,
        };
        let turn = style.transform();
        let (width, height) = self.get_size();
        let font = font().as_scaled(style.size() as f32);
        for &(id, pen) in &line.glyphs {
            let glyph = id.with_scale_and_position(font.scale(), point(dx + pen, dy + line.ascent));
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|x, y, coverage| pixels.push((x, y, coverage)));
            for (x, y, coverage) in pixels {
                if coverage <= 0.0 {
                    continue;
                }
                let (x, y) = (bounds.min.x as i32 + x as i32, bounds.min.y as i32 + y as i32);
                let (x, y) = turn.transform(x, y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && y >= 0 && (x as u32) < width && (y as u32) < height {
                    let ink = BackendColor { alpha: color.alpha * f64::from(coverage.min(1.0)), rgb: color.rgb };
                    self.inner.draw_pixel((x, y), ink)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ink of `text` drawn at size 16 on a white canvas: which columns
    /// hold any, as runs of consecutive columns.
    fn ink_runs(text: &str) -> Vec<(usize, usize)> {
        let (width, height) = (200u32, 40u32);
        let mut pixels = vec![255u8; 3 * (width * height) as usize];
        super::super::register_font();
        {
            let mut canvas = Raster::new(&mut pixels, (width, height));
            let style =
                plotters::style::TextStyle::from(("DejaVu Sans", 16).into_font()).color(&plotters::style::BLACK);
            canvas.draw_text(text, &style, (10, 10)).unwrap();
        }
        let inked = |x: u32| (0..height).any(|y| pixels[3 * (y * width + x) as usize] < 160);
        let mut runs = Vec::new();
        let mut start = None;
        for x in 0..width {
            match (inked(x), start) {
                (true, None) => start = Some(x as usize),
                (false, Some(s)) => {
                    runs.push((s, x as usize));
                    start = None;
                }
                _ => {}
            }
        }
        runs
    }

    use plotters::style::IntoFont;

    /// Digits have one advance in DejaVu Sans: drawn on their origins, the
    /// gaps between their ink differ by their bearings only, never by the
    /// several pixels that made "350" read "35 0".
    #[test]
    fn digits_are_evenly_spaced() {
        for text in ["350", "150", "505", "2025"] {
            let runs = ink_runs(text);
            assert_eq!(runs.len(), text.len(), "{text}: {runs:?}");
            let centres: Vec<f64> = runs.iter().map(|(a, b)| (a + b) as f64 / 2.0).collect();
            let steps: Vec<f64> = centres.windows(2).map(|w| w[1] - w[0]).collect();
            let (low, high) = steps.iter().fold((f64::MAX, f64::MIN), |(l, h), &s| (l.min(s), h.max(s)));
            assert!(high - low <= 1.5, "{text}: glyph centres {centres:?}");
        }
    }
}
