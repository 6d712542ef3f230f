//! Live content reload end to end: a real server watching a copy of the
//! assets while a designer edits it. A good change reaches new sessions
//! (a dearer arrow tower, paid in a real game over UDP), running sessions
//! keep the content they started with, and a broken change is reported
//! with file, line and column, in the log and by `POST /v1/admin/reload`,
//! while the server goes on serving the last good content.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_sim::Command;
use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_tests::player::{Player, run_until};
use rampart_tests::quick_assets;
use rampart_tests::server::Server;
use serde_json::json;

const TOKEN: &str = "reload-admin";

/// The content version `dir` holds, as the API writes it.
fn version_of(dir: &Path) -> String {
    format!(
        "{:016x}",
        rampart_sim::content::load_dir(dir).unwrap().version
    )
}

/// A player alone in a new one-seat session on `small` (it starts at
/// once), welcomed and sent its first world.
fn seated(server: &Server) -> Player {
    let join = Player::join(
        server,
        "/v1/join",
        &json!({"name": "designer", "map": "small", "max_players": 1}),
    );
    let mut players = vec![Player::connect(join, false)];
    assert!(
        run_until(
            &mut players,
            Duration::from_secs(10),
            |_, _| {},
            |player| player.client.welcome().is_some() && player.client.stats().snapshots > 0
        ),
        "no welcome and world"
    );
    players.pop().unwrap()
}

fn welcomed_version(player: &Player) -> String {
    format!("{:016x}", player.client.welcome().unwrap().content_version)
}

/// Builds an arrow tower at (x, 1) beside the road and returns the gold it
/// cost, as the player's world shows it (the first wave is 20 s away, so
/// nothing else moves the gold meanwhile).
fn arrow_cost(player: &mut Player, arrow: TowerKindId, x: u16) -> u32 {
    let seat = usize::from(player.seat().player_id);
    let towers = player.client.world().towers.len();
    let before = player.client.world().players[seat].gold;
    let seq = player.command(Command::PlaceTower {
        kind: arrow,
        cell: Cell::new(x, 1),
    });
    assert!(
        run_until(
            std::slice::from_mut(player),
            Duration::from_secs(10),
            |_, _| {},
            |player| {
                player.results.contains_key(&seq) && player.client.world().towers.len() > towers
            }
        ),
        "the tower was not built"
    );
    assert_eq!(player.results[&seq], Ok(()));
    before - player.client.world().players[seat].gold
}

/// Waits until the server has logged a line containing every one of
/// `parts`, and returns it.
fn wait_for_log(server: &Server, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(line) = server
            .logs()
            .into_iter()
            .find(|line| parts.iter().all(|part| line.contains(part)))
        {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}; logs: {:#?}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The count of reloads by `trigger` with `result`.
fn reloads(server: &Server, trigger: &str, result: &str) -> f64 {
    let text = server.get("/metrics").body;
    let labels = [
        format!("trigger=\"{trigger}\""),
        format!("result=\"{result}\""),
    ];
    text.lines()
        .filter(|line| line.starts_with("rampart_content_reloads_total{"))
        .find(|line| labels.iter().all(|label| line.contains(label.as_str())))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn session(server: &Server, id: &str) -> serde_json::Value {
    let reply = server.get(&format!("/v1/sessions/{id}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn a_watched_change_reaches_new_sessions_and_a_broken_one_is_reported() {
    let assets = quick_assets("reload");
    let towers = assets.join("towers.toml");
    let original = std::fs::read_to_string(&towers).unwrap();
    let first = version_of(&assets);
    let arrow = rampart_sim::content::load_dir(&assets)
        .unwrap()
        .tower_id("arrow")
        .unwrap();
    let server = Server::start(&[
        "--assets",
        assets.to_str().unwrap(),
        "--watch-assets",
        "--admin-token",
        TOKEN,
    ]);
    wait_for_log(&server, &["watching the content directory"]);

    let mut old = seated(&server);
    assert_eq!(welcomed_version(&old), first);
    assert_eq!(arrow_cost(&mut old, arrow, 1), 50);

    // A good change: arrows cost 65.
    std::fs::write(&towers, original.replacen("cost = 50", "cost = 65", 1)).unwrap();
    let second = version_of(&assets);
    let line = wait_for_log(&server, &["content reloaded", &format!("version={second}")]);
    assert!(line.contains("towers: changed arrow"), "{line}");
    assert!(line.contains(&first), "names the previous version: {line}");

    // The running session keeps its content; a new one gets the new.
    assert_eq!(arrow_cost(&mut old, arrow, 2), 50);
    let mut new = seated(&server);
    assert_eq!(welcomed_version(&new), second);
    assert_eq!(arrow_cost(&mut new, arrow, 1), 65);
    assert_eq!(
        session(&server, &old.seat().session_id)["content_version"],
        first
    );
    assert_eq!(
        session(&server, &new.seat().session_id)["content_version"],
        second
    );

    // A broken change: a negative cost, reported where it is.
    let broken = original.replacen("cost = 50", "cost = -5", 1);
    let line_number = broken.lines().position(|line| line == "cost = -5").unwrap() + 1;
    std::fs::write(&towers, &broken).unwrap();
    let at = format!("{}:{line_number}:", towers.display());
    let problem = wait_for_log(&server, &["content problem", &at]);
    let column = problem.split(&at).nth(1).unwrap();
    assert!(
        column.split(": ").next().unwrap().parse::<u32>().is_ok(),
        "file:line:column: message, got {problem}"
    );
    wait_for_log(&server, &["content reload refused", &second]);
    assert!(reloads(&server, "watch", "invalid") >= 1.0);

    // The admin route says the same, and needs the token.
    assert_eq!(
        server.post("/v1/admin/reload", &json!({}), None).status,
        401
    );
    let reply = server.post("/v1/admin/reload", &json!({}), Some(TOKEN));
    assert_eq!(reply.status, 422, "{}", reply.body);
    let outcome = reply.json();
    assert_eq!(outcome["outcome"], "invalid");
    assert_eq!(outcome["serving"], second);
    let problems = outcome["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().starts_with(&at)),
        "{problems:?}"
    );
    assert_eq!(reloads(&server, "admin", "invalid"), 1.0);

    // The last good content is still what new sessions get.
    let mut later = seated(&server);
    assert_eq!(welcomed_version(&later), second);
    assert_eq!(arrow_cost(&mut later, arrow, 1), 65);
    let running = session(&server, &old.seat().session_id);
    assert_eq!(running["state"], "running");
    assert_eq!(running["content_version"], first);

    // Mended: back to the first content, and an admin reload finds it
    // already loaded.
    std::fs::write(&towers, &original).unwrap();
    wait_for_log(&server, &["content reloaded", &format!("version={first}")]);
    let reply = server.post("/v1/admin/reload", &json!({}), Some(TOKEN));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["outcome"], "unchanged");
    assert!(reloads(&server, "watch", "reloaded") >= 2.0);
    let _ = std::fs::remove_dir_all(&assets);
}
