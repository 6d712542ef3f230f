//! The public records API (`/v1/maps`, leaderboards, latest matches,
//! player histories) of a real server: on the embedded default (SQLite, no
//! Redis) and on PostgreSQL with Redis as a cache-aside. Either way a game
//! that ends shows in the records at once; with Redis, answers come from the
//! cache until a written end invalidates them.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rampart_sim::Command as GameCommand;
use rampart_tests::player::{Player, run_until};
use rampart_tests::quick_assets;
use rampart_tests::server::{Server, metric};
use rampart_tests::stores::TestStores;
use serde_json::{Value, json};

/// `GET path` answered 200 with JSON.
fn get_json(server: &Server, path: &str) -> Value {
    let reply = server.get(path);
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

fn cache_requests(server: &Server, result: &str) -> f64 {
    let text = server.get("/metrics").body;
    metric(
        &text,
        &format!("rampart_cache_requests_total{{result=\"{result}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Plays one single-seat sprint game to its end; returns the session id.
fn play_one_game(server: &Server) -> String {
    let body = json!({"map": "sprint", "max_players": 1});
    let mut players = vec![Player::connect(
        Player::join(server, "/v1/join", &body),
        false,
    )];
    let session = players[0].seat().session_id.clone();
    let mut readied = false;
    let ended = run_until(
        &mut players,
        Duration::from_secs(60),
        |_, player| {
            if !readied && player.client.welcome().is_some() && player.client.world().tick > 10 {
                player.command(GameCommand::Ready);
                readied = true;
            }
        },
        |player| player.outcome().is_some() || player.done(),
    );
    assert!(ended, "the sprint game did not end in 60 s");
    session
}

/// What both configurations must show; `cached` says Redis is configured.
fn records_show_a_finished_game(server: &Server, cached: bool) {
    let maps = get_json(server, "/v1/maps");
    let keys: Vec<&str> = maps
        .as_array()
        .unwrap()
        .iter()
        .map(|map| map["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"sprint"), "{maps}");
    assert!(
        keys.windows(2).all(|pair| pair[0] < pair[1]),
        "by key: {keys:?}"
    );
    let sprint = get_json(server, "/v1/maps/sprint");
    assert_eq!(sprint["width"], 10, "{sprint}");
    assert_eq!(sprint["content_hash"].as_str().unwrap().len(), 16);

    for (path, status) in [
        ("/v1/maps/atlantis", 404),
        ("/v1/maps/atlantis/leaderboard", 404),
        ("/v1/maps/sprint/leaderboard?limit=0", 400),
        ("/v1/maps/sprint/leaderboard?limit=101", 400),
        ("/v1/maps/sprint/matches?limit=ten", 400),
    ] {
        let reply = server.get(path);
        assert_eq!(reply.status, status, "GET {path}: {}", reply.body);
        assert!(reply.json()["error"].is_string(), "{}", reply.body);
    }

    // Before any game: empty pages. Asked twice, the second answer comes
    // from the cache when there is one.
    let board = "/v1/maps/sprint/leaderboard?limit=5";
    let hits_before = cache_requests(server, "hit");
    assert_eq!(get_json(server, board), json!([]));
    assert_eq!(get_json(server, board), json!([]));
    assert_eq!(get_json(server, "/v1/maps/sprint/matches"), json!([]));
    if cached {
        assert!(
            cache_requests(server, "hit") > hits_before,
            "the repeated read was not a cache hit"
        );
    }

    let session = play_one_game(server);

    // The end is written behind the game, then the cached pages are
    // invalidated: the leaderboard shows the game within moments, not at the
    // end of the cache's TTL.
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let page = get_json(server, board);
        if let Some(line) = page.as_array().unwrap().first() {
            break line.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the finished game is not on the leaderboard after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(line["session_id"], session.as_str(), "{line}");
    assert_eq!(line["seat"], 0);
    let player = line["player_id"].as_str().unwrap().to_owned();
    assert!(player.starts_with("anon-"), "{line}");

    let matches = get_json(server, "/v1/maps/sprint/matches");
    assert_eq!(matches.as_array().unwrap().len(), 1, "{matches}");
    assert_eq!(matches[0]["session_id"], session.as_str());
    assert_eq!(matches[0]["players"], 1);
    let outcome = matches[0]["outcome"].as_str().unwrap();
    assert!(["victory", "defeat"].contains(&outcome), "{matches}");

    let history = get_json(server, &format!("/v1/players/{player}/history?limit=3"));
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["map"], "sprint");
    assert_eq!(history[0]["outcome"], outcome);
    assert_eq!(history[0]["score"], line["score"]);
    assert_eq!(
        get_json(server, "/v1/players/nobody/history"),
        json!([]),
        "a player without games has an empty history"
    );
    if cached {
        let text = server.get("/metrics").body;
        assert!(
            metric(&text, "rampart_cache_invalidations_total{result=\"ok\"}")
                .is_some_and(|count| count >= 1.0),
            "no invalidation counted"
        );
    }
}

#[test]
fn records_on_the_embedded_default() {
    let assets = quick_assets("records-embedded");
    let server = Server::start(&["--assets", assets.to_str().unwrap()]);
    records_show_a_finished_game(&server, false);
}

#[test]
fn records_through_the_redis_cache() {
    let Some(stores) = TestStores::new("records") else {
        return;
    };
    let assets = quick_assets("records-cached");
    let server = Server::start(&[
        "--assets",
        assets.to_str().unwrap(),
        "--database-url",
        &stores.database_url,
        "--redis-url",
        &stores.redis_url,
        "--redis-prefix",
        &stores.redis_prefix,
    ]);
    records_show_a_finished_game(&server, true);
}
