//! What the net loop does with each message: a client's (hello, commands,
//! chat, leave) and the game's ([`Feed`]: openings, snapshots, events,
//! answers, endings, draining). A spectator is welcomed like a player and
//! gets the same snapshots and events; its commands are refused
//! ([`WireRejection::Spectating`]) and its chat is not passed on.

use super::*;

impl NetLoop {
    pub(super) fn on_message(&mut self, client_id: u64, message: ClientMessage, now: Instant) {
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        if connection.closing {
            return;
        }
        let access = connection.access;
        let session_id = access.session();
        match message {
            ClientMessage::Hello {
                protocol,
                content_version,
            } => {
                if protocol != PROTOCOL_VERSION {
                    self.say_bye(
                        client_id,
                        ByeReason::ProtocolMismatch {
                            server: PROTOCOL_VERSION,
                        },
                    );
                } else if let Some(hosted) = self.hosted.get(&session_id).cloned() {
                    if content_version != 0 && content_version != hosted.content_version {
                        self.say_bye(
                            client_id,
                            ByeReason::ContentMismatch {
                                server: hosted.content_version,
                            },
                        );
                        return;
                    }
                    connection.welcomed = true;
                    connection.baseline = None;
                    let welcome = Welcome {
                        protocol: PROTOCOL_VERSION,
                        session: session_id,
                        player: match access {
                            Access::Seat(seat) => Some(seat.player),
                            Access::Spectator { .. } => None,
                        },
                        players: hosted.players,
                        map: hosted.map.to_string(),
                        content_version: hosted.content_version,
                        tick_hz: self.config.tick_hz as u16,
                        snapshot_hz: self.config.snapshot_hz as u16,
                    };
                    self.send(client_id, &ServerMessage::Welcome(welcome), true);
                    // The newest world goes out at once, not at the next snapshot.
                    if let Some(session) = self.sessions.get_mut(&session_id) {
                        session.send_this_pass(session_id, &mut self.attention);
                    }
                } else {
                    self.say_bye(client_id, ByeReason::SessionEnded(EndReason::Gone));
                }
            }
            ClientMessage::Command { seq, command } => {
                let result = if !connection.welcomed {
                    Err(WireRejection::NotJoined)
                } else if !connection.commands.take(now) {
                    self.strike(client_id, "rate_limited", now);
                    Err(WireRejection::RateLimited)
                } else if let Access::Spectator { .. } = access {
                    self.counters.spectator_commands += 1;
                    Err(WireRejection::Spectating)
                } else if let (Access::Seat(seat), Some(command)) = (access, command.to_command()) {
                    let origin = CommandOrigin {
                        client: client_id,
                        seq,
                    };
                    if self.link.submit(seat, command, origin) {
                        return;
                    }
                    self.counters.drop("server_busy");
                    Err(WireRejection::ServerBusy)
                } else {
                    self.strike(client_id, "malformed", now);
                    Err(WireRejection::Malformed)
                };
                self.send(
                    client_id,
                    &ServerMessage::CommandResult { seq, result },
                    true,
                );
            }
            ClientMessage::Chat { text } => {
                if !connection.welcomed {
                    return;
                }
                if text.len() > MAX_CHAT_BYTES {
                    self.strike(client_id, "oversized", now);
                    return;
                }
                if !connection.commands.take(now) {
                    self.strike(client_id, "rate_limited", now);
                    return;
                }
                let Access::Seat(seat) = access else {
                    self.counters.spectator_commands += 1;
                    return;
                };
                let line = ServerMessage::Chat {
                    player: seat.player,
                    text,
                };
                let clients = self
                    .sessions
                    .get(&session_id)
                    .map(|session| session.clients.clone())
                    .unwrap_or_default();
                for other in clients {
                    self.send(other, &line, false);
                }
            }
            ClientMessage::Leave => connection.close_after_flush(client_id, &mut self.attention),
        }
    }

    pub(super) fn on_feed(&mut self, feed: Feed) {
        match feed {
            Feed::Opened {
                session,
                map,
                players,
                content_version,
            } => {
                self.hosted.insert(
                    session,
                    Hosted {
                        map,
                        players,
                        content_version,
                    },
                );
            }
            Feed::Snapshot {
                session, snapshot, ..
            } => {
                let net = self.sessions.entry(session).or_insert_with(SessionNet::new);
                net.pending = Some(snapshot);
                net.send_this_pass(session, &mut self.attention);
            }
            Feed::Answer {
                session,
                player,
                origin,
                result,
            } => self.on_answer(SeatRef { session, player }, origin, result),
            Feed::Events {
                session,
                tick,
                events,
            } => self.on_events(session, tick, &events),
            Feed::Ended { session, reason } => {
                self.hosted.remove(&session);
                if let Some(mut net) = self.sessions.remove(&session) {
                    // The deciding tick's world goes out with the goodbye.
                    if net.due {
                        send_world(
                            &mut net,
                            &mut self.connections,
                            &mut self.renet,
                            &mut self.attention,
                        );
                    }
                    for client_id in net.clients {
                        if let Some(Access::Seat(seat)) = self
                            .connections
                            .get(&client_id)
                            .map(|connection| connection.access)
                        {
                            self.seats.remove(&seat);
                        }
                        self.say_bye(client_id, ByeReason::SessionEnded(reason));
                    }
                }
            }
            Feed::Draining => {
                let ids: Vec<u64> = self.connections.keys().copied().collect();
                for client_id in ids {
                    self.send(
                        client_id,
                        &ServerMessage::Event {
                            tick: 0,
                            event: WireEvent::Draining,
                        },
                        true,
                    );
                }
            }
        }
    }

    /// Gives a command's result to the connection that sent it, if that
    /// connection still holds the seat; otherwise the result is lost for
    /// that client, and never given to another.
    pub(super) fn on_answer(
        &mut self,
        seat: SeatRef,
        origin: CommandOrigin,
        result: Result<(), Rejection>,
    ) {
        if self.seats.get(&seat) != Some(&origin.client) {
            return;
        }
        let message = ServerMessage::CommandResult {
            seq: origin.seq,
            result: result.map_err(WireRejection::Game),
        };
        self.send(origin.client, &message, true);
    }

    pub(super) fn on_events(&mut self, session: u64, tick: u64, events: &[Event]) {
        let Some(net) = self.sessions.get_mut(&session) else {
            return;
        };
        let clients = net.clients.clone();
        for event in events {
            if let Some(event) = WireEvent::from_event(event) {
                let bytes = protocol::encode(&ServerMessage::Event { tick, event });
                for &client_id in &clients {
                    if let Some(connection) = self.connections.get_mut(&client_id)
                        && connection.welcomed
                    {
                        self.renet
                            .send_message(client_id, CHANNEL_RELIABLE, bytes.clone());
                        connection.queued_reliable();
                    }
                }
            }
        }
    }

    /// Sends the newest world of each session that has one to send.
    pub(super) fn send_snapshots(&mut self) {
        let mut due = std::mem::take(&mut self.attention.worlds);
        for session in due.drain(..) {
            // Gone if it ended after its world was due (and sent it then).
            if let Some(net) = self.sessions.get_mut(&session) {
                send_world(
                    net,
                    &mut self.connections,
                    &mut self.renet,
                    &mut self.attention,
                );
            }
        }
        // Kept for its capacity.
        self.attention.worlds = due;
    }
}
