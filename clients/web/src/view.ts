/**
 * A game as both the spectate view and the playable page show it: the
 * board redrawn every animation frame at the client's render tick, and
 * beside it the session's figures (tick, wave, lives, each seat's gold and
 * kills), this connection's own (snapshots applied, desyncs, bytes per
 * second) and the session's events as they arrive.
 *
 * @module
 */

import { type Client, DEFEAT, VICTORY, type WireEvent, describeBye } from "@rampart/client";

import type { Content } from "./api.js";
import { Board } from "./board.js";
import { el, fill } from "./dom.js";
import { formatBytes, row } from "./figures.js";

/** Events shown at most. */
const EVENT_LINES = 14;

export interface GameView {
  board: Board;
  /** The column beside the board, for the page's own panels. */
  aside: HTMLElement;
  /** The whole view. */
  element: HTMLElement;
  /** A line for what just happened (a refused command, the end). */
  say(text: string, kind?: "info" | "error"): void;
}

/**
 * Builds the view of `client`'s game on `map`'s grid and keeps it drawn;
 * `selected` names the tower to draw boldly.
 */
export function gameView(client: Client, content: Content, grid: Board["grid"], selected: () => number | undefined = () => undefined): GameView {
  const canvas = el("canvas", { id: "board" });
  const board = new Board(canvas, grid, content);
  const session = el("dl", { class: "figures", id: "session-figures" });
  const seats = el("tbody");
  const connection = el("dl", { class: "figures", id: "connection-figures" });
  const events = el("ol", { class: "events", id: "events" });
  const line = el("p", { class: "say", id: "say" });
  const aside = el(
    "aside",
    {},
    el("section", { class: "panel" }, el("h2", {}, "Session"), session, el("table", { class: "seats" }, el("thead", {}, el("tr", {}, ...["seat", "gold", "kills", "ready"].map((name) => el("th", {}, name)))), seats)),
    el("section", { class: "panel" }, el("h2", {}, "This connection"), connection),
    el("section", { class: "panel" }, el("h2", {}, "Events"), events),
  );
  const element = el("section", { class: "game" }, el("div", { class: "stage" }, canvas, line), aside);
  const say = (text: string, kind: "info" | "error" = "info") => {
    line.textContent = text;
    line.className = `say ${kind}`;
  };

  const welcome = client.welcome;
  const updateFigures = () => {
    const world = client.world;
    const outcome = world.outcome === VICTORY ? "victory" : world.outcome === DEFEAT ? "defeat" : "playing";
    fill(
      session,
      ...row("session", welcome?.session.toString(16).padStart(16, "0") ?? "?"),
      ...row("map", welcome?.map ?? "?"),
      ...row("tick", world.tick),
      ...row("wave", world.wave),
      ...row("lives", world.lives),
      ...row("outcome", outcome),
    );
    const me = welcome?.player ?? null;
    fill(
      seats,
      ...world.players.map((player, seat) =>
        el("tr", { class: seat === me ? "me" : "" }, el("td", {}, seat === me ? `${seat} (you)` : seat), el("td", { class: "gold" }, player.gold), el("td", {}, player.kills), el("td", {}, player.ready ? "yes" : "")),
      ),
    );
    const stats = client.stats;
    fill(
      connection,
      ...row("role", me === null ? "spectator" : `player ${me}`),
      ...row("snapshots", stats.snapshots),
      ...row("desyncs", stats.desyncs),
      ...row("down", `${formatBytes(client.bytesPerSecond.down)}/s`),
      ...row("round trip", `${client.rttMs.toFixed(0)} ms`),
    );
    // Stable hooks for tests and tools.
    element.dataset.session = welcome?.session.toString(16).padStart(16, "0") ?? "";
    element.dataset.snapshots = String(stats.snapshots);
    element.dataset.desyncs = String(stats.desyncs);
    element.dataset.tick = String(world.tick);
  };
  updateFigures();
  let figuresDue = 0;
  client.on("snapshot", () => {
    const now = performance.now();
    if (now >= figuresDue) {
      figuresDue = now + 250;
      updateFigures();
    }
  });
  client.on("event", ({ tick, event }) => {
    events.prepend(el("li", {}, el("span", { class: "mono" }, tick), " ", describeEvent(event, content)));
    while (events.children.length > EVENT_LINES) events.lastElementChild?.remove();
  });
  client.on("close", (info) => {
    updateFigures();
    say(info.bye !== undefined ? `Connection closed: ${describeBye(info.bye)}.` : `Connection closed: ${info.reason}.`, info.bye?.type === "sessionEnded" ? "info" : "error");
  });
  const frame = () => {
    board.draw(client.world, client.renderTick(), selected());
    if (client.closeInfo === undefined) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  return { board, aside, element, say };
}

function describeEvent(event: WireEvent, content: Content): string {
  switch (event.type) {
    case "towerPlaced":
      return `seat ${event.player} built ${content.towers[event.kind]?.name ?? "a tower"} at (${event.x}, ${event.y})`;
    case "towerUpgraded":
      return `tower ${event.tower} upgraded to level ${event.level + 1}`;
    case "towerSold":
      return `tower ${event.tower} sold for ${event.refund}`;
    case "waveStarted":
      return `wave ${event.wave} started${event.earlyBonus > 0 ? ` (early: +${event.earlyBonus} gold)` : ""}`;
    case "enemyLeaked":
      return `an enemy got through: -${event.livesLost} lives`;
    case "gameOver":
      return event.victory ? "victory!" : "defeat";
    case "draining":
      return "the server is restarting; the session moves";
  }
}
