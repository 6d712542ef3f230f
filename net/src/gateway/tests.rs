//! The net loop in process, with no sockets and a clock the test drives:
//! clients speak renet over the WebSocket side's queue, and a fake game
//! stands in for the host. Command results must reach the connection that
//! sent the command, with its own `seq`, exactly once, whatever the game
//! loses or the player does in between.
//!
//! Ported to the code before the fix (959242e: results matched to `seq` by
//! a per-seat FIFO, answers carried in `Feed::Events`), the first scenario
//! fails the way players saw it: with seq 10's answer lost, Ada hears
//! `[(10, NotEnoughGold), (11, OutOfBounds)]` for commands 11 and 12.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_sim::{Command, Rejection};
use renet::RenetClient;
use tokio_tungstenite::tungstenite::Bytes;

use super::*;
use crate::protocol::{
    CHANNEL_RELIABLE, ClientMessage, PROTOCOL_VERSION, ServerMessage, WireCommand,
};
use crate::tickets::WsTicket;

const SESSION: u64 = 7;
/// The content version [`SESSION`] was built from.
const SESSION_CONTENT: u64 = 0x5e55_1011;

/// The game's side: records what the network submits, and is answered by
/// the test.
#[derive(Default)]
struct FakeGame {
    submitted: Mutex<Vec<(SeatRef, Command, CommandOrigin)>>,
}

impl GameLink for FakeGame {
    fn submit(&self, seat: SeatRef, command: Command, origin: CommandOrigin) -> bool {
        self.submitted.lock().unwrap().push((seat, command, origin));
        true
    }

    fn connected(&self, _seat: SeatRef) {}

    fn disconnected(&self, _seat: SeatRef) {}
}

/// A net loop with no UDP sockets, its feed and WebSocket queues, and a
/// clock that moves only when the test says.
struct Harness {
    net: NetLoop,
    feed: FeedSender,
    ws: SyncSender<WsEvent>,
    game: Arc<FakeGame>,
    now: Instant,
}

/// One client connected through the WebSocket queue.
struct MemoryClient {
    client_id: u64,
    renet: RenetClient,
    frames: tokio::sync::mpsc::Receiver<Bytes>,
    /// Every command result it got, in order.
    results: Vec<(u32, Result<(), WireRejection>)>,
    welcome: Option<Welcome>,
    bye: Option<ByeReason>,
}

impl Harness {
    fn new() -> Self {
        let game = Arc::new(FakeGame::default());
        let (feed, feed_queue) = feed_channel();
        let (ws, ws_queue) = sync_channel(1024);
        let config = NetConfig {
            udp_addr: "127.0.0.1:0".parse().unwrap(),
            udp_sockets: 0,
            advertise: UdpAdvertise::Bound(None),
            snapshot_hz: 20,
            tick_hz: 30,
            limits: Limits::default(),
        };
        let net = NetLoop::new(config, game.clone(), feed_queue, ws_queue, Vec::new()).unwrap();
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
            ws,
            game,
            now: Instant::now(),
        }
    }

    /// Connects `client_id` to seat `player` of [`SESSION`] and waits for
    /// its welcome.
    fn connect(&mut self, client_id: u64, player: u8) -> MemoryClient {
        let seat = SeatRef {
            session: SESSION,
            player,
        };
        let client = self.hello(client_id, seat, 0);
        assert!(client.welcome.is_some(), "client {client_id} welcomed");
        client
    }

    /// Connects `client_id` to `seat`, says hello expecting
    /// `content_version`, and gives the loop time to answer.
    fn hello(&mut self, client_id: u64, seat: SeatRef, content_version: u64) -> MemoryClient {
        let (outbox, frames) = tokio::sync::mpsc::channel(1024);
        let ticket = WsTicket {
            client_id,
            seat,
            expires: u64::MAX,
        };
        self.ws
            .send(WsEvent::Open {
                ticket,
                socket: client_id,
                outbox,
            })
            .unwrap();
        let mut renet = RenetClient::new(protocol::connection_config());
        renet.set_connected();
        let mut client = MemoryClient {
            client_id,
            renet,
            frames,
            results: Vec::new(),
            welcome: None,
            bye: None,
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
    fn step(&mut self, clients: &mut [&mut MemoryClient]) {
        let elapsed = Duration::from_millis(10);
        self.now += elapsed;
        for client in clients.iter_mut() {
            client.renet.update(elapsed);
            for frame in crate::bundle::bundle(client.renet.get_packets_to_send()) {
                self.ws
                    .send(WsEvent::Packet {
                        client_id: client.client_id,
                        socket: client.client_id,
                        bytes: Bytes::from(frame),
                    })
                    .unwrap();
            }
        }
        self.net.pass(self.now);
        for client in clients.iter_mut() {
            client.receive();
        }
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

impl MemoryClient {
    fn send(&mut self, message: &ClientMessage) {
        self.renet
            .send_message(CHANNEL_RELIABLE, protocol::encode(message));
    }

    fn command(&mut self, seq: u32, command: WireCommand) {
        self.send(&ClientMessage::Command { seq, command });
    }

    fn receive(&mut self) {
        while let Ok(frame) = self.frames.try_recv() {
            for packet in crate::bundle::unbundle(&frame).flatten() {
                self.renet.process_packet(packet);
            }
        }
        while let Some(bytes) = self.renet.receive_message(CHANNEL_RELIABLE) {
            match protocol::decode::<ServerMessage>(&bytes, usize::MAX).unwrap() {
                ServerMessage::Welcome(welcome) => self.welcome = Some(welcome),
                ServerMessage::Bye { reason } => self.bye = Some(reason),
                ServerMessage::CommandResult { seq, result } => self.results.push((seq, result)),
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
    let mut ada = harness.connect(1, 0);
    let mut bo = harness.connect(2, 1);

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
    harness
        .ws
        .send(WsEvent::Closed {
            client_id: 1,
            socket: 1,
        })
        .unwrap();
    harness.step(&mut [&mut bo]);
    let mut ada_again = harness.connect(3, 0);
    ada_again.command(1, place(6));
    for _ in 0..5 {
        harness.step(&mut [&mut ada_again, &mut bo]);
    }
    let (seat_again, answer_1) = origin_of(&harness.submitted(), 1);
    assert_eq!(seat_again, seat, "the same seat");
    assert_eq!(answer_1.client, 3);
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
    assert_eq!(
        ada.results.len(),
        2,
        "the closed connection heard nothing more"
    );
    assert_eq!(bo.results, [(40, Ok(()))], "Bo heard nothing of Ada's");
}

/// A command from `client` still goes to the game and its answer comes
/// back.
fn assert_still_answered(harness: &mut Harness, client: &mut MemoryClient) {
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
    let mut ada = harness.connect(1, 0);
    // A reliable slice (type 2): sequence 900, channel 0, message 5, slice
    // index 3 of 2, then a full slice of 1,200 bytes (length as a QUIC
    // varint). renet 2.0 indexes its slice table with the index unchecked.
    let mut forged = vec![2, 0x43, 0x84, 0, 5, 3, 2, 0x44, 0xb0];
    forged.resize(forged.len() + 1200, 0xaa);
    let forged = crate::bundle::bundle(vec![forged]);
    for frame in forged {
        harness
            .ws
            .send(WsEvent::Packet {
                client_id: 1,
                socket: 1,
                bytes: Bytes::from(frame),
            })
            .unwrap();
    }
    harness.step(&mut [&mut ada]);
    assert_eq!(harness.net.counters.dropped.get("malformed"), Some(&1));

    // The loop and the connection go on.
    assert_still_answered(&mut harness, &mut ada);
}

#[test]
fn a_ticket_presented_twice_cannot_speak_for_or_close_the_first_socket() {
    let mut harness = Harness::new();
    let mut ada = harness.connect(1, 0);
    // The same ticket again, on another socket: refused as a replay, and
    // whatever that socket sends or however it ends changes nothing.
    let (outbox, _frames) = tokio::sync::mpsc::channel(16);
    let ticket = WsTicket {
        client_id: 1,
        seat: SeatRef {
            session: SESSION,
            player: 0,
        },
        expires: u64::MAX,
    };
    harness
        .ws
        .send(WsEvent::Open {
            ticket,
            socket: 99,
            outbox,
        })
        .unwrap();
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
    for frame in crate::bundle::bundle(intruder.get_packets_to_send()) {
        harness
            .ws
            .send(WsEvent::Packet {
                client_id: 1,
                socket: 99,
                bytes: Bytes::from(frame),
            })
            .unwrap();
    }
    harness
        .ws
        .send(WsEvent::Closed {
            client_id: 1,
            socket: 99,
        })
        .unwrap();
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
    let older = harness.connect(1, 0);
    assert_eq!(older.welcome.unwrap().content_version, SESSION_CONTENT);
    let seat = |player| SeatRef {
        session: RELOADED,
        player,
    };
    let newer = harness.hello(2, seat(0), NEWER_CONTENT);
    assert_eq!(newer.welcome.unwrap().content_version, NEWER_CONTENT);
    let stale = harness.hello(3, seat(1), SESSION_CONTENT);
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
