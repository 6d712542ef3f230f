/**
 * The control messages and channels (docs/PROTOCOL.md sections 4.1 and 5;
 * `net/src/protocol.rs`): bincode 2 with the standard configuration
 * (little-endian, varint integers), one value per renet message, every byte
 * used.
 *
 * Message shapes are tagged unions whose `type` names the Rust variant in
 * camelCase, so a `switch` on `type` reads like the Rust `match`.
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "./bytes.js";
import type { ConnectionConfig } from "./renet/connection.js";

/** The protocol this library speaks; the server refuses another. */
export const PROTOCOL_VERSION = 7;
/** Reliable, ordered, both ways: control messages. */
export const CHANNEL_RELIABLE = 0;
/** Unreliable, server to client: snapshots too large for a bundle slot, sliced by renet (smaller ones, and acks, go beside renet). */
export const CHANNEL_SNAPSHOT = 1;
/** The largest message the server accepts from a client. */
export const MAX_CLIENT_MESSAGE_BYTES = 512;
/** The longest chat line, in bytes of UTF-8. */
export const MAX_CHAT_BYTES = 200;
/** The largest WebSocket frame either side accepts. */
export const MAX_WS_FRAME_BYTES = 1400;

/** renet's channels seen from the client: what it sends and what the server sends. */
export function clientConnectionConfig(): ConnectionConfig {
  const server = 256 * 1024;
  const client = 32 * 1024;
  return {
    availableBytesPerTick: 256 * 1024,
    send: [
      { id: CHANNEL_RELIABLE, kind: "reliable-ordered", maxMemoryBytes: client, resendMs: 100 },
      { id: CHANNEL_SNAPSHOT, kind: "unreliable", maxMemoryBytes: client },
    ],
    receive: [
      { id: CHANNEL_RELIABLE, kind: "reliable-ordered", maxMemoryBytes: server, resendMs: 100 },
      { id: CHANNEL_SNAPSHOT, kind: "unreliable", maxMemoryBytes: server },
    ],
  };
}

/** A player's intent. Tower kinds are indices into the content's sorted tower keys. */
export type WireCommand =
  | { type: "placeTower"; kind: number; x: number; y: number }
  | { type: "upgradeTower"; tower: number }
  | { type: "sellTower"; tower: number }
  | { type: "setTargeting"; tower: number; mode: number }
  | { type: "callNextWave" }
  | { type: "ready" };

/** What a client says on the reliable channel. */
export type ClientMessage =
  | { type: "hello"; protocol: number; contentVersion: bigint }
  | { type: "command"; seq: number; command: WireCommand }
  | { type: "chat"; text: string }
  | { type: "leave" };

/** The session a client joined. */
export interface Welcome {
  protocol: number;
  session: bigint;
  /** Your seat; `null` for a spectator, who watches and may do nothing else. */
  player: number | null;
  /** Seats in the session. */
  players: number;
  map: string;
  contentVersion: bigint;
  tickHz: number;
  snapshotHz: number;
}

/** The simulation's reasons for refusing a command. */
export type Rejection =
  | { type: "gameOver" }
  | { type: "unknownPlayer" }
  | { type: "unknownTowerKind" }
  | { type: "outOfBounds" }
  | { type: "cellNotBuildable" }
  | { type: "cellOccupied" }
  | { type: "wouldBlockPath" }
  | { type: "notEnoughGold"; needed: number; available: number }
  | { type: "noSuchTower" }
  | { type: "notYourTower" }
  | { type: "maxLevel" }
  | { type: "noMoreWaves" }
  | { type: "alreadyReady" };

const REJECTIONS = [
  "gameOver",
  "unknownPlayer",
  "unknownTowerKind",
  "outOfBounds",
  "cellNotBuildable",
  "cellOccupied",
  "wouldBlockPath",
  "notEnoughGold",
  "noSuchTower",
  "notYourTower",
  "maxLevel",
  "noMoreWaves",
  "alreadyReady",
] as const;

/** Why a command was refused: the game's reason or the network's. */
export type WireRejection =
  | { type: "game"; rejection: Rejection }
  | { type: "rateLimited" }
  | { type: "serverBusy" }
  | { type: "malformed" }
  | { type: "notJoined" }
  | { type: "spectating" };

const WIRE_REJECTIONS = ["game", "rateLimited", "serverBusy", "malformed", "notJoined", "spectating"] as const;

/** Something that happened in the session (kills are in the snapshots). */
export type WireEvent =
  | { type: "towerPlaced"; tower: number; player: number; kind: number; x: number; y: number }
  | { type: "towerUpgraded"; tower: number; level: number }
  | { type: "towerSold"; tower: number; refund: number }
  | { type: "waveStarted"; wave: number; earlyBonus: number }
  | { type: "enemyLeaked"; enemy: number; livesLost: number }
  | { type: "gameOver"; victory: boolean }
  | { type: "draining" };

/** Why a session ended. */
export type EndReason = "victory" | "defeat" | "endedByAdmin" | "idle" | "crashed" | "gone" | "moved";
const END_REASONS: readonly EndReason[] = ["victory", "defeat", "endedByAdmin", "idle", "crashed", "gone", "moved"];

/** Which abuse limit a client hit. */
export type AbuseKind = "flood" | "malformed";

/** Why the server closed the connection. */
export type ByeReason =
  | { type: "protocolMismatch"; server: number }
  | { type: "contentMismatch"; server: bigint }
  | { type: "sessionEnded"; reason: EndReason }
  | { type: "serverShutdown" }
  | { type: "replaced" }
  | { type: "abuse"; kind: AbuseKind }
  | { type: "timedOut" }
  | { type: "spectatorsFull"; max: number };

/** What the server says on the reliable channel. */
export type ServerMessage =
  | { type: "welcome"; welcome: Welcome }
  | { type: "commandResult"; seq: number; result: { ok: true } | { ok: false; rejection: WireRejection } }
  | { type: "event"; tick: number; event: WireEvent }
  | { type: "chat"; player: number; text: string }
  | { type: "bye"; reason: ByeReason };

/** Encodes a client message (or anything else a client sends on channel 0). */
export function encodeClientMessage(message: ClientMessage): Uint8Array {
  const out = new ByteWriter(16);
  switch (message.type) {
    case "hello":
      out.bincodeUnsigned(0);
      out.bincodeUnsigned(message.protocol);
      out.bincodeUnsigned(message.contentVersion);
      break;
    case "command":
      out.bincodeUnsigned(1);
      out.bincodeUnsigned(message.seq);
      writeCommand(out, message.command);
      break;
    case "chat":
      out.bincodeUnsigned(2);
      out.bincodeString(message.text);
      break;
    case "leave":
      out.bincodeUnsigned(3);
      break;
  }
  return out.finish();
}

function writeCommand(out: ByteWriter, command: WireCommand): void {
  switch (command.type) {
    case "placeTower":
      out.bincodeUnsigned(0);
      out.bincodeUnsigned(command.kind);
      out.bincodeUnsigned(command.x);
      out.bincodeUnsigned(command.y);
      break;
    case "upgradeTower":
      out.bincodeUnsigned(1);
      out.bincodeUnsigned(command.tower);
      break;
    case "sellTower":
      out.bincodeUnsigned(2);
      out.bincodeUnsigned(command.tower);
      break;
    case "setTargeting":
      out.bincodeUnsigned(3);
      out.bincodeUnsigned(command.tower);
      out.byte(command.mode);
      break;
    case "callNextWave":
      out.bincodeUnsigned(4);
      break;
    case "ready":
      out.bincodeUnsigned(5);
      break;
  }
}

/** Decodes a server message; trailing bytes are an error, as on the server. */
export function decodeServerMessage(bytes: Uint8Array): ServerMessage {
  const reader = new ByteReader(bytes);
  const message = readServerMessage(reader);
  if (reader.remaining > 0) throw new DecodeError("malformed", `${reader.remaining} trailing bytes`);
  return message;
}

function readServerMessage(reader: ByteReader): ServerMessage {
  switch (reader.bincodeVariant(5, "server message")) {
    case 0:
      return {
        type: "welcome",
        welcome: {
          protocol: reader.bincodeSmall(16),
          session: reader.bincodeUnsigned(64),
          player: reader.bincodeVariant(2, "seat") === 0 ? null : reader.byte(),
          players: reader.byte(),
          map: reader.bincodeString(),
          contentVersion: reader.bincodeUnsigned(64),
          tickHz: reader.bincodeSmall(16),
          snapshotHz: reader.bincodeSmall(16),
        },
      };
    case 1: {
      const seq = reader.bincodeSmall(32);
      const failed = reader.bincodeVariant(2, "result");
      return failed === 0
        ? { type: "commandResult", seq, result: { ok: true } }
        : { type: "commandResult", seq, result: { ok: false, rejection: readWireRejection(reader) } };
    }
    case 2:
      return { type: "event", tick: reader.bincodeTick(), event: readEvent(reader) };
    case 3:
      return { type: "chat", player: reader.byte(), text: reader.bincodeString() };
    default:
      return { type: "bye", reason: readBye(reader) };
  }
}

function readWireRejection(reader: ByteReader): WireRejection {
  const type = WIRE_REJECTIONS[reader.bincodeVariant(WIRE_REJECTIONS.length, "rejection")]!;
  if (type !== "game") return { type };
  const reason = REJECTIONS[reader.bincodeVariant(REJECTIONS.length, "game rejection")]!;
  if (reason === "notEnoughGold") {
    return {
      type: "game",
      rejection: { type: reason, needed: reader.bincodeSmall(32), available: reader.bincodeSmall(32) },
    };
  }
  return { type: "game", rejection: { type: reason } };
}

function readEvent(reader: ByteReader): WireEvent {
  switch (reader.bincodeVariant(7, "event")) {
    case 0:
      return {
        type: "towerPlaced",
        tower: reader.bincodeSmall(32),
        player: reader.byte(),
        kind: reader.bincodeSmall(16),
        x: reader.bincodeSmall(16),
        y: reader.bincodeSmall(16),
      };
    case 1:
      return { type: "towerUpgraded", tower: reader.bincodeSmall(32), level: reader.byte() };
    case 2:
      return { type: "towerSold", tower: reader.bincodeSmall(32), refund: reader.bincodeSmall(32) };
    case 3:
      return { type: "waveStarted", wave: reader.bincodeSmall(32), earlyBonus: reader.bincodeSmall(32) };
    case 4:
      return { type: "enemyLeaked", enemy: reader.bincodeSmall(32), livesLost: reader.bincodeSmall(32) };
    case 5:
      return { type: "gameOver", victory: reader.bincodeBool() };
    default:
      return { type: "draining" };
  }
}

function readBye(reader: ByteReader): ByeReason {
  switch (reader.bincodeVariant(8, "bye reason")) {
    case 0:
      return { type: "protocolMismatch", server: reader.bincodeSmall(16) };
    case 1:
      return { type: "contentMismatch", server: reader.bincodeUnsigned(64) };
    case 2:
      return { type: "sessionEnded", reason: END_REASONS[reader.bincodeVariant(END_REASONS.length, "end reason")]! };
    case 3:
      return { type: "serverShutdown" };
    case 4:
      return { type: "replaced" };
    case 5:
      return { type: "abuse", kind: reader.bincodeVariant(2, "abuse kind") === 0 ? "flood" : "malformed" };
    case 6:
      return { type: "timedOut" };
    default:
      return { type: "spectatorsFull", max: reader.bincodeSmall(16) };
  }
}

/** A goodbye in words, for logs and error messages. */
export function describeBye(reason: ByeReason): string {
  switch (reason.type) {
    case "protocolMismatch":
      return `protocol version mismatch (server speaks ${reason.server})`;
    case "contentMismatch":
      return `content version mismatch (server has ${reason.server.toString(16).padStart(16, "0")})`;
    case "sessionEnded":
      return `the session ended: ${reason.reason}`;
    case "serverShutdown":
      return "server shutting down";
    case "replaced":
      return "replaced by a newer connection for the same seat";
    case "abuse":
      return `disconnected for abuse: ${reason.kind}`;
    case "timedOut":
      return "timed out";
    case "spectatorsFull":
      return `the session has as many spectators as it may (${reason.max})`;
  }
}
