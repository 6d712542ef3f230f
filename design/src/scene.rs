//! A picture as layers of simple shapes in pixel coordinates: what the board
//! and chart painters produce. The same scene is written as SVG text
//! (`svg`) and rasterised (`raster`), so both formats show the same thing
//! and each layer is one SVG group a designer can toggle.

/// An sRGB colour with straight (not premultiplied) alpha.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
    /// Opacity, 255 opaque.
    pub a: u8,
}

impl Color {
    /// An opaque colour.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b, a: 255 }
    }

    /// The same colour with opacity `a`.
    pub const fn alpha(self, a: u8) -> Self {
        Self { a, ..self }
    }
}

/// An outline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stroke {
    /// Its colour.
    pub color: Color,
    /// Its width in pixels.
    pub width: f32,
}

/// Where a text's `x` is: its left end, its middle or its right end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// `x` is the left end.
    Start,
    /// `x` is the middle.
    Middle,
    /// `x` is the right end.
    End,
}

/// One thing drawn. Coordinates are pixels, `y` growing downwards.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// An axis-aligned rectangle.
    Rect {
        /// Left edge.
        x: f32,
        /// Top edge.
        y: f32,
        /// Width.
        width: f32,
        /// Height.
        height: f32,
        /// Inside colour, if filled.
        fill: Option<Color>,
        /// Outline, if any.
        stroke: Option<Stroke>,
    },
    /// A circle.
    Circle {
        /// Centre, across.
        x: f32,
        /// Centre, down.
        y: f32,
        /// Radius.
        radius: f32,
        /// Inside colour, if filled.
        fill: Option<Color>,
        /// Outline, if any.
        stroke: Option<Stroke>,
    },
    /// Connected line segments (two points: a line).
    Polyline {
        /// The points in order.
        points: Vec<(f32, f32)>,
        /// How the line looks.
        stroke: Stroke,
    },
    /// A closed, filled polygon (arrow heads).
    Polygon {
        /// Its corners in order.
        points: Vec<(f32, f32)>,
        /// Inside colour.
        fill: Color,
    },
    /// One line of text; `y` is its baseline.
    Text {
        /// See `anchor`.
        x: f32,
        /// Baseline.
        y: f32,
        /// What it says (ASCII shows in rasters; other characters as gaps).
        text: String,
        /// Glyph height in pixels.
        size: f32,
        /// Colour.
        color: Color,
        /// Which end of the text `x` is.
        anchor: Anchor,
    },
}

/// A named group of shapes, drawn in order; its id is the SVG group's id.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Group id, unique in its scene.
    pub id: String,
    /// Shapes, painted first to last.
    pub shapes: Vec<Shape>,
}

impl Layer {
    /// Adds a shape on top of the others.
    pub fn push(&mut self, shape: Shape) {
        self.shapes.push(shape);
    }
}

/// A whole picture: its size, background and layers, bottom first.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour under everything.
    pub background: Color,
    /// Layers, painted first to last.
    pub layers: Vec<Layer>,
}

impl Scene {
    /// An empty picture.
    pub fn new(width: u32, height: u32, background: Color) -> Self {
        Self {
            width,
            height,
            background,
            layers: Vec::new(),
        }
    }

    /// Starts a new layer on top and returns it.
    pub fn layer(&mut self, id: impl Into<String>) -> &mut Layer {
        self.layers.push(Layer {
            id: id.into(),
            shapes: Vec::new(),
        });
        let last = self.layers.len() - 1;
        &mut self.layers[last]
    }
}

/// Distinct colours for series and tower kinds (Tableau 10), cycled.
pub fn palette(index: usize) -> Color {
    const COLORS: [Color; 10] = [
        Color::rgb(0x4e, 0x79, 0xa7),
        Color::rgb(0xf2, 0x8e, 0x2b),
        Color::rgb(0xe1, 0x57, 0x59),
        Color::rgb(0x76, 0xb7, 0xb2),
        Color::rgb(0x59, 0xa1, 0x4f),
        Color::rgb(0xed, 0xc9, 0x48),
        Color::rgb(0xb0, 0x7a, 0xa1),
        Color::rgb(0xff, 0x9d, 0xa7),
        Color::rgb(0x9c, 0x75, 0x5f),
        Color::rgb(0xba, 0xb0, 0xac),
    ];
    COLORS[index % COLORS.len()]
}
