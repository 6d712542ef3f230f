// Builds the web page into server/web/, which is committed and embedded in
// the server binary (server/build.rs), so building and running the server
// needs no Node: one script and one stylesheet, bundled and minified by
// esbuild under content-hashed names, the index.html shell naming them,
// and each file precompressed beside it (NAME.gz, NAME.br). The same
// sources and tool versions give the same bytes (no timestamps, no
// absolute paths), so `node build.mjs --check` can rebuild in memory and
// fail when the committed files drift from their sources.

import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "../../server/web");
const check = process.argv.includes("--check");

const result = await build({
  entryPoints: { app: join(here, "src/main.ts") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  platform: "browser",
  // @rampart/client's TypeScript sources, not a separately built dist/.
  conditions: ["source"],
  entryNames: "assets/[name]-[hash]",
  outdir: out,
  write: false,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});

/** What to write: path under server/web/ to bytes. */
const files = new Map();
for (const file of result.outputFiles) files.set(relative(out, file.path).split("\\").join("/"), file.contents);
const named = (extension) => {
  const found = [...files.keys()].find((path) => path.endsWith(extension));
  if (found === undefined) throw new Error(`esbuild wrote no ${extension}`);
  return `/${found}`;
};
const shell = readFileSync(join(here, "src/index.html"), "utf8").replace("{{script}}", named(".js")).replace("{{style}}", named(".css"));
files.set("index.html", new TextEncoder().encode(shell));
for (const [path, bytes] of [...files]) {
  files.set(`${path}.gz`, gzipSync(bytes, { level: 9 }));
  files.set(
    `${path}.br`,
    brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }),
  );
}

const existing = existsSync(out) ? listFiles(out) : [];
if (check) {
  const problems = [];
  for (const [path, bytes] of files) {
    const at = join(out, path);
    if (!existsSync(at)) problems.push(`missing: server/web/${path}`);
    else if (!Buffer.from(bytes).equals(readFileSync(at))) problems.push(`differs: server/web/${path}`);
  }
  for (const path of existing) if (!files.has(path)) problems.push(`stale: server/web/${path}`);
  if (problems.length > 0) {
    console.error(`server/web/ does not match clients/web/ (run \`npm run build\` in clients/web and commit):\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`server/web/ matches its sources (${files.size} files)`);
} else {
  for (const path of existing) if (!files.has(path)) rmSync(join(out, path));
  for (const [path, bytes] of files) {
    mkdirSync(dirname(join(out, path)), { recursive: true });
    writeFileSync(join(out, path), bytes);
  }
  for (const [path, bytes] of files) {
    if (!path.endsWith(".gz") && !path.endsWith(".br")) {
      console.log(`${path.padEnd(32)} ${String(bytes.length).padStart(7)} B, gzip ${String(files.get(`${path}.gz`).length).padStart(6)} B, brotli ${String(files.get(`${path}.br`).length).padStart(6)} B`);
    }
  }
}

/** Every file under `dir`, as paths relative to it with `/`. */
function listFiles(dir, prefix = "") {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}
