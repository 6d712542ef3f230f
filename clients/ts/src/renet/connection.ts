/**
 * The client end of a renet 2 connection, as the server's renet expects it
 * (docs/PROTOCOL.md section 4; `renet-2.0.1/src/remote_connection.rs` and
 * `channel/`): one packet sequence for every packet, acks as ranges,
 * reliable ordered messages resent until acknowledged, unreliable messages
 * sent once, slicing of messages over 1,200 bytes both ways.
 *
 * Like renet it does no I/O and reads no clock: the owner feeds it packets
 * ({@link RenetConnection.processPacket}), advances its time
 * ({@link RenetConnection.update}) and sends what
 * {@link RenetConnection.packetsToSend} returns.
 *
 * @module
 */

import { DecodeError } from "../bytes.js";
import { type AckRange, type Packet, SLICE_SIZE, type Slice, decodePacket, encodePacket } from "./packet.js";

/** One channel's settings; ids are the same both ways. */
export interface ChannelConfig {
  id: number;
  kind: "reliable-ordered" | "unreliable";
  /** Bytes the channel may hold before it gives up (reliable) or drops (unreliable). */
  maxMemoryBytes: number;
  /** Reliable only: resend a message not acknowledged after this long. */
  resendMs?: number;
}

/** What each end sends on and bounds per flush. */
export interface ConnectionConfig {
  availableBytesPerTick: number;
  /** The channels this end sends on, in priority order. */
  send: ChannelConfig[];
  /** The channels the other end sends on. */
  receive: ChannelConfig[];
}

/** Sent packets are forgotten (their acks ignored) after this long, as renet does. */
const FORGET_SENT_MS = 3000;
/** An unreliable sliced message still incomplete this long after its latest slice is dropped. */
const DISCARD_SLICES_MS = 3000;
/** Ranges of sequences to acknowledge kept at most. */
const MAX_PENDING_ACK_RANGES = 64;

type SentInfo =
  | { kind: "none" }
  | { kind: "reliable-messages"; channel: number; ids: number[] }
  | { kind: "reliable-slice"; channel: number; messageId: number; sliceIndex: number }
  | { kind: "ack"; largestAcked: number };

/** A message being rebuilt from its slices. */
class SliceBuilder {
  private readonly received: boolean[];
  private receivedCount = 0;
  private readonly data: Uint8Array;
  private length: number;

  constructor(readonly numSlices: number) {
    this.received = new Array<boolean>(numSlices).fill(false);
    this.data = new Uint8Array(numSlices * SLICE_SIZE);
    this.length = numSlices * SLICE_SIZE;
  }

  /** Adds a slice; the whole message once every slice is in. */
  add(slice: Slice): Uint8Array | undefined {
    const last = slice.sliceIndex === this.numSlices - 1;
    if (slice.sliceIndex >= this.numSlices) {
      throw new DecodeError("malformed", "slice index past the slice count");
    }
    if (last ? slice.payload.length > SLICE_SIZE : slice.payload.length !== SLICE_SIZE) {
      throw new DecodeError("malformed", "invalid slice size");
    }
    if (!this.received[slice.sliceIndex]) {
      this.received[slice.sliceIndex] = true;
      this.receivedCount += 1;
      if (last) this.length = (this.numSlices - 1) * SLICE_SIZE + slice.payload.length;
      this.data.set(slice.payload, slice.sliceIndex * SLICE_SIZE);
    }
    return this.receivedCount === this.numSlices ? this.data.slice(0, this.length) : undefined;
  }
}

type Unacked =
  | { kind: "small"; message: Uint8Array; lastSent: number | undefined }
  | {
      kind: "sliced";
      message: Uint8Array;
      numSlices: number;
      ackedCount: number;
      acked: boolean[];
      lastSent: (number | undefined)[];
    };

class ReliableSender {
  private readonly unacked = new Map<number, Unacked>();
  private nextId = 0;
  private memory = 0;

  constructor(
    private readonly config: ChannelConfig,
    private readonly resendMs: number,
  ) {}

  /** False when the channel's memory is full: the connection is then lost, as in renet. */
  send(message: Uint8Array): boolean {
    if (this.memory + message.length > this.config.maxMemoryBytes) return false;
    this.memory += message.length;
    if (message.length > SLICE_SIZE) {
      const numSlices = Math.ceil(message.length / SLICE_SIZE);
      this.unacked.set(this.nextId, {
        kind: "sliced",
        message,
        numSlices,
        ackedCount: 0,
        acked: new Array<boolean>(numSlices).fill(false),
        lastSent: new Array<number | undefined>(numSlices).fill(undefined),
      });
    } else {
      this.unacked.set(this.nextId, { kind: "small", message, lastSent: undefined });
    }
    this.nextId += 1;
    return true;
  }

  /** Messages due (never sent, or sent a resend time ago), in id order. */
  packets(sequence: { next: number }, budget: { bytes: number }, now: number): Packet[] {
    const packets: Packet[] = [];
    let small: { id: number; payload: Uint8Array }[] = [];
    let smallBytes = 0;
    const channel = this.config.id;
    for (const [id, entry] of [...this.unacked.entries()].sort((a, b) => a[0] - b[0])) {
      if (entry.kind === "small") {
        if (budget.bytes < entry.message.length) continue;
        if (entry.lastSent !== undefined && now - entry.lastSent < this.resendMs) continue;
        budget.bytes -= entry.message.length;
        const size = entry.message.length + quicLength(entry.message.length) + quicLength(id);
        if (smallBytes + size > SLICE_SIZE) {
          packets.push({ type: "small-reliable", sequence: sequence.next++, channel, messages: small });
          small = [];
          smallBytes = 0;
        }
        smallBytes += size;
        small.push({ id, payload: entry.message });
        entry.lastSent = now;
        continue;
      }
      for (let index = 0; index < entry.numSlices; index++) {
        if (budget.bytes < SLICE_SIZE) break;
        if (entry.acked[index]) continue;
        const lastSent = entry.lastSent[index];
        if (lastSent !== undefined && now - lastSent < this.resendMs) continue;
        const payload = entry.message.subarray(index * SLICE_SIZE, Math.min(entry.message.length, (index + 1) * SLICE_SIZE));
        budget.bytes -= payload.length;
        packets.push({
          type: "reliable-slice",
          sequence: sequence.next++,
          channel,
          slice: { messageId: id, sliceIndex: index, numSlices: entry.numSlices, payload },
        });
        entry.lastSent[index] = now;
      }
    }
    if (small.length > 0) {
      packets.push({ type: "small-reliable", sequence: sequence.next++, channel, messages: small });
    }
    return packets;
  }

  ackMessage(id: number): void {
    const entry = this.unacked.get(id);
    if (entry?.kind !== "small") return;
    this.unacked.delete(id);
    this.memory -= entry.message.length;
  }

  ackSlice(id: number, index: number): void {
    const entry = this.unacked.get(id);
    if (entry?.kind !== "sliced" || entry.acked[index]) return;
    entry.acked[index] = true;
    entry.ackedCount += 1;
    if (entry.ackedCount === entry.numSlices) {
      this.unacked.delete(id);
      this.memory -= entry.message.length;
    }
  }

  /** Messages sent and not yet acknowledged. */
  get pending(): number {
    return this.unacked.size;
  }
}

class ReliableReceiver {
  private readonly messages = new Map<number, Uint8Array>();
  private readonly slices = new Map<number, SliceBuilder>();
  private nextId = 0;
  private memory = 0;

  constructor(private readonly config: ChannelConfig) {}

  /** False when the channel's memory overflows (the connection is lost). */
  message(id: number, payload: Uint8Array): boolean {
    if (id < this.nextId || this.messages.has(id)) return true;
    if (this.memory + payload.length > this.config.maxMemoryBytes) return false;
    this.memory += payload.length;
    this.messages.set(id, payload.slice());
    return true;
  }

  slice(slice: Slice): boolean {
    if (this.messages.has(slice.messageId) || slice.messageId < this.nextId) return true;
    let builder = this.slices.get(slice.messageId);
    if (builder === undefined) {
      const reserved = slice.numSlices * SLICE_SIZE;
      if (this.memory + reserved > this.config.maxMemoryBytes) return false;
      this.memory += reserved;
      builder = new SliceBuilder(slice.numSlices);
      this.slices.set(slice.messageId, builder);
    }
    const message = builder.add(slice);
    if (message === undefined) return true;
    this.memory -= builder.numSlices * SLICE_SIZE;
    this.slices.delete(slice.messageId);
    return this.message(slice.messageId, message);
  }

  /** The next message in id order, once it is here. */
  receive(): Uint8Array | undefined {
    const message = this.messages.get(this.nextId);
    if (message === undefined) return undefined;
    this.messages.delete(this.nextId);
    this.nextId += 1;
    this.memory -= message.length;
    return message;
  }
}

class UnreliableSender {
  private queue: Uint8Array[] = [];
  private memory = 0;
  private nextSlicedId = 0;

  constructor(private readonly config: ChannelConfig) {}

  send(message: Uint8Array): void {
    if (this.memory + message.length > this.config.maxMemoryBytes) return;
    this.memory += message.length;
    this.queue.push(message);
  }

  packets(sequence: { next: number }, budget: { bytes: number }): Packet[] {
    const packets: Packet[] = [];
    let small: Uint8Array[] = [];
    let smallBytes = 0;
    const channel = this.config.id;
    for (const message of this.queue) {
      if (budget.bytes < message.length) continue;
      budget.bytes -= message.length;
      if (message.length > SLICE_SIZE) {
        const numSlices = Math.ceil(message.length / SLICE_SIZE);
        for (let index = 0; index < numSlices; index++) {
          const payload = message.subarray(index * SLICE_SIZE, Math.min(message.length, (index + 1) * SLICE_SIZE));
          packets.push({
            type: "unreliable-slice",
            sequence: sequence.next++,
            channel,
            slice: { messageId: this.nextSlicedId, sliceIndex: index, numSlices, payload },
          });
        }
        this.nextSlicedId += 1;
        continue;
      }
      const size = message.length + quicLength(message.length);
      if (smallBytes + size > SLICE_SIZE) {
        packets.push({ type: "small-unreliable", sequence: sequence.next++, channel, messages: small });
        small = [];
        smallBytes = 0;
      }
      smallBytes += size;
      small.push(message);
    }
    this.queue = [];
    this.memory = 0;
    if (small.length > 0) {
      packets.push({ type: "small-unreliable", sequence: sequence.next++, channel, messages: small });
    }
    return packets;
  }
}

class UnreliableReceiver {
  private messages: Uint8Array[] = [];
  private readonly slices = new Map<number, { builder: SliceBuilder; lastReceived: number }>();
  private memory = 0;

  constructor(private readonly config: ChannelConfig) {}

  message(payload: Uint8Array): void {
    if (this.memory + payload.length > this.config.maxMemoryBytes) return;
    this.memory += payload.length;
    this.messages.push(payload.slice());
  }

  slice(slice: Slice, now: number): void {
    let entry = this.slices.get(slice.messageId);
    if (entry === undefined) {
      const reserved = slice.numSlices * SLICE_SIZE;
      if (this.memory + reserved > this.config.maxMemoryBytes) return;
      this.memory += reserved;
      entry = { builder: new SliceBuilder(slice.numSlices), lastReceived: now };
      this.slices.set(slice.messageId, entry);
    }
    const message = entry.builder.add(slice);
    if (message === undefined) {
      entry.lastReceived = now;
      return;
    }
    this.slices.delete(slice.messageId);
    this.memory -= entry.builder.numSlices * SLICE_SIZE;
    this.memory += message.length;
    this.messages.push(message);
  }

  discardOld(now: number): void {
    for (const [id, entry] of this.slices) {
      if (now - entry.lastReceived >= DISCARD_SLICES_MS) {
        this.slices.delete(id);
        this.memory -= entry.builder.numSlices * SLICE_SIZE;
      }
    }
  }

  receive(): Uint8Array | undefined {
    const message = this.messages.shift();
    if (message !== undefined) this.memory -= message.length;
    return message;
  }
}

function quicLength(value: number): number {
  return value < 64 ? 1 : value < 16384 ? 2 : value < 2 ** 30 ? 4 : 8;
}

/** Why a connection stopped at the renet layer. */
export class ConnectionLost extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectionLost";
  }
}

/** One end of a renet connection. */
export class RenetConnection {
  private readonly sequence = { next: 0 };
  private now = 0;
  /** Sent packets by sequence, in sending order (so oldest first). */
  private readonly sent = new Map<number, { sentAt: number; info: SentInfo }>();
  private pendingAcks: AckRange[] = [];
  private readonly reliableSend = new Map<number, ReliableSender>();
  private readonly unreliableSend = new Map<number, UnreliableSender>();
  private readonly sendOrder: ChannelConfig[];
  private readonly reliableReceive = new Map<number, ReliableReceiver>();
  private readonly unreliableReceive = new Map<number, UnreliableReceiver>();
  private lost: ConnectionLost | undefined;
  private smoothedRtt = 0;

  constructor(private readonly config: ConnectionConfig) {
    this.sendOrder = config.send;
    for (const channel of config.send) {
      if (channel.kind === "reliable-ordered") {
        this.reliableSend.set(channel.id, new ReliableSender(channel, channel.resendMs ?? 100));
      } else {
        this.unreliableSend.set(channel.id, new UnreliableSender(channel));
      }
    }
    for (const channel of config.receive) {
      if (channel.kind === "reliable-ordered") {
        this.reliableReceive.set(channel.id, new ReliableReceiver(channel));
      } else {
        this.unreliableReceive.set(channel.id, new UnreliableReceiver(channel));
      }
    }
  }

  /** Why the connection was lost, if it was. */
  get error(): ConnectionLost | undefined {
    return this.lost;
  }

  /** Round-trip time in milliseconds, smoothed as renet does (0 until measured). */
  get rttMs(): number {
    return this.smoothedRtt;
  }

  /** Reliable messages sent and not yet acknowledged on `channel`. */
  unacknowledged(channel: number): number {
    return this.reliableSend.get(channel)?.pending ?? 0;
  }

  /** Marks the connection lost (first reason wins). */
  fail(reason: string): void {
    this.lost ??= new ConnectionLost(reason);
  }

  /** Queues a message on a channel. */
  send(channel: number, message: Uint8Array): void {
    if (this.lost) return;
    const reliable = this.reliableSend.get(channel);
    if (reliable !== undefined) {
      if (!reliable.send(message)) this.fail(`reliable channel ${channel} is out of memory`);
      return;
    }
    const unreliable = this.unreliableSend.get(channel);
    if (unreliable === undefined) throw new RangeError(`no send channel ${channel}`);
    unreliable.send(message);
  }

  /** The next message received on a channel. */
  receive(channel: number): Uint8Array | undefined {
    if (this.lost) return undefined;
    const reliable = this.reliableReceive.get(channel);
    if (reliable !== undefined) return reliable.receive();
    const unreliable = this.unreliableReceive.get(channel);
    if (unreliable === undefined) throw new RangeError(`no receive channel ${channel}`);
    return unreliable.receive();
  }

  /** Advances the connection's clock. */
  update(elapsedMs: number): void {
    this.now += elapsedMs;
    for (const channel of this.unreliableReceive.values()) channel.discardOld(this.now);
    for (const [sequence, packet] of this.sent) {
      if (this.now - packet.sentAt < FORGET_SENT_MS) break;
      this.sent.delete(sequence);
    }
  }

  /** Reads one packet from the other end; a bad one loses the connection, as in renet. */
  processPacket(bytes: Uint8Array): void {
    if (this.lost) return;
    let packet: Packet;
    try {
      packet = decodePacket(bytes);
    } catch (error) {
      if (error instanceof DecodeError) {
        this.fail(`undecodable packet: ${error.message}`);
        return;
      }
      throw error;
    }
    this.addPendingAck(packet.sequence);
    try {
      this.apply(packet);
    } catch (error) {
      if (error instanceof DecodeError) {
        this.fail(`invalid slice: ${error.message}`);
        return;
      }
      throw error;
    }
  }

  private apply(packet: Packet): void {
    switch (packet.type) {
      case "small-reliable": {
        const channel = this.reliableReceive.get(packet.channel);
        if (channel === undefined) return this.fail(`packet on unknown channel ${packet.channel}`);
        for (const message of packet.messages) {
          if (!channel.message(message.id, message.payload)) {
            return this.fail(`reliable channel ${packet.channel} is out of memory`);
          }
        }
        return;
      }
      case "small-unreliable": {
        const channel = this.unreliableReceive.get(packet.channel);
        if (channel === undefined) return this.fail(`packet on unknown channel ${packet.channel}`);
        for (const message of packet.messages) channel.message(message);
        return;
      }
      case "reliable-slice": {
        const channel = this.reliableReceive.get(packet.channel);
        if (channel === undefined) return this.fail(`packet on unknown channel ${packet.channel}`);
        if (!channel.slice(packet.slice)) this.fail(`reliable channel ${packet.channel} is out of memory`);
        return;
      }
      case "unreliable-slice": {
        const channel = this.unreliableReceive.get(packet.channel);
        if (channel === undefined) return this.fail(`packet on unknown channel ${packet.channel}`);
        channel.slice(packet.slice, this.now);
        return;
      }
      case "ack":
        this.applyAcks(packet.ranges);
        return;
    }
  }

  private applyAcks(ranges: AckRange[]): void {
    // Only sequences we remember: a huge range costs nothing.
    const acked: number[] = [];
    for (const sequence of this.sent.keys()) {
      if (ranges.some((range) => sequence >= range.start && sequence < range.end)) acked.push(sequence);
    }
    for (const sequence of acked) {
      const packet = this.sent.get(sequence);
      if (packet === undefined) continue;
      this.sent.delete(sequence);
      const rtt = this.now - packet.sentAt;
      this.smoothedRtt = this.smoothedRtt === 0 ? rtt : this.smoothedRtt * 0.875 + rtt * 0.125;
      const info = packet.info;
      switch (info.kind) {
        case "reliable-messages": {
          const channel = this.reliableSend.get(info.channel);
          for (const id of info.ids) channel?.ackMessage(id);
          break;
        }
        case "reliable-slice":
          this.reliableSend.get(info.channel)?.ackSlice(info.messageId, info.sliceIndex);
          break;
        case "ack":
          this.ackedLargest(info.largestAcked);
          break;
        case "none":
          break;
      }
    }
  }

  /** The packets of one flush: reliable and unreliable channels in order, then the ack. */
  packetsToSend(): Uint8Array[] {
    if (this.lost) return [];
    const budget = { bytes: this.config.availableBytesPerTick };
    const packets: Packet[] = [];
    for (const channel of this.sendOrder) {
      const reliable = this.reliableSend.get(channel.id);
      if (reliable !== undefined) {
        packets.push(...reliable.packets(this.sequence, budget, this.now));
      } else {
        packets.push(...(this.unreliableSend.get(channel.id)?.packets(this.sequence, budget) ?? []));
      }
    }
    if (this.pendingAcks.length > 0) {
      packets.push({
        type: "ack",
        sequence: this.sequence.next++,
        ranges: this.pendingAcks.map((range) => ({ ...range })),
      });
    }
    return packets.map((packet) => {
      this.sent.set(packet.sequence, { sentAt: this.now, info: sentInfo(packet) });
      return encodePacket(packet);
    });
  }

  /** renet's `add_pending_ack`: ranges sorted, merged, at most 64 (oldest dropped). */
  private addPendingAck(sequence: number): void {
    const ranges = this.pendingAcks;
    for (let index = 0; index < ranges.length; index++) {
      const range = ranges[index]!;
      if (sequence >= range.start && sequence < range.end) return;
      if (range.start === sequence + 1) {
        range.start = sequence;
        return;
      }
      if (range.end === sequence) {
        range.end = sequence + 1;
        const next = ranges[index + 1];
        if (next !== undefined && next.start === range.end) {
          range.end = next.end;
          ranges.splice(index + 1, 1);
        }
        return;
      }
      if (range.start > sequence + 1) {
        ranges.splice(index, 0, { start: sequence, end: sequence + 1 });
        return;
      }
    }
    ranges.push({ start: sequence, end: sequence + 1 });
    if (ranges.length > MAX_PENDING_ACK_RANGES) ranges.shift();
  }

  /** The peer has our ack packet: stop acknowledging what it listed. */
  private ackedLargest(largest: number): void {
    while (this.pendingAcks.length > 0) {
      const range = this.pendingAcks[0]!;
      if (largest < range.start) return;
      if (range.end <= largest) {
        this.pendingAcks.shift();
        continue;
      }
      range.start = largest + 1;
      if (range.start >= range.end) this.pendingAcks.shift();
      return;
    }
  }
}

function sentInfo(packet: Packet): SentInfo {
  switch (packet.type) {
    case "small-reliable":
      return { kind: "reliable-messages", channel: packet.channel, ids: packet.messages.map((message) => message.id) };
    case "reliable-slice":
      return {
        kind: "reliable-slice",
        channel: packet.channel,
        messageId: packet.slice.messageId,
        sliceIndex: packet.slice.sliceIndex,
      };
    case "ack":
      return { kind: "ack", largestAcked: packet.ranges[packet.ranges.length - 1]!.end - 1 };
    default:
      return { kind: "none" };
  }
}
