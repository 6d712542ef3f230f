/**
 * The board on a canvas: the map's tiles (drawn once, then copied each
 * frame), towers with their ranges, enemies where their trajectories put
 * them at the render tick (so they move smoothly between snapshots) with
 * health bars, and projectiles. The spectate view and the playable page
 * share it; the playable page also asks which cell a click fell on.
 *
 * @module
 */

import { FLYING, type NetTower, type NetWorld, type Trajectory, positionInCells } from "@rampart/client";

import type { Content, Grid } from "./api.js";
import { ENEMY_COLOUR, FLYING_COLOUR, PROJECTILE_COLOUR, TILE_COLOURS, TOWER_COLOURS } from "./palette.js";

/** The largest board drawn, in CSS pixels. */
const MAX_WIDTH = 880;
const MAX_HEIGHT = 640;

/** A cell of the map. */
export interface CellRef {
  x: number;
  y: number;
}

export class Board {
  /** Pixels per cell. */
  readonly cell: number;
  private readonly context: CanvasRenderingContext2D;
  private readonly tiles: HTMLCanvasElement;

  constructor(
    readonly canvas: HTMLCanvasElement,
    readonly grid: Grid,
    private readonly content: Content,
  ) {
    this.cell = Math.max(8, Math.floor(Math.min(MAX_WIDTH / grid.width, MAX_HEIGHT / grid.height)));
    canvas.width = grid.width * this.cell;
    canvas.height = grid.height * this.cell;
    // Read by tests and tools: where the cells are.
    canvas.dataset.cell = String(this.cell);
    canvas.dataset.map = grid.key;
    const context = canvas.getContext("2d");
    if (context === null) throw new Error("this browser has no 2D canvas");
    this.context = context;
    this.tiles = document.createElement("canvas");
    this.tiles.width = canvas.width;
    this.tiles.height = canvas.height;
    this.paintTiles();
  }

  /** The map's cell under a mouse event, if any. */
  cellAt(event: MouseEvent): CellRef | undefined {
    const rect = this.canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) * (this.canvas.width / rect.width)) / this.cell);
    const y = Math.floor(((event.clientY - rect.top) * (this.canvas.height / rect.height)) / this.cell);
    if (x < 0 || y < 0 || x >= this.grid.width || y >= this.grid.height) return undefined;
    return { x, y };
  }

  /** The map character at a cell (`#`, `.`, `=`, `S`, `G`). */
  tile(cell: CellRef): string {
    return this.grid.rows[cell.y]?.[cell.x] ?? "#";
  }

  /**
   * Draws `world` with movers where they are at `tick` (fractional: between
   * snapshots). `selected` (a tower id) gets its range drawn boldly.
   */
  draw(world: NetWorld, tick: number, selected?: number): void {
    const ctx = this.context;
    const cell = this.cell;
    ctx.drawImage(this.tiles, 0, 0);
    ctx.lineWidth = 1;
    for (const tower of world.towers) this.drawRange(tower, tower.id === selected);
    for (const tower of world.towers) this.drawTower(tower, tower.id === selected);
    for (const enemy of world.enemies) {
      const { x, y } = this.at(enemy.path, tick);
      ctx.fillStyle = (enemy.flags & FLYING) !== 0 ? FLYING_COLOUR : ENEMY_COLOUR;
      ctx.beginPath();
      ctx.arc(x, y, cell * 0.3, 0, Math.PI * 2);
      ctx.fill();
      const width = cell * 0.8;
      const top = y - cell * 0.48;
      ctx.fillStyle = "#111";
      ctx.fillRect(x - width / 2, top, width, 3);
      const share = enemy.maxHp > 0 ? Math.min(1, enemy.hp / enemy.maxHp) : 0;
      ctx.fillStyle = share > 0.5 ? "#5fd35f" : share > 0.25 ? "#f2c94c" : "#eb5757";
      ctx.fillRect(x - width / 2, top, width * share, 3);
    }
    ctx.fillStyle = PROJECTILE_COLOUR;
    for (const projectile of world.projectiles) {
      const { x, y } = this.at(projectile.path, tick);
      ctx.beginPath();
      ctx.arc(x, y, Math.max(2, cell * 0.08), 0, Math.PI * 2);
      ctx.fill();
    }
  }

  /** A mover's place in canvas pixels. */
  private at(path: Trajectory, tick: number): { x: number; y: number } {
    const { x, y } = positionInCells(path, tick);
    return { x: x * this.cell, y: y * this.cell };
  }

  private range(tower: NetTower): number {
    const kind = this.content.towers[tower.kind];
    return kind?.levels[tower.level]?.range ?? kind?.levels[0]?.range ?? 0;
  }

  private drawRange(tower: NetTower, selected: boolean): void {
    const ctx = this.context;
    const cell = this.cell;
    ctx.strokeStyle = selected ? "rgba(255, 255, 255, 0.8)" : "rgba(255, 255, 255, 0.18)";
    ctx.beginPath();
    ctx.arc((tower.x + 0.5) * cell, (tower.y + 0.5) * cell, this.range(tower) * cell, 0, Math.PI * 2);
    ctx.stroke();
  }

  private drawTower(tower: NetTower, selected: boolean): void {
    const ctx = this.context;
    const cell = this.cell;
    const inset = cell * 0.15;
    ctx.fillStyle = TOWER_COLOURS[tower.kind % TOWER_COLOURS.length]!;
    ctx.fillRect(tower.x * cell + inset, tower.y * cell + inset, cell - 2 * inset, cell - 2 * inset);
    if (selected) {
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(tower.x * cell + inset - 1.5, tower.y * cell + inset - 1.5, cell - 2 * inset + 3, cell - 2 * inset + 3);
    }
    // One pip per level above the first.
    ctx.fillStyle = "#111";
    for (let level = 0; level < tower.level; level += 1) {
      ctx.fillRect(tower.x * cell + inset + 2 + level * 5, tower.y * cell + inset + 2, 3, 3);
    }
  }

  private paintTiles(): void {
    const ctx = this.tiles.getContext("2d");
    if (ctx === null) return;
    for (const [y, row] of this.grid.rows.entries()) {
      for (let x = 0; x < row.length; x += 1) {
        ctx.fillStyle = TILE_COLOURS[row[x]!] ?? TILE_COLOURS["#"]!;
        ctx.fillRect(x * this.cell, y * this.cell, this.cell, this.cell);
      }
    }
  }
}
