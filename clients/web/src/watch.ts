/**
 * The spectate view (`/watch/{id}`): a spectator's connection to the
 * session (`POST /v1/sessions/{id}/spectate`; a private one with
 * `?invite=` from one of its players), drawn as it plays, with the
 * server's figures beside it.
 *
 * @module
 */

import { watch } from "@rampart/client";

import { api } from "./api.js";
import { el, fill } from "./dom.js";
import { serverFigures } from "./figures.js";
import { gameView } from "./view.js";

export async function watchPage(root: HTMLElement, sessionId: string): Promise<void> {
  const status = el("p", { class: "note", id: "watch-note" }, `Connecting to session ${sessionId}…`);
  fill(root, el("section", { class: "main" }, el("h1", {}, "Watching ", el("span", { class: "mono" }, sessionId)), status));
  try {
    const invite = new URLSearchParams(location.search).get("invite") ?? undefined;
    const [content, client] = await Promise.all([api.content(), watch(location.origin, sessionId, invite)]);
    const grid = await api.grid(client.welcome!.map);
    const view = gameView(client, content, grid);
    view.aside.prepend(serverFigures());
    fill(root, el("section", { class: "main" }, el("h1", {}, "Watching ", el("span", { class: "mono" }, sessionId), " on ", grid.key), view.element));
  } catch (error) {
    status.textContent = `Cannot watch this session: ${error instanceof Error ? error.message : String(error)}`;
    status.className = "note error";
  }
}
