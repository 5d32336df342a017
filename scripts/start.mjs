// `npm start`: installs dependencies on a fresh clone, builds the web dashboard if needed, then starts the platform.
// Plain Node on purpose: it must run before anything is installed.
import { spawnSync, spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { webBuildState } from "./web-build-state.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const marker = join(root, "node_modules", ".package-lock.json");
const lock = join(root, "package-lock.json");

// Reinstalled (npm ci, which applies patches/ on postinstall) when the lockfile or a patch is newer than the install.
const patches = join(root, "patches");
const newest = Math.max(
  statSync(lock).mtimeMs,
  ...(existsSync(patches) ? readdirSync(patches).map((name) => statSync(join(patches, name)).mtimeMs) : []),
);
if (!existsSync(marker) || statSync(marker).mtimeMs < newest) {
  console.error("Installing dependencies (first start)…");
  // npm's own output goes to stderr too: stdout carries only the server's JSON log.
  const install = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: ["inherit", 2, 2] });
  if (install.status !== 0) process.exit(install.status ?? 1);
}

// The web dashboard (/dashboard) is built when its build is missing or older than its sources; a prebuilt
// one (web/dist without web/src, say) is served as it is. A failed build does not stop the API: /dashboard then says how to build it.
const build = webBuildState(root);
if (build === "missing" || build === "stale") {
  console.error(build === "stale" ? "Rebuilding the web dashboard (its sources changed)…" : "Building the web dashboard (first start)…");
  const built = spawnSync("npm", ["run", "--silent", "web:build"], { cwd: root, stdio: ["inherit", 2, 2] });
  if (built.status !== 0) console.error("The web dashboard did not build; the API runs without it (see the errors above, then npm run web:build).");
}

const server = spawn(process.execPath, ["--import", "tsx", join(root, "src", "main.ts")], { cwd: root, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.kill(signal));
server.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
