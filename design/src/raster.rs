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
/// frame), each frame shown `frame_ms` milliseconds, looping.
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
    for frame in frames {
        writer.write_image_data(&straight_rgba(&rasterize(frame)?))?;
    }
    writer.finish()?;
    Ok(out)
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
