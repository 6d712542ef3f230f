/**
 * The colours the board is drawn in. Kept in one place, and opaque, so
 * that what a cell or an enemy shows can be read back from the canvas's
 * pixels (the browser test does).
 *
 * @module
 */

/** Tiles by their map character (`GET /v1/maps/{key}/grid`). */
export const TILE_COLOURS: Readonly<Record<string, string>> = {
  "#": "#26282c",
  ".": "#3b5638",
  "=": "#8c7b59",
  S: "#7b3f98",
  G: "#2d6cae",
};

/** A walking enemy's body. */
export const ENEMY_COLOUR = "#e5484d";
/** A flying enemy's body. */
export const FLYING_COLOUR = "#ff9fb5";
/** Projectiles in flight. */
export const PROJECTILE_COLOUR = "#ffe066";
/** Tower kinds in index order; more kinds reuse the list. */
export const TOWER_COLOURS: readonly string[] = ["#d9d2c3", "#a0c4ff", "#5c5c70", "#ff8c42", "#8be8ff", "#c77dff"];

/** `#rrggbb` as `[r, g, b]`. */
export function rgb(colour: string): [number, number, number] {
  const value = Number.parseInt(colour.slice(1), 16);
  return [(value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff];
}
