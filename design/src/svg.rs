//! Scenes written as SVG text: one `<g id="...">` per layer, so a designer
//! can hide a layer in any SVG viewer or editor and a test can find it.

use std::fmt::Write as _;

use crate::scene::{Anchor, Color, Scene, Shape, Stroke};

/// The scene as a standalone SVG document.
pub fn svg(scene: &Scene) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#,
        w = scene.width,
        h = scene.height
    );
    let _ = writeln!(
        out,
        r#"<rect id="background" width="{}" height="{}"{}/>"#,
        scene.width,
        scene.height,
        paint("fill", Some(scene.background))
    );
    for layer in &scene.layers {
        let _ = writeln!(out, r#"<g id="{}">"#, escape(&layer.id));
        for shape in &layer.shapes {
            write_shape(&mut out, shape);
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

fn write_shape(out: &mut String, shape: &Shape) {
    let _ = match shape {
        Shape::Rect {
            x,
            y,
            width,
            height,
            fill,
            stroke,
        } => writeln!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}"{}{}/>"#,
            num(*x),
            num(*y),
            num(*width),
            num(*height),
            paint("fill", *fill),
            outline(*stroke)
        ),
        Shape::Circle {
            x,
            y,
            radius,
            fill,
            stroke,
        } => writeln!(
            out,
            r#"<circle cx="{}" cy="{}" r="{}"{}{}/>"#,
            num(*x),
            num(*y),
            num(*radius),
            paint("fill", *fill),
            outline(*stroke)
        ),
        Shape::Polyline { points, stroke } => writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke-linecap="round" stroke-linejoin="round"{}/>"#,
            point_list(points),
            outline(Some(*stroke))
        ),
        Shape::Polygon { points, fill } => writeln!(
            out,
            r#"<polygon points="{}"{}/>"#,
            point_list(points),
            paint("fill", Some(*fill))
        ),
        Shape::Text {
            x,
            y,
            text,
            size,
            color,
            anchor,
        } => writeln!(
            out,
            r#"<text x="{}" y="{}" font-family="monospace" font-size="{}" text-anchor="{}"{}>{}</text>"#,
            num(*x),
            num(*y),
            num(*size),
            match anchor {
                Anchor::Start => "start",
                Anchor::Middle => "middle",
                Anchor::End => "end",
            },
            paint("fill", Some(*color)),
            escape(text)
        ),
    };
}

/// ` fill="#rrggbb"` (with its opacity when not opaque), or `none`.
fn paint(attribute: &str, color: Option<Color>) -> String {
    match color {
        None => format!(r#" {attribute}="none""#),
        Some(Color { r, g, b, a: 255 }) => format!(r##" {attribute}="#{r:02x}{g:02x}{b:02x}""##),
        Some(Color { r, g, b, a }) => format!(
            r##" {attribute}="#{r:02x}{g:02x}{b:02x}" {attribute}-opacity="{}""##,
            num(f32::from(a) / 255.0)
        ),
    }
}

fn outline(stroke: Option<Stroke>) -> String {
    match stroke {
        None => String::new(),
        Some(stroke) => format!(
            r#"{} stroke-width="{}""#,
            paint("stroke", Some(stroke.color)),
            num(stroke.width)
        ),
    }
}

fn point_list(points: &[(f32, f32)]) -> String {
    let mut out = String::new();
    for (index, (x, y)) in points.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{},{}", num(*x), num(*y));
    }
    out
}

/// A coordinate with at most two decimals and no trailing zeros: small
/// files, and the same text for the same picture on every machine.
fn num(value: f32) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
