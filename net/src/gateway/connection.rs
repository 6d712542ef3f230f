//! One client connection as the net loop keeps it: how it is reached (a
//! UDP socket or a WebSocket), its rate limits and strikes, and what it
//! has acknowledged (its baseline).

use super::*;

/// A client's way back.
pub(super) enum Via {
    Udp(usize),
    /// The socket's number (events of any other socket presenting the same
    /// ticket are ignored).
    Ws {
        socket: u64,
    },
}

impl Via {
    pub(super) fn label(&self) -> &'static str {
        match self {
            Via::Udp(_) => "udp",
            Via::Ws { .. } => "ws",
        }
    }

    /// Whether this is WebSocket `socket`.
    pub(super) fn is_socket(&self, socket: u64) -> bool {
        matches!(self, Via::Ws { socket: ours } if *ours == socket)
    }
}

/// A refilling allowance.
pub(super) struct TokenBucket {
    pub(super) tokens: f64,
    pub(super) capacity: f64,
    pub(super) per_second: f64,
    pub(super) last: Instant,
}

impl TokenBucket {
    pub(super) fn new(capacity: f64, per_second: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            capacity,
            per_second,
            last: now,
        }
    }

    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(super) struct Connection {
    /// The seat it plays, or the session it watches.
    pub(super) access: Access,
    pub(super) via: Via,
    pub(super) welcomed: bool,
    /// The tick of the world the next snapshot is a delta against: the
    /// newest one the client acknowledged, or over a WebSocket the last one
    /// written to it or the one its client named (see [`Connection::wrote`]).
    pub(super) baseline: Option<u64>,
    pub(super) commands: TokenBucket,
    pub(super) flood: TokenBucket,
    pub(super) malformed: TokenBucket,
    pub(super) last_heard: Instant,
    /// When anything last went out.
    pub(super) last_flush: Instant,
    /// When renet's packets last went out (a flush with only a snapshot
    /// leaves renet alone).
    pub(super) renet_flushed: Instant,
    /// The newest world's encoding for this client, for the next flush.
    pub(super) snapshot: Option<Outgoing>,
    /// Listed in [`Attention::heard`].
    pub(super) heard: bool,
    /// Something waits that should not wait for an idle flush; listed in
    /// [`Attention::urgent`].
    pub(super) urgent: bool,
    /// renet has something for the next flush: messages queued, or
    /// packets from the client to acknowledge.
    pub(super) renet_due: bool,
    /// Reliable messages were queued since renet was last seen holding
    /// none unacknowledged: only then can a resend be due, so only then
    /// is renet asked (a lookup in two of its maps, cold: asking on every
    /// flush cost 3% of the server's CPU).
    pub(super) reliable_unconfirmed: bool,
    /// Said goodbye: disconnect after the next flush; listed in
    /// [`Attention::closing`].
    pub(super) closing: bool,
}

/// A world's encoding waiting for a client's next flush.
pub(super) struct Outgoing {
    pub(super) tick: u64,
    pub(super) encoding: Encoding,
}

impl Connection {
    /// Takes in a snapshot acknowledgement. Datagrams overtake each other,
    /// so over UDP the newest tick named counts, unless it is `NO_WORLD`: a
    /// client that dropped its worlds (its rebuilt world failed a
    /// checksum) needs a full one. A WebSocket delivers in order and its
    /// client speaks only to correct the server (a world it rejected, or
    /// one renet sliced): the tick it names is the world it holds, older
    /// or not.
    pub(super) fn acknowledged(&mut self, tick: u64) {
        self.baseline = match self.via {
            Via::Udp(_) if tick == protocol::NO_WORLD => None,
            Via::Udp(_) => self.baseline.max(Some(tick)),
            Via::Ws { .. } => Some(tick),
        };
    }

    /// Notes a flush that wrote every frame of the world `tick` to the
    /// client's WebSocket. TCP delivers what it took, in order, so the
    /// client will hold that world and the next delta can build on it at
    /// once: no acknowledgement is waited for, and the client sends none
    /// (`docs/PROTOCOL.md`, section 3.3).
    pub(super) fn wrote(&mut self, tick: u64) {
        self.baseline = Some(tick);
    }

    /// Notes a message queued on renet's reliable channel.
    pub(super) fn queued_reliable(&mut self) {
        self.renet_due = true;
        self.reliable_unconfirmed = true;
    }

    /// Whether renet may hold a reliable message of ours unacknowledged.
    pub(super) fn reliable_unacked(&mut self, renet: &RenetServer, client_id: u64) -> bool {
        self.reliable_unconfirmed = self.reliable_unconfirmed
            && renet.channel_available_memory(client_id, CHANNEL_RELIABLE)
                < protocol::CHANNEL_MEMORY_BYTES;
        self.reliable_unconfirmed
    }

    /// Gets this connection flushed in this pass.
    pub(super) fn hurry(&mut self, client_id: u64, attention: &mut Attention) {
        if !self.urgent {
            self.urgent = true;
            attention.urgent.push(client_id);
        }
    }

    /// Flushes what waits, then disconnects.
    pub(super) fn close_after_flush(&mut self, client_id: u64, attention: &mut Attention) {
        self.hurry(client_id, attention);
        if !self.closing {
            self.closing = true;
            attention.closing.push(client_id);
        }
    }
}
