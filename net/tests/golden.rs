//! Golden vectors for clients in other languages: the Rust side's own bytes
//! for the snapshot codec (worlds of a real reference session, their deltas
//! and checksums, hand-made edge cases and broken inputs), the control messages,
//! bundles and a renet 2 exchange, written to `clients/ts/test/golden/`.
//! The TypeScript client's tests decode and encode the same vectors, so the
//! two implementations cannot part ways silently: this test fails when the
//! committed files differ from what the code produces now.
//!
//! After an intended protocol change, regenerate them with
//! `RAMPART_BLESS=1 cargo test -p rampart-net --test golden` and commit.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use rampart_net::bundle::{Slot, bundle};
use rampart_net::protocol::{
    self, AbuseKind, ByeReason, CHANNEL_RELIABLE, CHANNEL_SNAPSHOT, ClientMessage, EndReason,
    ServerMessage, Welcome, WireCommand, WireEvent, WireRejection,
};
use rampart_net::snapshot::{
    CodecError, NetEnemy, NetPlayer, NetProjectile, NetTower, NetWorld, Trajectory, WorldTracker,
    apply, encode, encode_unchecked,
};
use rampart_sim::{DEFAULT_TICK_HZ, Rejection, Snapshot};
use renet::{RenetClient, RenetServer};
use serde_json::{Value, json};

/// The repository root.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where the vectors live, beside the TypeScript tests that read them.
fn golden_dir() -> PathBuf {
    workspace_root().join("clients/ts/test/golden")
}

#[test]
fn golden_vectors_match_the_committed_files() {
    let files = [
        ("codec.json", codec_vectors()),
        ("messages.json", message_vectors()),
        ("renet.json", renet_vectors()),
    ];
    let bless = std::env::var_os("RAMPART_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, value) in files {
        let path = golden_dir().join(name);
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if bless {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "golden vectors {stale:?} differ from what the code produces: if the protocol change is \
         intended, run `RAMPART_BLESS=1 cargo test -p rampart-net --test golden`, run the \
         TypeScript tests (clients/ts: npm test) and commit both"
    );
}

/// docs/PROTOCOL.md section 7's worked example, read from the document
/// (client authors implement from it): its two byte listings are world A's
/// full snapshot and world B's delta against A as the codec writes them,
/// and the checksums it quotes are theirs.
#[test]
fn the_protocol_documents_worked_example_is_what_the_codec_writes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md is readable");
    let example = &doc[doc
        .find("**Worked example**")
        .expect("section 7 has a worked example")..];
    // Each listing line is bytes, two or more spaces, then what they mean.
    let listings: Vec<String> = example
        .split("```")
        .skip(1)
        .step_by(2)
        .take(2)
        .map(|listing| {
            listing
                .lines()
                .flat_map(|line| line.split("  ").next().unwrap_or("").split_whitespace())
                .collect()
        })
        .collect();
    let edges = edge_worlds();
    let (a, b) = (&edges[0], &edges[1]);
    assert_eq!(listings, [encoded(None, a), encoded(Some(a), b)]);
    for quoted in [
        format!("Its checksum is `0x{:08x}`", a.checksum()),
        format!("its checksum is `0x{:08x}`", b.checksum()),
        format!("sums to `0x{:08x}`", NetWorld::default().checksum()),
    ] {
        assert!(
            doc.contains(&quoted),
            "docs/PROTOCOL.md should say {quoted}"
        );
    }
    let empty: Vec<String> = encoded(None, &NetWorld::default())
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect();
    let empty = format!("tick 0 is `{}`", empty.join(" "));
    assert!(doc.contains(&empty), "docs/PROTOCOL.md should say {empty}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

// ---- The snapshot codec -------------------------------------------------

fn path_json(path: &Trajectory) -> Value {
    json!({"x": path.x, "y": path.y, "vx": path.vx, "vy": path.vy, "since": path.since})
}

/// A world in the TypeScript client's shape.
fn world_json(world: &NetWorld) -> Value {
    json!({
        "tick": world.tick,
        "wave": world.wave,
        "lives": world.lives,
        "outcome": world.outcome,
        "players": world.players.iter().map(|player| json!({
            "gold": player.gold, "ready": player.ready, "kills": player.kills,
        })).collect::<Vec<_>>(),
        "enemies": world.enemies.iter().map(|enemy| json!({
            "id": enemy.id, "kind": enemy.kind, "hp": enemy.hp, "maxHp": enemy.max_hp,
            "flags": enemy.flags, "path": path_json(&enemy.path),
        })).collect::<Vec<_>>(),
        "towers": world.towers.iter().map(|tower| json!({
            "id": tower.id, "owner": tower.owner, "kind": tower.kind, "level": tower.level,
            "x": tower.x, "y": tower.y, "targeting": tower.targeting,
        })).collect::<Vec<_>>(),
        "projectiles": world.projectiles.iter().map(|projectile| json!({
            "id": projectile.id, "towerKind": projectile.tower_kind,
            "path": path_json(&projectile.path),
        })).collect::<Vec<_>>(),
    })
}

/// The codec's encoder, checked ([`encode`]) or not ([`encode_unchecked`]).
type Encoder = fn(Option<&NetWorld>, &NetWorld, &mut Vec<u8>);

fn encoded(base: Option<&NetWorld>, next: &NetWorld) -> String {
    encoded_by(encode, base, next)
}

fn encoded_by(encoder: Encoder, base: Option<&NetWorld>, next: &NetWorld) -> String {
    let mut bytes = Vec::new();
    encoder(base, next, &mut bytes);
    hex(&bytes)
}

/// Snapshot ticks of the reference session recorded: five seconds of its
/// steady state (about 100 enemies, 50 towers), at 20 Hz over 30 Hz ticks.
const RECORD_FROM: u64 = 7_200;
const RECORD_TO: u64 = 7_350;
/// Every this many recorded worlds is written out whole, with its full
/// snapshot; the others as deltas and checksums.
const WHOLE_EVERY: usize = 20;
/// Every this many recorded worlds' delta from the one before carries its
/// checksum; the others are unchecked.
const CHECKED_EVERY: usize = 4;
/// Every this many recorded worlds also carries a delta from 31 worlds back.
const FAR_DELTA_EVERY: usize = 10;

/// The reference session (8 seats, 50 towers) played by the simulation and
/// seen through the server's tracker, as its clients see it.
fn reference_worlds() -> Vec<NetWorld> {
    let mut session = support::reference_session();
    let mut tracker = WorldTracker::new();
    let mut worlds = Vec::new();
    let rate = u64::from(DEFAULT_TICK_HZ);
    while session.tick() < RECORD_TO {
        session.step();
        let tick = session.tick();
        if tick * 20 / rate == (tick - 1) * 20 / rate {
            continue;
        }
        let mut snapshot = Snapshot::default();
        session.snapshot(&mut snapshot);
        let world = tracker.observe(&snapshot);
        if tick >= RECORD_FROM {
            worlds.push(NetWorld::clone(world));
        }
    }
    worlds
}

/// Small worlds that reach the corners of the format: rounding toward
/// negative infinity, i32 and u32 extremes, seats appearing and leaving,
/// removals at both ends of a list, changes of every field.
fn edge_worlds() -> Vec<NetWorld> {
    let path = |x: i32, y: i32, vx: i32, vy: i32, since: u64| Trajectory {
        x,
        y,
        vx,
        vy,
        since,
    };
    let enemy = |id: u32, hp: u32, max_hp: u32, flags: u8, path: Trajectory| NetEnemy {
        id,
        kind: (id % 8) as u16,
        hp,
        max_hp,
        flags,
        path,
    };
    let tower = |id: u32, owner: u8, level: u8, x: u16, y: u16| NetTower {
        id,
        owner,
        kind: (id % 6) as u16,
        level,
        x,
        y,
        targeting: (id % 4) as u8,
    };
    // The worked example of docs/PROTOCOL.md section 7: worlds A and B.
    let a = NetWorld {
        tick: 90,
        wave: 1,
        lives: 20,
        outcome: 0,
        players: vec![
            NetPlayer {
                gold: 100,
                ready: true,
                kills: 0,
            },
            NetPlayer {
                gold: 100,
                ready: false,
                kills: 0,
            },
        ],
        enemies: vec![NetEnemy {
            id: 7,
            kind: 3,
            hp: 30,
            max_hp: 30,
            flags: 0,
            path: path(640, 1408, 512, 0, 88),
        }],
        towers: vec![NetTower {
            id: 1,
            owner: 0,
            kind: 0,
            level: 0,
            x: 4,
            y: 6,
            targeting: 0,
        }],
        projectiles: vec![],
    };
    let mut b = a.clone();
    b.tick = 92;
    b.enemies[0].hp = 22;
    b.projectiles.push(NetProjectile {
        id: 12,
        tower_kind: 0,
        path: path(1152, 1664, -2000, -1000, 92),
    });
    let c = NetWorld {
        tick: 1_000,
        wave: u32::MAX,
        lives: 0,
        outcome: 2,
        players: vec![
            NetPlayer {
                gold: u32::MAX,
                ready: false,
                kills: u32::MAX,
            },
            NetPlayer::default(),
            NetPlayer {
                gold: 1,
                ready: true,
                kills: 2,
            },
        ],
        enemies: vec![
            enemy(0, 1, u32::MAX, 7, path(i32::MIN, i32::MAX, -17, 17, 999)),
            enemy(3, 5, 9, 1, path(-300, 300, -1, -4095, 990)),
            enemy(200, 60, 60, 2, path(1, -1, i32::MAX, i32::MIN, 1_000)),
            enemy(u32::MAX, 1, 1, 4, path(0, 0, 0, 0, 0)),
        ],
        towers: vec![tower(0, 255, 255, u16::MAX, 0), tower(9, 1, 2, 3, u16::MAX)],
        projectiles: vec![NetProjectile {
            id: 70_000,
            tower_kind: u16::MAX,
            path: path(-1, -1, -1, -1, 600),
        }],
    };
    // Everything changes: removals at both ends, a new middle, every field.
    let mut d = c.clone();
    d.tick = 1_031;
    d.players.truncate(1);
    d.players[0].gold = 0;
    d.players[0].ready = true;
    d.enemies.remove(0);
    d.enemies.pop();
    d.enemies[0].kind = 6;
    d.enemies[0].hp = 9;
    d.enemies[0].max_hp = 12;
    d.enemies[0].flags = 0;
    d.enemies[0].path = path(-320, 310, -3, -4000, 1_020);
    d.enemies[1].path = path(5, -5, i32::MAX - 1, i32::MIN + 1, 1_031);
    d.enemies
        .insert(1, enemy(100, 8, 9, 3, path(77, 88, 99, -99, 1_030)));
    d.towers[0] = tower(0, 0, 0, 0, 1);
    d.towers.push(tower(10, 7, 1, 4, 4));
    d.projectiles[0].tower_kind = 2;
    d.projectiles[0].path = path(-9, 9, 1_000_000, -1_000_000, 1_031);
    let mut e = d.clone();
    e.tick = 5_000_000_000;
    e.enemies.clear();
    e.towers.clear();
    e.projectiles.clear();
    vec![a, b, c, d, e]
}

fn codec_vectors() -> Value {
    let worlds = reference_worlds();
    let recorded: Vec<Value> = worlds
        .iter()
        .enumerate()
        .map(|(index, world)| {
            let mut entry = json!({
                "tick": world.tick,
                "checksum": format!("{:08x}", world.checksum()),
            });
            if index > 0 {
                // Checked as the server checks: one world in four.
                let encoder: Encoder = match index % CHECKED_EVERY {
                    0 => encode,
                    _ => encode_unchecked,
                };
                entry["delta"] = encoded_by(encoder, Some(&worlds[index - 1]), world).into();
            }
            // A base 31 snapshots back: the oldest the ring still holds.
            if index >= 31 && index % FAR_DELTA_EVERY == 0 {
                entry["delta_from_31_back"] = encoded(Some(&worlds[index - 31]), world).into();
            }
            if index % WHOLE_EVERY == 0 {
                entry["full"] = encoded(None, world).into();
                entry["world"] = world_json(world);
            }
            entry
        })
        .collect();
    let edges = edge_worlds();
    let mut pairs = Vec::new();
    for (index, next) in edges.iter().enumerate() {
        pairs.push(json!({"base": null, "next": index, "bytes": encoded(None, next)}));
        if index > 0 {
            pairs.push(json!({
                "base": index - 1,
                "next": index,
                "bytes": encoded(Some(&edges[index - 1]), next),
            }));
        }
    }
    pairs.push(json!({"base": 3, "next": 2, "bytes": encoded(Some(&edges[3]), &edges[2])}));
    json!({
        "about": "Written by net/tests/golden.rs from the Rust codec (rampart_net::snapshot). \
                  recorded: five seconds of the reference session's steady state at 20 Hz, \
                  each world with its checksum and its delta from the previous one (every 4th \
                  checked, the others without a checksum), every 10th \
                  (from the 31st) with a delta from 31 worlds back, every 20th whole with its \
                  full snapshot. edges: hand-made worlds and their encodings. broken: bytes \
                  every decoder must refuse, with the reason's kind.",
        "recorded": recorded,
        "edges": {
            "worlds": edges.iter().map(|world| json!({
                "world": world_json(world),
                "checksum": format!("{:08x}", world.checksum()),
            })).collect::<Vec<_>>(),
            "encodings": pairs,
        },
        "broken": broken_deltas(&edges),
    })
}

/// Bytes the codec refuses, each with the kind of error it gives.
fn broken_deltas(edges: &[NetWorld]) -> Value {
    let mut valid = Vec::new();
    encode(Some(&edges[2]), &edges[3], &mut valid);
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut bad_checksum = valid.clone();
    bad_checksum[3] ^= 1;
    let cases = [
        ("empty", Vec::new(), "truncated", None),
        ("cut header", valid[..4].to_vec(), "truncated", None),
        (
            "cut body",
            valid[..valid.len() - 1].to_vec(),
            "truncated",
            Some(2),
        ),
        ("trailing byte", trailing, "malformed", Some(2)),
        ("checksum", bad_checksum, "checksum", Some(2)),
        ("base mismatch", valid.clone(), "base-mismatch", Some(1)),
        (
            "base before tick 0",
            vec![1, 2 << 1 | 1, 0, 0, 0, 0],
            "malformed",
            None,
        ),
        (
            "unknown globals bit",
            vec![9, 1, 0, 0, 0, 0, 0x80],
            "malformed",
            None,
        ),
        (
            "count above the cap",
            vec![9, 1, 0, 0, 0, 0, 16, 0, 0x81, 0x80, 0x04],
            "too-large",
            None,
        ),
        (
            "count above the bytes left",
            vec![9, 1, 0, 0, 0, 0, 16, 0, 0xe8, 0x07],
            "truncated",
            None,
        ),
        (
            "u16 field over 65535",
            vec![
                9, 1, 0, 0, 0, 0, 32, 0, 1, 5, 0, 0xf0, 0xa2, 0x04, 0, 0, 0, 0,
            ],
            "malformed",
            None,
        ),
        (
            "more removals than entries",
            vec![9, 1, 0, 0, 0, 0, 16, 1, 0, 0],
            "malformed",
            None,
        ),
    ];
    cases
        .into_iter()
        .map(|(name, bytes, kind, base)| {
            let mut out = NetWorld::default();
            let refused = match apply(base.map(|i| &edges[i]), &bytes, &mut out) {
                Ok(()) => panic!("{name} should be refused"),
                Err(CodecError::Truncated) => "truncated",
                Err(CodecError::Malformed(_)) => "malformed",
                Err(CodecError::TooLarge) => "too-large",
                Err(CodecError::Checksum) => "checksum",
                Err(CodecError::BaseMismatch { .. }) => "base-mismatch",
            };
            assert_eq!(refused, kind, "{name}");
            json!({"name": name, "bytes": hex(&bytes), "base": base, "kind": kind})
        })
        .collect()
}

// ---- Control messages and bundles -----------------------------------------

fn message_vectors() -> Value {
    let welcome = Welcome {
        protocol: 3,
        session: 0x03f7_8e9c_bf81_3815,
        player: Some(2),
        players: 4,
        map: "small".into(),
        content_version: 0x9a3c_5e7f_0123_4567,
        tick_hz: 30,
        snapshot_hz: 20,
    };
    let game = |rejection: Rejection, name: &str| {
        (
            ServerMessage::CommandResult {
                seq: 70_000,
                result: Err(WireRejection::Game(rejection)),
            },
            json!({"type": "commandResult", "seq": 70_000,
                   "result": {"ok": false, "rejection": {"type": "game", "rejection": {"type": name}}}}),
        )
    };
    let mut server = vec![
        (
            ServerMessage::Welcome(welcome.clone()),
            json!({"type": "welcome", "welcome": {
                "protocol": 3, "session": 0x03f7_8e9c_bf81_3815_u64.to_string(), "player": 2, "players": 4,
                "map": "small", "contentVersion": 0x9a3c_5e7f_0123_4567_u64.to_string(),
                "tickHz": 30, "snapshotHz": 20,
            }}),
        ),
        (
            ServerMessage::Welcome(Welcome {
                player: None,
                ..welcome
            }),
            json!({"type": "welcome", "welcome": {
                "protocol": 3, "session": 0x03f7_8e9c_bf81_3815_u64.to_string(), "player": null, "players": 4,
                "map": "small", "contentVersion": 0x9a3c_5e7f_0123_4567_u64.to_string(),
                "tickHz": 30, "snapshotHz": 20,
            }}),
        ),
        (
            ServerMessage::CommandResult {
                seq: 300,
                result: Ok(()),
            },
            json!({"type": "commandResult", "seq": 300, "result": {"ok": true}}),
        ),
        (
            ServerMessage::CommandResult {
                seq: 7,
                result: Err(WireRejection::Game(Rejection::NotEnoughGold {
                    needed: 120,
                    available: 80,
                })),
            },
            json!({"type": "commandResult", "seq": 7, "result": {"ok": false, "rejection":
                {"type": "game", "rejection": {"type": "notEnoughGold", "needed": 120, "available": 80}}}}),
        ),
    ];
    for (rejection, name) in [
        (Rejection::GameOver, "gameOver"),
        (Rejection::UnknownPlayer, "unknownPlayer"),
        (Rejection::UnknownTowerKind, "unknownTowerKind"),
        (Rejection::OutOfBounds, "outOfBounds"),
        (Rejection::CellNotBuildable, "cellNotBuildable"),
        (Rejection::CellOccupied, "cellOccupied"),
        (Rejection::WouldBlockPath, "wouldBlockPath"),
        (Rejection::NoSuchTower, "noSuchTower"),
        (Rejection::NotYourTower, "notYourTower"),
        (Rejection::MaxLevel, "maxLevel"),
        (Rejection::NoMoreWaves, "noMoreWaves"),
        (Rejection::AlreadyReady, "alreadyReady"),
    ] {
        server.push(game(rejection, name));
    }
    for (rejection, name) in [
        (WireRejection::RateLimited, "rateLimited"),
        (WireRejection::ServerBusy, "serverBusy"),
        (WireRejection::Malformed, "malformed"),
        (WireRejection::NotJoined, "notJoined"),
        (WireRejection::Spectating, "spectating"),
    ] {
        server.push((
            ServerMessage::CommandResult {
                seq: u32::MAX,
                result: Err(rejection),
            },
            json!({"type": "commandResult", "seq": u32::MAX,
                   "result": {"ok": false, "rejection": {"type": name}}}),
        ));
    }
    let events = [
        (
            WireEvent::TowerPlaced {
                tower: 5,
                player: 1,
                kind: 2,
                x: 10,
                y: 300,
            },
            json!({"type": "towerPlaced", "tower": 5, "player": 1, "kind": 2, "x": 10, "y": 300}),
        ),
        (
            WireEvent::TowerUpgraded {
                tower: 65_536,
                level: 2,
            },
            json!({"type": "towerUpgraded", "tower": 65_536, "level": 2}),
        ),
        (
            WireEvent::TowerSold {
                tower: 3,
                refund: 251,
            },
            json!({"type": "towerSold", "tower": 3, "refund": 251}),
        ),
        (
            WireEvent::WaveStarted {
                wave: 4,
                early_bonus: 35,
            },
            json!({"type": "waveStarted", "wave": 4, "earlyBonus": 35}),
        ),
        (
            WireEvent::EnemyLeaked {
                enemy: 1_000_000,
                lives_lost: 2,
            },
            json!({"type": "enemyLeaked", "enemy": 1_000_000, "livesLost": 2}),
        ),
        (
            WireEvent::GameOver { victory: true },
            json!({"type": "gameOver", "victory": true}),
        ),
        (WireEvent::Draining, json!({"type": "draining"})),
    ];
    for (index, (event, shape)) in events.into_iter().enumerate() {
        let tick = [1_000, 0, u64::from(u32::MAX) + 1][index % 3];
        server.push((
            ServerMessage::Event { tick, event },
            json!({"type": "event", "tick": tick, "event": shape}),
        ));
    }
    server.push((
        ServerMessage::Chat {
            player: 3,
            text: "gg ✓".into(),
        },
        json!({"type": "chat", "player": 3, "text": "gg ✓"}),
    ));
    let byes = [
        (
            ByeReason::ProtocolMismatch { server: 2 },
            json!({"type": "protocolMismatch", "server": 2}),
        ),
        (
            ByeReason::ContentMismatch { server: u64::MAX },
            json!({"type": "contentMismatch", "server": u64::MAX.to_string()}),
        ),
        (ByeReason::ServerShutdown, json!({"type": "serverShutdown"})),
        (ByeReason::Replaced, json!({"type": "replaced"})),
        (
            ByeReason::Abuse(AbuseKind::Flood),
            json!({"type": "abuse", "kind": "flood"}),
        ),
        (
            ByeReason::Abuse(AbuseKind::Malformed),
            json!({"type": "abuse", "kind": "malformed"}),
        ),
        (ByeReason::TimedOut, json!({"type": "timedOut"})),
        (
            ByeReason::SpectatorsFull { max: 300 },
            json!({"type": "spectatorsFull", "max": 300}),
        ),
    ];
    for (reason, shape) in byes {
        server.push((
            ServerMessage::Bye { reason },
            json!({"type": "bye", "reason": shape}),
        ));
    }
    for (reason, name) in [
        (EndReason::Victory, "victory"),
        (EndReason::Defeat, "defeat"),
        (EndReason::EndedByAdmin, "endedByAdmin"),
        (EndReason::Idle, "idle"),
        (EndReason::Crashed, "crashed"),
        (EndReason::Gone, "gone"),
        (EndReason::Moved, "moved"),
    ] {
        server.push((
            ServerMessage::Bye {
                reason: ByeReason::SessionEnded(reason),
            },
            json!({"type": "bye", "reason": {"type": "sessionEnded", "reason": name}}),
        ));
    }

    let command = |seq: u32, command: WireCommand, shape: Value| {
        (
            ClientMessage::Command { seq, command },
            json!({"type": "command", "seq": seq, "command": shape}),
        )
    };
    let client = [
        (
            ClientMessage::Hello {
                protocol: 3,
                content_version: 0,
            },
            json!({"type": "hello", "protocol": 3, "contentVersion": "0"}),
        ),
        (
            ClientMessage::Hello {
                protocol: 3,
                content_version: 0x9a3c_5e7f_0123_4567,
            },
            json!({"type": "hello", "protocol": 3,
                   "contentVersion": 0x9a3c_5e7f_0123_4567_u64.to_string()}),
        ),
        command(
            0,
            WireCommand::PlaceTower {
                kind: 3,
                x: 250,
                y: 65_535,
            },
            json!({"type": "placeTower", "kind": 3, "x": 250, "y": 65_535}),
        ),
        command(
            251,
            WireCommand::UpgradeTower { tower: 70_000 },
            json!({"type": "upgradeTower", "tower": 70_000}),
        ),
        command(
            65_536,
            WireCommand::SellTower { tower: 1 },
            json!({"type": "sellTower", "tower": 1}),
        ),
        command(
            u32::MAX,
            WireCommand::SetTargeting { tower: 9, mode: 3 },
            json!({"type": "setTargeting", "tower": 9, "mode": 3}),
        ),
        command(
            5,
            WireCommand::CallNextWave,
            json!({"type": "callNextWave"}),
        ),
        command(5, WireCommand::Ready, json!({"type": "ready"})),
        (
            ClientMessage::Chat {
                text: "gg ✓".into(),
            },
            json!({"type": "chat", "text": "gg ✓"}),
        ),
        (ClientMessage::Leave, json!({"type": "leave"})),
    ];
    let (small, large, snapshot) = (vec![1u8; 10], vec![4u8; 1300], vec![0x21u8; 1277]);
    let bundles: Vec<Value> = [
        vec![Slot::Renet(&small), Slot::Renet(&[2; 5])],
        vec![
            Slot::Renet(&[3; 127]),
            Slot::Renet(&[4; 128]),
            Slot::Renet(&[0; 1000]),
        ],
        vec![Slot::Renet(&large), Slot::Renet(&[1])],
        vec![
            Slot::Renet(&[2; 600]),
            Slot::Renet(&[3; 600]),
            Slot::Renet(&[0; 600]),
        ],
        vec![Slot::Renet(&small), Slot::Snapshot(&[0x21; 90])],
        vec![Slot::Renet(&small), Slot::Snapshot(&snapshot)],
        vec![Slot::Snapshot(&[])],
        vec![Slot::SnapshotAck(0), Slot::Renet(&small)],
    ]
    .into_iter()
    .chain(
        [0u64, 127, 128, 300, 65_536, 5_000_000_000]
            .map(|tick| vec![Slot::Renet(&small), Slot::SnapshotAck(tick)]),
    )
    .map(|slots| {
        json!({
            "slots": slots.iter().map(|slot| match slot {
                Slot::Renet(packet) => json!({"kind": "renet", "bytes": hex(packet)}),
                Slot::Snapshot(bytes) => json!({"kind": "snapshot", "bytes": hex(bytes)}),
                Slot::SnapshotAck(tick) => json!({"kind": "snapshotAck", "tick": tick}),
            }).collect::<Vec<_>>(),
            "bundles": bundle(slots.iter().copied()).iter().map(|frame| hex(frame)).collect::<Vec<_>>(),
        })
    })
    .collect();
    json!({
        "about": "Written by net/tests/golden.rs: bincode bytes of every server and client \
                  message shape (rampart_net::protocol), in the TypeScript client's shapes \
                  (u64 identifiers as decimal strings), and bundles of renet packets, \
                  snapshots and snapshot acks.",
        "server": server.iter().map(|(message, shape)| json!({
            "bytes": hex(&protocol::encode(message)), "message": shape,
        })).collect::<Vec<_>>(),
        "client": client.iter().map(|(message, shape)| json!({
            "bytes": hex(&protocol::encode(message)), "message": shape,
        })).collect::<Vec<_>>(),
        "bundles": bundles,
    })
}

// ---- renet ----------------------------------------------------------------

/// A scripted renet exchange between renet's own server and client, from
/// the client's side: what it is given, when its clock moves, and exactly
/// which packets it must send and which messages it must deliver. A client
/// that replays the steps and matches every expectation speaks renet as
/// the server does (sequences, ack ranges, resends, slices).
fn renet_vectors() -> Value {
    let config = protocol::connection_config();
    let mut server = RenetServer::new(config.clone());
    let mut client = RenetClient::new(config);
    client.set_connected();
    let id = 1;
    server.add_connection(id);
    let mut steps: Vec<Value> = Vec::new();
    let hexes = |packets: &[Vec<u8>]| packets.iter().map(|p| hex(p)).collect::<Vec<_>>();
    let send = |client: &mut RenetClient, steps: &mut Vec<Value>, channel: u8, bytes: Vec<u8>| {
        steps.push(json!({"op": "send", "channel": channel, "bytes": hex(&bytes)}));
        client.send_message(channel, bytes);
    };
    let flush = |client: &mut RenetClient, steps: &mut Vec<Value>| {
        let packets = client.get_packets_to_send();
        steps.push(json!({"op": "flush", "expect": hexes(&packets)}));
        packets
    };
    let deliver = |client: &mut RenetClient, steps: &mut Vec<Value>, packets: &[Vec<u8>]| {
        steps.push(json!({"op": "deliver", "packets": hexes(packets)}));
        for packet in packets {
            client.process_packet(packet);
        }
    };
    let receive = |client: &mut RenetClient, steps: &mut Vec<Value>, channel: u8| {
        let mut messages = Vec::new();
        while let Some(message) = client.receive_message(channel) {
            messages.push(hex(&message));
        }
        steps.push(json!({"op": "receive", "channel": channel, "expect": messages}));
    };
    let update =
        |client: &mut RenetClient, server: &mut RenetServer, steps: &mut Vec<Value>, ms: u64| {
            steps.push(json!({"op": "update", "ms": ms}));
            client.update(Duration::from_millis(ms));
            server.update(Duration::from_millis(ms));
        };
    let hello = protocol::encode(&ClientMessage::Hello {
        protocol: 3,
        content_version: 0,
    });
    let big = |len: usize, seed: u8| -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };

    // 1. Hello goes out; the server answers with a welcome, a snapshot, a
    //    sliced reliable message and a sliced unreliable one.
    send(&mut client, &mut steps, CHANNEL_RELIABLE, hello);
    let out = flush(&mut client, &mut steps);
    for packet in &out {
        server.process_packet_from(packet, id).unwrap();
    }
    let welcome = protocol::encode(&ServerMessage::Welcome(Welcome {
        protocol: 3,
        session: 9,
        player: Some(0),
        players: 1,
        map: "small".into(),
        content_version: 1,
        tick_hz: 30,
        snapshot_hz: 20,
    }));
    server.send_message(id, CHANNEL_RELIABLE, welcome);
    server.send_message(id, CHANNEL_SNAPSHOT, big(40, 1));
    server.send_message(id, CHANNEL_RELIABLE, big(3_000, 2));
    server.send_message(id, CHANNEL_SNAPSHOT, big(2_500, 3));
    let down = server.get_packets_to_send(id).unwrap();
    // 2. One slice of the reliable message is lost on the way.
    let lost = down
        .iter()
        .position(|packet| packet[0] == 2)
        .expect("a reliable slice");
    let delivered: Vec<Vec<u8>> = down
        .iter()
        .enumerate()
        .filter(|&(index, _)| index != lost + 1)
        .map(|(_, packet)| packet.clone())
        .collect();
    deliver(&mut client, &mut steps, &delivered);
    receive(&mut client, &mut steps, CHANNEL_SNAPSHOT);
    receive(&mut client, &mut steps, CHANNEL_RELIABLE);
    // 3. The client acknowledges the snapshot; its flush carries the ack
    //    ranges with the hole.
    send(&mut client, &mut steps, CHANNEL_SNAPSHOT, vec![0x5a]);
    let out = flush(&mut client, &mut steps);
    for packet in &out {
        server.process_packet_from(packet, id).unwrap();
    }
    // 4. After the resend time the server sends the lost slice again.
    update(&mut client, &mut server, &mut steps, 100);
    let down = server.get_packets_to_send(id).unwrap();
    deliver(&mut client, &mut steps, &down);
    receive(&mut client, &mut steps, CHANNEL_RELIABLE);
    // 5. A command the network loses: the client resends it after 100 ms
    //    with the same message id in a new packet.
    let command = protocol::encode(&ClientMessage::Command {
        seq: 0,
        command: WireCommand::Ready,
    });
    send(&mut client, &mut steps, CHANNEL_RELIABLE, command);
    flush(&mut client, &mut steps);
    update(&mut client, &mut server, &mut steps, 50);
    flush(&mut client, &mut steps);
    update(&mut client, &mut server, &mut steps, 60);
    let out = flush(&mut client, &mut steps);
    for packet in &out {
        server.process_packet_from(packet, id).unwrap();
    }
    // 6. The server acknowledges; the command is not sent again, and the
    //    client stops acknowledging what the server saw acknowledged.
    server.send_message(id, CHANNEL_SNAPSHOT, big(10, 4));
    let down = server.get_packets_to_send(id).unwrap();
    deliver(&mut client, &mut steps, &down);
    receive(&mut client, &mut steps, CHANNEL_SNAPSHOT);
    update(&mut client, &mut server, &mut steps, 150);
    flush(&mut client, &mut steps);
    // 7. Packets out of order and duplicated: messages still come in id
    //    order, once.
    let mut down = Vec::new();
    for index in 0..3u8 {
        server.send_message(id, CHANNEL_RELIABLE, vec![0x10 + index; 3]);
        down.extend(server.get_packets_to_send(id).unwrap());
        server.update(Duration::from_millis(1));
    }
    down.reverse();
    let again = down.clone();
    down.extend(again);
    deliver(&mut client, &mut steps, &down);
    receive(&mut client, &mut steps, CHANNEL_RELIABLE);
    flush(&mut client, &mut steps);
    json!({
        "about": "Written by net/tests/golden.rs: renet 2's own server and client \
                  (protocol::connection_config) in a scripted exchange, from the client's \
                  side. Replay the steps in order: send queues a message, flush must produce \
                  exactly the listed packets, deliver feeds packets in, receive must drain \
                  exactly the listed messages, update advances the clock.",
        "steps": steps,
    })
}
