// Whether the web dashboard's build (web/dist) is missing or older than what it is built from: its sources,
// and the lockfile (a dependency upgrade). Plain Node: `npm start` asks before anything is installed.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const newestIn = (path) => {
  if (!existsSync(path)) return 0;
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  return Math.max(stats.mtimeMs, ...readdirSync(path).map((name) => newestIn(join(path, name))));
};

/** "missing", "stale", "current", or "prebuilt" (a build without its sources, served as it is). */
export function webBuildState(root) {
  const web = join(root, "web");
  const builtIndex = join(web, "dist", "index.html");
  if (!existsSync(join(web, "src"))) return "prebuilt";
  if (!existsSync(builtIndex)) return "missing";
  const sources = ["src", "public", "index.html", "vite.config.ts", "tsconfig.json"].map((name) => newestIn(join(web, name)));
  return statSync(builtIndex).mtimeMs < Math.max(statSync(join(root, "package-lock.json")).mtimeMs, ...sources) ? "stale" : "current";
}
