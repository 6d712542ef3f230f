//! Charts of balance runs drawn as scenes: line charts (a value over waves
//! or time, one line per variant) and bar charts (one bar per category and
//! variant, with whiskers for an interval). Drawn with the board pictures'
//! own scene, SVG writer and rasteriser rather than a plotting crate: the
//! few chart kinds needed are a page of code, and they come out the same in
//! SVG and PNG with one group per series (`series-N`) for tests and editors.

use crate::raster::text_width;
use crate::scene::{Anchor, Color, Layer, Scene, Shape, Stroke, palette};

/// One line of a line chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points in increasing x.
    pub points: Vec<(f64, f64)>,
}

/// Values over a continuous x axis, one line per series.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Heading.
    pub title: String,
    /// What x is.
    pub x_label: String,
    /// What y is.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// One bar, with an optional interval drawn as a whisker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    /// Height.
    pub value: f64,
    /// Interval, low and high.
    pub interval: Option<(f64, f64)>,
}

/// One series of a bar chart: a bar per category.
#[derive(Clone, Debug, PartialEq)]
pub struct BarSeries {
    /// Legend entry.
    pub name: String,
    /// One bar per category, in category order.
    pub bars: Vec<Bar>,
}

/// Values per category, bars of each series side by side.
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    /// Heading.
    pub title: String,
    /// What y is.
    pub y_label: String,
    /// Category names along x.
    pub categories: Vec<String>,
    /// The series.
    pub series: Vec<BarSeries>,
}

const WIDTH: u32 = 800;
const HEIGHT: u32 = 400;
const LEFT: f32 = 64.0;
const RIGHT: f32 = 260.0;
const TOP: f32 = 36.0;
const BOTTOM: f32 = 48.0;
const TICKS: usize = 5;
const PAPER: Color = Color::rgb(0xff, 0xff, 0xff);
const INK: Color = Color::rgb(0x22, 0x22, 0x22);
const RULE: Color = Color::rgb(0xdd, 0xdd, 0xdd);

/// The plot area and the value range it shows.
struct Frame {
    x0: f32,
    x1: f32,
    y0: f32,
    y1: f32,
    x_range: (f64, f64),
    y_max: f64,
}

impl Frame {
    fn new(x_range: (f64, f64), y_max: f64) -> Self {
        Self {
            x0: LEFT,
            x1: WIDTH as f32 - RIGHT,
            y0: TOP,
            y1: HEIGHT as f32 - BOTTOM,
            x_range,
            y_max,
        }
    }

    fn x(&self, value: f64) -> f32 {
        let (low, high) = self.x_range;
        let t = if high > low {
            (value - low) / (high - low)
        } else {
            0.5
        };
        self.x0 + (self.x1 - self.x0) * t as f32
    }

    fn y(&self, value: f64) -> f32 {
        self.y1 - (self.y1 - self.y0) * (value / self.y_max).clamp(0.0, 1.0) as f32
    }

    /// Axes, horizontal rules with value labels, the title and y label.
    fn draw(&self, layer: &mut Layer, title: &str, y_label: &str) {
        for tick in 0..=TICKS {
            let value = self.y_max * tick as f64 / TICKS as f64;
            let y = self.y(value);
            layer.push(line(self.x0, y, self.x1, y, RULE));
            layer.push(text(self.x0 - 6.0, y + 4.0, &label(value), Anchor::End));
        }
        layer.push(line(self.x0, self.y0, self.x0, self.y1, INK));
        layer.push(line(self.x0, self.y1, self.x1, self.y1, INK));
        layer.push(Shape::Text {
            x: WIDTH as f32 / 2.0,
            y: 22.0,
            text: title.to_owned(),
            size: 16.0,
            color: INK,
            anchor: Anchor::Middle,
        });
        layer.push(text(4.0, self.y0 - 10.0, y_label, Anchor::Start));
    }
}

impl LineChart {
    /// The chart as a scene: layers `frame`, `series-0`, `series-1`, ...
    /// and `legend`.
    pub fn scene(&self) -> Scene {
        let xs = self
            .series
            .iter()
            .flat_map(|series| series.points.iter().map(|point| point.0));
        let x_range = xs.fold(None, |range: Option<(f64, f64)>, x| {
            Some(range.map_or((x, x), |(low, high)| (low.min(x), high.max(x))))
        });
        let x_range = x_range.unwrap_or((0.0, 1.0));
        let y_max = nice_ceiling(
            self.series
                .iter()
                .flat_map(|series| series.points.iter().map(|point| point.1))
                .fold(0.0, f64::max),
        );
        let frame = Frame::new(x_range, y_max);
        let mut scene = Scene::new(WIDTH, HEIGHT, PAPER);
        let layer = scene.layer("frame");
        frame.draw(layer, &self.title, &self.y_label);
        for value in round_ticks(x_range) {
            let x = frame.x(value);
            layer.push(line(x, frame.y1, x, frame.y1 + 4.0, INK));
            layer.push(text(x, frame.y1 + 16.0, &label(value), Anchor::Middle));
        }
        layer.push(text(
            (frame.x0 + frame.x1) / 2.0,
            frame.y1 + 36.0,
            &self.x_label,
            Anchor::Middle,
        ));
        for (index, series) in self.series.iter().enumerate() {
            let color = palette(index);
            let layer = scene.layer(format!("series-{index}"));
            let points: Vec<(f32, f32)> = series
                .points
                .iter()
                .map(|&(x, y)| (frame.x(x), frame.y(y)))
                .collect();
            for &(x, y) in &points {
                layer.push(Shape::Circle {
                    x,
                    y,
                    radius: 2.5,
                    fill: Some(color),
                    stroke: None,
                });
            }
            layer.push(Shape::Polyline {
                points,
                stroke: Stroke { color, width: 2.0 },
            });
        }
        legend(&mut scene, self.series.iter().map(|series| &series.name));
        scene
    }
}

impl BarChart {
    /// The chart as a scene: layers `frame`, `series-0`, `series-1`, ...
    /// and `legend`.
    pub fn scene(&self) -> Scene {
        let top = self
            .series
            .iter()
            .flat_map(|series| series.bars.iter())
            .map(|bar| {
                bar.interval
                    .map_or(bar.value, |(_, high)| high.max(bar.value))
            })
            .fold(0.0, f64::max);
        let categories = self.categories.len().max(1);
        let frame = Frame::new((0.0, categories as f64), nice_ceiling(top));
        let mut scene = Scene::new(WIDTH, HEIGHT, PAPER);
        let layer = scene.layer("frame");
        frame.draw(layer, &self.title, &self.y_label);
        let slot = (frame.x1 - frame.x0) / categories as f32;
        let widest = slot / 8.0 - 1.0;
        for (index, category) in self.categories.iter().enumerate() {
            let x = frame.x0 + slot * (index as f32 + 0.5);
            layer.push(text(
                x,
                frame.y1 + 16.0,
                &fit(category, widest),
                Anchor::Middle,
            ));
        }
        let group = slot * 0.8;
        let bar_width = group / self.series.len().max(1) as f32;
        for (index, series) in self.series.iter().enumerate() {
            let color = palette(index);
            let layer = scene.layer(format!("series-{index}"));
            for (category, bar) in series.bars.iter().enumerate() {
                let left = frame.x0
                    + slot * category as f32
                    + (slot - group) / 2.0
                    + bar_width * index as f32;
                let y = frame.y(bar.value);
                layer.push(Shape::Rect {
                    x: left + 1.0,
                    y,
                    width: (bar_width - 2.0).max(1.0),
                    height: frame.y1 - y,
                    fill: Some(color),
                    stroke: None,
                });
                if let Some((low, high)) = bar.interval {
                    let middle = left + bar_width / 2.0;
                    let (y_low, y_high) = (frame.y(low), frame.y(high));
                    let cap = (bar_width / 4.0).min(6.0);
                    layer.push(line(middle, y_low, middle, y_high, INK));
                    layer.push(line(middle - cap, y_low, middle + cap, y_low, INK));
                    layer.push(line(middle - cap, y_high, middle + cap, y_high, INK));
                }
            }
        }
        legend(&mut scene, self.series.iter().map(|series| &series.name));
        scene
    }
}

/// Legend entries at the right, one per series in palette order.
fn legend<'a>(scene: &mut Scene, names: impl Iterator<Item = &'a String>) {
    let x = WIDTH as f32 - RIGHT + 16.0;
    let layer = scene.layer("legend");
    for (index, name) in names.enumerate() {
        let y = TOP + 8.0 + index as f32 * 18.0;
        layer.push(Shape::Rect {
            x,
            y: y - 8.0,
            width: 10.0,
            height: 10.0,
            fill: Some(palette(index)),
            stroke: None,
        });
        let room = (RIGHT - 36.0) / 8.0;
        layer.push(text(x + 16.0, y + 1.0, &fit(name, room), Anchor::Start));
    }
}

fn line(x0: f32, y0: f32, x1: f32, y1: f32, color: Color) -> Shape {
    Shape::Polyline {
        points: vec![(x0, y0), (x1, y1)],
        stroke: Stroke { color, width: 1.0 },
    }
}

fn text(x: f32, y: f32, text: &str, anchor: Anchor) -> Shape {
    Shape::Text {
        x,
        y,
        text: text.to_owned(),
        size: 8.0,
        color: INK,
        anchor,
    }
}

/// `text` cut to `characters` characters of the 8-pixel font, with `~`
/// marking the cut.
fn fit(text: &str, characters: f32) -> String {
    let room = characters.max(1.0) as usize;
    if text_width(text, 8.0) <= characters * 8.0 || text.chars().count() <= room {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(room.saturating_sub(1)).collect();
    cut.push('~');
    cut
}

/// The smallest 1, 2 or 5 times a power of ten at or above `value`, so
/// axis labels are round numbers.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|&ceiling| ceiling >= value)
        .unwrap_or(10.0 * power)
}

/// Tick values on an axis from `low` to `high`: multiples of a round step
/// (1, 2 or 5 times a power of ten), about [`TICKS`] of them, so waves are
/// whole and seconds land on round numbers.
fn round_ticks((low, high): (f64, f64)) -> Vec<f64> {
    if high <= low {
        return vec![low];
    }
    let step = nice_ceiling((high - low) / TICKS as f64);
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last).map(|n| n as f64 * step).collect()
}

/// An axis number: whole numbers plainly, fractions to two decimals.
fn label(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{}", value.round() as i64)
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}
