/**
 * A real `rampart` server process for the end-to-end tests, as
 * `tests/src/server.rs` starts one: embedded defaults, a data directory of
 * its own, every port chosen by the OS, and the HTTP address read from its
 * log. The binary is `$RAMPART_BIN`, else the debug build under
 * `$CARGO_TARGET_DIR` (or the workspace's `target/`).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest folder above this file with `Cargo.lock` (this file is compiled into more than one package's build). */
export const workspaceRoot = findWorkspaceRoot(fileURLToPath(new URL(".", import.meta.url)));

function findWorkspaceRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "Cargo.lock"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no Cargo.lock above ${from}: run the tests inside the repository`);
  }
}

function binary(): string {
  const explicit = process.env.RAMPART_BIN;
  if (explicit !== undefined) return explicit;
  const target = process.env.CARGO_TARGET_DIR ?? join(workspaceRoot, "target");
  const path = join(target, "debug", "rampart");
  if (!existsSync(path)) {
    throw new Error(`no server binary at ${path}: run \`cargo build -p rampart-server\` first, or set RAMPART_BIN`);
  }
  return path;
}

/** The shipped assets plus the quick test content (the two-wave `sprint` map). */
export function quickAssets(): string {
  const dir = mkdtempSync(join(tmpdir(), "rampart-ts-assets-"));
  cpSync(join(workspaceRoot, "assets"), dir, { recursive: true });
  cpSync(join(workspaceRoot, "tests/fixtures/quick-assets"), dir, { recursive: true });
  return dir;
}

/** This process's environment without what would point the server at shared stores or Agones. */
function serverEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, RUST_LOG: "info" };
  for (const name of ["DATABASE_URL", "REDIS_URL", "AGONES_SDK_HTTP_PORT"]) delete env[name];
  return env;
}

export class Server {
  private constructor(
    private readonly child: ChildProcess,
    /** The HTTP API's base URL. */
    readonly url: string,
    private readonly dirs: string[],
    readonly logs: string[],
  ) {}

  /** Starts a server with `args` and waits (up to 30 s) for its HTTP address. */
  static async start(args: string[] = []): Promise<Server> {
    const data = mkdtempSync(join(tmpdir(), "rampart-ts-data-"));
    const child = spawn(
      binary(),
      ["--data-dir", data, "--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0", "--ws-addr", "127.0.0.1:0", ...args],
      {
        cwd: workspaceRoot,
        env: serverEnvironment(),
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const logs: string[] = [];
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no http_addr logged within 30 s:\n${logs.join("\n")}`)), 30_000);
      const read = (chunk: Buffer) => {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line.length === 0) continue;
          logs.push(line);
          const found = /http_addr="?([^\s"]+)/.exec(line);
          if (found?.[1] !== undefined) {
            clearTimeout(timer);
            resolve(found[1]);
          }
        }
      };
      child.stdout?.on("data", read);
      child.stderr?.on("data", read);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}) before serving:\n${logs.join("\n")}`));
      });
    });
    return new Server(child, `http://${address}`, [data], logs);
  }

  /** Removes a directory when the server stops. */
  own(dir: string): void {
    this.dirs.push(dir);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGKILL");
      await exited;
    }
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
