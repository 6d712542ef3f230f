/**
 * Getting a seat over HTTP (docs/PROTOCOL.md section 2): `POST /v1/join`
 * (or an invite's `/v1/sessions/{id}/join`), or a spectator's place with
 * `POST /v1/sessions/{id}/spectate`, following a fleet's 307 to the
 * instance that runs the session and waiting out 503s and 429s for as long
 * as the server's `Retry-After` asks, within a patience the caller sets.
 *
 * @module
 */

/** What to ask for; every field is optional. */
export interface JoinRequest {
  /** Display name. */
  name?: string;
  /** Map key for matchmaking (default: the server's first map). */
  map?: string;
  /** Seats of a session matchmaking opens, 1 to 8. */
  maxPlayers?: number;
  /** Join this session (16 hex digits) instead of matchmaking. */
  sessionId?: string;
  /** Reclaim the seat this token was issued for. */
  reconnectToken?: string;
}

/** The seat the server gave. */
export interface JoinResponse {
  sessionId: string;
  playerId: number;
  connectToken: string;
  udpAddresses: string[];
  /** `ws://HOST:PORT/ws?ticket=...`: use as given, once, within 30 s. */
  wsUrl: string;
  /** Present it to join again later and reclaim this seat. */
  reconnectToken: string;
  /** Pass it on to let someone watch this session, private or not ({@link spectate}). */
  spectateInvite: string;
}

/** A spectator's place: snapshots and events, no seat, commands refused. */
export interface SpectateResponse {
  sessionId: string;
  connectToken: string;
  udpAddresses: string[];
  /** `ws://HOST:PORT/ws?ticket=...`: use as given, once, within 30 s. */
  wsUrl: string;
}

/** How to join. */
export interface JoinOptions {
  /** A player JWT, when the server checks identities (for {@link spectate}: the admin token, which opens private sessions). */
  token?: string;
  /** How long to keep retrying 503 and 429 answers (default 30 s). */
  patienceMs?: number;
  /** Redirects followed at most (default 5). */
  maxRedirects?: number;
  /** Cancels waiting. */
  signal?: AbortSignal;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** A join the server refused, with its status and message. */
export class JoinError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** What the server asked to wait before retrying, if it said. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(`join refused (${status}): ${message}`);
    this.name = "JoinError";
  }
}

/**
 * Asks `server` (the HTTP API's base URL, such as `http://127.0.0.1:8080`)
 * for a seat.
 *
 * @throws JoinError for a refusal that waiting does not cure (400, 401,
 *   403, 404, 409, 410), or a 503/429 that outlasted the patience.
 */
export async function join(server: string | URL, request: JoinRequest = {}, options: JoinOptions = {}): Promise<JoinResponse> {
  const path = request.sessionId !== undefined ? `/v1/sessions/${encodeURIComponent(request.sessionId)}/join` : "/v1/join";
  return parseJoin(await post(new URL(path, server), joinBody(request), options));
}

/**
 * Asks `server` for a spectator's place in session `sessionId`. A private
 * session needs `invite` (a player's `spectateInvite`) or the admin token
 * as `options.token`.
 *
 * @throws JoinError for a refusal: 403 (private), 404, 409 (the session has
 *   its most spectators), 410 (ended), or a 503/429 that outlasted the patience.
 */
export async function spectate(server: string | URL, sessionId: string, invite?: string, options: JoinOptions = {}): Promise<SpectateResponse> {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}/spectate`;
  const json = await post(new URL(path, server), JSON.stringify({ invite }), options);
  const field = fieldOf(json);
  return {
    sessionId: field<string>("session_id", "string"),
    connectToken: field<string>("connect_token", "string"),
    udpAddresses: Array.isArray(json.udp_addresses) ? json.udp_addresses.map(String) : [],
    wsUrl: field<string>("ws_url", "string"),
  };
}

function joinBody(request: JoinRequest): string {
  return JSON.stringify({
    name: request.name,
    map: request.map,
    max_players: request.maxPlayers,
    session_id: request.sessionId,
    reconnect_token: request.reconnectToken,
  });
}

async function post(start: URL, body: string, options: JoinOptions): Promise<Record<string, unknown>> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const patience = options.patienceMs ?? 30_000;
  const deadline = Date.now() + patience;
  let url = start;
  let redirects = 0;
  let backoff = 100;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  for (;;) {
    const init: RequestInit = { method: "POST", headers, body, redirect: "manual" };
    if (options.signal !== undefined) init.signal = options.signal;
    let response = await doFetch(url, init);
    if (response.type === "opaqueredirect") {
      // Browsers hide a manual redirect's Location: let fetch follow it.
      response = await doFetch(url, { ...init, redirect: "follow" });
    }
    if (response.status === 307 || response.status === 308) {
      const location = response.headers.get("location");
      if (location === null || redirects >= (options.maxRedirects ?? 5)) {
        throw new JoinError(response.status, location === null ? "redirect without a Location" : "too many redirects", undefined);
      }
      url = new URL(location, url);
      redirects += 1;
      continue;
    }
    if (response.ok) return (await response.json()) as Record<string, unknown>;
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
    const message = await errorMessage(response);
    const retryable = response.status === 503 || (response.status === 429 && retryAfterMs !== undefined);
    const wait = retryAfterMs ?? backoff;
    if (!retryable || Date.now() + wait > deadline) {
      throw new JoinError(response.status, message, retryAfterMs);
    }
    await sleep(wait, options.signal);
    backoff = Math.min(backoff * 2, 2000);
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed && typeof parsed.error === "string") {
      return parsed.error;
    }
  } catch {
    // Not JSON: the text itself says what happened.
  }
  return text || response.statusText;
}

function fieldOf(json: Record<string, unknown>): <T>(name: string, type: string) => T {
  return <T>(name: string, type: string): T => {
    if (typeof json[name] !== type) throw new JoinError(200, `join answer lacks ${name}`, undefined);
    return json[name] as T;
  };
}

function parseJoin(json: Record<string, unknown>): JoinResponse {
  const field = fieldOf(json);
  return {
    sessionId: field<string>("session_id", "string"),
    playerId: field<number>("player_id", "number"),
    connectToken: field<string>("connect_token", "string"),
    udpAddresses: Array.isArray(json.udp_addresses) ? json.udp_addresses.map(String) : [],
    wsUrl: field<string>("ws_url", "string"),
    reconnectToken: field<string>("reconnect_token", "string"),
    spectateInvite: field<string>("spectate_invite", "string"),
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
