/**
 * The web page in headless Chromium (Debian's `chromium`, driven by
 * puppeteer-core; nothing is downloaded) against a real server process:
 * the sessions list shows a session created with bots; its spectate view
 * draws the map and enemies that move (read back from the canvas's pixels
 * at known cells, twice); on the playable page a click builds a tower the
 * server confirms; no view counts a desync. And the page is served as
 * promised: compressed as accepted, hashed assets immutable, the shell
 * revalidated.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import puppeteer, { type Browser, type Page } from "puppeteer-core";

import { Server, quickAssets } from "../../ts/test/support/server.js";
import { ENEMY_COLOUR, FLYING_COLOUR, TILE_COLOURS, TOWER_COLOURS, rgb } from "../src/palette.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ADMIN = "browser-test-admin";

interface Grid {
  key: string;
  width: number;
  height: number;
  rows: string[];
}

/** What the canvas shows, read in the page: per cell whether its corner shows its tile, and where enemy colours are. */
interface CanvasReading {
  cell: number;
  tilesShown: number;
  tilesTotal: number;
  /** Cells holding enemy-coloured pixels, as "x,y". */
  enemyCells: string[];
  enemyPixels: number;
  /** Mean position of enemy-coloured pixels, canvas pixels. */
  centroid: [number, number];
}

describe("the web page in headless Chromium", () => {
  let server: Server;
  let browser: Browser;
  /** Uncaught errors in any page, by path. */
  const pageErrors: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM)`);
    const assets = quickAssets();
    server = await Server.start(["--assets", assets, "--admin-token", ADMIN]);
    server.own(assets);
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in CI has no user namespace for Chromium's sandbox.
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    assert.deepEqual(pageErrors, [], "errors in the pages");
  });

  /** Creates a session as the admin, waiting out 503s as their `Retry-After` asks (a browser starting up can make ticks late). */
  async function createSession(body: object): Promise<string> {
    for (const deadline = Date.now() + 30_000; ; ) {
      const response = await fetch(`${server.url}/v1/sessions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify(body),
      });
      const retryAfter = Number(response.headers.get("retry-after"));
      if (response.status === 503 && retryAfter > 0 && Date.now() < deadline) {
        await sleep(retryAfter * 1000);
        continue;
      }
      assert.equal(response.status, 201, await response.clone().text());
      return ((await response.json()) as { id: string }).id;
    }
  }

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage();
    page.on("pageerror", (error) => pageErrors.push(`${path}: ${String(error)}`));
    await page.goto(`${server.url}${path}`, { waitUntil: "domcontentloaded" });
    return page;
  }

  test("the page is served compressed, its assets immutable and its shell revalidated", async () => {
    const shell = await fetch(`${server.url}/`, { headers: { "accept-encoding": "gzip" } });
    assert.equal(shell.status, 200);
    assert.equal(shell.headers.get("content-encoding"), "gzip");
    assert.equal(shell.headers.get("cache-control"), "no-cache");
    assert.equal(shell.headers.get("vary"), "accept-encoding");
    const html = await shell.text();
    const script = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    assert.ok(script !== undefined, `the shell names a hashed script:\n${html}`);
    const brotli = await fetch(`${server.url}${script}`, { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(brotli.headers.get("content-encoding"), "br");
    assert.equal(brotli.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.match(brotli.headers.get("content-type") ?? "", /^text\/javascript/);
    const plain = await fetch(`${server.url}${script}`, { headers: { "accept-encoding": "identity" } });
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.equal((await plain.text()).length > 10_000, true, "the whole bundle, uncompressed");
    for (const path of ["/play", "/watch/00000000000000ff"]) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, `${path} is the shell`);
    }
    assert.equal((await fetch(`${server.url}/assets/app-NOTAHASH.js`)).status, 404);
  });

  test("the sessions list shows a session created with bots", async () => {
    const id = await createSession({ map: "small", max_players: 2, bots: 2 });
    const page = await open("/");
    const row = `tr[data-session="${id}"]`;
    await page.waitForSelector(row, { timeout: 10_000 });
    const cells = () => page.$eval(row, (tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""));
    const first = await cells();
    assert.equal(first[1], "small");
    assert.equal(first[2], "running");
    assert.equal(first[4], "2", "two bots");
    // It refreshes: the tick moves on without a reload.
    await page.waitForFunction((selector, tick) => Number(document.querySelector(`${selector} td.tick`)?.textContent) > tick, { timeout: 10_000 }, row, Number(first[8]));
    assert.ok(await page.$(`${row} a.watch`), "a link to watch it");
  });

  test("the spectate view draws the map and enemies moving along their path", async () => {
    const id = await createSession({ map: "small", max_players: 2, bots: 2 });
    const grid = (await (await fetch(`${server.url}/v1/maps/small/grid`)).json()) as Grid;
    const page = await open(`/watch/${id}`);
    await page.waitForSelector(".game[data-snapshots]", { timeout: 15_000 });
    // Enemies come once the bots are ready and the first wave spawns.
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>(".game")?.dataset.snapshots) > 5, { timeout: 15_000 });
    let first: CanvasReading | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const reading = await readCanvas(page, grid);
      if (reading.enemyPixels > 0) {
        first = reading;
        break;
      }
      await sleep(250);
    }
    assert.ok(first !== undefined, "no enemy drawn within a minute");
    // A short wave can be cut down within the 0.6 s (seeds are the
    // server's pick): then the next reading with enemies, from the next wave.
    await sleep(600);
    let second = await readCanvas(page, grid);
    const again = Date.now() + 30_000;
    while (second.enemyPixels === 0 && Date.now() < again) {
      await sleep(250);
      second = await readCanvas(page, grid);
    }

    for (const reading of [first, second]) {
      // The map: nearly every cell's corner shows its tile's colour (a
      // tower's range circle may cross a few).
      assert.ok(reading.tilesShown >= reading.tilesTotal * 0.95, `only ${reading.tilesShown} of ${reading.tilesTotal} cells show their tile`);
      assert.ok(reading.enemyPixels > 0, "enemies drawn in both readings");
      for (const cell of reading.enemyCells) {
        const [x, y] = cell.split(",").map(Number) as [number, number];
        assert.notEqual(grid.rows[y]?.[x], "#", `an enemy drawn on rock at ${cell}`);
      }
    }
    const moved = Math.hypot(second.centroid[0] - first.centroid[0], second.centroid[1] - first.centroid[1]);
    assert.ok(moved > 1 || second.enemyCells.join(" ") !== first.enemyCells.join(" "), `the enemies did not move in 0.6 s (${moved.toFixed(2)} px)`);
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>(".game")?.dataset.snapshots) > 20, { timeout: 10_000 });
    const desyncs = await page.$eval(".game", (game) => (game as HTMLElement).dataset.desyncs);
    assert.equal(desyncs, "0", "no desync");
    const role = await page.$eval("#connection-figures", (list) => list.textContent ?? "");
    assert.match(role, /spectator/);
  });

  test("on the playable page a click builds a tower the server confirms", async () => {
    const page = await open("/play");
    await page.waitForSelector("#map option[value=sprint]", { timeout: 10_000 });
    await page.select("#map", "sprint");
    await page.select("#seats", "1");
    await page.click("#join");
    await page.waitForSelector(".game[data-snapshots]", { timeout: 15_000 });
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>(".game")?.dataset.snapshots) > 0, { timeout: 10_000 });
    const session = await page.$eval(".game", (game) => (game as HTMLElement).dataset.session ?? "");
    assert.match(session, /^[0-9a-f]{16}$/);
    // Cell (1, 1) is buildable on the sprint map; arrow (kind 0) is chosen.
    const box = await (await page.$("#board"))!.boundingBox();
    const cell = Number(await page.$eval("#board", (canvas) => (canvas as HTMLCanvasElement).dataset.cell));
    assert.ok(box !== null && cell > 0);
    await page.mouse.click(box.x + 1.5 * cell, box.y + 1.5 * cell);
    await page.waitForFunction(() => /^Built/.test(document.querySelector("#say")?.textContent ?? ""), { timeout: 10_000 });
    // The server's published view follows within a few ticks.
    let info = { towers: 0, players: 0 };
    for (const deadline = Date.now() + 5_000; info.towers === 0 && Date.now() < deadline; await sleep(50)) {
      info = (await (await fetch(`${server.url}/v1/sessions/${session}`)).json()) as typeof info;
    }
    assert.equal(info.towers, 1, "the server has the tower");
    assert.equal(info.players, 1);
    // And the page draws it where it was clicked, from the next snapshot.
    const [r, g, b] = rgb(TOWER_COLOURS[0]!);
    await page.waitForFunction(
      (size, colour) => {
        const canvas = document.querySelector<HTMLCanvasElement>("#board")!;
        const pixel = canvas.getContext("2d")!.getImageData(Math.floor(1.5 * size), Math.floor(1.5 * size), 1, 1).data;
        return pixel[0] === colour[0] && pixel[1] === colour[1] && pixel[2] === colour[2];
      },
      { timeout: 5_000 },
      cell,
      [r, g, b],
    );
    const desyncs = await page.$eval(".game", (game) => (game as HTMLElement).dataset.desyncs);
    assert.equal(desyncs, "0", "no desync");
  });
});

/** Reads the board's canvas in the page: which cells show their tile, and where enemies are. */
function readCanvas(page: Page, grid: Grid): Promise<CanvasReading> {
  const tiles = Object.fromEntries(Object.entries(TILE_COLOURS).map(([tile, colour]) => [tile, rgb(colour)]));
  const enemies = [rgb(ENEMY_COLOUR), rgb(FLYING_COLOUR)];
  return page.evaluate(
    (rows: string[], tileColours: Record<string, [number, number, number]>, enemyColours: [number, number, number][]) => {
      const canvas = document.querySelector<HTMLCanvasElement>("#board")!;
      const size = Number(canvas.dataset.cell);
      const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
      const at = (x: number, y: number) => (y * canvas.width + x) * 4;
      const same = (index: number, colour: [number, number, number]) => data[index] === colour[0] && data[index + 1] === colour[1] && data[index + 2] === colour[2];
      let tilesShown = 0;
      let tilesTotal = 0;
      for (const [y, row] of rows.entries()) {
        for (let x = 0; x < row.length; x += 1) {
          tilesTotal += 1;
          // A 3x3 patch by the cell's top-left corner, clear of what is
          // drawn at its centre; most of it must show the tile.
          let matches = 0;
          for (let dy = 1; dy <= 3; dy += 1) for (let dx = 1; dx <= 3; dx += 1) if (same(at(x * size + dx, y * size + dy), tileColours[row[x]!]!)) matches += 1;
          if (matches >= 6) tilesShown += 1;
        }
      }
      const cells = new Set<string>();
      let count = 0;
      let sumX = 0;
      let sumY = 0;
      for (let y = 0; y < canvas.height; y += 1) {
        for (let x = 0; x < canvas.width; x += 1) {
          if (enemyColours.some((colour) => same(at(x, y), colour))) {
            count += 1;
            sumX += x;
            sumY += y;
            cells.add(`${Math.floor(x / size)},${Math.floor(y / size)}`);
          }
        }
      }
      return {
        cell: size,
        tilesShown,
        tilesTotal,
        enemyCells: [...cells].sort(),
        enemyPixels: count,
        centroid: [count > 0 ? sumX / count : 0, count > 0 ? sumY / count : 0] as [number, number],
      };
    },
    grid.rows,
    tiles,
    enemies,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
