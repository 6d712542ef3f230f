//! A report's files: the JSON itself, CSV tables for notebooks and charts
//! as SVG and PNG. CSV is written by hand: five flat tables with quoted
//! labels need no crate.

use std::fmt::Write as _;

use super::report::{Report, TimePoint, VariantReport};
use crate::chart::{Bar, BarChart, BarSeries, LineChart, Series};
use crate::raster::{DrawError, png};
use crate::svg::svg;

/// Every file a report is written as: name and contents, in a fixed order.
///
/// # Errors
/// When a chart cannot be rasterised or the JSON cannot be written.
pub fn report_files(report: &Report) -> Result<Vec<(String, Vec<u8>)>, DrawError> {
    let mut files = vec![
        ("report.json".to_owned(), report.to_json().into_bytes()),
        ("variants.csv".to_owned(), variants_csv(report).into_bytes()),
        ("games.csv".to_owned(), games_csv(report).into_bytes()),
        ("waves.csv".to_owned(), waves_csv(report).into_bytes()),
        (
            "over_time.csv".to_owned(),
            over_time_csv(report).into_bytes(),
        ),
        ("leaks.csv".to_owned(), leaks_csv(report).into_bytes()),
    ];
    for (name, scene) in charts(report) {
        files.push((format!("{name}.svg"), svg(&scene).into_bytes()));
        files.push((format!("{name}.png"), png(&scene)?));
    }
    Ok(files)
}

impl Report {
    /// The report as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The charts by file stem.
fn charts(report: &Report) -> Vec<(&'static str, crate::scene::Scene)> {
    // One bar per variant, coloured and named as in the line charts.
    let per_variant_bar = |title: &str, y_label: &str, bar: fn(&VariantReport) -> Bar| BarChart {
        title: title.to_owned(),
        y_label: y_label.to_owned(),
        categories: vec![report.map.clone()],
        series: report
            .variants
            .iter()
            .map(|v| BarSeries {
                name: v.label.clone(),
                bars: vec![bar(v)],
            })
            .collect(),
    };
    let win_rate = per_variant_bar("Win rate", "victories / games, 95% Wilson interval", |v| {
        Bar {
            value: v.win_rate,
            interval: Some(v.win_rate_interval),
        }
    });
    let length = per_variant_bar("Game length", "seconds: mean, min to max", |v| Bar {
        value: v.length_seconds.mean,
        interval: Some((v.length_seconds.min, v.length_seconds.max)),
    });
    let per_variant = |points: &dyn Fn(&VariantReport) -> Vec<(f64, f64)>| {
        report
            .variants
            .iter()
            .map(|v| Series {
                name: v.label.clone(),
                points: points(v),
            })
            .collect::<Vec<_>>()
    };
    let lives = LineChart {
        title: "Lives lost per wave".to_owned(),
        x_label: "wave".to_owned(),
        y_label: "lives lost, mean per game".to_owned(),
        series: per_variant(&|v| {
            v.lives_lost_per_wave
                .iter()
                .enumerate()
                .map(|(wave, &lost)| ((wave + 1) as f64, lost))
                .collect()
        }),
    };
    let over_time = |title: &str, y_label: &str, value: fn(&TimePoint) -> f64| LineChart {
        title: title.to_owned(),
        x_label: "seconds".to_owned(),
        y_label: y_label.to_owned(),
        series: per_variant(&|v| {
            v.over_time
                .iter()
                .map(|point| (point.second as f64, value(point)))
                .collect()
        }),
    };
    let gold = over_time(
        "Gold earned over time",
        "gold earned, mean per game",
        |point| point.gold_earned,
    );
    let kills = over_time("Kills over time", "kills, mean per game", |point| {
        point.kills
    });
    let kinds: Vec<String> = report
        .variants
        .first()
        .map(|v| {
            v.leaks_by_enemy
                .iter()
                .map(|(kind, _)| kind.clone())
                .collect()
        })
        .unwrap_or_default();
    let leaks = BarChart {
        title: "Leaks by enemy kind".to_owned(),
        y_label: "leaks, mean per game".to_owned(),
        categories: kinds,
        series: report
            .variants
            .iter()
            .map(|v| BarSeries {
                name: v.label.clone(),
                bars: v
                    .leaks_by_enemy
                    .iter()
                    .map(|&(_, value)| Bar {
                        value,
                        interval: None,
                    })
                    .collect(),
            })
            .collect(),
    };
    vec![
        ("win_rate", win_rate.scene()),
        ("game_length", length.scene()),
        ("lives_per_wave", lives.scene()),
        ("gold", gold.scene()),
        ("kills", kills.scene()),
        ("leaks", leaks.scene()),
    ]
}

fn variants_csv(report: &Report) -> String {
    let mut out = String::from(
        "variant,label,games,victories,defeats,undecided,win_rate,win_low,win_high,\
         length_mean_s,length_median_s,length_min_s,length_max_s,lives_left_mean\n",
    );
    for (index, v) in report.variants.iter().enumerate() {
        let _ = writeln!(
            out,
            "{index},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            quote(&v.label),
            v.games,
            v.victories,
            v.defeats,
            v.undecided,
            v.win_rate,
            v.win_rate_interval.0,
            v.win_rate_interval.1,
            v.length_seconds.mean,
            v.length_seconds.median,
            v.length_seconds.min,
            v.length_seconds.max,
            v.lives_left.mean
        );
    }
    out
}

fn games_csv(report: &Report) -> String {
    let mut out = String::from("variant,seed,outcome,ticks,lives,kills,leaks\n");
    for game in &report.games {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            game.variant, game.seed, game.outcome, game.ticks, game.lives, game.kills, game.leaks
        );
    }
    out
}

fn waves_csv(report: &Report) -> String {
    let mut out = String::from("variant,wave,lives_lost_mean\n");
    for (index, v) in report.variants.iter().enumerate() {
        for (wave, lost) in v.lives_lost_per_wave.iter().enumerate() {
            let _ = writeln!(out, "{index},{},{lost}", wave + 1);
        }
    }
    out
}

fn over_time_csv(report: &Report) -> String {
    let mut out = String::from("variant,second,gold_earned_mean,kills_mean\n");
    for (index, v) in report.variants.iter().enumerate() {
        for point in &v.over_time {
            let _ = writeln!(
                out,
                "{index},{},{},{}",
                point.second, point.gold_earned, point.kills
            );
        }
    }
    out
}

fn leaks_csv(report: &Report) -> String {
    let mut out = String::from("variant,enemy,leaks_mean\n");
    for (index, v) in report.variants.iter().enumerate() {
        for (kind, leaks) in &v.leaks_by_enemy {
            let _ = writeln!(out, "{index},{},{leaks}", quote(kind));
        }
    }
    out
}

/// A CSV field in double quotes, inner quotes doubled.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}
