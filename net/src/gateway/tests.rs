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
    CHANNEL_RELIABLE, ClientMessage, PROTOCOL_VERSION, ServerMessage, WireCommand,
};

const SESSION: u64 = 7;

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
    /// Every command result it got, in order.
    results: Vec<(u32, Result<(), WireRejection>)>,
    welcomed: bool,
}

impl Harness {
    fn new() -> Self {
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
            snapshot_hz: 20,
            tick_hz: 30,
            content_version: 0,
            limits: Limits::default(),
        };
        let net = NetLoop::new(config, game.clone(), feed_queue, Some(ws), Vec::new()).unwrap();
        feed.try_send(Feed::Opened {
            session: SESSION,
            map: "small".into(),
            players: 2,
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

    /// A WebSocket ticket for seat `player`, as a join hands it out.
    fn ticket(&self, player: u8) -> (u64, String) {
        let seat = SeatRef {
            session: SESSION,
            player,
        };
        let grant = self.key.grant(seat, vec![self.ws_addr]).unwrap();
        (grant.client_id, grant.ws_ticket)
    }

    /// Opens a WebSocket with `ticket`, passing the loop while the upgrade
    /// goes on.
    fn open(&mut self, ticket: &str) -> WebSocket<TcpStream> {
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
        let (client_id, ticket) = self.ticket(player);
        let socket = self.open(&ticket);
        let mut renet = RenetClient::new(protocol::connection_config());
        renet.set_connected();
        let mut client = TestClient {
            client_id,
            renet,
            socket,
            results: Vec::new(),
            welcomed: false,
        };
        client.send(&ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            content_version: 0,
        });
        for _ in 0..20 {
            self.step(&mut [&mut client]);
        }
        assert!(client.welcomed, "client {client_id} welcomed");
        client
    }

    /// 10 ms of everybody's time: clients send, the loop passes, clients
    /// read what came back.
    fn step(&mut self, clients: &mut [&mut TestClient]) {
        let elapsed = Duration::from_millis(10);
        self.now += elapsed;
        for client in clients.iter_mut() {
            client.renet.update(elapsed);
            let frames = crate::bundle::bundle(client.renet.get_packets_to_send());
            write_frames(&mut client.socket, frames);
        }
        // Loopback delivers within the send, but give the loop a moment.
        std::thread::sleep(Duration::from_millis(1));
        self.net.pass(self.now);
        std::thread::sleep(Duration::from_millis(1));
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

fn write_frames(socket: &mut WebSocket<TcpStream>, frames: Vec<Vec<u8>>) {
    for frame in frames {
        socket.write(Message::Binary(frame.into())).unwrap();
    }
    socket.flush().unwrap();
}

impl TestClient {
    fn send(&mut self, message: &ClientMessage) {
        self.renet
            .send_message(CHANNEL_RELIABLE, protocol::encode(message));
    }

    fn command(&mut self, seq: u32, command: WireCommand) {
        self.send(&ClientMessage::Command { seq, command });
    }

    fn receive(&mut self) {
        loop {
            match self.socket.read() {
                Ok(Message::Binary(frame)) => {
                    for packet in crate::bundle::unbundle(&frame).flatten() {
                        self.renet.process_packet(packet);
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if error.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    break;
                }
                Err(error) => panic!("client {} lost its socket: {error}", self.client_id),
            }
        }
        while let Some(bytes) = self.renet.receive_message(CHANNEL_RELIABLE) {
            match protocol::decode::<ServerMessage>(&bytes, usize::MAX).unwrap() {
                ServerMessage::Welcome(_) => self.welcomed = true,
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
    let ada_results = ada.results.clone();
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
    assert_eq!(
        ada_results.len(),
        2,
        "the closed connection heard nothing more"
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
    write_frames(&mut ada.socket, crate::bundle::bundle(vec![forged]));
    harness.step(&mut [&mut ada]);
    assert_eq!(harness.net.counters.dropped.get("malformed"), Some(&1));

    // The loop and the connection go on.
    assert_still_answered(&mut harness, &mut ada);
}

#[test]
fn a_ticket_presented_twice_cannot_speak_for_or_close_the_first_socket() {
    let mut harness = Harness::new();
    let (client_id, ticket) = harness.ticket(0);
    let socket = harness.open(&ticket);
    let mut renet = RenetClient::new(protocol::connection_config());
    renet.set_connected();
    let mut ada = TestClient {
        client_id,
        renet,
        socket,
        results: Vec::new(),
        welcomed: false,
    };
    ada.send(&ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
        content_version: 0,
    });
    for _ in 0..20 {
        harness.step(&mut [&mut ada]);
    }
    assert!(ada.welcomed);
    // The same ticket again, on another socket: the upgrade passes (the
    // ticket is genuine), the loop refuses it as a replay and closes the
    // socket, and whatever it sends changes nothing.
    let mut intruder_socket = harness.open(&ticket);
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
    let frames = crate::bundle::bundle(intruder.get_packets_to_send());
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
