/**
 * The server's HTTP API as the page reads it: sessions, the content it
 * draws with (kinds, maps, grids) and the server's own figures.
 *
 * @module
 */

/** A session as `GET /v1/sessions` lists it. */
export interface SessionInfo {
  id: string;
  map: string;
  state: "lobby" | "running" | "ended";
  max_players: number;
  players: number;
  spectators: number;
  bots: number;
  private: boolean;
  wave: number;
  lives: number;
  tick: number;
  enemies: number;
  towers: number;
  outcome: string | null;
  end_reason: string | null;
}

export interface TowerLevel {
  cost: number;
  /** In cells from the tower's cell centre. */
  range: number;
  reload: number;
  damage: number;
  splash_radius: number;
}

export interface TowerKind {
  key: string;
  name: string;
  sell_refund: number;
  levels: TowerLevel[];
}

export interface EnemyKind {
  key: string;
  name: string;
  flying: boolean;
}

export interface MapSummary {
  key: string;
  name: string;
  width: number;
  height: number;
  start_gold: number;
  lives: number;
  waves: number;
}

/** `GET /v1/content`: what the wire's indices name. */
export interface Content {
  version: string;
  towers: TowerKind[];
  enemies: EnemyKind[];
  maps: MapSummary[];
}

/** `GET /v1/maps/{key}/grid`: one character per cell, rows top first. */
export interface Grid {
  key: string;
  width: number;
  height: number;
  rows: string[];
}

/** `GET /v1/status`: totals since startup and the tick's p99. */
export interface ServerStatus {
  tick_hz: number;
  tick_p99_ms: number;
  ticks_on_time: boolean;
  snapshots_on_time: boolean;
  lobby: number;
  running: number;
  players: number;
  clients: number;
  spectators: number;
  bytes_out: number;
  bytes_in: number;
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (!response.ok) {
    let message = response.statusText;
    try {
      const body = (await response.json()) as { error?: string };
      message = body.error ?? message;
    } catch {
      // Not JSON: the status says enough.
    }
    throw new Error(`${path}: ${response.status} ${message}`);
  }
  return (await response.json()) as T;
}

export const api = {
  sessions: () => getJson<SessionInfo[]>("/v1/sessions"),
  session: (id: string) => getJson<SessionInfo>(`/v1/sessions/${encodeURIComponent(id)}`),
  content: () => getJson<Content>("/v1/content"),
  grid: (map: string) => getJson<Grid>(`/v1/maps/${encodeURIComponent(map)}/grid`),
  status: () => getJson<ServerStatus>("/v1/status"),
};
