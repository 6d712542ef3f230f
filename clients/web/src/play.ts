/**
 * The playable page (`/play`): join a game on a map, then build by
 * clicking a buildable cell with a tower kind chosen, click a tower of
 * yours to upgrade, sell or retarget it, ready up and call waves early;
 * gold, lives and the results as the server says them. Every action is a
 * command whose answer (or refusal, with its reason) is shown.
 *
 * @module
 */

import { type Client, type CommandResult, VICTORY, type WireCommand, type WireRejection, connect } from "@rampart/client";

import { type Content, api } from "./api.js";
import type { CellRef } from "./board.js";
import { el, fill } from "./dom.js";
import { type GameView, gameView } from "./view.js";

const TARGETING = ["first", "last", "strongest", "closest"];

export async function playPage(root: HTMLElement): Promise<void> {
  const note = el("p", { class: "note", id: "play-note" });
  let content: Content;
  try {
    content = await api.content();
  } catch (error) {
    fill(root, el("p", { class: "note error" }, `Cannot reach the server: ${String(error)}`));
    return;
  }
  const name = el("input", { name: "name", value: "web player", maxlength: 32 });
  const map = el("select", { name: "map", id: "map" }, ...content.maps.map((summary) => el("option", { value: summary.key }, `${summary.name} (${summary.key}, ${summary.width}×${summary.height}, ${summary.waves} waves)`)));
  const seats = el("select", { name: "seats", id: "seats" }, ...[1, 2, 3, 4].map((count) => el("option", { value: count }, count === 1 ? "alone" : `${count} players`)));
  const button = el("button", { type: "submit", id: "join" }, "Play");
  const form = el("form", { class: "join" }, el("label", {}, "Name ", name), el("label", {}, "Map ", map), el("label", {}, "Seats ", seats), button);
  fill(root, el("section", { class: "main" }, el("h1", {}, "Play"), form, note));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    button.disabled = true;
    note.textContent = "Finding a game…";
    connect(location.origin, { name: name.value, map: map.value, maxPlayers: Number(seats.value) })
      .then(async (client) => {
        const grid = await api.grid(client.welcome!.map);
        fill(root, el("section", { class: "main" }, el("h1", {}, "Playing on ", grid.key), new Game(client, content, grid).view.element));
      })
      .catch((error: unknown) => {
        button.disabled = false;
        note.textContent = `Cannot join: ${error instanceof Error ? error.message : String(error)}`;
        note.className = "note error";
      });
  });
}

/** A game in progress: the view, the build menu and the chosen tower. */
class Game {
  readonly view: GameView;
  private kind = 0;
  private selected: number | undefined;
  private readonly kinds: HTMLButtonElement[];
  private readonly towerPanel = el("div", { id: "tower-panel" });
  private readonly results = el("section", { class: "panel", id: "results", hidden: true });

  constructor(
    private readonly client: Client,
    private readonly content: Content,
    grid: GameView["board"]["grid"],
  ) {
    this.view = gameView(client, content, grid, () => this.selected);
    this.kinds = content.towers.map((tower, index) => {
      const button = el("button", { type: "button", class: "kind", "data-kind": index }, `${tower.name} `, el("span", { class: "cost" }, tower.levels[0]?.cost ?? 0));
      button.addEventListener("click", () => this.chooseKind(index));
      return button;
    });
    this.chooseKind(0);
    const ready = el("button", { type: "button", id: "ready" }, "Ready");
    ready.addEventListener("click", () => void this.send({ type: "ready" }, "Ready."));
    const call = el("button", { type: "button", id: "call-wave" }, "Call next wave");
    call.addEventListener("click", () => void this.send({ type: "callNextWave" }, "Next wave called."));
    this.view.aside.prepend(
      el("section", { class: "panel" }, el("h2", {}, "Build"), el("div", { class: "kinds" }, ...this.kinds), el("div", { class: "actions" }, ready, call), this.towerPanel),
      this.results,
    );
    this.view.board.canvas.addEventListener("click", (event) => {
      const cell = this.view.board.cellAt(event);
      if (cell !== undefined) this.clickCell(cell);
    });
    client.on("snapshot", (world) => {
      if (this.selected !== undefined && !world.towers.some((tower) => tower.id === this.selected)) this.select(undefined);
      if (world.outcome !== 0) this.showResults();
    });
    client.on("close", () => this.showResults());
    this.view.say("Choose a tower, click a green cell to build, then press Ready.");
  }

  private chooseKind(index: number): void {
    this.kind = index;
    for (const [other, button] of this.kinds.entries()) button.classList.toggle("chosen", other === index);
  }

  private clickCell(cell: CellRef): void {
    const tower = this.client.world.towers.find((candidate) => candidate.x === cell.x && candidate.y === cell.y);
    if (tower !== undefined) {
      this.select(tower.id);
      return;
    }
    this.select(undefined);
    const name = this.content.towers[this.kind]?.name ?? "tower";
    void this.send({ type: "placeTower", kind: this.kind, x: cell.x, y: cell.y }, `Built ${name} at (${cell.x}, ${cell.y}).`);
  }

  private select(id: number | undefined): void {
    this.selected = id;
    const tower = this.client.world.towers.find((candidate) => candidate.id === id);
    if (tower === undefined) {
      fill(this.towerPanel);
      return;
    }
    const kind = this.content.towers[tower.kind];
    const next = kind?.levels[tower.level + 1];
    const spent = kind?.levels.slice(0, tower.level + 1).reduce((sum, level) => sum + level.cost, 0) ?? 0;
    const refund = Math.floor(spent * (kind?.sell_refund ?? 0));
    const mine = tower.owner === this.client.welcome?.player;
    const upgrade = el("button", { type: "button", id: "upgrade", disabled: !mine || next === undefined }, next === undefined ? "Top level" : `Upgrade (${next.cost})`);
    upgrade.addEventListener("click", () => void this.send({ type: "upgradeTower", tower: tower.id }, "Upgraded."));
    const sell = el("button", { type: "button", id: "sell", disabled: !mine }, `Sell (about ${refund})`);
    sell.addEventListener("click", () => void this.send({ type: "sellTower", tower: tower.id }, "Sold."));
    const targeting = el("select", { id: "targeting", disabled: !mine }, ...TARGETING.map((mode, index) => el("option", { value: index, selected: index === tower.targeting }, mode)));
    targeting.addEventListener("change", () => void this.send({ type: "setTargeting", tower: tower.id, mode: Number(targeting.value) }, `Targets the ${TARGETING[Number(targeting.value)]} enemy.`));
    fill(
      this.towerPanel,
      el("h3", {}, `${kind?.name ?? "Tower"} ${tower.id}, level ${tower.level + 1}`, mine ? "" : ` (seat ${tower.owner}'s)`),
      el("p", {}, `Range ${kind?.levels[tower.level]?.range ?? "?"} cells.`),
      el("div", { class: "actions" }, upgrade, sell, targeting),
    );
  }

  /** Sends a command and says how it went. */
  private async send(command: WireCommand, done: string): Promise<void> {
    let result: CommandResult;
    try {
      result = await this.client.command(command);
    } catch (error) {
      this.view.say(error instanceof Error ? error.message : String(error), "error");
      return;
    }
    if (result.ok) {
      this.view.say(done);
      if (this.selected !== undefined) {
        // Show the tower as the next snapshot has it.
        const id = this.selected;
        const off = this.client.on("snapshot", () => {
          off();
          this.select(id);
        });
      }
    } else {
      this.view.say(`Refused: ${describeRejection(result.rejection)}.`, "error");
    }
  }

  private showResults(): void {
    const world = this.client.world;
    if (world.outcome === 0 && this.client.closeInfo === undefined) return;
    this.results.hidden = false;
    const me = this.client.welcome?.player;
    fill(
      this.results,
      el("h2", {}, world.outcome === VICTORY ? "Victory" : world.outcome === 0 ? "Game over" : "Defeat"),
      el("p", {}, `Wave ${world.wave}, ${world.lives} lives left.`),
      el("table", { class: "seats" }, el("thead", {}, el("tr", {}, el("th", {}, "seat"), el("th", {}, "kills"), el("th", {}, "gold"))), el("tbody", {}, ...world.players.map((player, seat) => el("tr", { class: seat === me ? "me" : "" }, el("td", {}, seat === me ? `${seat} (you)` : seat), el("td", {}, player.kills), el("td", {}, player.gold))))),
      el("p", {}, el("a", { href: "/play" }, "Play again"), " · ", el("a", { href: "/" }, "Sessions")),
    );
  }
}

/** A refusal in words. */
export function describeRejection(rejection: WireRejection): string {
  switch (rejection.type) {
    case "game": {
      const reason = rejection.rejection;
      switch (reason.type) {
        case "notEnoughGold":
          return `not enough gold (${reason.needed} needed, ${reason.available} held)`;
        case "cellNotBuildable":
          return "nothing can be built there";
        case "cellOccupied":
          return "that cell is taken";
        case "wouldBlockPath":
          return "it would block the enemies' only path";
        case "notYourTower":
          return "that tower is another player's";
        default:
          return reason.type.replace(/([A-Z])/g, " $1").toLowerCase();
      }
    }
    case "rateLimited":
      return "too many commands, slow down";
    case "spectating":
      return "spectators cannot act";
    default:
      return rejection.type.replace(/([A-Z])/g, " $1").toLowerCase();
  }
}
