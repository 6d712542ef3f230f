//! Every command's acceptance and every typed rejection.
#![allow(clippy::unwrap_used)]

mod common;

use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_sim::{Command, Event, Outcome, PlayerId, Rejection, Session, Targeting, TowerId};

const ARROW: TowerKindId = TowerKindId(0);
const P0: PlayerId = PlayerId(0);
const P1: PlayerId = PlayerId(1);

/// An open field: nothing a single tower can block.
fn open() -> Session {
    let content = common::content(vec![(
        "open",
        common::grid(&["#######", "S.....G", "#.....#", "#######"]),
    )]);
    common::session(&content, "open", 2)
}

/// Submits one command, steps, and returns its result.
fn run(session: &mut Session, player: PlayerId, command: Command) -> Result<(), Rejection> {
    run_together(session, &[(player, command)])[0]
}

fn place(session: &mut Session, player: PlayerId, x: u16, y: u16) -> Result<TowerId, Rejection> {
    run(
        session,
        player,
        Command::PlaceTower {
            kind: ARROW,
            cell: Cell::new(x, y),
        },
    )?;
    Ok(session
        .events()
        .iter()
        .find_map(|event| match event {
            Event::TowerPlaced { tower, .. } => Some(*tower),
            _ => None,
        })
        .unwrap())
}

fn gold(session: &mut Session, player: PlayerId) -> u32 {
    let mut snapshot = rampart_sim::Snapshot::default();
    session.snapshot(&mut snapshot);
    snapshot.players[usize::from(player.0)].gold
}

#[test]
fn placing_costs_gold_and_blocks_the_cell() {
    let mut session = open();
    let tower = place(&mut session, P0, 2, 2).unwrap();
    assert_eq!(gold(&mut session, P0), 50);
    assert_eq!(place(&mut session, P1, 2, 2), Err(Rejection::CellOccupied));
    assert!(session.board().has_tower(Cell::new(2, 2)));
    assert_eq!(tower, TowerId(1));
}

#[test]
fn placement_rejections() {
    let mut session = open();
    let unknown = Command::PlaceTower {
        kind: TowerKindId(9),
        cell: Cell::new(2, 2),
    };
    assert_eq!(
        run(&mut session, P0, unknown),
        Err(Rejection::UnknownTowerKind)
    );
    assert_eq!(place(&mut session, P0, 7, 1), Err(Rejection::OutOfBounds));
    assert_eq!(
        place(&mut session, P0, 0, 0),
        Err(Rejection::CellNotBuildable),
        "blocked terrain"
    );
    assert_eq!(
        place(&mut session, P0, 0, 1),
        Err(Rejection::CellNotBuildable),
        "the spawn"
    );
    place(&mut session, P0, 1, 2).unwrap();
    place(&mut session, P0, 2, 2).unwrap();
    assert_eq!(
        place(&mut session, P0, 3, 2),
        Err(Rejection::NotEnoughGold {
            needed: 50,
            available: 0
        })
    );
    assert_eq!(
        run(&mut session, PlayerId(7), Command::Ready),
        Err(Rejection::UnknownPlayer)
    );
}

#[test]
fn a_tower_may_not_cut_the_only_path() {
    let content = common::content(vec![(
        "corridor",
        common::grid(&["#####", "S...G", "#####"]),
    )]);
    let mut session = common::session(&content, "corridor", 1);
    assert_eq!(
        place(&mut session, P0, 2, 1),
        Err(Rejection::WouldBlockPath)
    );
    assert_eq!(
        gold(&mut session, P0),
        100,
        "a rejected placement costs nothing"
    );
    assert!(!session.board().has_tower(Cell::new(2, 1)));
}

#[test]
fn a_tower_may_not_go_where_an_enemy_walks() {
    let content = common::content(vec![(
        "lane",
        common::grid(&["#######", "S.....G", "#.....#", "#######"]),
    )]);
    let mut session = common::session(&content, "lane", 1);
    run(&mut session, P0, Command::Ready).unwrap();
    let mut snapshot = rampart_sim::Snapshot::default();
    // Let the first enemy step off the spawn onto buildable ground.
    let cell = loop {
        session.step();
        session.snapshot(&mut snapshot);
        if let Some(enemy) = snapshot.enemies.first()
            && enemy.position.x > 1.6
        {
            break Cell::new(enemy.position.x as u16, enemy.position.y as u16);
        }
    };
    assert_eq!(
        place(&mut session, P0, cell.x, cell.y),
        Err(Rejection::CellOccupied)
    );
}

#[test]
fn upgrade_sell_and_targeting_check_ownership() {
    let mut session = open();
    let tower = place(&mut session, P0, 2, 2).unwrap();
    assert_eq!(
        run(&mut session, P1, Command::UpgradeTower { tower }),
        Err(Rejection::NotYourTower)
    );
    assert_eq!(
        run(&mut session, P1, Command::SellTower { tower }),
        Err(Rejection::NotYourTower)
    );
    let retarget = Command::SetTargeting {
        tower,
        mode: Targeting::Strongest,
    };
    assert_eq!(
        run(&mut session, P1, retarget),
        Err(Rejection::NotYourTower)
    );
    assert_eq!(run(&mut session, P0, retarget), Ok(()));
    let missing = TowerId(99);
    assert_eq!(
        run(&mut session, P0, Command::UpgradeTower { tower: missing }),
        Err(Rejection::NoSuchTower)
    );
    assert_eq!(
        run(&mut session, P0, Command::SellTower { tower: missing }),
        Err(Rejection::NoSuchTower)
    );
}

#[test]
fn upgrades_run_out_and_cost_gold() {
    let mut session = open();
    let tower = place(&mut session, P0, 2, 2).unwrap();
    assert_eq!(
        run(&mut session, P0, Command::UpgradeTower { tower }),
        Ok(())
    );
    assert_eq!(gold(&mut session, P0), 10);
    assert_eq!(
        run(&mut session, P0, Command::UpgradeTower { tower }),
        Err(Rejection::NotEnoughGold {
            needed: 60,
            available: 10
        })
    );
    let mut rich = open();
    let tower = place(&mut rich, P1, 2, 2).unwrap();
    // Sell-and-rebuild is not an upgrade path: a fresh tower starts at level 0.
    run(&mut rich, P1, Command::SellTower { tower }).unwrap();
    assert_eq!(
        gold(&mut rich, P1),
        75,
        "half of the 50 invested comes back"
    );
    assert_eq!(
        run(&mut rich, P1, Command::SellTower { tower }),
        Err(Rejection::NoSuchTower),
        "sold means gone"
    );
}

/// Submits several commands for the same tick, steps, and returns their
/// results in order.
fn run_together(
    session: &mut Session,
    commands: &[(PlayerId, Command)],
) -> Vec<Result<(), Rejection>> {
    let tickets: Vec<_> = commands
        .iter()
        .map(|&(player, command)| session.submit(player, command))
        .collect();
    session.step();
    tickets
        .iter()
        .map(|&ticket| {
            session
                .events()
                .iter()
                .find_map(|event| match event {
                    Event::CommandResult {
                        ticket: t, result, ..
                    } if *t == ticket => Some(*result),
                    _ => None,
                })
                .unwrap()
        })
        .collect()
}

/// A tower placed stands from the end of its tick, and a tower sold is gone
/// for commands at once: neither can be upgraded in the same tick.
#[test]
fn towers_placed_or_sold_this_tick_take_no_other_command() {
    let mut session = open();
    let place = Command::PlaceTower {
        kind: ARROW,
        cell: Cell::new(2, 2),
    };
    let first_id = TowerId(1);
    let results = run_together(
        &mut session,
        &[(P0, place), (P0, Command::UpgradeTower { tower: first_id })],
    );
    assert_eq!(results, [Ok(()), Err(Rejection::NoSuchTower)]);
    let mut snapshot = rampart_sim::Snapshot::default();
    session.snapshot(&mut snapshot);
    assert_eq!(snapshot.towers.len(), 1, "it stands after its tick");

    let results = run_together(
        &mut session,
        &[
            (P0, Command::SellTower { tower: first_id }),
            (P0, Command::UpgradeTower { tower: first_id }),
            (P0, Command::SellTower { tower: first_id }),
        ],
    );
    assert_eq!(
        results,
        [
            Ok(()),
            Err(Rejection::NoSuchTower),
            Err(Rejection::NoSuchTower)
        ]
    );
    session.snapshot(&mut snapshot);
    assert!(snapshot.towers.is_empty(), "gone after its tick");
    assert_eq!(session.summary().towers, 0);
}

#[test]
fn max_level_is_a_rejection() {
    let content = common::content_with_gold(
        vec![(
            "open",
            common::grid(&["#######", "S.....G", "#.....#", "#######"]),
        )],
        150,
    );
    let mut session = common::session(&content, "open", 1);
    let tower = place(&mut session, P0, 2, 2).unwrap();
    run(&mut session, P0, Command::UpgradeTower { tower }).unwrap();
    run(&mut session, P0, Command::UpgradeTower { tower }).unwrap();
    assert_eq!(
        run(&mut session, P0, Command::UpgradeTower { tower }),
        Err(Rejection::MaxLevel)
    );
}

#[test]
fn ready_and_calling_waves() {
    let mut session = open();
    assert_eq!(run(&mut session, P0, Command::Ready), Ok(()));
    assert_eq!(
        run(&mut session, P0, Command::Ready),
        Err(Rejection::AlreadyReady)
    );
    assert_eq!(
        session.summary().wave,
        0,
        "one of two seats ready starts nothing"
    );
    assert_eq!(run(&mut session, P1, Command::Ready), Ok(()));
    assert_eq!(session.summary().wave, 1, "all seats ready starts wave 1");
    let before = gold(&mut session, P1);
    assert_eq!(run(&mut session, P0, Command::CallNextWave), Ok(()));
    assert!(
        gold(&mut session, P1) > before,
        "calling early pays every player"
    );
    assert_eq!(run(&mut session, P0, Command::CallNextWave), Ok(()));
    assert_eq!(session.summary().wave, 3);
    assert_eq!(
        run(&mut session, P0, Command::CallNextWave),
        Err(Rejection::NoMoreWaves)
    );
}

#[test]
fn defeat_ends_the_game_and_rejects_commands() {
    let mut session = open();
    run(&mut session, P0, Command::Ready).unwrap();
    run(&mut session, P1, Command::Ready).unwrap();
    while session.outcome().is_none() {
        session.step();
        assert!(session.tick() < 10_000, "undefended, the game must be lost");
    }
    assert_eq!(session.outcome(), Some(Outcome::Defeat));
    let tick = session.tick();
    assert_eq!(place(&mut session, P0, 2, 2), Err(Rejection::GameOver));
    assert_eq!(
        session.tick(),
        tick,
        "time stands still once the game is decided"
    );
}

/// One player on the open field with two towers beside the road, ready:
/// every enemy dies.
fn defended() -> Session {
    let content = common::content(vec![(
        "open",
        common::grid(&["#######", "S.....G", "#.....#", "#######"]),
    )]);
    let mut session = common::session(&content, "open", 1);
    place(&mut session, P0, 3, 2).unwrap();
    place(&mut session, P0, 4, 2).unwrap();
    run(&mut session, P0, Command::Ready).unwrap();
    session
}

/// Each wave's end is announced once, in the tick its last enemy falls;
/// the last wave's end is the victory instead.
#[test]
fn a_cleared_board_ends_each_wave_but_the_last() {
    let mut session = defended();
    let mut cleared = Vec::new();
    let mut enemies_seen = 0;
    while session.outcome().is_none() {
        session.step();
        let summary = session.summary();
        enemies_seen = enemies_seen.max(summary.enemies);
        for event in session.events() {
            if let Event::WaveCleared { wave } = *event {
                assert_eq!(summary.enemies, 0, "cleared with enemies alive");
                assert_eq!(wave, summary.wave);
                cleared.push(wave);
            }
        }
    }
    assert_eq!(session.outcome(), Some(Outcome::Victory));
    assert!(enemies_seen > 0);
    assert_eq!(cleared, [1, 2], "three waves, each cleared before the next");
    assert!(
        !session
            .events()
            .iter()
            .any(|event| matches!(event, Event::WaveCleared { .. })),
        "the last wave ends in the victory"
    );
}

#[test]
fn defended_small_map_is_won() {
    let mut session = defended();
    while session.outcome().is_none() {
        session.step();
    }
    assert_eq!(session.outcome(), Some(Outcome::Victory));
    let results = session.results();
    assert_eq!(results[0].kills, 9, "three waves of three grunts");
    assert_eq!(results[0].score, 9 * 5 + 9 * 10);
}
