/**
 * `@rampart/client`: play on a rampart server from a browser or Node.
 *
 * ```ts
 * import { connect } from "@rampart/client";
 * const client = await connect("http://127.0.0.1:8080", { map: "small" });
 * client.on("snapshot", (world) => draw(world));
 * const result = await client.command({ type: "placeTower", kind: 0, x: 4, y: 6 });
 * ```
 *
 * @module
 */

export { BUNDLE_LIMIT, SNAPSHOT_ACK_SLOT, SNAPSHOT_SLOT, type Slot, bundle, renetSlots, unbundle } from "./bundle.js";
export { ByteReader, ByteWriter, DecodeError, type DecodeErrorKind, fromHex, toHex } from "./bytes.js";
export {
  Client,
  type ClientEvents,
  type ClientStats,
  type CloseInfo,
  CommandLost,
  type CommandResult,
  type ConnectOptions,
  connect,
  watch,
} from "./client.js";
export { JoinError, type JoinOptions, type JoinRequest, type JoinResponse, type SpectateResponse, join, spectate } from "./join.js";
export {
  type AbuseKind,
  type ByeReason,
  CHANNEL_RELIABLE,
  CHANNEL_SNAPSHOT,
  type ClientMessage,
  type EndReason,
  MAX_CHAT_BYTES,
  MAX_CLIENT_MESSAGE_BYTES,
  MAX_WS_FRAME_BYTES,
  PROTOCOL_VERSION,
  type Rejection,
  type ServerMessage,
  type Welcome,
  type WireCommand,
  type WireEvent,
  type WireRejection,
  clientConnectionConfig,
  decodeServerMessage,
  describeBye,
  encodeClientMessage,
} from "./protocol.js";
export { type ChannelConfig, type ConnectionConfig, ConnectionLost, RenetConnection } from "./renet/connection.js";
export { type AckRange, type Packet, SLICE_SIZE, type Slice, decodePacket, encodePacket } from "./renet/packet.js";
export { type DeltaHeader, MAX_ENTITIES, applyDelta, decodeHeader, encodeDelta } from "./snapshot/codec.js";
export { RING_SIZE, SnapshotRing } from "./snapshot/ring.js";
export {
  BURNING,
  DEFEAT,
  EMPTY_WORLD,
  FLYING,
  type NetEnemy,
  type NetPlayer,
  type NetProjectile,
  type NetTower,
  type NetWorld,
  POSITION_SCALE,
  SLOWED,
  type Trajectory,
  UNDECIDED,
  VELOCITY_SCALE,
  VICTORY,
  checksum,
  positionAt,
  positionInCells,
} from "./snapshot/world.js";
export { type Transport, type TransportHandlers, openWebSocket } from "./transport.js";
