//! The net loop in process, with a clock the test drives: clients speak
//! renet over real WebSockets on 127.0.0.1 (the loop's own listener, polled
//! by each pass), and a fake game stands in for the host. Command results
//! must reach the connection that sent the command, with its own `seq`,
//! exactly once, whatever the game loses or the player does in between.
//!
//! Ported to the code before the fix (959242e: results matched to `seq` by
//! a per-seat FIFO, answers carried in `Feed::Events`), the first scenario
//! fails the way players saw it: with seq 10's answer lost, Ada hears
//! `[(10, NotEnoughGold), (11, OutOfBounds)]` for commands 11 and 12.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_sim::{Command, Rejection};
use renet::RenetClient;
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

use super::*;
use crate::protocol::{
    CHANNEL_RELIABLE, ClientMessage, PROTOCOL_VERSION, ServerMessage, Welcome, WireCommand,
};

const SESSION: u64 = 7;
/// The content version [`SESSION`] was built from.
const SESSION_CONTENT: u64 = 0x5e55_1011;

/// The game's side: records what the network submits, and is answered by
/// the test.
#[derive(Default)]
struct FakeGame {
    submitted: Mutex<Vec<(SeatRef, Command, CommandOrigin)>>,
    /// Seats connected, as the game heard of them.
    seated: Mutex<Vec<SeatRef>>,
    /// Spectator counts the game was told, in order.
    watchers: Mutex<Vec<(u64, u16)>>,
}

impl GameLink for FakeGame {
    fn submit(&self, seat: SeatRef, command: Command, origin: CommandOrigin) -> bool {
        self.submitted.lock().unwrap().push((seat, command, origin));
        true
    }

    fn connected(&self, seat: SeatRef) {
        self.seated.lock().unwrap().push(seat);
    }

    fn disconnected(&self, seat: SeatRef) {
        self.seated.lock().unwrap().retain(|&seated| seated != seat);
    }

    fn watchers(&self, session: u64, count: u16) {
        self.watchers.lock().unwrap().push((session, count));
    }
}

/// A net loop with a WebSocket listener and no UDP sockets, its feed, the
/// key its tickets are signed with, and a clock that moves only when the
/// test says.
struct Harness {
    net: NetLoop,
    feed: FeedSender,
    key: Arc<TicketKey>,
    ws_addr: SocketAddr,
    game: Arc<FakeGame>,
    now: Instant,
}

/// One client connected over a WebSocket.
struct TestClient {
    client_id: u64,
    renet: RenetClient,
    socket: WebSocket<TcpStream>,
    /// The server closed the socket.
    closed: bool,
    /// Every command result it got, in order.
    results: Vec<(u32, Result<(), WireRejection>)>,
    /// The welcome, once it came.
    welcome: Option<Welcome>,
    /// The goodbye, once it came.
    bye: Option<ByeReason>,
    /// Each snapshot in a slot of its own: its tick and the tick of its
    /// baseline (none for a full one).
    snapshots: Vec<(u64, Option<u64>)>,
    /// The ticks of those that carried their world's checksum.
    checked: Vec<u64>,
    /// The worlds it rebuilt from them: every delta must build on one of
    /// these and match its checksum.
    worlds: SnapshotRing,
    /// renet packets it got.
    renet_packets: usize,
    /// Throws away renet's packets, as if a lossy link lost them (its
    /// snapshots still arrive: the server counts a WebSocket's writes as
    /// delivered).
    deaf: bool,
}

impl Harness {
    fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Self {
        let game = Arc::new(FakeGame::default());
        let (feed, feed_queue) = feed_channel();
        let key = Arc::new(TicketKey::new([7; 32]).unwrap());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ws = WsTransport::new(listener, key.clone()).unwrap();
        let ws_addr = ws.local_addr().unwrap();
        let config = NetConfig {
            udp_addr: "127.0.0.1:0".parse().unwrap(),
            udp_sockets: 0,
            advertise: UdpAdvertise::Bound(None),
            udp_receive_buffer: 1 << 20,
            snapshot_hz: 20,
            tick_hz: 30,
            limits,
        };
        let net = NetLoop::new(config, game.clone(), feed_queue, Some(ws), Vec::new()).unwrap();
        feed.try_send(Feed::Opened {
            session: SESSION,
            map: "small".into(),
            players: 2,
            content_version: SESSION_CONTENT,
        })
        .unwrap();
        Harness {
            net,
            feed,
            key,
            ws_addr,
            game,
            now: Instant::now(),
        }
    }

    /// A WebSocket ticket for `access`, as a join hands it out.
    fn ticket(&self, access: Access) -> (u64, String) {
        let grant = self.key.grant(access, vec![self.ws_addr]).unwrap();
        (grant.client_id, grant.ws_ticket)
    }

    /// Opens a WebSocket with `ticket`, passing the loop while the upgrade
    /// goes on.
    fn upgrade(&mut self, ticket: &str) -> WebSocket<TcpStream> {
        let stream = TcpStream::connect(self.ws_addr).unwrap();
        stream.set_nonblocking(true).unwrap();
        // As every real client does: small frames must not wait for Nagle.
        stream.set_nodelay(true).unwrap();
        let url = format!("ws://{}/?ticket={ticket}", self.ws_addr);
        let config = protocol::websocket_config();
        let mut progress = tungstenite::client::client_with_config(url, stream, Some(config));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match progress {
                Ok((socket, _)) => return socket,
                Err(HandshakeError::Interrupted(handshake)) => {
                    assert!(Instant::now() < deadline, "the upgrade did not finish");
                    self.net.pass(self.now);
                    std::thread::sleep(Duration::from_millis(1));
                    progress = handshake.handshake();
                }
                Err(HandshakeError::Failure(error)) => panic!("upgrade refused: {error}"),
            }
        }
    }

    /// Connects a client to seat `player` and waits for its welcome.
    fn connect(&mut self, player: u8) -> TestClient {
        let seat = SeatRef {
            session: SESSION,
            player,
        };
        let client = self.open(Access::Seat(seat));
        assert!(
            client.welcome.is_some(),
            "client {} welcomed",
            client.client_id
        );
        client
    }

    /// Connects with `access` and says hello; welcomed or not.
    fn open(&mut self, access: Access) -> TestClient {
        self.open_expecting(access, 0)
    }

    /// Connects with `access` and says hello expecting `content_version`
    /// (0: whatever the session runs); welcomed or not.
    fn open_expecting(&mut self, access: Access, content_version: u64) -> TestClient {
        let (client_id, ticket) = self.ticket(access);
        let socket = self.upgrade(&ticket);
        self.hello(client_id, socket, content_version)
    }

    /// Says hello on an upgraded socket, expecting `content_version`, and
    /// gives the loop time to answer.
    fn hello(
        &mut self,
        client_id: u64,
        socket: WebSocket<TcpStream>,
        content_version: u64,
    ) -> TestClient {
        let mut renet = RenetClient::new(protocol::connection_config());
        renet.set_connected();
        let mut client = TestClient {
            client_id,
            renet,
            socket,
            closed: false,
            results: Vec::new(),
            welcome: None,
            bye: None,
            snapshots: Vec::new(),
            checked: Vec::new(),
            worlds: SnapshotRing::new(),
            renet_packets: 0,
            deaf: false,
        };
        client.send(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            content_version,
        });
        for _ in 0..20 {
            self.step(&mut [&mut client]);
        }
        client
    }

    /// 10 ms of everybody's time: clients send, the loop passes, clients
    /// read what came back.
    fn step(&mut self, clients: &mut [&mut TestClient]) {
        let elapsed = Duration::from_millis(10);
        self.now += elapsed;
        for client in clients.iter_mut() {
            client.renet.update(elapsed);
            let packets = client.renet.get_packets_to_send();
            client.write(bundle::bundle(bundle::renet_slots(&packets)));
        }
        // Loopback delivers within the send, but give the loop a moment.
        std::thread::sleep(Duration::from_millis(1));
        self.net.pass(self.now);
        std::thread::sleep(Duration::from_millis(1));
        for client in clients.iter_mut() {
            client.receive();
        }
    }

    /// The game publishes the session's state at `tick`: two enemies
    /// walking east, one a cell every 8 ticks and one a cell every 4.
    fn publish(&self, tick: u64) {
        let walker = |id: u32, cells_per_tick: f32| rampart_sim::EnemyView {
            id,
            kind: rampart_sim::content::EnemyKindId(0),
            position: glam::Vec2::new(tick as f32 * cells_per_tick, 2.0),
            hp: 10.0,
            max_hp: 10.0,
            flying: false,
            slowed: false,
            burning: false,
        };
        let snapshot = rampart_sim::Snapshot {
            tick,
            wave: 1,
            lives: 20,
            enemies: vec![walker(1, 0.125), walker(2, 0.25)],
            ..rampart_sim::Snapshot::default()
        };
        self.feed
            .try_send(Feed::Snapshot {
                session: SESSION,
                snapshot: Arc::new(snapshot),
                queued: Instant::now(),
            })
            .unwrap();
    }

    /// What the game was given since the last call.
    fn submitted(&self) -> Vec<(SeatRef, Command, CommandOrigin)> {
        std::mem::take(&mut *self.game.submitted.lock().unwrap())
    }

    /// The game answers a command.
    fn answer(&self, seat: SeatRef, origin: CommandOrigin, result: Result<(), Rejection>) {
        self.feed
            .try_send(Feed::Answer {
                session: seat.session,
                player: seat.player,
                origin,
                result,
            })
            .unwrap();
    }
}

fn write_frames(socket: &mut WebSocket<TcpStream>, frames: Vec<Vec<u8>>) {
    for frame in frames {
        socket.write(Message::Binary(frame.into())).unwrap();
    }
    socket.flush().unwrap();
}

impl TestClient {
    /// Writes frames unless the server closed the socket (noticed here or
    /// by the last read).
    fn write(&mut self, frames: Vec<Vec<u8>>) {
        for frame in frames {
            if self.closed {
                return;
            }
            self.closed = self.socket.write(Message::Binary(frame.into())).is_err();
        }
        self.closed = self.closed || self.socket.flush().is_err();
    }

    fn send(&mut self, message: &ClientMessage) {
        self.renet
            .send_message(CHANNEL_RELIABLE, protocol::encode(message));
    }

    fn command(&mut self, seq: u32, command: WireCommand) {
        self.send(&ClientMessage::Command { seq, command });
    }

    fn receive(&mut self) {
        while !self.closed {
            match self.socket.read() {
                Ok(Message::Binary(frame)) => {
                    for slot in bundle::unbundle(&frame).flatten() {
                        match slot {
                            Slot::Renet(_) if self.deaf => {}
                            Slot::Renet(packet) => {
                                self.renet_packets += 1;
                                self.renet.process_packet(packet);
                            }
                            Slot::Snapshot(bytes) => {
                                let header = snapshot::decode_header(bytes).unwrap();
                                self.snapshots.push((header.tick, header.base_tick));
                                if header.checksum.is_some() {
                                    self.checked.push(header.tick);
                                }
                                let base = header.base_tick.and_then(|tick| self.worlds.get(tick));
                                let mut world = NetWorld::default();
                                snapshot::apply(base.map(|base| &**base), bytes, &mut world)
                                    .unwrap();
                                self.worlds.push(Arc::new(world));
                            }
                            Slot::SnapshotAck(_) => {}
                        }
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if error.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    break;
                }
                // The server closed it (after a goodbye, say).
                Err(_) => self.closed = true,
            }
        }
        while let Some(bytes) = self.renet.receive_message(CHANNEL_RELIABLE) {
            match protocol::decode::<ServerMessage>(&bytes, usize::MAX).unwrap() {
                ServerMessage::Welcome(welcome) => self.welcome = Some(welcome),
                ServerMessage::CommandResult { seq, result } => self.results.push((seq, result)),
                ServerMessage::Bye { reason } => self.bye = Some(reason),
                _ => {}
            }
        }
    }
}

fn place(x: u16) -> WireCommand {
    WireCommand::PlaceTower { kind: 0, x, y: 1 }
}

#[test]
fn every_result_reaches_its_own_sender_with_its_own_seq_once() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    let mut bo = harness.connect(1);

    // Ada sends three commands, Bo one.
    ada.command(10, WireCommand::Ready);
    ada.command(11, place(2));
    ada.command(12, place(3));
    bo.command(40, place(5));
    for _ in 0..5 {
        harness.step(&mut [&mut ada, &mut bo]);
    }
    let submitted = harness.submitted();
    assert_eq!(submitted.len(), 4, "{submitted:?}");
    let origin = |seq| origin_of(&submitted, seq);

    // The game's answer to Ada's first command is lost (a full feed drops
    // it); the others come back out of order.
    let (seat, answer_12) = origin(12);
    harness.answer(seat, answer_12, Err(Rejection::OutOfBounds));
    let (seat, answer_40) = origin(40);
    harness.answer(seat, answer_40, Ok(()));
    let (seat, answer_11) = origin(11);
    let not_enough = Rejection::NotEnoughGold {
        needed: 100,
        available: 40,
    };
    harness.answer(seat, answer_11, Err(not_enough));
    for _ in 0..5 {
        harness.step(&mut [&mut ada, &mut bo]);
    }
    assert_eq!(
        ada.results,
        [
            (12, Err(WireRejection::Game(Rejection::OutOfBounds))),
            (11, Err(WireRejection::Game(not_enough))),
        ],
        "seq 10's result was lost, and nobody else's took its place"
    );
    assert_eq!(bo.results, [(40, Ok(()))]);

    // Ada sends a command and drops before its answer; she comes back on a
    // new connection and sends another. The old connection's answer must
    // not reach the new one.
    ada.command(13, place(4));
    for _ in 0..5 {
        harness.step(&mut [&mut ada, &mut bo]);
    }
    let (seat, answer_13) = origin_of(&harness.submitted(), 13);
    drop(ada);
    harness.step(&mut [&mut bo]);
    let mut ada_again = harness.connect(0);
    ada_again.command(1, place(6));
    for _ in 0..5 {
        harness.step(&mut [&mut ada_again, &mut bo]);
    }
    let (seat_again, answer_1) = origin_of(&harness.submitted(), 1);
    assert_eq!(seat_again, seat, "the same seat");
    assert_eq!(answer_1.client, ada_again.client_id);
    harness.answer(seat, answer_13, Ok(()));
    harness.answer(seat_again, answer_1, Err(Rejection::CellOccupied));
    for _ in 0..5 {
        harness.step(&mut [&mut ada_again, &mut bo]);
    }
    assert_eq!(
        ada_again.results,
        [(1, Err(WireRejection::Game(Rejection::CellOccupied)))],
        "the new connection hears only its own command"
    );
    assert_eq!(bo.results, [(40, Ok(()))], "Bo heard nothing of Ada's");
}

/// A command from `client` still goes to the game and its answer comes
/// back.
fn assert_still_answered(harness: &mut Harness, client: &mut TestClient) {
    client.command(1, WireCommand::Ready);
    for _ in 0..5 {
        harness.step(&mut [&mut *client]);
    }
    let (seat, origin) = origin_of(&harness.submitted(), 1);
    harness.answer(seat, origin, Ok(()));
    for _ in 0..5 {
        harness.step(&mut [&mut *client]);
    }
    assert_eq!(client.results, [(1, Ok(()))]);
}

fn origin_of(
    submitted: &[(SeatRef, Command, CommandOrigin)],
    seq: u32,
) -> (SeatRef, CommandOrigin) {
    submitted
        .iter()
        .find(|(_, _, origin)| origin.seq == seq)
        .map(|(seat, _, origin)| (*seat, *origin))
        .unwrap()
}

#[test]
fn a_slice_past_its_count_is_refused_before_renet_would_panic_on_it() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    // A reliable slice (type 2): sequence 900, channel 0, message 5, slice
    // index 3 of 2, then a full slice of 1,200 bytes (length as a QUIC
    // varint). renet 2.0 indexes its slice table with the index unchecked.
    let mut forged = vec![2, 0x43, 0x84, 0, 5, 3, 2, 0x44, 0xb0];
    forged.resize(forged.len() + 1200, 0xaa);
    write_frames(&mut ada.socket, bundle::bundle([Slot::Renet(&forged)]));
    harness.step(&mut [&mut ada]);
    assert_eq!(harness.net.counters.dropped.get("malformed"), Some(&1));

    // The loop and the connection go on.
    assert_still_answered(&mut harness, &mut ada);
}

#[test]
fn a_ticket_presented_twice_cannot_speak_for_or_close_the_first_socket() {
    let mut harness = Harness::new();
    let seat = Access::Seat(SeatRef {
        session: SESSION,
        player: 0,
    });
    let (client_id, ticket) = harness.ticket(seat);
    let socket = harness.upgrade(&ticket);
    let mut ada = harness.hello(client_id, socket, 0);
    assert!(ada.welcome.is_some());
    // The same ticket again, on another socket: the upgrade passes (the
    // ticket is genuine), the loop refuses it as a replay and closes the
    // socket, and whatever it sends changes nothing.
    let mut intruder_socket = harness.upgrade(&ticket);
    let mut intruder = RenetClient::new(protocol::connection_config());
    intruder.set_connected();
    // Its first message id repeats Ada's hello and is dropped as a
    // duplicate; the second is new to Ada's connection.
    for message in [
        ClientMessage::Leave,
        ClientMessage::Command {
            seq: 666,
            command: WireCommand::Ready,
        },
    ] {
        intruder.send_message(CHANNEL_RELIABLE, protocol::encode(&message));
    }
    intruder.update(Duration::from_millis(10));
    let packets = intruder.get_packets_to_send();
    let frames = bundle::bundle(bundle::renet_slots(&packets));
    for frame in frames {
        // The socket may already be closed under it.
        let _ = intruder_socket.send(Message::Binary(frame.into()));
    }
    drop(intruder_socket);
    for _ in 0..5 {
        harness.step(&mut [&mut ada]);
    }
    assert_eq!(
        harness.net.counters.dropped.get("ticket_replayed"),
        Some(&1)
    );
    assert!(
        harness.submitted().is_empty(),
        "the intruder submitted nothing"
    );

    // Ada's own socket still works.
    assert_still_answered(&mut harness, &mut ada);
}

#[test]
fn a_spectator_watches_without_a_seat_and_is_refused_every_command() {
    let mut harness = Harness::with_limits(Limits {
        max_spectators: 1,
        ..Limits::default()
    });
    let mut ada = harness.connect(0);
    let watching = Access::Spectator { session: SESSION };
    let mut eve = harness.open(watching);
    let welcome = eve.welcome.clone().expect("the spectator is welcomed");
    assert_eq!(welcome.player, None, "a spectator has no seat");
    assert_eq!(welcome.session, SESSION);
    assert_eq!(
        *harness.game.seated.lock().unwrap(),
        [SeatRef {
            session: SESSION,
            player: 0
        }],
        "only the player took a seat"
    );
    assert_eq!(*harness.game.watchers.lock().unwrap(), [(SESSION, 1)]);

    // Its commands are answered with a typed refusal and reach no game;
    // its chat goes to nobody.
    eve.command(5, WireCommand::Ready);
    eve.command(6, place(3));
    eve.send(&ClientMessage::Chat {
        text: "hello".into(),
    });
    for _ in 0..5 {
        harness.step(&mut [&mut ada, &mut eve]);
    }
    assert_eq!(
        eve.results,
        [
            (5, Err(WireRejection::Spectating)),
            (6, Err(WireRejection::Spectating))
        ]
    );
    assert!(harness.submitted().is_empty(), "nothing reached the game");
    assert_eq!(harness.net.counters.spectator_commands, 3);

    // One spectator more than the limit is told why and let go.
    let mut late = harness.open(watching);
    assert_eq!(late.welcome, None);
    assert_eq!(late.bye, Some(ByeReason::SpectatorsFull { max: 1 }));
    for _ in 0..5 {
        harness.step(&mut [&mut ada, &mut eve, &mut late]);
    }
    assert!(
        !harness.net.connections.contains_key(&late.client_id),
        "refused and closed"
    );
    assert_eq!(harness.net.counters.spectators_full, 1);
    assert_eq!(
        *harness.game.watchers.lock().unwrap(),
        [(SESSION, 1)],
        "the refused one was never counted"
    );

    // Leaving frees the place; the player's seat is untouched.
    eve.send(&ClientMessage::Leave);
    for _ in 0..5 {
        harness.step(&mut [&mut ada, &mut eve]);
    }
    assert_eq!(
        *harness.game.watchers.lock().unwrap(),
        [(SESSION, 1), (SESSION, 0)]
    );
    assert_eq!(harness.game.seated.lock().unwrap().len(), 1);
    let again = harness.open(watching);
    assert!(again.welcome.is_some(), "room again after one left");
    assert_still_answered(&mut harness, &mut ada);
}

/// A server that reloaded its content runs sessions of two versions at
/// once: each session's clients are welcomed with, and held to, the
/// version that session was built from.
#[test]
fn each_session_holds_its_clients_to_its_own_content_version() {
    const RELOADED: u64 = 8;
    const NEWER_CONTENT: u64 = 0xc0_47e4_7002;
    let mut harness = Harness::new();
    harness
        .feed
        .try_send(Feed::Opened {
            session: RELOADED,
            map: "small".into(),
            players: 2,
            content_version: NEWER_CONTENT,
        })
        .unwrap();
    let older = harness.connect(0);
    assert_eq!(older.welcome.unwrap().content_version, SESSION_CONTENT);
    let seat = |player| {
        Access::Seat(SeatRef {
            session: RELOADED,
            player,
        })
    };
    let newer = harness.open_expecting(seat(0), NEWER_CONTENT);
    assert_eq!(newer.welcome.unwrap().content_version, NEWER_CONTENT);
    let stale = harness.open_expecting(seat(1), SESSION_CONTENT);
    assert!(
        stale.welcome.is_none(),
        "a client of other content is not welcomed"
    );
    assert_eq!(
        stale.bye,
        Some(ByeReason::ContentMismatch {
            server: NEWER_CONTENT
        })
    );
}

#[test]
fn how_long_snapshots_waited_for_the_loop_reaches_the_game() {
    let mut harness = Harness::new();
    assert_eq!(harness.feed.snapshot_wait_p99(), Duration::ZERO);
    let queued = Instant::now() - Duration::from_millis(80);
    harness
        .feed
        .try_send(Feed::Snapshot {
            session: SESSION,
            snapshot: Arc::new(rampart_sim::Snapshot::default()),
            queued,
        })
        .unwrap();
    harness.net.drain_feed();
    harness.net.publish_metrics();
    let waited = harness.feed.snapshot_wait_p99();
    assert!(
        waited >= Duration::from_millis(80) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A second in which no snapshot came reports none waiting.
    harness.net.publish_metrics();
    assert_eq!(harness.feed.snapshot_wait_p99(), Duration::ZERO);
}

/// TCP delivers in order what the server wrote, so a WebSocket client that
/// never acknowledges still gets each world as a delta against the one
/// written before it; when it names a world (after rejecting one), the next
/// delta builds on that world, older or not, and a tick no world has asks
/// for a full one.
#[test]
fn a_websocket_client_gets_deltas_on_what_was_written_without_acknowledging() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    fn publish(
        harness: &mut Harness,
        ada: &mut TestClient,
        tick: u64,
    ) -> Option<(u64, Option<u64>)> {
        harness.publish(tick);
        harness.step(&mut [ada]);
        ada.snapshots.last().copied()
    }
    // The test client's frames carry renet's packets and never an
    // acknowledgement.
    assert_eq!(publish(&mut harness, &mut ada, 3), Some((3, None)));
    for tick in [6, 9, 12] {
        assert_eq!(
            publish(&mut harness, &mut ada, tick),
            Some((tick, Some(tick - 3))),
            "the world written before is the baseline"
        );
    }

    ada.write(bundle::bundle([Slot::SnapshotAck(6)]));
    assert_eq!(
        publish(&mut harness, &mut ada, 15),
        Some((15, Some(6))),
        "the world the client names, though older than the one written"
    );
    assert_eq!(publish(&mut harness, &mut ada, 18), Some((18, Some(15))));

    ada.write(bundle::bundle([Slot::SnapshotAck(protocol::NO_WORLD)]));
    assert_eq!(
        publish(&mut harness, &mut ada, 21),
        Some((21, None)),
        "no world has that tick: a full snapshot"
    );
    assert_eq!(publish(&mut harness, &mut ada, 24), Some((24, Some(21))));
    assert_eq!(ada.snapshots.len(), 8, "one snapshot per world");
}

/// One world in four carries its checksum, and so does every full
/// snapshot: the first a client gets, and one it asked for by naming no
/// world (as after a failed checksum).
#[test]
fn one_world_in_four_and_every_full_snapshot_carry_the_checksum() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    for tick in (1..=10).map(|world| world * 3) {
        harness.publish(tick);
        harness.step(&mut [&mut ada]);
    }
    assert_eq!(ada.snapshots.len(), 10);
    assert_eq!(ada.checked, [3, 15, 27], "the 1st, 5th and 9th worlds");

    ada.write(bundle::bundle([Slot::SnapshotAck(protocol::NO_WORLD)]));
    harness.publish(33);
    harness.step(&mut [&mut ada]);
    assert_eq!(ada.snapshots.last(), Some(&(33, None)));
    assert_eq!(ada.checked.last(), Some(&33), "the 11th world, sent full");
}

/// Over UDP the newest acknowledgement counts, datagrams overtaking each
/// other, except `NO_WORLD`: a client that dropped its worlds gets a full
/// one, then builds on what it acknowledges next.
#[test]
fn a_udp_client_naming_no_world_gets_a_full_one() {
    let harness = Harness::new();
    let watching = Access::Spectator { session: SESSION };
    let mut connection = harness.net.connection(watching, Via::Udp(0), harness.now);
    connection.acknowledged(12);
    connection.acknowledged(9);
    assert_eq!(
        connection.baseline,
        Some(12),
        "an older ack changes nothing"
    );
    connection.acknowledged(protocol::NO_WORLD);
    assert_eq!(connection.baseline, None);
    connection.acknowledged(15);
    assert_eq!(connection.baseline, Some(15));
}

/// A loop that fell behind (several worlds of a session queued by its next
/// pass) derives and sends only the newest: the ones it missed are never
/// derived, so they cost nothing and no client can name them.
#[test]
fn a_loop_that_fell_behind_sends_only_the_newest_world() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    harness.publish(3);
    harness.step(&mut [&mut ada]);
    for tick in [6, 9, 12] {
        harness.publish(tick);
    }
    harness.step(&mut [&mut ada]);
    let ticks: Vec<u64> = ada.snapshots.iter().map(|&(tick, _)| tick).collect();
    assert_eq!(ticks, [3, 12]);
    let ring = &harness.net.sessions[&SESSION].ring;
    assert!(ring.get(12).is_some() && ring.get(3).is_some());
    assert!(
        ring.get(6).is_none() && ring.get(9).is_none(),
        "never derived"
    );
}

/// The deciding tick's world, published just before the session ends,
/// reaches the clients with their goodbye, though the ending came in the
/// same pass and took the session away.
#[test]
fn the_last_world_goes_out_with_the_goodbye() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    harness.publish(3);
    harness.step(&mut [&mut ada]);
    harness.publish(6);
    harness
        .feed
        .try_send(Feed::Ended {
            session: SESSION,
            reason: EndReason::Victory,
        })
        .unwrap();
    for _ in 0..5 {
        harness.step(&mut [&mut ada]);
    }
    let ticks: Vec<u64> = ada.snapshots.iter().map(|&(tick, _)| tick).collect();
    assert_eq!(ticks, [3, 6]);
    assert_eq!(ada.bye, Some(ByeReason::SessionEnded(EndReason::Victory)));
}

/// With snapshots flowing and nothing unacknowledged, renet's packets (acks
/// of the client's acks) ride along only every `RENET_QUIET_FLUSH`; a
/// reliable message that was lost is resent after `protocol::RESEND`, not
/// after that long.
#[test]
fn renet_rides_along_when_it_has_something_to_say() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(0);
    let mut tick = 0;
    let mut play = |harness: &mut Harness, ada: &mut TestClient, steps: usize| {
        for step in 0..steps {
            // A world every 50 ms, as at 20 Hz.
            if step % 5 == 0 {
                tick += 3;
                harness.publish(tick);
            }
            harness.step(&mut [&mut *ada]);
        }
    };
    play(&mut harness, &mut ada, 50);
    let (snapshots, renet) = (ada.snapshots.len(), ada.renet_packets);
    play(&mut harness, &mut ada, 1_000);
    let snapshots = ada.snapshots.len() - snapshots;
    let renet = ada.renet_packets - renet;
    assert_eq!(snapshots, 200, "ten seconds of snapshots");
    assert!(
        (1..=3).contains(&renet),
        "renet's acks every 5 s, not with every snapshot: {renet}"
    );

    // The answer to a command is lost once; its resend comes 100 ms on.
    ada.command(7, WireCommand::Ready);
    play(&mut harness, &mut ada, 3);
    let submitted = harness.submitted();
    let (seat, origin) = origin_of(&submitted, 7);
    ada.deaf = true;
    harness.answer(seat, origin, Ok(()));
    play(&mut harness, &mut ada, 3);
    assert!(ada.results.is_empty());
    ada.deaf = false;
    play(&mut harness, &mut ada, 25);
    assert_eq!(
        ada.results,
        [(7, Ok(()))],
        "resent within 250 ms, not held for the 5 s quiet flush"
    );
}

/// Every grant names a first socket, and each fills evenly whichever
/// grants end up on UDP: all of them, or every other one (the load
/// generator alternates UDP and WebSocket), or every third.
#[test]
fn udp_clients_spread_over_the_sockets_whatever_their_pattern() {
    for sockets in 1..=4 {
        for stride in 1..=3 {
            let mut filled = vec![0usize; sockets];
            for grant in (0..12_000).step_by(stride) {
                filled[first_socket(grant, sockets)] += 1;
            }
            let even = 12_000 / stride / sockets;
            for (socket, &count) in filled.iter().enumerate() {
                assert!(
                    count.abs_diff(even) * 20 <= even,
                    "{sockets} sockets, every {stride}. grant: socket {socket} got {count} of about {even}"
                );
            }
        }
    }
}
