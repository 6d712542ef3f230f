/**
 * The server's own figures beside a view, from `GET /v1/status` once a
 * second: tick p99, sessions, players, spectators, and bytes per second
 * per connected client (two readings of the totals, divided).
 *
 * @module
 */

import { type ServerStatus, api } from "./api.js";
import { el, fill } from "./dom.js";

const PERIOD_MS = 1000;

/** A `<dl>` kept up to date until the page goes. */
export function serverFigures(): HTMLElement {
  const list = el("dl", { class: "figures", id: "server-figures" });
  const panel = el("section", { class: "panel" }, el("h2", {}, "Server"), list);
  let previous: { status: ServerStatus; at: number } | undefined;
  const refresh = async () => {
    try {
      const status = await api.status();
      const at = performance.now();
      let perClient = "…";
      if (previous !== undefined && status.clients > 0) {
        const seconds = (at - previous.at) / 1000;
        const rate = (status.bytes_out - previous.status.bytes_out) / seconds / status.clients;
        perClient = `${formatBytes(rate)}/s`;
      }
      previous = { status, at };
      fill(
        list,
        ...row("tick p99", `${status.tick_p99_ms.toFixed(2)} ms of ${(1000 / status.tick_hz).toFixed(1)}`),
        ...row("sessions", `${status.running} running, ${status.lobby} waiting`),
        ...row("players", status.players),
        ...row("spectators", status.spectators),
        ...row("out per client", perClient),
      );
    } catch (error) {
      fill(list, ...row("unreachable", String(error)));
    }
  };
  void refresh();
  setInterval(() => void refresh(), PERIOD_MS);
  return panel;
}

/** A term and its value, for a `<dl>`. */
export function row(term: string, value: string | number): HTMLElement[] {
  return [el("dt", {}, term), el("dd", {}, value)];
}

/** Bytes for people: B, KB, MB (powers of 1000). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  if (bytes < 1e6) return `${(bytes / 1000).toFixed(1)} KB`;
  return `${(bytes / 1e6).toFixed(2)} MB`;
}
