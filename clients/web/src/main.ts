/**
 * The web page's entry: one shell (`index.html`) for every path, which
 * shows the live sessions (`/`), a spectate view (`/watch/{id}`) or the
 * playable page (`/play`).
 *
 * @module
 */

import "./style.css";

import { playPage } from "./play.js";
import { sessionsPage } from "./sessions.js";
import { watchPage } from "./watch.js";

const root = document.getElementById("app");
if (root !== null) {
  const watching = /^\/watch\/([0-9a-f]{16})\/?$/.exec(location.pathname);
  if (watching?.[1] !== undefined) void watchPage(root, watching[1]);
  else if (location.pathname.replace(/\/$/, "") === "/play") void playPage(root);
  else sessionsPage(root);
}
