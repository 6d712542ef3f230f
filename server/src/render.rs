//! `rampart render`: pictures of a map (tiles, spawns, goals, the flow
//! field, fliers' lines, scenario towers and their ranges) and of a
//! recorded game at a tick or over a range of ticks (an animated PNG). The
//! drawing is `rampart_design`'s; this module reads arguments and files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use rampart_design::{BoardLayer, BoardStyle, Scene, apng, board_picture, png, svg};
use rampart_sim::log::CommandLog;
use rampart_sim::{DEFAULT_TICK_HZ, Session, SessionConfig, Snapshot};

use crate::load_content;

/// The most frames an animation may have: a whole 30-minute game every
/// 15 ticks is 3,600 frames; beyond that a larger `--every` is the fix.
const MAX_FRAMES: u64 = 4_000;

/// Arguments of `rampart render`.
#[derive(clap::Args)]
pub struct RenderArgs {
    /// Map key; not needed with --log, which names its map.
    #[arg(long, required_unless_present = "log", conflicts_with = "log")]
    map: Option<String>,
    /// Scenario whose towers stand on the map.
    #[arg(long, conflicts_with = "log")]
    scenario: Option<String>,
    /// A command log (`rampart simulate --record`, `rampart export-log`):
    /// draw its game.
    #[arg(long)]
    log: Option<PathBuf>,
    /// With --log: the tick to draw (default: where the log ends).
    #[arg(long, requires = "log")]
    tick: Option<u64>,
    /// With --log: an animation of the ticks FROM:TO, written as an
    /// animated PNG.
    #[arg(
        long,
        requires = "log",
        conflicts_with = "tick",
        value_name = "FROM:TO"
    )]
    animate: Option<String>,
    /// Ticks of game time between two animation frames.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Milliseconds each animation frame is shown.
    #[arg(long, default_value_t = 100)]
    frame_ms: u16,
    /// Pixels per cell, 4 to 64.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(4..=64))]
    cell: u32,
    /// A layer to leave out (repeatable): tiles, heat, arrows, fliers,
    /// markers, ranges, towers, enemies, projectiles, caption.
    #[arg(long)]
    hide: Vec<String>,
    /// Where to write: `.svg` or `.png` for a picture, `.png` or `.apng`
    /// for an animation (repeatable).
    #[arg(long, required = true)]
    out: Vec<PathBuf>,
    /// Content directory.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
}

/// The format an output file is written in, by its extension.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
    Apng,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("svg") => Ok(Format::Svg),
        Some("png") => Ok(Format::Png),
        Some("apng") => Ok(Format::Apng),
        _ => bail!(
            "{}: name the file .svg, .png or .apng so its format is known",
            path.display()
        ),
    }
}

/// Runs `rampart render`.
pub fn run(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let style = style(&args)?;
    let formats: Vec<Format> = args
        .out
        .iter()
        .map(|path| format_of(path))
        .collect::<anyhow::Result<_>>()?;
    let content = load_content(&args.assets)?;
    let mut snapshot = Snapshot::default();
    let Some(log_path) = &args.log else {
        let map = args.map.clone().unwrap_or_default();
        let players = match &args.scenario {
            Some(key) => {
                content
                    .scenario(key)
                    .with_context(|| format!("no scenario `{key}` in {}", args.assets.display()))?
                    .players
            }
            None => 1,
        };
        let config = SessionConfig {
            map,
            scenario: args.scenario.clone(),
            players,
            seed: 0,
            tick_hz: DEFAULT_TICK_HZ,
        };
        let session = Session::new(content, &config).context("setting up the map")?;
        session.snapshot(&mut snapshot);
        return write_picture(
            &board_picture(&session, &snapshot, &style),
            &args.out,
            &formats,
        );
    };
    let text = std::fs::read_to_string(log_path)
        .with_context(|| format!("reading {}", log_path.display()))?;
    let log = CommandLog::parse(&text, &content)
        .with_context(|| format!("reading the command log {}", log_path.display()))?;
    let mut replay = log
        .replayer(content)
        .with_context(|| format!("replaying {}", log_path.display()))?;
    if let Some(range) = &args.animate {
        let (from, to) = parse_range(range)?;
        if (to - from) / args.every >= MAX_FRAMES {
            bail!(
                "{from}:{to} every {} ticks is over {MAX_FRAMES} frames; pass a larger --every",
                args.every
            );
        }
        let mut frames: Vec<Scene> = Vec::new();
        let mut tick = from;
        loop {
            replay.run_to(tick);
            let session = replay.session_mut();
            session.snapshot(&mut snapshot);
            frames.push(board_picture(session, &snapshot, &style));
            // The game or the recording may end before `to`.
            if session.tick() < tick || tick >= to {
                break;
            }
            tick = (tick + args.every).min(to);
        }
        let bytes = apng(&frames, args.frame_ms).context("drawing the animation")?;
        for (path, format) in args.out.iter().zip(&formats) {
            if *format == Format::Svg {
                bail!(
                    "{}: an animation is written as .png or .apng",
                    path.display()
                );
            }
            write(path, &bytes)?;
        }
        println!(
            "{} frames, ticks {from} to {}, written to {}",
            frames.len(),
            replay.session().tick(),
            list(&args.out)
        );
        return Ok(ExitCode::SUCCESS);
    }
    replay.run_to(args.tick.unwrap_or(u64::MAX));
    let session = replay.session_mut();
    session.snapshot(&mut snapshot);
    write_picture(
        &board_picture(session, &snapshot, &style),
        &args.out,
        &formats,
    )
}

fn style(args: &RenderArgs) -> anyhow::Result<BoardStyle> {
    let mut hidden = Vec::new();
    for id in &args.hide {
        let Some(layer) = BoardLayer::from_id(id) else {
            let known: Vec<&str> = BoardLayer::ALL.iter().map(|layer| layer.id()).collect();
            bail!("no layer `{id}`; layers are {}", known.join(", "));
        };
        hidden.push(layer);
    }
    Ok(BoardStyle {
        cell: args.cell,
        layers: BoardLayer::ALL
            .into_iter()
            .filter(|layer| !hidden.contains(layer))
            .collect(),
    })
}

fn parse_range(range: &str) -> anyhow::Result<(u64, u64)> {
    let parsed = range
        .split_once(':')
        .and_then(|(from, to)| Some((from.trim().parse().ok()?, to.trim().parse().ok()?)));
    match parsed {
        Some((from, to)) if from <= to => Ok((from, to)),
        _ => bail!("--animate takes FROM:TO, two ticks with FROM <= TO, not `{range}`"),
    }
}

fn write_picture(scene: &Scene, out: &[PathBuf], formats: &[Format]) -> anyhow::Result<ExitCode> {
    for (path, format) in out.iter().zip(formats) {
        let bytes = match format {
            Format::Svg => svg(scene).into_bytes(),
            Format::Png => png(scene).context("drawing the picture")?,
            Format::Apng => bail!(
                "{}: .apng is for animations (--log with --animate)",
                path.display()
            ),
        };
        write(path, &bytes)?;
    }
    println!(
        "{}x{} picture written to {}",
        scene.width,
        scene.height,
        list(out)
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
