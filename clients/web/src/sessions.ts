/**
 * The live sessions (`GET /v1/sessions`, every two seconds): map, players,
 * spectators, wave, lives and tick, each with a link to watch it.
 *
 * @module
 */

import { type SessionInfo, api } from "./api.js";
import { el, fill } from "./dom.js";
import { serverFigures } from "./figures.js";

const PERIOD_MS = 2000;

export function sessionsPage(root: HTMLElement): void {
  const body = el("tbody");
  const note = el("p", { class: "note", id: "sessions-note" }, "Loading…");
  const table = el(
    "table",
    { class: "sessions", id: "sessions" },
    el("thead", {}, el("tr", {}, ...["session", "map", "state", "players", "bots", "spectators", "wave", "lives", "tick", ""].map((name) => el("th", {}, name)))),
    body,
  );
  fill(root, el("section", { class: "main" }, el("h1", {}, "Live sessions"), note, table), el("aside", {}, serverFigures()));
  const refresh = async () => {
    try {
      const sessions = await api.sessions();
      fill(body, ...sessions.map(sessionRow));
      note.textContent = sessions.length === 0 ? "No sessions right now: start one from Play." : `${sessions.length} sessions, refreshed every ${PERIOD_MS / 1000} s.`;
    } catch (error) {
      note.textContent = `Cannot list sessions: ${String(error)}`;
    }
  };
  void refresh();
  setInterval(() => void refresh(), PERIOD_MS);
}

function sessionRow(session: SessionInfo): HTMLElement {
  const state = session.state === "ended" ? (session.outcome ?? session.end_reason ?? "ended") : session.state;
  return el(
    "tr",
    { "data-session": session.id, class: session.state },
    el("td", { class: "mono" }, session.id),
    el("td", {}, session.map),
    el("td", {}, state),
    el("td", { class: "players" }, `${session.players}/${session.max_players}`),
    el("td", {}, session.bots),
    el("td", {}, session.spectators),
    el("td", { class: "wave" }, session.wave),
    el("td", { class: "lives" }, session.lives),
    el("td", { class: "tick" }, session.tick),
    el("td", {}, session.state === "ended" ? "" : el("a", { href: `/watch/${session.id}`, class: "watch" }, "watch")),
  );
}
