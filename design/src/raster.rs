//! Scenes rasterised with tiny-skia (anti-aliased paths, pure Rust, no
//! system libraries) and encoded as PNG, or as an animated PNG for a
//! recorded game. Text is drawn from the public-domain 8x8 bitmap font of
//! `font8x8`, so a picture never depends on the fonts a machine has.

use font8x8::{BASIC_FONTS, UnicodeFonts};
use tiny_skia::{
    FillRule, LineCap, LineJoin, Paint, Path, PathBuilder, Pixmap, Rect, Stroke as SkiaStroke,
    Transform,
};

use crate::scene::{Anchor, Color, Scene, Shape, Stroke};

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DrawError {
    /// Too big (or empty) for a raster.
    #[error("a {width}x{height} picture cannot be rasterised (empty, or too large)")]
    Size {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
    },
    /// An animation needs frames of one size.
    #[error("animation frames differ in size or there are none")]
    Frames,
    /// The PNG encoder failed.
    #[error("encoding PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// The scene as pixels.
///
/// # Errors
/// [`DrawError::Size`] for an empty or huge scene.
pub fn rasterize(scene: &Scene) -> Result<Pixmap, DrawError> {
    let mut pixmap = Pixmap::new(scene.width, scene.height).ok_or(DrawError::Size {
        width: scene.width,
        height: scene.height,
    })?;
    pixmap.fill(skia_color(scene.background));
    for layer in &scene.layers {
        for shape in &layer.shapes {
            draw(&mut pixmap, shape);
        }
    }
    Ok(pixmap)
}

/// The scene as a PNG file's bytes.
///
/// # Errors
/// As [`rasterize`], or when encoding fails.
pub fn png(scene: &Scene) -> Result<Vec<u8>, DrawError> {
    Ok(rasterize(scene)?.encode_png()?)
}

/// The scenes as one animated PNG (APNG: lossless, no palette to
/// quantise, shown by browsers; viewers without APNG show the first
/// frame), each frame shown `frame_ms` milliseconds, looping. After the
/// first, a frame stores only the rectangle that changed since the one
/// before, and inside it the unchanged pixels as transparent, blended over
/// the previous frame (pictures are opaque, so transparent means "as
/// before"): a long game costs what moves in it, not its size times its
/// frames.
///
/// # Errors
/// [`DrawError::Frames`] when there are no frames or their sizes differ;
/// otherwise as [`png`].
pub fn apng(frames: &[Scene], frame_ms: u16) -> Result<Vec<u8>, DrawError> {
    let first = frames.first().ok_or(DrawError::Frames)?;
    let (width, height) = (first.width, first.height);
    if frames
        .iter()
        .any(|frame| (frame.width, frame.height) != (width, height))
    {
        return Err(DrawError::Frames);
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_animated(frames.len() as u32, 0)?;
    encoder.set_frame_delay(frame_ms, 1000)?;
    let mut writer = encoder.write_header()?;
    let mut previous: Option<Vec<u8>> = None;
    for frame in frames {
        let pixels = straight_rgba(&rasterize(frame)?);
        let (region, data, blend) = match &previous {
            None => {
                let whole = Region {
                    x: 0,
                    y: 0,
                    width,
                    height,
                };
                (whole, pixels.clone(), png::BlendOp::Source)
            }
            Some(before) => {
                let region = changed(before, &pixels, width, height);
                let mut data = region.crop(&pixels, width);
                let old = region.crop(before, width);
                for (new, old) in data.chunks_mut(4).zip(old.chunks(4)) {
                    if new == old {
                        new.fill(0);
                    }
                }
                (region, data, png::BlendOp::Over)
            }
        };
        // The frame must fit at its position: shrink it before moving it.
        writer.set_frame_position(0, 0)?;
        writer.set_frame_dimension(region.width, region.height)?;
        writer.set_frame_position(region.x, region.y)?;
        writer.set_blend_op(blend)?;
        writer.write_image_data(&data)?;
        previous = Some(pixels);
    }
    writer.finish()?;
    Ok(out)
}

/// A rectangle of pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Region {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

impl Region {
    /// The region's RGBA bytes out of a whole picture `stride` pixels wide.
    fn crop(self, pixels: &[u8], stride: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.width * self.height * 4) as usize);
        for row in self.y..self.y + self.height {
            let start = ((row * stride + self.x) * 4) as usize;
            out.extend_from_slice(&pixels[start..start + (self.width * 4) as usize]);
        }
        out
    }
}

/// The smallest rectangle holding every pixel that differs between two
/// pictures of the same size (one pixel when none does: a frame has at
/// least one).
fn changed(before: &[u8], after: &[u8], width: u32, height: u32) -> Region {
    let (mut x0, mut y0, mut x1, mut y1) = (width, height, 0, 0);
    for (index, (a, b)) in before.chunks(4).zip(after.chunks(4)).enumerate() {
        if a != b {
            let (x, y) = (index as u32 % width, index as u32 / width);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    if x0 > x1 {
        return Region {
            x: 0,
            y: 0,
            width: 1,
            height: 1,
        };
    }
    Region {
        x: x0,
        y: y0,
        width: x1 - x0 + 1,
        height: y1 - y0 + 1,
    }
}

/// Pixels as straight-alpha RGBA bytes (tiny-skia keeps them premultiplied).
fn straight_rgba(pixmap: &Pixmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixmap.data().len());
    for pixel in pixmap.pixels() {
        let color = pixel.demultiply();
        out.extend_from_slice(&[color.red(), color.green(), color.blue(), color.alpha()]);
    }
    out
}

fn skia_color(color: Color) -> tiny_skia::Color {
    tiny_skia::Color::from_rgba8(color.r, color.g, color.b, color.a)
}

fn solid(color: Color, anti_alias: bool) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(skia_color(color));
    paint.anti_alias = anti_alias;
    paint
}

fn skia_stroke(stroke: Stroke) -> SkiaStroke {
    SkiaStroke {
        width: stroke.width,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..SkiaStroke::default()
    }
}

fn draw(pixmap: &mut Pixmap, shape: &Shape) {
    match shape {
        Shape::Rect {
            x,
            y,
            width,
            height,
            fill,
            stroke,
        } => {
            if let Some(rect) = Rect::from_xywh(*x, *y, *width, *height) {
                paint_path(pixmap, &PathBuilder::from_rect(rect), *fill, *stroke);
            }
        }
        Shape::Circle {
            x,
            y,
            radius,
            fill,
            stroke,
        } => {
            if let Some(path) = PathBuilder::from_circle(*x, *y, *radius) {
                paint_path(pixmap, &path, *fill, *stroke);
            }
        }
        Shape::Polyline { points, stroke } => {
            if let Some(path) = polyline(points, false) {
                paint_path(pixmap, &path, None, Some(*stroke));
            }
        }
        Shape::Polygon { points, fill } => {
            if let Some(path) = polyline(points, true) {
                paint_path(pixmap, &path, Some(*fill), None);
            }
        }
        Shape::Text {
            x,
            y,
            text,
            size,
            color,
            anchor,
        } => draw_text(pixmap, *x, *y, text, *size, *color, *anchor),
    }
}

/// Fills then outlines a path, anti-aliased.
fn paint_path(pixmap: &mut Pixmap, path: &Path, fill: Option<Color>, stroke: Option<Stroke>) {
    if let Some(fill) = fill {
        pixmap.fill_path(
            path,
            &solid(fill, true),
            FillRule::Winding,
            Transform::identity(),
            None,
        );
    }
    if let Some(stroke) = stroke {
        pixmap.stroke_path(
            path,
            &solid(stroke.color, true),
            &skia_stroke(stroke),
            Transform::identity(),
            None,
        );
    }
}

fn polyline(points: &[(f32, f32)], close: bool) -> Option<Path> {
    let (&(x, y), rest) = points.split_first()?;
    let mut builder = PathBuilder::new();
    builder.move_to(x, y);
    for &(x, y) in rest {
        builder.line_to(x, y);
    }
    if close {
        builder.close();
    }
    builder.finish()
}

/// Width in pixels of `text` drawn at `size` by [`draw_text`].
pub(crate) fn text_width(text: &str, size: f32) -> f32 {
    text.chars().count() as f32 * 8.0 * glyph_scale(size)
}

/// Whole pixels per font pixel, so glyphs stay crisp.
fn glyph_scale(size: f32) -> f32 {
    (size / 8.0).round().max(1.0)
}

fn draw_text(
    pixmap: &mut Pixmap,
    x: f32,
    baseline: f32,
    text: &str,
    size: f32,
    color: Color,
    anchor: Anchor,
) {
    let scale = glyph_scale(size);
    let left = match anchor {
        Anchor::Start => x,
        Anchor::Middle => x - text_width(text, size) / 2.0,
        Anchor::End => x - text_width(text, size),
    }
    .round();
    // Row 7 of a glyph is for descenders: the baseline is under row 6.
    let top = (baseline - 7.0 * scale).round();
    let paint = solid(color, false);
    for (index, character) in text.chars().enumerate() {
        let Some(rows) = BASIC_FONTS.get(character) else {
            continue;
        };
        let glyph_left = left + index as f32 * 8.0 * scale;
        for (row, bits) in rows.iter().enumerate() {
            for column in 0..8 {
                if bits & (1 << column) == 0 {
                    continue;
                }
                if let Some(rect) = Rect::from_xywh(
                    glyph_left + column as f32 * scale,
                    top + row as f32 * scale,
                    scale,
                    scale,
                ) {
                    pixmap.fill_rect(rect, &paint, Transform::identity(), None);
                }
            }
        }
    }
}
