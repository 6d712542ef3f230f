//! The `rampart-net` thread's loop: each pass drains the game's feed,
//! advances renet and the transports, reads every client, sends snapshots
//! and flushes, and closes what must close (the steps in ARCHITECTURE.md,
//! "The network"). What the messages mean is in `messages.rs`.

use super::*;

/// A client that got nothing for this long is flushed anyway, so renet's
/// resends do not wait for a snapshot; and a flush takes renet's packets
/// along once renet has sent nothing for this long while a reliable
/// message of its is unacknowledged, so that with snapshots flowing its
/// resends ride in their datagrams instead of datagrams of its own.
const IDLE_FLUSH: Duration = Duration::from_millis(100);
/// How often a flush takes renet's packets along when renet holds no
/// reliable message unacknowledged. All it has then are acks of the
/// client's bare acks: nothing waits on them (no message is in flight, and
/// renet's round-trip estimate, which they refresh, is used by nobody), and
/// each costs a `get_packets_to_send`, a walk of the client's cold renet
/// state: every 100 ms that was 3% of the server's CPU at 800 peer sessions
/// on one core, every 500 ms still 3.4% at 850 (six calls in ten).
/// They go at all so the two sides' lists of acks to send, which only an
/// acknowledged ack prunes, stay short. Messages, acks a client's messages
/// are owed, and resends still go at once or every `IDLE_FLUSH`.
const RENET_QUIET_FLUSH: Duration = Duration::from_secs(5);
/// How often renet's and netcode's clocks advance (resends, keep-alives,
/// timeouts) and every connection is looked at (idle flushes, quiet
/// WebSockets), with clients connected. Everything else a pass does
/// follows packets and the game's feed: a pass reads only the clients that
/// sent something and flushes only those with something urgent, so its
/// cost grows with traffic, not with clients times passes. Maintenance
/// itself walks every client, so it runs as seldom as its jobs allow: a
/// resend comes at most this much after its time (`protocol::RESEND`,
/// 100 ms), an idle flush 100 to 125 ms after the last, and netcode's
/// timeouts are seconds.
const MAINTAIN_CONNECTED: Duration = Duration::from_millis(25);
/// The same with nobody connected: the loop then only answers handshakes,
/// which datagrams wake it for.
const MAINTAIN_EMPTY: Duration = Duration::from_millis(50);
/// The least time between the starts of two passes that found the loop
/// idle in between. Each UDP client acknowledges every snapshot, so with
/// hundreds connected a datagram arrives every few hundred microseconds;
/// waking for each cost a context switch per packet (a tenth of the
/// server's samples under the peer's workload). Sleeping out the rest of
/// this span first lets one pass take everything that came meanwhile, at
/// the price of up to this much added latency.
const PASS_SPACING: Duration = Duration::from_millis(1);
/// Messages read from one client per loop pass, so one flooder cannot
/// hold the loop.
const MESSAGES_PER_PASS: usize = 64;
/// Window over which strikes refill.
const STRIKE_WINDOW_SECONDS: f64 = 10.0;
/// WebSocket frame header plus TCP/IP headers, counted into wire bytes
/// (one segment per frame: Nagle is off).
const WS_OVERHEAD: u64 = 4 + 40;
/// The poll token of the nudge; UDP sockets take their index.
const NUDGE: mio::Token = mio::Token(usize::MAX);

/// Counts published to metrics about once a second.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) udp: UdpCounters,
    pub(super) ws_in: u64,
    pub(super) ws_out: u64,
    pub(super) dropped: HashMap<&'static str, u64>,
    /// Spectators turned away at the per-session limit.
    pub(super) spectators_full: u64,
    /// Commands and chat lines spectators sent (refused).
    pub(super) spectator_commands: u64,
}

impl Counters {
    pub(super) fn drop(&mut self, reason: &'static str) {
        self.drop_many(reason, 1);
    }

    pub(super) fn drop_many(&mut self, reason: &'static str, count: u64) {
        if count > 0 {
            *self.dropped.entry(reason).or_default() += count;
        }
    }
}

/// Clients a pass must attend to, each listed once (the connection's own
/// flags say whether it is listed).
#[derive(Default)]
pub(super) struct Attention {
    /// Sent packets since they were last read.
    pub(super) heard: Vec<u64>,
    /// Have something that must go out this pass.
    pub(super) urgent: Vec<u64>,
    /// Said goodbye: close after their last flush.
    pub(super) closing: Vec<u64>,
    /// Sessions with a world to send (a snapshot arrived, or a client was
    /// welcomed).
    pub(super) worlds: Vec<u64>,
}

/// What the welcome tells a session's clients, from its [`Feed::Opened`].
#[derive(Clone)]
pub(super) struct Hosted {
    pub(super) map: Arc<str>,
    pub(super) players: u8,
    /// The content version the session was built from: a server that
    /// reloads content runs sessions of several versions at once.
    pub(super) content_version: u64,
}

pub(super) struct NetLoop {
    pub(super) renet: RenetServer,
    pub(super) udp: Vec<UdpTransport>,
    pub(super) feed: Receiver<Feed>,
    /// The WebSocket listener and sockets (none in tests of UDP alone).
    pub(super) ws: Option<WsTransport>,
    pub(super) ws_events: Vec<WsEvent>,
    pub(super) link: Arc<dyn GameLink>,
    pub(super) config: NetConfig,
    pub(super) connections: HashMap<u64, Connection>,
    pub(super) seats: HashMap<SeatRef, u64>,
    pub(super) sessions: HashMap<u64, SessionNet>,
    /// Sessions hosted here, for the welcome.
    pub(super) hosted: HashMap<u64, Hosted>,
    /// WebSocket tickets already used, by client id, until they expire.
    pub(super) used_tickets: HashMap<u64, u64>,
    pub(super) udp_events: Vec<UdpEvent>,
    pub(super) attention: Attention,
    /// Reused for the client ids a pass walks, so passes do not allocate.
    pub(super) client_ids: Vec<u64>,
    /// When renet's and netcode's clocks last advanced.
    pub(super) maintained: Instant,
    poll: mio::Poll,
    poll_events: mio::Events,
    nudge: Arc<Nudge>,
    /// How long this second's snapshots waited in the feed.
    snapshot_waits: SnapshotWaits,
    pub(super) counters: Counters,
    pub(super) stats: Arc<NetStats>,
    pub(super) stop: Arc<AtomicBool>,
}

impl NetLoop {
    /// A loop over these transports (none in the in-process tests, which
    /// play the WebSocket side through `ws` and call [`NetLoop::pass`]).
    pub(super) fn new(
        config: NetConfig,
        link: Arc<dyn GameLink>,
        feed: FeedReceiver,
        mut ws: Option<WsTransport>,
        mut udp: Vec<UdpTransport>,
    ) -> io::Result<Self> {
        let poll = mio::Poll::new()?;
        for (index, transport) in udp.iter_mut().enumerate() {
            transport.register(poll.registry(), mio::Token(index))?;
        }
        if let Some(ws) = &mut ws {
            ws.register(poll.registry())?;
        }
        feed.nudge
            .set_waker(mio::Waker::new(poll.registry(), NUDGE)?);
        Ok(NetLoop {
            renet: RenetServer::new(protocol::connection_config()),
            udp,
            feed: feed.receiver,
            ws,
            ws_events: Vec::new(),
            link,
            config,
            connections: HashMap::new(),
            seats: HashMap::new(),
            sessions: HashMap::new(),
            hosted: HashMap::new(),
            used_tickets: HashMap::new(),
            udp_events: Vec::new(),
            attention: Attention::default(),
            client_ids: Vec::new(),
            maintained: Instant::now(),
            poll,
            poll_events: mio::Events::with_capacity(64),
            nudge: feed.nudge,
            snapshot_waits: SnapshotWaits::new(feed.waits),
            counters: Counters::default(),
            stats: Arc::new(NetStats::default()),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub(super) fn run(mut self) {
        tracing::info!(
            udp = ?self.udp.iter().filter_map(|udp| udp.local_addr().ok()).collect::<Vec<_>>(),
            snapshot_hz = self.config.snapshot_hz,
            "net server running"
        );
        let mut last_publish = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let busy = self.pass(now);
            if now - last_publish >= Duration::from_secs(1) {
                self.publish_metrics();
                last_publish = now;
            }
            if !busy {
                self.sleep(now);
            }
        }
        self.goodbye();
        self.publish_metrics();
    }

    fn maintenance_period(&self) -> Duration {
        if self.connections.is_empty() {
            MAINTAIN_EMPTY
        } else {
            MAINTAIN_CONNECTED
        }
    }

    /// Waits for a datagram, a WebSocket, a nudge from the game, or
    /// the next maintenance, whichever comes first; but, with clients
    /// connected, not before [`PASS_SPACING`] after the last pass started.
    /// While it waits out the spacing the loop does not count as asleep, so
    /// nothing nudges it.
    fn sleep(&mut self, pass_started: Instant) {
        let spaced = pass_started + PASS_SPACING;
        let now = Instant::now();
        if now < spaced && !self.connections.is_empty() {
            std::thread::sleep(spaced - now);
        }
        self.nudge.going_to_sleep();
        // Queued before the nudge could see the loop asleep: no sleeping.
        let now = Instant::now();
        if self.drain_feed() {
            self.nudge.awake();
            return;
        }
        let wait = (self.maintained + self.maintenance_period()).saturating_duration_since(now);
        self.poll(wait);
        self.nudge.awake();
    }

    /// Waits up to `wait` for the sockets, and notes which WebSockets are
    /// ready (UDP sockets are read on every pass anyway).
    fn poll(&mut self, wait: Duration) {
        match self.poll.poll(&mut self.poll_events, Some(wait)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "net loop poll failed");
                std::thread::sleep(wait);
            }
        }
        if let Some(ws) = &mut self.ws {
            for event in &self.poll_events {
                ws.on_poll_event(event.token());
            }
        }
    }

    /// One pass of the loop; true when there was work. Every
    /// maintenance period it also advances renet and netcode and looks at
    /// every connection.
    pub(super) fn pass(&mut self, now: Instant) -> bool {
        // 1. What the game published, and which sockets are ready.
        let mut busy = self.drain_feed();
        self.poll(Duration::ZERO);
        if now >= self.maintained + self.maintenance_period() {
            self.maintain(now);
        }
        // 2. Transports: datagrams and WebSocket frames.
        for index in 0..self.udp.len() {
            busy |= self.udp[index].receive(
                &mut self.renet,
                &mut self.udp_events,
                &mut self.counters.udp,
            ) > 0;
            self.handle_udp_events(index, now);
        }
        busy |= self.receive_ws(now);
        self.forget_disconnected();
        // 3. Messages of the clients that sent something.
        let mut heard = std::mem::take(&mut self.client_ids);
        heard.clear();
        heard.append(&mut self.attention.heard);
        for &client_id in &heard {
            if let Some(connection) = self.connections.get_mut(&client_id) {
                connection.heard = false;
            }
        }
        for &client_id in &heard {
            busy |= self.read_client(client_id, now);
        }
        self.client_ids = heard;
        // 4. Snapshots to everyone whose session moved, then what is urgent.
        self.send_snapshots();
        self.flush_urgent(now);
        // 5. Close what said goodbye.
        self.close_finished(now);
        // 6. The datagrams all this queued, a batch per system call.
        self.send_datagrams();
        busy
    }

    fn send_datagrams(&mut self) {
        for udp in &mut self.udp {
            udp.send_queued(&mut self.counters.udp);
        }
    }

    /// Advances renet's and netcode's clocks (resends, keep-alives,
    /// timeouts), flushes connections that waited long enough, says
    /// goodbye to quiet WebSockets and closes what renet gave up on.
    pub(super) fn maintain(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.maintained);
        self.maintained = now;
        self.renet.update(elapsed);
        for index in 0..self.udp.len() {
            self.udp[index].update(
                elapsed,
                &mut self.renet,
                &mut self.udp_events,
                &mut self.counters.udp,
            );
            self.handle_udp_events(index, now);
        }
        self.forget_disconnected();
        if let Some(ws) = &mut self.ws {
            ws.maintain(now, self.poll.registry(), &mut self.ws_events);
        }
        self.flush_idle(now);
        self.say_bye_to_quiet(now);
        for client_id in self.renet.disconnections_id() {
            self.close(client_id, now);
        }
    }

    /// Forgets the clients renet reported gone.
    fn forget_disconnected(&mut self) {
        while let Some(event) = self.renet.get_event() {
            if let ServerEvent::ClientDisconnected { client_id, reason } = event {
                tracing::info!(client_id, %reason, "client disconnected");
                self.forget(client_id);
            }
        }
    }

    /// Handles everything the game has published. True if there was any.
    pub(super) fn drain_feed(&mut self) -> bool {
        let mut any = false;
        let now = Instant::now();
        for _ in 0..FEED_QUEUE {
            match self.feed.try_recv() {
                Ok(feed) => {
                    any = true;
                    if let Feed::Snapshot { queued, .. } = &feed {
                        self.snapshot_waits
                            .note(now.saturating_duration_since(*queued));
                    }
                    self.on_feed(feed);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        any
    }

    pub(super) fn handle_udp_events(&mut self, index: usize, now: Instant) {
        let mut events = std::mem::take(&mut self.udp_events);
        for event in events.drain(..) {
            match event {
                UdpEvent::Connected { client_id, access } => {
                    self.connected(client_id, access, Via::Udp(index), now);
                }
                // renet reports it too; forgetting twice is harmless.
                UdpEvent::Disconnected { client_id } => self.forget(client_id),
                UdpEvent::Heard {
                    client_id,
                    delivered,
                } => self.hear(client_id, delivered, now),
            }
        }
        self.udp_events = events;
    }

    /// Accepts, upgrades and reads the WebSockets that are ready, and
    /// handles what they said. True if there was anything.
    pub(super) fn receive_ws(&mut self, now: Instant) -> bool {
        let Some(ws) = &mut self.ws else {
            return false;
        };
        let busy = ws.receive(self.poll.registry(), &mut self.ws_events);
        let mut events = std::mem::take(&mut self.ws_events);
        for event in events.drain(..) {
            match event {
                WsEvent::Open { ticket, socket } => {
                    let unix_now = crate::tickets::since_epoch().as_secs();
                    self.used_tickets
                        .retain(|_, &mut expires| expires >= unix_now);
                    if self
                        .used_tickets
                        .insert(ticket.client_id, ticket.expires)
                        .is_some()
                        || self.connections.contains_key(&ticket.client_id)
                    {
                        self.counters.drop("ticket_replayed");
                        if let Some(ws) = &mut self.ws {
                            ws.close(socket, self.poll.registry(), &mut self.ws_events);
                        }
                        continue;
                    }
                    self.renet.add_connection(ticket.client_id);
                    self.connected(ticket.client_id, ticket.access, Via::Ws { socket }, now);
                }
                WsEvent::Packet {
                    client_id,
                    socket,
                    bytes,
                } => {
                    self.counters.ws_in += bytes.len() as u64 + WS_OVERHEAD;
                    if let Some(connection) = self.connections.get_mut(&client_id)
                        && connection.via.is_socket(socket)
                    {
                        connection.last_heard = now;
                        let delivered = intake::deliver(&mut self.renet, client_id, &bytes);
                        self.counters.drop_many("malformed", delivered.refused);
                        self.hear(client_id, delivered, now);
                    }
                }
                WsEvent::Dropped { reason } => self.counters.drop(reason),
                WsEvent::Closed { client_id, socket } => {
                    if self
                        .connections
                        .get(&client_id)
                        .is_some_and(|connection| connection.via.is_socket(socket))
                    {
                        self.renet.remove_connection(client_id);
                    }
                }
            }
        }
        // Events raised while handling these (a replayed ticket's close)
        // wait for the next pass.
        events.append(&mut self.ws_events);
        self.ws_events = events;
        busy
    }

    /// A transport finished its handshake for `access`.
    pub(super) fn connected(&mut self, client_id: u64, access: Access, via: Via, now: Instant) {
        let session_id = access.session();
        // A session opens before its join is answered, but a WebSocket can
        // connect within one pass of the loop: its opening may be waiting.
        if !self.hosted.contains_key(&session_id) {
            self.drain_feed();
        }
        if !self.hosted.contains_key(&session_id) {
            // A token for a session that ended (or lives elsewhere).
            tracing::info!(
                client_id,
                session = format_args!("{session_id:016x}"),
                "connection for a session not hosted here"
            );
            self.counters.drop("unknown_session");
            self.connections
                .insert(client_id, self.connection(access, via, now));
            self.say_bye(client_id, ByeReason::SessionEnded(EndReason::Gone));
            return;
        }
        let label = via.label();
        let max_spectators = self.config.limits.max_spectators;
        let watching = self
            .sessions
            .get(&session_id)
            .map_or(0, |session| session.spectators);
        match access {
            Access::Seat(seat) => {
                if let Some(previous) = self.seats.insert(seat, client_id) {
                    // The player came back before the old connection timed out.
                    self.say_bye(previous, ByeReason::Replaced);
                }
            }
            // Tokens are granted below the limit, but several granted at
            // once may arrive together: the limit holds here.
            Access::Spectator { .. } if watching >= max_spectators => {
                self.counters.spectators_full += 1;
                self.connections
                    .insert(client_id, self.connection(access, via, now));
                self.say_bye(
                    client_id,
                    ByeReason::SpectatorsFull {
                        max: max_spectators,
                    },
                );
                return;
            }
            Access::Spectator { .. } => {}
        }
        self.connections
            .insert(client_id, self.connection(access, via, now));
        let session = self
            .sessions
            .entry(session_id)
            .or_insert_with(SessionNet::new);
        session.clients.push(client_id);
        match access {
            Access::Seat(seat) => {
                self.link.connected(seat);
                tracing::info!(
                    client_id,
                    session = format_args!("{session_id:016x}"),
                    player = seat.player,
                    transport = label,
                    "client connected"
                );
            }
            Access::Spectator { .. } => {
                session.spectators += 1;
                self.link.watchers(session_id, session.spectators);
                tracing::info!(
                    client_id,
                    session = format_args!("{session_id:016x}"),
                    spectators = session.spectators,
                    transport = label,
                    "spectator connected"
                );
            }
        }
    }

    pub(super) fn connection(&self, access: Access, via: Via, now: Instant) -> Connection {
        let limits = &self.config.limits;
        let strikes = |count: u32| {
            TokenBucket::new(
                f64::from(count),
                f64::from(count) / STRIKE_WINDOW_SECONDS,
                now,
            )
        };
        Connection {
            access,
            via,
            welcomed: false,
            baseline: None,
            commands: TokenBucket::new(limits.command_burst, limits.commands_per_second, now),
            flood: strikes(limits.flood_strikes),
            malformed: strikes(limits.malformed_strikes),
            last_heard: now,
            last_flush: now,
            renet_flushed: now,
            snapshot: None,
            heard: false,
            urgent: false,
            renet_due: false,
            reliable_unconfirmed: false,
            closing: false,
        }
    }

    /// Takes in what a client's bundle held: its acknowledgement, and
    /// renet packets to read this pass and acknowledge at the next flush.
    pub(super) fn hear(&mut self, client_id: u64, delivered: Delivered, now: Instant) {
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        if let Some(tick) = delivered.acked {
            connection.last_heard = now;
            connection.acknowledged(tick);
        }
        if delivered.renet_messages {
            connection.renet_due = true;
            self.list_heard(client_id);
        }
    }

    /// Lists a client whose messages renet holds for reading this pass.
    pub(super) fn list_heard(&mut self, client_id: u64) {
        if let Some(connection) = self.connections.get_mut(&client_id)
            && !connection.heard
        {
            connection.heard = true;
            self.attention.heard.push(client_id);
        }
    }

    /// Drops everything known about a client that is gone.
    pub(super) fn forget(&mut self, client_id: u64) {
        let Some(connection) = self.connections.remove(&client_id) else {
            return;
        };
        let session = self.sessions.get_mut(&connection.access.session());
        match connection.access {
            Access::Seat(seat) => {
                if let Some(session) = session {
                    session.clients.retain(|&id| id != client_id);
                }
                if self.seats.get(&seat) == Some(&client_id) {
                    self.seats.remove(&seat);
                    self.link.disconnected(seat);
                }
            }
            // Only a spectator listed among the session's clients was
            // counted (one refused at the limit never was).
            Access::Spectator { session: id } => {
                if let Some(session) = session
                    && let Some(index) = session.clients.iter().position(|&c| c == client_id)
                {
                    session.clients.swap_remove(index);
                    session.spectators -= 1;
                    self.link.watchers(id, session.spectators);
                }
            }
        }
    }

    /// Queues a message for a client.
    pub(super) fn send(&mut self, client_id: u64, message: &ServerMessage, urgent: bool) {
        if let Some(connection) = self.connections.get_mut(&client_id) {
            self.renet
                .send_message(client_id, CHANNEL_RELIABLE, protocol::encode(message));
            connection.queued_reliable();
            if urgent {
                connection.hurry(client_id, &mut self.attention);
            }
        }
    }

    pub(super) fn say_bye(&mut self, client_id: u64, reason: ByeReason) {
        self.send(client_id, &ServerMessage::Bye { reason }, true);
        if let Some(connection) = self.connections.get_mut(&client_id) {
            connection.close_after_flush(client_id, &mut self.attention);
        }
    }

    pub(super) fn strike(&mut self, client_id: u64, reason: &'static str, now: Instant) {
        self.counters.drop(reason);
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        let (bucket, kind) = if reason == "rate_limited" {
            (&mut connection.flood, AbuseKind::Flood)
        } else {
            (&mut connection.malformed, AbuseKind::Malformed)
        };
        if !bucket.take(now) && !connection.closing {
            tracing::warn!(client_id, %kind, "disconnecting an abusive client");
            self.counters.drop(match kind {
                AbuseKind::Flood => "flood_disconnect",
                AbuseKind::Malformed => "malformed_disconnect",
            });
            self.say_bye(client_id, ByeReason::Abuse(kind));
        }
    }

    /// Reads a client's waiting messages, at most [`MESSAGES_PER_PASS`] a
    /// channel (a client with more stays listed for the next pass). True
    /// when there were any.
    pub(super) fn read_client(&mut self, client_id: u64, now: Instant) -> bool {
        // Acknowledgements travel beside renet (`bundle::Slot`): nothing
        // may come on the snapshot channel.
        let mut stray = 0;
        while stray < MESSAGES_PER_PASS
            && self
                .renet
                .receive_message(client_id, CHANNEL_SNAPSHOT)
                .is_some()
        {
            stray += 1;
            self.strike(client_id, "malformed", now);
        }
        let mut messages = 0;
        while messages < MESSAGES_PER_PASS {
            let Some(bytes) = self.renet.receive_message(client_id, CHANNEL_RELIABLE) else {
                break;
            };
            messages += 1;
            if let Some(connection) = self.connections.get_mut(&client_id) {
                connection.last_heard = now;
            }
            match protocol::decode::<ClientMessage>(&bytes, MAX_CLIENT_MESSAGE_BYTES) {
                Ok(message) => self.on_message(client_id, message, now),
                Err(protocol::WireError::Oversized { .. }) => {
                    self.strike(client_id, "oversized", now)
                }
                Err(_) => self.strike(client_id, "malformed", now),
            }
        }
        if stray == MESSAGES_PER_PASS || messages == MESSAGES_PER_PASS {
            self.list_heard(client_id);
        }
        stray + messages > 0
    }

    /// Flushes the connections with something urgent.
    pub(super) fn flush_urgent(&mut self, now: Instant) {
        let mut urgent = std::mem::take(&mut self.client_ids);
        urgent.clear();
        urgent.append(&mut self.attention.urgent);
        for &client_id in &urgent {
            self.flush(client_id, now);
        }
        self.client_ids = urgent;
    }

    /// Flushes the connections nothing was sent to for [`IDLE_FLUSH`]:
    /// renet's resends, and its acks once [`RENET_QUIET_FLUSH`] passed, go
    /// out with it (a flush with nothing to send sends nothing).
    pub(super) fn flush_idle(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.client_ids);
        due.clear();
        due.extend(
            self.connections
                .iter()
                .filter(|(_, connection)| now - connection.last_flush >= IDLE_FLUSH)
                .map(|(&id, _)| id),
        );
        for &client_id in &due {
            self.flush(client_id, now);
        }
        self.client_ids = due;
    }

    /// Sends a client's waiting snapshot, and renet's packets when renet
    /// has something: messages or acks due, a reliable message not yet
    /// acknowledged after [`IDLE_FLUSH`] (its resend may be due), or
    /// nothing sent for [`RENET_QUIET_FLUSH`]. A snapshot alone costs renet
    /// nothing.
    pub(super) fn flush(&mut self, client_id: u64, now: Instant) {
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        connection.urgent = false;
        connection.last_flush = now;
        let snapshot = connection.snapshot.take();
        let renet_quiet = now - connection.renet_flushed;
        let packets = if connection.renet_due
            || renet_quiet >= RENET_QUIET_FLUSH
            || (renet_quiet >= IDLE_FLUSH && connection.reliable_unacked(&self.renet, client_id))
        {
            connection.renet_due = false;
            connection.renet_flushed = now;
            // None for a client renet already dropped.
            self.renet
                .get_packets_to_send(client_id)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let slots = bundle::renet_slots(&packets).chain(
            snapshot
                .as_ref()
                .map(|outgoing| Slot::Snapshot(&outgoing.encoding)),
        );
        match &connection.via {
            Via::Udp(index) => {
                self.udp[*index].send(client_id, slots);
            }
            Via::Ws { socket } => {
                if let Some(ws) = &mut self.ws {
                    let sent = ws.send(*socket, slots, self.poll.registry());
                    self.counters.ws_out += sent.bytes + sent.frames * WS_OVERHEAD;
                    self.counters.drop_many("ws_backlog", sent.dropped);
                    if let Some(outgoing) = &snapshot
                        && sent.frames > 0
                        && sent.dropped == 0
                    {
                        connection.wrote(outgoing.tick);
                    }
                }
            }
        }
    }

    /// Disconnects the clients that said goodbye, once their goodbye is
    /// flushed.
    pub(super) fn close_finished(&mut self, now: Instant) {
        let mut closing = std::mem::take(&mut self.client_ids);
        closing.clear();
        closing.append(&mut self.attention.closing);
        for &client_id in &closing {
            match self.connections.get(&client_id) {
                Some(connection) if connection.renet_due => {
                    self.attention.closing.push(client_id);
                }
                Some(_) => {
                    self.renet.disconnect(client_id);
                    self.close(client_id, now);
                }
                None => {}
            }
        }
        self.client_ids = closing;
    }

    /// Says goodbye to WebSocket clients that went quiet (UDP clients
    /// time out in netcode).
    pub(super) fn say_bye_to_quiet(&mut self, now: Instant) {
        let idle = self.config.limits.idle_timeout;
        let quiet: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, connection)| {
                !connection.closing
                    && matches!(connection.via, Via::Ws { .. })
                    && now - connection.last_heard > idle
            })
            .map(|(&client_id, _)| client_id)
            .collect();
        for client_id in quiet {
            self.counters.drop("timed_out");
            self.say_bye(client_id, ByeReason::TimedOut);
        }
    }

    /// Ends a disconnected client's transport and forgets it.
    pub(super) fn close(&mut self, client_id: u64, now: Instant) {
        match self
            .connections
            .get(&client_id)
            .map(|connection| &connection.via)
        {
            Some(Via::Udp(index)) => {
                let index = *index;
                self.udp[index].disconnect(
                    client_id,
                    &mut self.renet,
                    &mut self.udp_events,
                    &mut self.counters.udp,
                );
                self.handle_udp_events(index, now);
            }
            Some(Via::Ws { socket }) => {
                let socket = *socket;
                self.renet.remove_connection(client_id);
                if let Some(ws) = &mut self.ws {
                    ws.close(socket, self.poll.registry(), &mut self.ws_events);
                }
            }
            None => self.renet.remove_connection(client_id),
        }
        self.forget(client_id);
    }

    /// Tells every client the server is going, and sends it.
    pub(super) fn goodbye(&mut self) {
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        let now = Instant::now();
        for &client_id in &ids {
            self.say_bye(client_id, ByeReason::ServerShutdown);
            self.flush(client_id, now);
        }
        for client_id in ids {
            self.renet.disconnect(client_id);
            self.close(client_id, now);
        }
        self.send_datagrams();
    }

    pub(super) fn publish_metrics(&mut self) {
        let kernel_drops: u64 = self.udp.iter_mut().map(UdpTransport::kernel_drops).sum();
        self.counters.drop_many("udp_buffer_full", kernel_drops);
        let waited = self.snapshot_waits.roll();
        metrics::gauge!("rampart_net_snapshot_wait_seconds").set(waited.as_secs_f64());
        let counters = std::mem::take(&mut self.counters);
        let bytes = [
            ("in", "udp", counters.udp.bytes_in),
            ("out", "udp", counters.udp.bytes_out),
            ("in", "ws", counters.ws_in),
            ("out", "ws", counters.ws_out),
        ];
        for (direction, transport, count) in bytes {
            if count > 0 {
                metrics::counter!("rampart_net_bytes_total", "direction" => direction, "transport" => transport)
                    .increment(count);
            }
        }
        self.stats
            .bytes_in
            .fetch_add(counters.udp.bytes_in + counters.ws_in, Ordering::Relaxed);
        self.stats
            .bytes_out
            .fetch_add(counters.udp.bytes_out + counters.ws_out, Ordering::Relaxed);
        if counters.udp.malformed > 0 {
            metrics::counter!("rampart_net_dropped_total", "reason" => "malformed")
                .increment(counters.udp.malformed);
        }
        if counters.udp.oversized > 0 {
            metrics::counter!("rampart_net_dropped_total", "reason" => "oversized")
                .increment(counters.udp.oversized);
        }
        if counters.udp.denied > 0 {
            metrics::counter!("rampart_net_dropped_total", "reason" => "socket_full")
                .increment(counters.udp.denied);
        }
        if counters.udp.send_failed > 0 {
            metrics::counter!("rampart_net_dropped_total", "reason" => "udp_send_failed")
                .increment(counters.udp.send_failed);
        }
        for (reason, count) in counters.dropped {
            metrics::counter!("rampart_net_dropped_total", "reason" => reason).increment(count);
        }
        let udp = self
            .connections
            .values()
            .filter(|connection| matches!(connection.via, Via::Udp(_)))
            .count();
        let ws = self.connections.len() - udp;
        for (reason, count) in [
            ("full", counters.spectators_full),
            ("command", counters.spectator_commands),
        ] {
            if count > 0 {
                metrics::counter!("rampart_spectators_refused_total", "reason" => reason)
                    .increment(count);
            }
        }
        let spectators: usize = self
            .sessions
            .values()
            .map(|session| usize::from(session.spectators))
            .sum();
        self.stats.spectators.store(spectators, Ordering::Relaxed);
        metrics::gauge!("rampart_spectators").set(spectators as f64);
        self.stats.udp_clients.store(udp, Ordering::Relaxed);
        self.stats.ws_clients.store(ws, Ordering::Relaxed);
        metrics::gauge!("rampart_clients_connected", "transport" => "udp").set(udp as f64);
        metrics::gauge!("rampart_clients_connected", "transport" => "ws").set(ws as f64);
    }
}
