//! Saving and restoring a running session: a restored session must step
//! bit-identically to the original (same state hash and events every tick
//! under the same commands), saves must be stable, and arbitrary bytes must
//! give an error rather than a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use rampart_sim::bots::{BotStyle, ScriptedPlayer};
use rampart_sim::grid::Cell;
use rampart_sim::{
    Command, Content, PlayerId, RestoreError, Session, SessionConfig, SessionError, Snapshot,
    Targeting,
};
use rand_core::Rng;
use rand_pcg::Pcg32;

/// How long each restored copy is stepped alongside the original.
const FOLLOW: u64 = 1_500;

/// The reference session's steady state (as in `benches/src/lib.rs`).
const STEADY_TICK: u64 = 7_200;

fn save(session: &Session) -> Vec<u8> {
    let mut bytes = Vec::new();
    session.save(&mut bytes);
    bytes
}

fn restore(content: &Arc<Content>, bytes: &[u8]) -> Session {
    Session::restore(content.clone(), bytes).unwrap()
}

fn small(players: u8, seed: u64) -> SessionConfig {
    SessionConfig {
        map: "small".into(),
        scenario: None,
        players,
        seed,
        tick_hz: 30,
    }
}

fn reference(seed: u64) -> SessionConfig {
    SessionConfig {
        map: "reference".into(),
        scenario: Some("reference".into()),
        players: 8,
        seed,
        tick_hz: 30,
    }
}

/// Asserts the two sessions' boards agree cell by cell, flow field included.
fn assert_same_board(original: &Session, restored: &Session) {
    let (a, b) = (original.board(), restored.board());
    assert_eq!(a.field_version(), b.field_version());
    for y in 0..a.height() {
        for x in 0..a.width() {
            let cell = Cell::new(x, y);
            assert_eq!(a.has_tower(cell), b.has_tower(cell), "tower at {cell:?}");
            let (da, db) = (a.distance_to_goal(cell), b.distance_to_goal(cell));
            assert_eq!(
                da.map(f32::to_bits),
                db.map(f32::to_bits),
                "field at {cell:?}"
            );
        }
    }
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    a.routes(&mut ra);
    b.routes(&mut rb);
    assert_eq!(ra, rb);
}

/// The players' commands for one tick: the bots', plus sells and targeting
/// changes (which the bots never make), so saves land after those too.
struct Players {
    bots: Vec<ScriptedPlayer>,
    snapshot: Snapshot,
    sold: bool,
}

impl Players {
    fn new(config: &SessionConfig, style: BotStyle) -> Self {
        Self {
            bots: (0..config.players)
                .map(|seat| ScriptedPlayer::new(PlayerId(seat), style, config.seed))
                .collect(),
            snapshot: Snapshot::default(),
            sold: false,
        }
    }

    fn commands(&mut self, session: &mut Session) -> Vec<(PlayerId, Command)> {
        session.snapshot(&mut self.snapshot);
        let mut commands: Vec<(PlayerId, Command)> = self
            .bots
            .iter_mut()
            .filter_map(|bot| Some((bot.player(), bot.think(session, &self.snapshot)?)))
            .collect();
        let tick = session.tick();
        let towers = &self.snapshot.towers;
        if tick % 211 == 105 && !towers.is_empty() {
            let tower = &towers[(tick / 211) as usize % towers.len()];
            commands.push((tower.owner, Command::SellTower { tower: tower.id }));
            self.sold = true;
        }
        if tick % 67 == 30 && !towers.is_empty() {
            let tower = &towers[(tick / 67) as usize % towers.len()];
            let mode = Targeting::ALL[(tick / 67) as usize % Targeting::ALL.len()];
            commands.push((
                tower.owner,
                Command::SetTargeting {
                    tower: tower.id,
                    mode,
                },
            ));
        }
        commands
    }
}

/// What the saves of one run caught in flight, so the sweep can check it
/// covered the states that are easy to get wrong.
#[derive(Default, Debug)]
struct Coverage {
    saves: u32,
    projectiles: bool,
    slowed: bool,
    burning: bool,
    upgraded: bool,
    sold: bool,
    waves_spawning: bool,
}

impl Coverage {
    fn note(&mut self, session: &mut Session, sold: bool) {
        let mut snapshot = Snapshot::default();
        session.snapshot(&mut snapshot);
        self.saves += 1;
        self.projectiles |= !snapshot.projectiles.is_empty();
        self.slowed |= snapshot.enemies.iter().any(|enemy| enemy.slowed);
        self.burning |= snapshot.enemies.iter().any(|enemy| enemy.burning);
        self.upgraded |= snapshot.towers.iter().any(|tower| tower.level > 0);
        self.sold |= sold;
        self.waves_spawning |= !snapshot.enemies.is_empty();
    }
}

/// Plays `config` to the end (or `until`), saving every `every` ticks; each
/// save is restored and stepped alongside the original for [`FOLLOW`] ticks
/// with the same commands, comparing state hashes and events after every tick.
fn sweep(config: &SessionConfig, style: BotStyle, every: u64, until: u64) -> Coverage {
    let content = common::assets();
    let mut original = Session::new(content.clone(), config).unwrap();
    let mut players = Players::new(config, style);
    let mut followers: Vec<(u64, Session)> = Vec::new();
    let mut coverage = Coverage::default();
    let mut first_save = None;
    while original.tick() < until && (original.outcome().is_none() || !followers.is_empty()) {
        let tick = original.tick();
        if tick > 0 && tick.is_multiple_of(every) && original.outcome().is_none() {
            let bytes = save(&original);
            let restored = restore(&content, &bytes);
            assert_eq!(restored.tick(), tick);
            assert_eq!(restored.state_hash(), original.state_hash(), "tick {tick}");
            assert_eq!(restored.config(), original.config());
            assert_eq!(restored.summary(), original.summary());
            assert_eq!(restored.results(), original.results());
            assert_same_board(&original, &restored);
            assert_eq!(save(&original), bytes, "saving twice gives the same bytes");
            assert_eq!(save(&restored), bytes, "a restored session saves the same");
            coverage.note(&mut original, players.sold);
            first_save.get_or_insert(bytes.len());
            followers.push((tick, restored));
        }
        let commands = players.commands(&mut original);
        for session in std::iter::once(&mut original).chain(followers.iter_mut().map(|(_, s)| s)) {
            for &(player, command) in &commands {
                session.submit(player, command);
            }
            session.step();
        }
        let hash = original.state_hash();
        for (saved_at, follower) in &mut followers {
            assert_eq!(
                follower.state_hash(),
                hash,
                "saved at {saved_at}, diverged at tick {}",
                original.tick()
            );
            assert_eq!(follower.events(), original.events(), "saved at {saved_at}");
        }
        followers.retain(|(saved_at, _)| original.tick() < saved_at + FOLLOW);
        if original.outcome().is_some() {
            // Stepping a decided session changes nothing; the followers
            // have matched it to the end.
            for (_, follower) in &followers {
                assert_eq!(follower.outcome(), original.outcome());
            }
            followers.clear();
        }
    }
    eprintln!(
        "{config:?}: ended at tick {} ({:?}), {coverage:?}",
        original.tick(),
        original.outcome()
    );
    coverage
}

#[test]
fn restored_small_sessions_step_identically() {
    let mut total = Coverage::default();
    for (players, seed) in [(1, 3), (2, 11), (4, 29)] {
        let coverage = sweep(&small(players, seed), BotStyle::Builder, 173, u64::MAX);
        assert!(coverage.saves >= 10, "{coverage:?}");
        total.saves += coverage.saves;
        total.projectiles |= coverage.projectiles;
        total.slowed |= coverage.slowed;
        total.burning |= coverage.burning;
        total.upgraded |= coverage.upgraded;
        total.sold |= coverage.sold;
        total.waves_spawning |= coverage.waves_spawning;
    }
    let Coverage {
        projectiles,
        slowed,
        burning,
        upgraded,
        sold,
        waves_spawning,
        ..
    } = total;
    assert!(
        projectiles && slowed && burning && upgraded && sold && waves_spawning,
        "the sweep must save mid-flight, mid-effect and after sells and upgrades: {total:?}"
    );
}

#[test]
fn restored_reference_sessions_step_identically() {
    let coverage = sweep(
        &reference(7),
        BotStyle::Passive,
        1_800,
        STEADY_TICK + FOLLOW + 1,
    );
    assert!(coverage.saves >= 4, "{coverage:?}");
    assert!(coverage.projectiles && coverage.slowed && coverage.burning);
}

/// A reference session in its steady state, saved.
fn steady_reference() -> (Arc<Content>, Session, Vec<u8>) {
    let content = common::assets();
    let mut session = Session::new(content.clone(), &reference(7)).unwrap();
    while session.tick() < STEADY_TICK {
        session.step();
    }
    let bytes = save(&session);
    (content, session, bytes)
}

#[test]
fn steady_reference_save_size() {
    let (content, session, bytes) = steady_reference();
    let summary = session.summary();
    let mut snapshot = Snapshot::default();
    session.snapshot(&mut snapshot);
    eprintln!(
        "reference session at tick {STEADY_TICK}: {} bytes saved ({} enemies, {} towers, {} projectiles)",
        bytes.len(),
        summary.enemies,
        summary.towers,
        snapshot.projectiles.len()
    );
    let restored = restore(&content, &bytes);
    assert_eq!(restored.state_hash(), session.state_hash());
    assert_same_board(&session, &restored);
    assert!(bytes.len() < 8 * 1024, "{} bytes", bytes.len());
}

#[test]
fn a_new_session_restores_to_itself() {
    let content = common::assets();
    for config in [small(3, 5), reference(1)] {
        let session = Session::new(content.clone(), &config).unwrap();
        let bytes = save(&session);
        let restored = restore(&content, &bytes);
        assert_eq!(restored.state_hash(), session.state_hash());
        assert_same_board(&session, &restored);
        assert_eq!(save(&restored), bytes);
    }
}

#[test]
fn a_decided_session_restores_decided() {
    let content = common::assets();
    let mut session = Session::new(content.clone(), &small(1, 2)).unwrap();
    // Nobody builds: the enemies leak until the lives are gone.
    session.submit(PlayerId(0), Command::Ready);
    while session.outcome().is_none() {
        session.step();
    }
    let bytes = save(&session);
    let mut restored = restore(&content, &bytes);
    assert_eq!(restored.outcome(), session.outcome());
    assert_eq!(restored.state_hash(), session.state_hash());
    restored.step();
    assert_eq!(
        restored.tick(),
        session.tick(),
        "a decided session stands still"
    );
}

fn mid_game_save() -> (Arc<Content>, Vec<u8>) {
    let content = common::assets();
    let config = small(2, 17);
    let mut session = Session::new(content.clone(), &config).unwrap();
    let mut players = Players::new(&config, BotStyle::Builder);
    while session.tick() < 1_500 {
        for (player, command) in players.commands(&mut session) {
            session.submit(player, command);
        }
        session.step();
    }
    let bytes = save(&session);
    (content, bytes)
}

#[test]
fn truncated_saves_are_refused() {
    let (content, bytes) = mid_game_save();
    assert!(bytes.len() > 200, "{} bytes", bytes.len());
    for len in 0..bytes.len() {
        let result = Session::restore(content.clone(), &bytes[..len]);
        assert!(result.is_err(), "a save cut to {len} bytes restored");
    }
    assert_eq!(
        Session::restore(content.clone(), &bytes[..2]).unwrap_err(),
        RestoreError::Truncated
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        Session::restore(content, &longer),
        Err(RestoreError::Malformed(_))
    ));
}

#[test]
fn corrupt_saves_never_panic() {
    let (content, bytes) = mid_game_save();
    let mut rng = Pcg32::new(0xbad_5a7e, 1);
    let mut restored = 0;
    for round in 0..4_000 {
        let input: Vec<u8> = match round % 4 {
            // A few flipped bits anywhere.
            0 | 1 => {
                let mut input = bytes.clone();
                for _ in 0..=rng.next_u32() % 3 {
                    let bit = rng.next_u32() as usize % (input.len() * 8);
                    input[bit / 8] ^= 1 << (bit % 8);
                }
                input
            }
            // A random byte overwritten past the header.
            2 => {
                let mut input = bytes.clone();
                let at = 6 + rng.next_u32() as usize % (input.len() - 6);
                input[at] = rng.next_u32() as u8;
                input
            }
            // Noise after a valid header.
            _ => {
                let len = rng.next_u32() as usize % 600;
                let mut input = bytes[..14].to_vec();
                input.extend((0..len).map(|_| rng.next_u32() as u8));
                input
            }
        };
        if let Ok(session) = Session::restore(content.clone(), &input) {
            restored += 1;
            // Whatever restores is self-consistent: it saves and restores again.
            let again = save(&session);
            let twice = restore(&content, &again);
            assert_eq!(twice.state_hash(), session.state_hash());
        }
    }
    // Flips in floats and counters restore to a different but valid game.
    assert!(restored > 0);
}

#[test]
fn other_content_is_refused() {
    let (content, bytes) = mid_game_save();
    let mut other = (*content).clone();
    other.version ^= 1;
    assert_eq!(
        Session::restore(Arc::new(other), &bytes).unwrap_err(),
        RestoreError::ContentMismatch {
            saved: content.version,
            loaded: content.version ^ 1,
        }
    );
    // Same version, yet the map is gone: the config no longer builds.
    let mut renamed = (*content).clone();
    for map in &mut renamed.maps {
        if map.key == "small" {
            map.key = "tiny".into();
        }
    }
    assert_eq!(
        Session::restore(Arc::new(renamed), &bytes).unwrap_err(),
        RestoreError::Session(SessionError::UnknownMap("small".into()))
    );
}

#[test]
fn foreign_and_future_saves_are_refused() {
    let (content, bytes) = mid_game_save();
    let mut foreign = bytes.clone();
    foreign[0] = b'X';
    assert_eq!(
        Session::restore(content.clone(), &foreign).unwrap_err(),
        RestoreError::BadMagic
    );
    assert_eq!(
        Session::restore(content.clone(), b"{\"json\": true}").unwrap_err(),
        RestoreError::BadMagic
    );
    let mut future = bytes.clone();
    future[4] = future[4].wrapping_add(1);
    assert!(matches!(
        Session::restore(content, &future),
        Err(RestoreError::UnsupportedVersion(_))
    ));
}
