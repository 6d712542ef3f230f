/**
 * A connection to a rampart server over WebSocket: hello and welcome,
 * snapshots applied to the world (with the checksum check and the ring of
 * 32 worlds) and acknowledged, commands whose results come back as promises
 * matched by `seq`, events, chat and goodbyes as typed events. The
 * TypeScript counterpart of `rampart_net::client::Client`, but driven by the
 * socket and a timer rather than a poll loop.
 *
 * @module
 */

import { type Slot, bundle, renetSlots, unbundle } from "./bundle.js";
import { DecodeError } from "./bytes.js";
import { type JoinOptions, type JoinRequest, type JoinResponse, type SpectateResponse, join, spectate } from "./join.js";
import {
  type ByeReason,
  CHANNEL_RELIABLE,
  CHANNEL_SNAPSHOT,
  type ClientMessage,
  PROTOCOL_VERSION,
  type WireCommand,
  type WireEvent,
  type WireRejection,
  type Welcome,
  clientConnectionConfig,
  decodeServerMessage,
  describeBye,
  encodeClientMessage,
} from "./protocol.js";
import { RenetConnection } from "./renet/connection.js";
import { applyDelta, decodeHeader } from "./snapshot/codec.js";
import { SnapshotRing } from "./snapshot/ring.js";
import { EMPTY_WORLD, type NetWorld, type Trajectory, positionInCells } from "./snapshot/world.js";
import { type Transport, openWebSocket } from "./transport.js";

/** WebSocket frame header plus TCP/IP headers, counted per frame as the Rust client counts. */
const WS_OVERHEAD = 44;
/** How often the connection's clock advances (resends, idle flushes). */
const MAINTENANCE_MS = 10;
/** renet's packets join a frame that goes anyway once renet has sent nothing for this long. */
const IDLE_FLUSH_MS = 100;
/**
 * A frame goes at least this often with nothing to say: renet's acks, and a sign of life for the server's 10 s
 * idle timeout. Snapshots need no acknowledgement: the WebSocket delivers in order what the server wrote.
 */
const KEEP_ALIVE_MS = 1000;
/** The tick an acknowledgement names to ask for a full snapshot: no world has it (2^53 - 1, as in Rust). */
const NO_WORLD = Number.MAX_SAFE_INTEGER;
/** Bandwidth is averaged over windows this long. */
const RATE_WINDOW_MS = 1000;

/** A command's answer: applied, or refused with a reason (a value, not an error). */
export type CommandResult = { ok: true } | { ok: false; rejection: WireRejection };

/** Counters, as the Rust client keeps them. */
export interface ClientStats {
  /** Wire bytes received and sent, headers included. */
  bytesIn: number;
  bytesOut: number;
  /** Snapshots applied, full ones among them. */
  snapshots: number;
  fullSnapshots: number;
  /** Snapshots whose rebuilt world failed the checksum: this client and the server disagreed. */
  desyncs: number;
  /** Snapshots that could not be applied (unknown base, malformed). */
  rejectedSnapshots: number;
  /** Largest snapshot message seen, in bytes. */
  largestSnapshot: number;
  /** Snapshot acknowledgements sent: for a snapshot renet sliced, after a rejected one, and as a keep-alive. */
  acksSent: number;
}

/** How the connection ended. */
export interface CloseInfo {
  /** The server's goodbye, if it said one. */
  bye: ByeReason | undefined;
  /** What happened, for people. */
  reason: string;
}

/** The events a {@link Client} emits, by name. */
export interface ClientEvents {
  welcome: Welcome;
  /** A snapshot was applied: the new world, checked against the server's hash. */
  snapshot: NetWorld;
  event: { tick: number; event: WireEvent };
  chat: { player: number; text: string };
  /** A snapshot failed its checksum (the previous world stays). */
  desync: { tick: number };
  close: CloseInfo;
}

type Listener<T> = (value: T) => void;

/** What {@link Client.connect} takes besides the join answer. */
export interface ConnectOptions {
  /** A transport already open to `join.wsUrl` (default: a WebSocket opened here). */
  transport?: Transport;
  /** The content version the game was built for; 0n (default) accepts the server's. */
  contentVersion?: bigint;
  /** How long to wait for the welcome (default 10 s). */
  welcomeTimeoutMs?: number;
}

/** A command was not answered: the connection closed first, or it timed out. */
export class CommandLost extends Error {
  constructor(
    readonly seq: number,
    reason: string,
  ) {
    super(`command ${seq}: ${reason}`);
    this.name = "CommandLost";
  }
}

/** A connected, welcomed player, or a spectator (who sees the same world and whose commands are refused). */
export class Client {
  private readonly renet = new RenetConnection(clientConnectionConfig());
  private readonly ring = new SnapshotRing();
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  private readonly pending = new Map<number, { resolve: (result: CommandResult) => void; reject: (error: Error) => void; timer: ReturnType<typeof setTimeout> | undefined }>();
  private currentWorld: NetWorld = EMPTY_WORLD;
  private currentWelcome: Welcome | undefined;
  private snapshotArrivedAt = 0;
  private nextSeq = 0;
  /**
   * The tick the next frame acknowledges. The server deltas against the last snapshot it wrote in a slot of its
   * own (the WebSocket delivers in order), so this client speaks only for a snapshot renet sliced (renet may
   * drop it) and after rejecting one: the world it holds, or {@link NO_WORLD}.
   */
  private ackOwed: number | undefined;
  /** When anything last went out. */
  private lastFlush = 0;
  /** When renet's packets last went out (an acknowledgement alone leaves renet alone). */
  private renetFlushed = 0;
  private lastUpdate: number;
  private readonly maintenance: ReturnType<typeof setInterval>;
  private closed: CloseInfo | undefined;
  private bye: ByeReason | undefined;
  private readonly counters: ClientStats = {
    bytesIn: 0,
    bytesOut: 0,
    snapshots: 0,
    fullSnapshots: 0,
    desyncs: 0,
    rejectedSnapshots: 0,
    largestSnapshot: 0,
    acksSent: 0,
  };
  private rateWindow = { started: 0, bytesIn: 0, bytesOut: 0 };
  private rates = { down: 0, up: 0 };

  /** Settles with the server's welcome; rejects if the connection ends first or no welcome comes in time. */
  readonly ready: Promise<Welcome>;

  private constructor(
    private readonly transport: Transport,
    /** The join answer this connection came from (a player's reconnect token reclaims the seat). */
    readonly join: JoinResponse | SpectateResponse,
    welcomeTimeoutMs: number,
  ) {
    this.ready = this.welcomed(welcomeTimeoutMs);
    // A game that never awaits `ready` hears about failures through "close".
    this.ready.catch(() => undefined);
    this.lastUpdate = now();
    this.rateWindow.started = this.lastUpdate;
    transport.attach({
      frame: (frame) => this.receive(frame),
      close: (reason) => this.finish(reason),
    });
    this.maintenance = setInterval(() => this.maintain(), MAINTENANCE_MS);
  }

  /**
   * Connects with a join answer, says hello and resolves once welcomed.
   *
   * @throws Error when the server says goodbye instead, the socket fails, or
   *   no welcome comes in time.
   */
  static async connect(join: JoinResponse | SpectateResponse, options: ConnectOptions = {}): Promise<Client> {
    const client = await Client.open(join, options);
    await client.ready;
    return client;
  }

  /**
   * Connects and says hello without waiting for the welcome, so listeners
   * attached now see everything, the first snapshot included;
   * {@link Client.ready} settles with the welcome.
   */
  static async open(join: JoinResponse | SpectateResponse, options: ConnectOptions = {}): Promise<Client> {
    const transport = options.transport ?? (await openWebSocket(join.wsUrl));
    const client = new Client(transport, join, options.welcomeTimeoutMs ?? 10_000);
    client.sendReliable({ type: "hello", protocol: PROTOCOL_VERSION, contentVersion: options.contentVersion ?? 0n });
    return client;
  }

  private welcomed(timeoutMs: number): Promise<Welcome> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no welcome within ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      const offWelcome = this.on("welcome", (welcome) => {
        clearTimeout(timer);
        offClose();
        offWelcome();
        resolve(welcome);
      });
      const offClose = this.on("close", (info) => {
        clearTimeout(timer);
        offWelcome();
        offClose();
        reject(new Error(`not welcomed: ${info.reason}`));
      });
    });
  }

  /** Listens for an event; returns a function that stops listening. */
  on<K extends keyof ClientEvents>(name: K, listener: Listener<ClientEvents[K]>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  private emit<K extends keyof ClientEvents>(name: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      (listener as Listener<ClientEvents[K]>)(value);
    }
  }

  /** The server's welcome. */
  get welcome(): Welcome | undefined {
    return this.currentWelcome;
  }

  /** What reclaims this seat with {@link join} after a drop; a spectator has none (it watches again). */
  get reconnectToken(): string | undefined {
    return "reconnectToken" in this.join ? this.join.reconnectToken : undefined;
  }

  /** True for a spectator's connection (once welcomed): it watches, its commands are refused. */
  get spectating(): boolean {
    return this.currentWelcome !== undefined && this.currentWelcome.player === null;
  }

  /** The newest world rebuilt (the empty world before the first snapshot). */
  get world(): NetWorld {
    return this.currentWorld;
  }

  /** Counters so far. */
  get stats(): Readonly<ClientStats> {
    return this.counters;
  }

  /** Wire bytes per second, headers included, down and up, over the last full second. */
  get bytesPerSecond(): { down: number; up: number } {
    return this.rates;
  }

  /** Round-trip time in milliseconds as renet measures it. */
  get rttMs(): number {
    return this.renet.rttMs;
  }

  /** How the connection ended, once it has. */
  get closeInfo(): CloseInfo | undefined {
    return this.closed;
  }

  /**
   * The server's tick now, estimated from the newest snapshot and the tick
   * rate, minus `delayTicks` (default one snapshot interval, so movers drawn
   * with {@link Client.positionOf} stay between known positions).
   */
  renderTick(atMs: number = now(), delayTicks?: number): number {
    const welcome = this.currentWelcome;
    if (welcome === undefined || this.counters.snapshots === 0) return this.currentWorld.tick;
    const delay = delayTicks ?? welcome.tickHz / welcome.snapshotHz;
    const elapsed = ((atMs - this.snapshotArrivedAt) * welcome.tickHz) / 1000;
    return Math.max(0, this.currentWorld.tick + elapsed - delay);
  }

  /** Where a mover is, in cells, at a (fractional) tick: for drawing. */
  positionOf(mover: { path: Trajectory }, tick: number = this.renderTick()): { x: number; y: number } {
    return positionInCells(mover.path, tick);
  }

  /**
   * Sends a command at once; resolves with its result, matched by `seq`.
   *
   * @throws CommandLost when the connection closes first or no answer comes
   *   within `timeoutMs` (default 10 s); a command in flight when the
   *   connection dropped may still have been applied: look at the world.
   */
  command(command: WireCommand, timeoutMs = 10_000): Promise<CommandResult> {
    const seq = this.nextSeq;
    this.nextSeq = (this.nextSeq + 1) >>> 0;
    if (this.closed !== undefined) {
      return Promise.reject(new CommandLost(seq, `connection closed: ${this.closed.reason}`));
    }
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === Infinity
          ? undefined
          : setTimeout(() => {
              this.pending.delete(seq);
              reject(new CommandLost(seq, `no answer within ${timeoutMs} ms`));
            }, timeoutMs);
      this.pending.set(seq, { resolve, reject, timer });
      this.sendReliable({ type: "command", seq, command });
    });
  }

  /** Sends a chat line (at most 200 bytes of UTF-8). */
  chat(text: string): void {
    this.sendReliable({ type: "chat", text });
  }

  /**
   * Leaves: the server closes the connection without a goodbye, and the
   * seat stays reclaimable with {@link Client.reconnectToken} for the grace period.
   */
  leave(): void {
    if (this.closed !== undefined) return;
    this.sendReliable({ type: "leave" });
    this.close();
  }

  /** Closes the transport without a word (the server sees a drop). */
  close(): void {
    this.transport.close();
    this.finish("closed by the client");
  }

  private sendReliable(message: ClientMessage): void {
    this.renet.send(CHANNEL_RELIABLE, encodeClientMessage(message));
    this.flush(true);
  }

  private receive(frame: Uint8Array): void {
    if (this.closed !== undefined) return;
    this.counters.bytesIn += frame.length + WS_OVERHEAD;
    this.advanceClock();
    for (const slot of unbundle(frame).slots) {
      if (slot.kind === "renet") this.renet.processPacket(slot.packet);
      else if (slot.kind === "snapshot") this.applySnapshot(slot.snapshot, false);
    }
    // Snapshots too large for one slot come sliced by renet.
    for (let message = this.renet.receive(CHANNEL_SNAPSHOT); message !== undefined; message = this.renet.receive(CHANNEL_SNAPSHOT)) {
      this.applySnapshot(message, true);
    }
    let renetDue = false;
    for (let message = this.renet.receive(CHANNEL_RELIABLE); message !== undefined; message = this.renet.receive(CHANNEL_RELIABLE)) {
      // renet's acks for it go out at once, so the server does not resend it.
      renetDue = true;
      this.readMessage(message);
    }
    if (this.renet.error !== undefined) {
      this.close();
      return;
    }
    if (renetDue || this.ackOwed !== undefined) this.flush(renetDue || now() - this.renetFlushed >= IDLE_FLUSH_MS);
  }

  /**
   * Applies a snapshot. The server deltas the next one against it without waiting to hear (the WebSocket
   * delivers in order what the server wrote), unless it came `sliced` by renet, which may drop it: that one is
   * acknowledged. A rejected one is answered with the world this client holds, so that the server deltas
   * against it, or with {@link NO_WORLD} for a full one (none is held at first, nor after a failed checksum).
   */
  private applySnapshot(bytes: Uint8Array, sliced: boolean): void {
    switch (this.rebuild(bytes)) {
      case "new":
        if (sliced) this.ackOwed = this.currentWorld.tick;
        return;
      case "rejected":
        this.ackOwed = this.ring.latest()?.tick ?? NO_WORLD;
        return;
      case "old":
        return;
    }
  }

  /** Rebuilds the world a snapshot describes from the base it names; "old" when it is not newer than the newest. */
  private rebuild(bytes: Uint8Array): "new" | "old" | "rejected" {
    this.counters.largestSnapshot = Math.max(this.counters.largestSnapshot, bytes.length);
    let header;
    try {
      header = decodeHeader(bytes);
    } catch {
      this.counters.rejectedSnapshots += 1;
      return "rejected";
    }
    if (this.counters.snapshots > 0 && header.tick <= this.currentWorld.tick) return "old";
    let base: NetWorld | undefined;
    if (header.baseTick !== undefined) {
      base = this.ring.get(header.baseTick);
      if (base === undefined) {
        this.counters.rejectedSnapshots += 1;
        return "rejected";
      }
    }
    try {
      const world = applyDelta(base, bytes);
      this.counters.snapshots += 1;
      if (base === undefined) this.counters.fullSnapshots += 1;
      this.ring.push(world);
      this.currentWorld = world;
      this.snapshotArrivedAt = now();
      this.emit("snapshot", world);
      return "new";
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      if (error.kind === "checksum") {
        this.counters.desyncs += 1;
        // Worlds between checked ones carry no checksum: any since the last checked one may be wrong too.
        this.ring.clear();
        this.emit("desync", { tick: header.tick });
      } else {
        this.counters.rejectedSnapshots += 1;
      }
      return "rejected";
    }
  }

  private readMessage(bytes: Uint8Array): void {
    let message;
    try {
      message = decodeServerMessage(bytes);
    } catch (error) {
      // A message this build cannot read (a newer server's variant) is skipped, as the Rust client does.
      if (error instanceof DecodeError) return;
      throw error;
    }
    switch (message.type) {
      case "welcome":
        this.currentWelcome = message.welcome;
        this.emit("welcome", message.welcome);
        return;
      case "commandResult": {
        const waiting = this.pending.get(message.seq);
        if (waiting === undefined) return;
        this.pending.delete(message.seq);
        if (waiting.timer !== undefined) clearTimeout(waiting.timer);
        waiting.resolve(message.result);
        return;
      }
      case "event":
        this.emit("event", { tick: message.tick, event: message.event });
        return;
      case "chat":
        this.emit("chat", { player: message.player, text: message.text });
        return;
      case "bye":
        this.bye = message.reason;
        return;
    }
  }

  private advanceClock(): void {
    const at = now();
    this.renet.update(at - this.lastUpdate);
    this.lastUpdate = at;
  }

  private maintain(): void {
    if (this.closed !== undefined) return;
    this.advanceClock();
    const at = this.lastUpdate;
    if (at - this.lastFlush >= KEEP_ALIVE_MS) this.flush(true);
    if (at - this.rateWindow.started >= RATE_WINDOW_MS) {
      const seconds = (at - this.rateWindow.started) / 1000;
      this.rates = {
        down: (this.counters.bytesIn - this.rateWindow.bytesIn) / seconds,
        up: (this.counters.bytesOut - this.rateWindow.bytesOut) / seconds,
      };
      this.rateWindow = { started: at, bytesIn: this.counters.bytesIn, bytesOut: this.counters.bytesOut };
    }
    if (this.renet.error !== undefined) this.close();
  }

  /**
   * Sends the acknowledgement the server is owed, if any (beside renet, in the same frame), and renet's packets
   * when `withRenet`. A frame with nothing else in it acknowledges the newest world again: the server hears from
   * this client, and deltas against a world it holds.
   */
  private flush(withRenet: boolean): void {
    if (this.closed !== undefined) return;
    const slots: Slot[] = [];
    this.lastFlush = now();
    if (withRenet) {
      this.renetFlushed = this.lastFlush;
      slots.push(...renetSlots(this.renet.packetsToSend()));
    }
    let ack = this.ackOwed;
    this.ackOwed = undefined;
    if (ack === undefined && slots.length === 0) ack = this.ring.latest()?.tick;
    if (ack !== undefined) {
      slots.push({ kind: "snapshotAck", tick: ack });
      this.counters.acksSent += 1;
    }
    for (const frame of bundle(slots)) {
      this.counters.bytesOut += frame.length + WS_OVERHEAD;
      this.transport.send(frame);
    }
  }

  private finish(reason: string): void {
    if (this.closed !== undefined) return;
    clearInterval(this.maintenance);
    const why = this.bye !== undefined ? describeBye(this.bye) : (this.renet.error?.message ?? reason);
    this.closed = { bye: this.bye, reason: why };
    for (const [seq, waiting] of this.pending) {
      if (waiting.timer !== undefined) clearTimeout(waiting.timer);
      waiting.reject(new CommandLost(seq, `connection closed: ${why}`));
    }
    this.pending.clear();
    this.emit("close", this.closed);
  }
}

/**
 * Joins over HTTP and connects over WebSocket in one step: the usual way in.
 * `server` is the HTTP API's base URL.
 */
export async function connect(
  server: string | URL,
  request: JoinRequest = {},
  options: JoinOptions & ConnectOptions = {},
): Promise<Client> {
  return Client.connect(await join(server, request, options), options);
}

/**
 * Watches session `sessionId` as a spectator: asks for a place over HTTP and
 * connects; resolves once welcomed. `invite` (a player's `spectateInvite`)
 * or the admin token as `options.token` opens a private session.
 */
export async function watch(
  server: string | URL,
  sessionId: string,
  invite?: string,
  options: JoinOptions & ConnectOptions = {},
): Promise<Client> {
  return Client.connect(await spectate(server, sessionId, invite, options), options);
}

function now(): number {
  return performance.now();
}
