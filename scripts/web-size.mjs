// The web dashboard's first-load budget: sums the gzipped size of index.html and of every script, stylesheet and
// preloaded module it loads, prints the figure, and fails (exit 1) above the budget. Run by `npm run web:build`.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 200 * 1024;
const BASE = "/dashboard/";
const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "web", "dist");

const html = readFileSync(join(dist, "index.html"));
// What the browser fetches before the first paint: <script src>, <link rel=stylesheet|modulepreload href>.
const loaded = new Set();
for (const [tag] of html.toString("utf8").matchAll(/<(?:script|link)\b[^>]*>/g)) {
  const isLink = tag.startsWith("<link");
  if (isLink && !/\brel="(stylesheet|modulepreload)"/.test(tag)) continue;
  const url = /\b(?:src|href)="([^"]+)"/.exec(tag)?.[1];
  if (url?.startsWith(BASE)) loaded.add(url.slice(BASE.length));
}

const gzipped = (bytes) => gzipSync(bytes, { level: 9 }).length;
const rows = [["index.html", gzipped(html)], ...[...loaded].map((file) => [file, gzipped(readFileSync(join(dist, file)))])];
const total = rows.reduce((sum, [, size]) => sum + size, 0);
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

for (const [file, size] of rows) console.log(`  ${kb(size).padStart(9)}  ${file}`);
console.log(`web dashboard first load: ${kb(total)} gzipped (budget ${kb(BUDGET_BYTES)})`);
if (total > BUDGET_BYTES) {
  console.error(`The first load is over its budget by ${kb(total - BUDGET_BYTES)}: load the heavy parts lazily, or drop them.`);
  process.exit(1);
}
