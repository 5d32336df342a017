// `npm run bench:profile`: where SentX's CPU goes under one load, from a real
// `node --cpu-prof` of the server. Starts the fast upstream and SentX (on a
// fresh PostgreSQL database and a Redis of its own, or the embedded default),
// drives one wrk load, stops the server so that it writes its profile, and
// prints the self time by package and the hottest functions. The profile is
// kept for Chrome DevTools or speedscope.
//
//   BENCH_PROFILE_CONNECTIONS (32), BENCH_PROFILE_STREAM (0), BENCH_PROFILE_ACCOUNTS (1),
//   BENCH_PROFILE_SECONDS (10), BENCH_PROFILE_EMBEDDED (0),
//   BENCH_PROFILE_PG_SOCKET: a Unix socket directory to reach PostgreSQL through instead of TCP
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase } from "../test/support/db.js";
import { startOwnRedis } from "../test/support/redis-server.js";
import { startHelperProcess } from "./helper-process.js";
import { cpuSecondsOf, pinToCore } from "./proc-stats.js";
import { LOAD_CORE, SERVER_CORE } from "./results.js";
import { createBenchAccounts, FAST_MODEL, startSentx } from "./sentx-server.js";
import { ensureWrk, runWrk } from "./wrk.js";

const connections = Number(process.env.BENCH_PROFILE_CONNECTIONS ?? 32);
const stream = process.env.BENCH_PROFILE_STREAM === "1";
const accounts = Number(process.env.BENCH_PROFILE_ACCOUNTS ?? 1);
const seconds = Number(process.env.BENCH_PROFILE_SECONDS ?? 10);
const embedded = process.env.BENCH_PROFILE_EMBEDDED === "1";
const pgSocket = process.env.BENCH_PROFILE_PG_SOCKET;

/** The same database, reached through a Unix socket (libpq's form, which SentX reads). */
const throughSocket = (url: string, dir: string) => {
  const u = new URL(url);
  return `postgres://${u.username}@/${u.pathname.slice(1)}?host=${encodeURIComponent(dir)}`;
};

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: an npm package, a file of ours, Node itself, or the engine (GC, idle, program). */
function ownerOf(url: string, functionName: string): string {
  if (!url) return `(${functionName || "engine"})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return "node (built-in)";
  const ours = /\/((?:src|bench|test)\/.+)$/.exec(url);
  return ours ? ours[1]! : url;
}

/** Microseconds on the clock V8 stamps its samples with (CLOCK_MONOTONIC on Linux). */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Self time of the samples taken inside [fromUs, toUs]: the timed load, not start-up or warm-up. */
function summarise(profile: CpuProfile, requests: number, fromUs: number, toUs: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= fromUs && at <= toUs) selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  });
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === "(idle)") continue;
    const owner = ownerOf(url, functionName);
    totalUs += us;
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
    const name = `${functionName || "(anonymous)"}  ${owner}${url ? `:${lineNumber + 1}` : ""}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
  const rows = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `  ${((us / totalUs) * 100).toFixed(1).padStart(5)} %  ${(us / 1000 / requests).toFixed(3).padStart(7)} ms/req  ${k}`)
      .join("\n");
  return [
    `busy (not idle) samples: ${(totalUs / 1e6).toFixed(2)} s over ${requests} requests = ${(totalUs / 1000 / requests).toFixed(3)} ms/req`,
    "self time by owner:",
    rows(byOwner, 25),
    "hottest functions (self time):",
    rows(byFunction, 40),
  ].join("\n");
}

async function main() {
  const cleanups: Array<() => unknown> = [];
  ensureWrk();
  const profileDir = await mkdtemp(join(tmpdir(), "sentx-profile-"));
  try {
    pinToCore(process.pid, LOAD_CORE);
    const upstream = await startHelperProcess("fast-upstream.ts");
    cleanups.unshift(() => upstream.stop());
    pinToCore(upstream.pid, LOAD_CORE);

    let env: Record<string, string>;
    if (embedded) {
      const dataDir = await mkdtemp(join(tmpdir(), "sentx-profile-data-"));
      cleanups.unshift(() => rm(dataDir, { recursive: true, force: true }));
      env = { DATA_DIR: dataDir };
    } else {
      const database = await createTestDatabase({ maxConnections: 1 });
      cleanups.unshift(() => database.drop());
      const redis = await startOwnRedis();
      cleanups.unshift(() => redis.kill());
      env = { DATABASE_URL: pgSocket ? throughSocket(database.url, pgSocket) : database.url, REDIS_URL: redis.url, REDIS_PREFIX: "sentx-profile:" };
    }
    const server = await startSentx(upstream.url, env, ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]);
    cleanups.unshift(() => server.stop());
    pinToCore(server.pid, SERVER_CORE);
    const keys = (await createBenchAccounts(server, accounts)).slice(0, accounts);
    const body = JSON.stringify({ model: FAST_MODEL, stream, messages: [{ role: "user", content: "Benchmark me, please." }] });
    const load = { url: `${server.url}/v1/chat/completions`, body, keys, connections };
    await runWrk({ ...load, seconds: 2 });
    const cpuBefore = cpuSecondsOf(server.pid);
    const fromUs = monotonicUs();
    const run = await runWrk({ ...load, seconds });
    const toUs = monotonicUs();
    const cpuMsPerRequest = ((cpuSecondsOf(server.pid) - cpuBefore) * 1000) / run.requests;
    await server.stop();

    console.log(
      `${connections} conn, ${stream ? "stream" : "json"}, ${accounts} account(s), ${embedded ? "embedded" : "PostgreSQL + Redis"}: ` +
        `${run.requestsPerSecond.toFixed(0)} req/s, p50 ${run.p50Ms.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms, ` +
        `${run.errors + run.non2xx} failed, process CPU ${cpuMsPerRequest.toFixed(3)} ms/req`,
    );
    const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error("the server wrote no CPU profile");
    const kept = join(tmpdir(), `sentx-${Date.now()}.cpuprofile`);
    const text = readFileSync(join(profileDir, file), "utf8");
    writeFileSync(kept, text);
    console.log(summarise(JSON.parse(text) as CpuProfile, run.requests, fromUs, toUs));
    console.log(`profile: ${kept}`);
  } finally {
    for (const cleanup of cleanups) await cleanup();
    await rm(profileDir, { recursive: true, force: true });
  }
}

await main();
