//! The tick thread: the fixed-rate clock, the control inbox, parallel
//! stepping, lifecycle housekeeping, and publishing. One tick reads top to
//! bottom as the steps in ARCHITECTURE.md.

use std::collections::VecDeque;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rampart_net::gateway::{Feed, FeedSender};
use rampart_net::protocol::EndReason;
use rampart_sim::{PlayerId, Rejection};
use rand_core::Rng;
use rand_pcg::Pcg32;
use rayon::prelude::*;
use tokio::sync::{mpsc, oneshot};

use rampart_persistence::PersistEvent;

use crate::telemetry::SESSION_TICKS;

use super::hosted::{HostedSession, Prepared, Seat, Stepped};
use super::pace::Pace;
use super::saved::Resumed;
use super::saving::Saver;
use super::{
    Control, DrainReport, HostConfig, HostError, HostStatus, Overload, Published, Saves, SessionId,
    SessionInfo, SessionState,
};

/// Control messages handled per tick at most, so a flood of requests
/// delays requests, never ticks.
const CONTROL_PER_TICK: usize = 2048;

/// Ticks between two publications of the session list (10 Hz at 30 Hz).
const PUBLISH_EVERY: u64 = 3;

/// Ticks between two looks for expired seats and idle sessions (a third of
/// a second at 30 Hz): both are counted in seconds.
const PRUNE_EVERY: u64 = 10;

/// Recent tick durations kept for the on-time check.
const RECENT_TICKS: usize = 128;

/// How long a drain retries handing a session to a full persistence queue.
const DRAIN_PATIENCE: Duration = Duration::from_secs(5);

pub(super) fn spawn(
    config: HostConfig,
    saves: Option<Saves>,
    inbox: mpsc::Receiver<Control>,
    published: Arc<RwLock<Published>>,
    feed: Option<FeedSender>,
    pace: Pace,
) -> std::io::Result<()> {
    let pool = step_pool(config.step_threads)?;
    let (saver, persist_events) = match saves {
        Some(saves) => (
            Some(Saver::new(saves.handle, &saves.cadence, config.tick_hz)),
            Some(saves.events),
        ),
        None => (None, None),
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let ticker = Ticker {
        period: Duration::from_secs_f64(1.0 / f64::from(config.tick_hz)),
        pace,
        config,
        inbox,
        published,
        pool,
        saver,
        persist_events,
        sessions: Vec::new(),
        ended: VecDeque::new(),
        tick: 0,
        crashed: 0,
        recent: VecDeque::with_capacity(RECENT_TICKS),
        ids: Pcg32::new(seed, 0x7369_6473),
        dirty: true,
        feed,
        fresh: None,
        unpublished: Vec::new(),
    };
    std::thread::Builder::new()
        .name("rampart-tick".into())
        .spawn(move || ticker.run())?;
    Ok(())
}

/// The threads that step sessions, each pinned to a core of its own when
/// there is one per core the process may use.
///
/// Unpinned, the scheduler woke both of a 2-core host's step threads on the
/// core the tick thread had just left, where the one done first spun in
/// rayon's idle loop, yielding to the other one that still worked: some 30
/// switches a tick on each step thread, and half a core for the work until
/// the balancer moved one. With fewer step threads than cores (set by
/// `step_threads`, or a cgroup quota below the cores the process may run
/// on) nothing is pinned: the scheduler then has cores to spare.
fn step_pool(threads: usize) -> std::io::Result<rayon::ThreadPool> {
    // Resolved here rather than by rayon (which would also read
    // RAYON_NUM_THREADS), so the count pinned is the count started.
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        threads
    };
    let builder = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("rampart-step-{index}"));
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let builder = if cores.len() == threads && threads > 1 {
        tracing::info!(threads, "step threads pinned, one per core");
        builder.start_handler(move |index| {
            let pinned = cores
                .get(index)
                .is_some_and(|&core| core_affinity::set_for_current(core));
            if !pinned {
                tracing::warn!(index, "could not pin a step thread to its core");
            }
        })
    } else {
        tracing::info!(
            threads,
            cores = cores.len(),
            "step threads not pinned: not one per core"
        );
        builder
    };
    builder.build().map_err(std::io::Error::other)
}

struct Ticker {
    period: Duration,
    pace: Pace,
    config: HostConfig,
    inbox: mpsc::Receiver<Control>,
    published: Arc<RwLock<Published>>,
    pool: rayon::ThreadPool,
    saver: Option<Saver>,
    persist_events: Option<std_mpsc::Receiver<PersistEvent>>,
    sessions: Vec<HostedSession>,
    ended: VecDeque<SessionInfo>,
    tick: u64,
    crashed: u64,
    recent: VecDeque<Duration>,
    ids: Pcg32,
    dirty: bool,
    feed: Option<FeedSender>,
    /// The infos this tick's pass read, for publishing at its end.
    fresh: Option<Vec<SessionInfo>>,
    /// Answers to requests that changed which sessions the API shows (a
    /// create, an adoption, an end), held until the view showing the
    /// change is published: a client that reads back the session it was
    /// just told of finds it as told.
    unpublished: Vec<(SessionReply, SessionInfo)>,
}

type SessionReply = oneshot::Sender<Result<SessionInfo, HostError>>;

impl Ticker {
    fn run(mut self) {
        tracing::info!(
            hz = self.config.tick_hz,
            max_sessions = self.config.max_sessions,
            "session host ticking"
        );
        loop {
            if !self.await_tick() {
                return;
            }
            let started = Instant::now();
            // 1. Requests: create, join, leave, commands, end, drain.
            if !self.handle_control() {
                return;
            }
            // 2. Step every running session in parallel (each also hands
            //    its state to the persistence writer when due); on some
            //    ticks also free expired seats, find idle sessions and read
            //    what the HTTP API shows, while each world is in cache.
            // 3. Sessions decided, crashed or idle end.
            self.step_sessions();
            // 4. Sessions another instance took over stop here.
            self.handle_persist_events();
            // 5. Publish the view the HTTP API reads: what this tick's pass
            //    read, or, after a change it did not read (a session that
            //    ended), every session read again, so that the API shows an
            //    end before its players can ask.
            if let Some(infos) = self.fresh.take() {
                self.publish_from(infos);
            } else if self.dirty {
                self.publish();
            }
            // 6. Measure, then wait for the next tick.
            let work = started.elapsed();
            metrics::histogram!("rampart_tick_duration_seconds").record(work.as_secs_f64());
            if self.recent.len() == RECENT_TICKS {
                self.recent.pop_front();
            }
            self.recent.push_back(work);
            match &mut self.pace {
                Pace::Wall(metronome) => metronome.wait(),
                #[cfg(test)]
                Pace::Driven(clock) => clock.done(),
            }
            self.tick += 1;
        }
    }

    /// Waits until the next tick may start: at once on the wall clock (the
    /// previous tick slept to its deadline); driven, until the test grants
    /// one, serving requests meanwhile. False once drained.
    fn await_tick(&mut self) -> bool {
        #[cfg(test)]
        if let Pace::Driven(clock) = &self.pace {
            let clock = clock.clone();
            while !clock.take(Duration::from_millis(1)) {
                if !self.handle_control() {
                    return false;
                }
                if self.dirty {
                    self.publish();
                }
            }
        }
        true
    }

    /// Returns false once drained (or once nobody can send requests).
    fn handle_control(&mut self) -> bool {
        for _ in 0..CONTROL_PER_TICK {
            match self.inbox.try_recv() {
                Ok(Control::Drain { reply }) => {
                    let report = self.drain();
                    let _ = reply.send(report);
                    return false;
                }
                Ok(control) => self.handle(control),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.drain();
                    return false;
                }
            }
        }
        true
    }

    fn find(&mut self, id: SessionId) -> Result<&mut HostedSession, HostError> {
        self.sessions
            .iter_mut()
            .find(|hosted| hosted.id == id)
            .ok_or(HostError::NotFound)
    }

    fn handle(&mut self, control: Control) {
        match control {
            Control::Create { prepared, reply } => {
                let created = self.admit(*prepared);
                self.answer_once_published(reply, created);
            }
            Control::Adopt {
                id,
                epoch,
                resumed,
                reply,
            } => {
                let adopted = self.adopt(id, epoch, *resumed);
                self.answer_once_published(reply, adopted);
            }
            Control::End { id, reply } => {
                let ended = match self.sessions.iter().position(|hosted| hosted.id == id) {
                    Some(index) => Ok(self.end(index, EndReason::EndedByAdmin)),
                    None => Err(HostError::NotFound),
                };
                self.answer_once_published(reply, ended);
            }
            Control::Join { id, who, reply } => {
                let tick = self.tick;
                let joined = self.find(id).and_then(|hosted| seat(hosted, who, tick));
                self.dirty = true;
                let _ = reply.send(joined);
            }
            Control::Matchmake {
                map,
                seats,
                content_version,
                who,
                reply,
            } => {
                let tick = self.tick;
                let lobby = self.sessions.iter_mut().find(|hosted| {
                    hosted.state == SessionState::Lobby
                        && !hosted.private
                        && *hosted.map == *map
                        && hosted.session.content().version == content_version
                        && hosted.seats.len() == usize::from(seats)
                        && hosted.seats.iter().any(|seat| match seat {
                            Seat::Free => true,
                            Seat::Person { who: holder, .. } => *holder == who,
                            Seat::Bot(_) => false,
                        })
                });
                let seated = match lobby {
                    Some(hosted) => seat(hosted, who, tick).map(|player| (hosted.id, player)),
                    None => Err(HostError::NotFound),
                };
                self.dirty = true;
                let _ = reply.send(seated);
            }
            Control::Rejoin {
                id,
                player,
                who,
                reply,
            } => {
                let tick = self.tick;
                let rejoined = self.find(id).and_then(|hosted| {
                    match hosted.seats.get_mut(usize::from(player.0)) {
                        Some(Seat::Person {
                            who: holder, since, ..
                        }) if *holder == who => {
                            *since = tick;
                            Ok(())
                        }
                        _ => Err(HostError::SeatLost),
                    }
                });
                let _ = reply.send(rejoined);
            }
            Control::Connected { id, player } => {
                let tick = self.tick;
                if let Ok(hosted) = self.find(id)
                    && let Some(Seat::Person {
                        connected, since, ..
                    }) = hosted.seats.get_mut(usize::from(player.0))
                {
                    *connected = true;
                    *since = tick;
                    hosted.last_person_tick = tick;
                    // A lobby does not tick: show the newcomer the board now.
                    hosted.send_snapshot();
                }
                self.dirty = true;
            }
            Control::Leave { id, player } => {
                let tick = self.tick;
                if let Ok(hosted) = self.find(id)
                    && let Some(Seat::Person {
                        connected, since, ..
                    }) = hosted.seats.get_mut(usize::from(player.0))
                {
                    *connected = false;
                    *since = tick;
                }
                self.dirty = true;
            }
            Control::Describe { id, reply } => {
                let info = self
                    .sessions
                    .iter()
                    .find(|hosted| hosted.id == id)
                    .map(HostedSession::info)
                    .or_else(|| self.ended.iter().find(|info| info.id == id).cloned());
                let _ = reply.send(info);
            }
            Control::Watchers { id, count } => {
                if let Ok(hosted) = self.find(id) {
                    let newcomer = count > hosted.spectators;
                    hosted.spectators = count;
                    // A lobby does not tick: show a newcomer the board now.
                    if newcomer {
                        hosted.send_snapshot();
                    }
                }
                self.dirty = true;
            }
            Control::Submit {
                id,
                player,
                command,
                origin,
            } => {
                if let Ok(hosted) = self.find(id)
                    && matches!(
                        hosted.seats.get(usize::from(player.0)),
                        Some(Seat::Person { .. })
                    )
                {
                    hosted.submit(player, command, origin);
                } else if let Some(feed) = &self.feed {
                    // The seat was freed or the session is gone: answered
                    // all the same, so the sender is not left waiting.
                    let answer = Feed::Answer {
                        session: id.0,
                        player: player.0,
                        origin,
                        result: Err(Rejection::UnknownPlayer),
                    };
                    if feed.try_send(answer).is_err() {
                        metrics::counter!("rampart_net_dropped_total", "reason" => "feed_full")
                            .increment(1);
                    }
                }
            }
            Control::Drain { .. } => unreachable!("handled by handle_control"),
            #[cfg(test)]
            Control::InjectPanic { id } => {
                if let Ok(hosted) = self.find(id) {
                    hosted.session.inject_panic();
                }
            }
            #[cfg(test)]
            Control::Stall { release } => {
                let _ = release.recv();
            }
        }
    }

    fn ticks_on_time(&self) -> bool {
        let budget = self.period * self.config.overrun_budget_pct / 100;
        self.tick_p99().is_none_or(|p99| p99 <= budget)
    }

    /// Whether the net loop takes snapshots within a snapshot period of
    /// their tick (over its last second, at the 99th percentile). Later,
    /// each client's next world is out before its last one left.
    fn snapshots_on_time(&self) -> bool {
        let period = Duration::from_secs(1) / self.config.snapshot_hz.clamp(1, self.config.tick_hz);
        self.feed
            .as_ref()
            .is_none_or(|feed| feed.snapshot_wait_p99() <= period)
    }

    /// The 99th percentile of the last ticks' durations, once there are any.
    fn tick_p99(&self) -> Option<Duration> {
        let mut recent: Vec<Duration> = self.recent.iter().copied().collect();
        recent.sort_unstable();
        recent.get(recent.len() * 99 / 100).copied()
    }

    /// Admits a session built off this thread: only the capacity and
    /// on-time checks and the bookkeeping happen here.
    fn admit(&mut self, prepared: Prepared) -> Result<SessionInfo, HostError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(HostError::Full {
                max: self.config.max_sessions,
            });
        }
        if !self.ticks_on_time() {
            return Err(HostError::Overloaded(Overload::TicksLate));
        }
        if !self.snapshots_on_time() {
            return Err(HostError::Overloaded(Overload::SnapshotsLate));
        }
        let mut id = SessionId(self.ids.next_u64());
        while self.sessions.iter().any(|hosted| hosted.id == id) {
            id = SessionId(self.ids.next_u64());
        }
        let hosted = HostedSession::new(
            id,
            prepared,
            (unix_ms(), self.tick),
            self.feed.clone(),
            self.config.snapshot_hz,
            self.saver.clone(),
        );
        hosted.announce(Feed::Opened {
            session: id.0,
            map: hosted.map.clone(),
            players: hosted.seats.len() as u8,
            content_version: hosted.session.content().version,
        });
        let info = hosted.info();
        tracing::info!(session = %id, map = %hosted.map, players = info.max_players, bots = info.bots, "session created");
        self.sessions.push(hosted);
        self.dirty = true;
        Ok(info)
    }

    /// Takes over a session another instance ran: it resumes ticking at
    /// once, its people's seats kept for the reconnect grace from now.
    fn adopt(
        &mut self,
        id: SessionId,
        epoch: u64,
        resumed: Resumed,
    ) -> Result<SessionInfo, HostError> {
        if self.sessions.iter().any(|hosted| hosted.id == id) {
            return Err(HostError::Invalid(format!(
                "session {id} is already hosted here"
            )));
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(HostError::Full {
                max: self.config.max_sessions,
            });
        }
        let mut hosted = HostedSession::new(
            id,
            resumed.prepared,
            (resumed.created_unix_ms, self.tick),
            self.feed.clone(),
            self.config.snapshot_hz,
            self.saver.clone(),
        );
        for seat in &mut hosted.seats {
            if let Seat::Person { since, .. } = seat {
                *since = self.tick;
            }
        }
        hosted.state = SessionState::Running;
        hosted.adopted(epoch);
        hosted.announce(Feed::Opened {
            session: id.0,
            map: hosted.map.clone(),
            players: hosted.seats.len() as u8,
            content_version: hosted.session.content().version,
        });
        let info = hosted.info();
        tracing::info!(session = %id, epoch, tick = info.tick, checkpoint_tick = resumed.checkpoint_tick, "session adopted");
        self.sessions.push(hosted);
        self.dirty = true;
        Ok(info)
    }

    /// Ends, without a record, every session the writer says another
    /// instance owns now: two owners must never tick one session.
    fn handle_persist_events(&mut self) {
        let Some(events) = &self.persist_events else {
            return;
        };
        let lost: Vec<u64> = events
            .try_iter()
            .filter_map(|event| match event {
                PersistEvent::LostOwnership { session, .. } => Some(session),
                PersistEvent::Finished { .. } => None,
            })
            .collect();
        for session in lost {
            if let Some(index) = self
                .sessions
                .iter()
                .position(|hosted| hosted.id.0 == session)
            {
                tracing::warn!(session = %self.sessions[index].id, "another instance owns this session now; stopping it here");
                metrics::counter!("rampart_sessions_moved_total").increment(1);
                self.end(index, EndReason::Moved);
            }
        }
    }

    /// One parallel pass over every session: steps it and, when due, does
    /// the lifecycle look and reads its info for the API. Doing the last
    /// two here rather than in walks of their own on the tick thread reads
    /// each world while its step has it in cache, on both step threads.
    fn step_sessions(&mut self) {
        let tick = self.tick;
        let look = self.tick.is_multiple_of(PRUNE_EVERY).then(|| Look {
            tick,
            grace_ticks: self.config.reconnect_grace.as_secs() * u64::from(self.config.tick_hz),
            idle_ticks: self.config.idle_timeout.as_secs() * u64::from(self.config.tick_hz),
        });
        let read_info = self.dirty || self.tick.is_multiple_of(PUBLISH_EVERY);
        let sessions = &mut self.sessions;
        let pass = self.pool.install(|| {
            sessions
                .par_iter_mut()
                .enumerate()
                .fold(Pass::default, |pass, (index, hosted)| {
                    pass.visit(index, hosted, look.as_ref(), read_info)
                })
                .reduce(Pass::default, Pass::merge)
        });
        metrics::counter!(SESSION_TICKS).increment(pass.stepped);
        self.dirty |= pass.seats_freed;
        let mut ends = pass.ends;
        ends.sort_unstable_by_key(|&(index, _)| index);
        // Highest index first so removals keep the other indices valid.
        for (index, reason) in ends.into_iter().rev() {
            if reason == EndReason::Crashed {
                let id = self.sessions[index].id;
                tracing::error!(session = %id, "session panicked during its tick; ending it");
                metrics::counter!("rampart_sessions_crashed_total").increment(1);
                self.crashed += 1;
            }
            self.end(index, reason);
        }
        self.fresh = read_info.then_some(pass.infos);
    }

    /// Ends session `index`: tells its watchers, hands its record over,
    /// and keeps its info for the API.
    fn end(&mut self, index: usize, reason: EndReason) -> SessionInfo {
        let mut hosted = self.sessions.swap_remove(index);
        hosted.state = SessionState::Ended;
        hosted.end_reason = Some(reason);
        hosted.announce(Feed::Ended {
            session: hosted.id.0,
            reason,
        });
        // A moved session's end is its new owner's to write.
        if reason != EndReason::Moved {
            hosted.finish(reason);
        }
        let info = hosted.info();
        // Ended after this tick's pass read it (taken over elsewhere): it
        // is published among the ended, not the running.
        if let Some(fresh) = &mut self.fresh {
            fresh.retain(|fresh| fresh.id != info.id);
        }
        tracing::info!(session = %hosted.id, reason = reason.label(), tick = info.tick, "session ended");
        if self.ended.len() == self.config.ended_kept {
            self.ended.pop_back();
        }
        self.ended.push_front(info.clone());
        self.dirty = true;
        info
    }

    /// Stops admitting, tells every session, and hands each running one to
    /// the persistence writer (a durable checkpoint, then the lease
    /// released) for another instance to adopt. Lobbies end: nothing of
    /// theirs is stored.
    fn drain(&mut self) -> DrainReport {
        let mut status = self.status(
            self.sessions
                .iter()
                .map(|hosted| (hosted.state, hosted.people_connected() + hosted.bots())),
        );
        status.draining = true;
        if let Ok(mut published) = self.published.write() {
            published.status = status;
        }
        // The host stops here: what it did before the drain is answered
        // rather than left to look like a stopped host.
        self.answer_published();
        let sessions = std::mem::take(&mut self.sessions);
        tracing::info!(
            sessions = sessions.len(),
            "drain: telling sessions and handing them over"
        );
        let mut report = DrainReport::default();
        let patience = Instant::now() + DRAIN_PATIENCE;
        for mut hosted in sessions {
            if hosted.state != SessionState::Running {
                continue;
            }
            report.sessions += 1;
            // A full queue empties as the writer works; the tick has stopped,
            // so waiting here delays nothing but the exit.
            let handed = loop {
                if hosted.hand_over() {
                    break true;
                }
                if Instant::now() >= patience {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if handed {
                tracing::info!(session = %hosted.id, tick = hosted.session.tick(), "session handed over");
                report.handed_over += 1;
            } else {
                tracing::error!(session = %hosted.id, "drain: the persistence queue would not take the session");
                report.failed += 1;
            }
        }
        report
    }

    /// The host's status, counting sessions by their state and the players
    /// (people connected and bots) at each.
    fn status(&self, sessions: impl Iterator<Item = (SessionState, u8)>) -> HostStatus {
        let mut status = HostStatus {
            max_sessions: self.config.max_sessions,
            ticks_on_time: self.ticks_on_time(),
            snapshots_on_time: self.snapshots_on_time(),
            tick_p99_us: self.tick_p99().map_or(0, |p99| p99.as_micros() as u64),
            tick: self.tick,
            crashed: self.crashed,
            ended: self.ended.len(),
            ..HostStatus::default()
        };
        for (state, players) in sessions {
            match state {
                SessionState::Lobby => status.lobby += 1,
                SessionState::Running => status.running += 1,
                SessionState::Ended => status.ended += 1,
            }
            status.players_connected += usize::from(players);
        }
        status
    }

    /// Publishes what the sessions are now, reading each on the step
    /// threads.
    fn publish(&mut self) {
        let sessions = &self.sessions;
        let infos = self
            .pool
            .install(|| sessions.par_iter().map(HostedSession::info).collect());
        self.publish_from(infos);
    }

    /// Publishes `infos`, one per hosted session, with the ended ones.
    fn publish_from(&mut self, mut sessions: Vec<SessionInfo>) {
        let status = self.status(
            sessions
                .iter()
                .map(|info| (info.state, info.players + info.bots)),
        );
        metrics::gauge!("rampart_sessions", "state" => "lobby").set(status.lobby as f64);
        metrics::gauge!("rampart_sessions", "state" => "running").set(status.running as f64);
        metrics::gauge!("rampart_sessions", "state" => "ended").set(status.ended as f64);
        metrics::gauge!("rampart_players_connected").set(status.players_connected as f64);
        sessions.sort_unstable_by(|a, b| {
            b.created_unix_ms
                .cmp(&a.created_unix_ms)
                .then(a.id.cmp(&b.id))
        });
        sessions.extend(self.ended.iter().cloned());
        if let Ok(mut published) = self.published.write() {
            *published = Published { sessions, status };
        }
        self.dirty = false;
        self.answer_published();
    }

    /// Answers `reply` once the view shows what `answer` tells of; a
    /// refusal changed nothing and goes at once.
    fn answer_once_published(
        &mut self,
        reply: SessionReply,
        answer: Result<SessionInfo, HostError>,
    ) {
        match answer {
            Ok(info) => self.unpublished.push((reply, info)),
            Err(refused) => {
                let _ = reply.send(Err(refused));
            }
        }
    }

    /// Sends the answers the view just published shows.
    fn answer_published(&mut self) {
        for (reply, info) in self.unpublished.drain(..) {
            let _ = reply.send(Ok(info));
        }
    }
}

/// The periodic lifecycle look's limits, in host ticks.
struct Look {
    tick: u64,
    grace_ticks: u64,
    idle_ticks: u64,
}

/// What a tick's pass over the sessions (or a run of them) found.
#[derive(Default)]
struct Pass {
    /// Sessions that ticked.
    stepped: u64,
    /// The lifecycle look freed a seat whose person stayed away too long.
    seats_freed: bool,
    /// Sessions to end, by index: decided, crashed or idle.
    ends: Vec<(usize, EndReason)>,
    /// What the API shows of the sessions that go on, when read this tick.
    infos: Vec<SessionInfo>,
}

impl Pass {
    fn visit(
        mut self,
        index: usize,
        hosted: &mut HostedSession,
        look: Option<&Look>,
        read_info: bool,
    ) -> Self {
        let stepped = hosted.step();
        self.stepped += u64::from(!matches!(stepped, Stepped::Waiting));
        let idle = look.is_some_and(|look| {
            self.seats_freed |= hosted.free_expired_seats(look.tick, look.grace_ticks);
            hosted.idle_for(look.tick) > look.idle_ticks
        });
        let end = match stepped {
            Stepped::Decided(reason) => Some(reason),
            Stepped::Crashed => Some(EndReason::Crashed),
            Stepped::Waiting | Stepped::Ongoing => idle.then_some(EndReason::Idle),
        };
        match end {
            // An ending session is read as it ends.
            Some(reason) => self.ends.push((index, reason)),
            None if read_info => self.infos.push(hosted.info()),
            None => {}
        }
        self
    }

    /// Joins the findings of two runs, the earlier first.
    fn merge(mut self, mut later: Self) -> Self {
        self.stepped += later.stepped;
        self.seats_freed |= later.seats_freed;
        self.ends.append(&mut later.ends);
        self.infos.append(&mut later.infos);
        self
    }
}

/// Seats the person `who`: the seat they already hold (its grace
/// restarted), or the first free one.
fn seat(hosted: &mut HostedSession, who: Arc<str>, tick: u64) -> Result<PlayerId, HostError> {
    let own = hosted
        .seats
        .iter()
        .position(|seat| matches!(seat, Seat::Person { who: holder, .. } if *holder == who));
    let seat = match own {
        Some(seat) => seat,
        None => hosted
            .seats
            .iter()
            .position(|seat| matches!(seat, Seat::Free))
            .ok_or(HostError::SessionFull)?,
    };
    if let Seat::Person { since, .. } = &mut hosted.seats[seat] {
        *since = tick;
    } else {
        hosted.seats[seat] = Seat::Person {
            who,
            connected: false,
            since: tick,
        };
    }
    hosted.last_person_tick = tick;
    hosted.start_if_full();
    Ok(PlayerId(seat as u8))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
