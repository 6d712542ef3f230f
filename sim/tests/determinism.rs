//! Determinism: the same content, seed and commands give the same state hash,
//! whatever order players' commands arrived in within a tick, and a command
//! log written as text replays to it.
#![allow(clippy::unwrap_used)]

mod common;

use proptest::prelude::*;
use rampart_sim::bots::{BotGame, BotStyle};
use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_sim::log::{CommandLog, LogEnd, LogEntry};
use rampart_sim::{Command, PlayerId, Session, SessionConfig, Targeting, TowerId};

const PLAYERS: u8 = 4;
const TICKS: u64 = 900;

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (0u16..6, 0u16..20, 0u16..16).prop_map(|(kind, x, y)| Command::PlaceTower { kind: TowerKindId(kind), cell: Cell::new(x, y) }),
        2 => (1u32..12).prop_map(|id| Command::UpgradeTower { tower: TowerId(id) }),
        1 => (1u32..12).prop_map(|id| Command::SellTower { tower: TowerId(id) }),
        1 => (1u32..12, 0usize..4).prop_map(|(id, mode)| Command::SetTargeting { tower: TowerId(id), mode: Targeting::ALL[mode] }),
        1 => Just(Command::CallNextWave),
        1 => Just(Command::Ready),
    ]
}

/// (tick, player, command), sorted by tick.
fn script() -> impl Strategy<Value = Vec<(u64, u8, Command)>> {
    prop::collection::vec((0..TICKS, 0..PLAYERS, command()), 0..60).prop_map(|mut script| {
        script.sort_by_key(|&(tick, _, _)| tick);
        script
    })
}

/// Plays `script` until [`TICKS`] or the game's end (time then stands
/// still); with `reverse`, each tick's commands are submitted in the
/// reverse order (as if the network had interleaved them differently).
fn play(session: &mut Session, script: &[(u64, u8, Command)], reverse: bool) -> Vec<u64> {
    let mut hashes = Vec::new();
    let mut next = 0;
    while session.tick() < TICKS && session.outcome().is_none() {
        let start = next;
        while next < script.len() && script[next].0 == session.tick() {
            next += 1;
        }
        let mut due: Vec<_> = script[start..next].to_vec();
        if reverse {
            // Reverse across players but keep each player's own order.
            due.sort_by_key(|&(_, player, _)| std::cmp::Reverse(player));
        }
        for (_, player, command) in due {
            session.submit(PlayerId(player), command);
        }
        session.step();
        if session.tick().is_multiple_of(100) {
            hashes.push(session.state_hash());
        }
    }
    hashes
}

fn config(seed: u64) -> SessionConfig {
    SessionConfig {
        map: "small".into(),
        scenario: None,
        players: PLAYERS,
        seed,
        tick_hz: 30,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn same_commands_same_hash(seed in 0u64..1_000, script in script()) {
        let content = common::assets();
        let mut first = Session::new(content.clone(), &config(seed)).unwrap();
        let mut second = Session::new(content.clone(), &config(seed)).unwrap();
        let hashes = play(&mut first, &script, false);
        prop_assert_eq!(&hashes, &play(&mut second, &script, true));

        let mut log = CommandLog::new(&content, config(seed));
        log.entries = script
            .iter()
            .map(|&(tick, player, command)| LogEntry { tick, player: PlayerId(player), command })
            .collect();
        log.end = Some(LogEnd { ticks: first.tick(), state_hash: first.state_hash() });
        let parsed = CommandLog::parse(&log.to_text(&content), &content).unwrap();
        prop_assert_eq!(&parsed, &log);
        for entry in &log.entries {
            let mut line = String::new();
            entry.write_line(&content, &mut line);
            prop_assert_eq!(&LogEntry::parse_line(&line, &content).unwrap(), entry);
        }
        let replayed = parsed.replay(content).unwrap();
        prop_assert_eq!(replayed.state_hash(), first.state_hash());
    }
}

#[test]
fn seeds_change_the_game() {
    let content = common::assets();
    let mut hashes = Vec::new();
    for seed in [1, 2] {
        let mut session = Session::new(content.clone(), &config(seed)).unwrap();
        play(&mut session, &[], false);
        let mut snapshot = rampart_sim::Snapshot::default();
        session.snapshot(&mut snapshot);
        assert!(!snapshot.enemies.is_empty());
        assert_eq!(
            session.summary().enemies as usize,
            snapshot.enemies.len(),
            "the alive count follows spawns, leaks and deaths"
        );
        hashes.push(session.state_hash());
    }
    assert_ne!(
        hashes[0], hashes[1],
        "the seed must reach the state (spawn jitter)"
    );
}

#[test]
fn a_log_with_other_content_is_refused() {
    let content = common::assets();
    let mut log = CommandLog::new(&content, config(1));
    log.content_version ^= 1;
    assert!(matches!(
        log.replay(content),
        Err(rampart_sim::log::LogError::ContentMismatch { .. })
    ));
}

#[test]
fn malformed_logs_name_the_line() {
    let content = common::assets();
    let text = "rampart-log 1\ncontent 00000000000000ff\nmap small\nplayers 1\nseed 1\ntick-hz 30\n0 p0 place nosuchtower 1 1\n";
    let error = CommandLog::parse(text, &content).unwrap_err().to_string();
    assert!(
        error.contains("line 7") && error.contains("nosuchtower"),
        "{error}"
    );
}

/// Sessions stepped in turn on one thread share its scratch buffers (the
/// enemy index, and the field placements are tried on): each must step
/// exactly as it does alone, also when its neighbours play other maps and
/// build towers on them.
#[test]
fn sessions_sharing_a_thread_step_as_alone() {
    let content = common::assets();
    let games = [
        (
            SessionConfig {
                map: "reference".into(),
                scenario: Some("reference".into()),
                players: 8,
                seed: 3,
                tick_hz: 30,
            },
            BotStyle::Passive,
        ),
        (config(5), BotStyle::Builder),
        (
            SessionConfig {
                map: "skirmish".into(),
                ..config(9)
            },
            BotStyle::Builder,
        ),
    ];
    let start = |(config, style): &(SessionConfig, BotStyle)| {
        BotGame::new(Session::new(content.clone(), config).unwrap(), *style)
    };
    let play_and_record = |game: &mut BotGame, hashes: &mut Vec<u64>| {
        game.think(|_| {});
        game.step();
        if game.session().tick().is_multiple_of(100) {
            hashes.push(game.session_mut().state_hash());
        }
    };
    let alone: Vec<Vec<u64>> = games
        .iter()
        .map(|played| {
            let mut game = start(played);
            let mut seen = Vec::new();
            for _ in 0..1_500 {
                play_and_record(&mut game, &mut seen);
            }
            seen
        })
        .collect();
    let mut interleaved_games: Vec<BotGame> = games.iter().map(start).collect();
    let mut interleaved = vec![Vec::new(); interleaved_games.len()];
    for _ in 0..1_500 {
        for (game, seen) in interleaved_games.iter_mut().zip(&mut interleaved) {
            play_and_record(game, seen);
        }
    }
    assert!(
        interleaved_games[0].session().summary().enemies > 0,
        "the reference session has enemies under fire by now"
    );
    for game in &interleaved_games[1..] {
        assert!(
            game.session().summary().towers > 0,
            "the builders have built on their maps"
        );
    }
    assert_eq!(interleaved, alone);
}
