// `npm run bench`: what SentX costs per request next to the physical limit of
// a Node gateway on this machine and next to Portkey's open-source gateway,
// written to BENCHMARKS.md (the tables and the targets). Measures and
// reports; asserts nothing.
//
// One fast local upstream serves four gateways in turn: a logic-free
// keep-alive proxy (bench/bare-proxy.ts), Portkey (bench/portkey-gateway.ts;
// left out, with the reason in the report, when it cannot be installed or
// started), SentX in production mode on a fresh PostgreSQL database and a
// Redis of its own, and SentX's embedded default (PGlite, no Redis). The
// gateway under test runs alone on core 0; the load (wrk, the Node client),
// the upstream and this script share core 1, so the gateway never competes
// with what measures it. PostgreSQL and Redis are left where the kernel puts
// them, as in a deployment.
//
//   BENCH_ROUNDS (default 3) timed rounds per scenario, BENCH_ROUND_SECONDS (default 5) each;
//   the figures are the rounds' medians.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent } from "node:http";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import postgres from "postgres";
import { createTestDatabase } from "../test/support/db.js";
import { testEnv } from "../test/support/env.js";
import { startOwnRedis } from "../test/support/redis-server.js";
import type { ServerProcess } from "../test/support/server-process.js";
import { renderBenchmarks } from "./benchmarks-report.js";
import { chatBody, type ChatEndpoint, type ChatSample, runChatClients, sendChat } from "./chat-client.js";
import { type HelperProcess, startHelperProcess } from "./helper-process.js";
import { startPgWireCensus, type WireCounts } from "./pg-wire-census.js";
import { coreBusyMeter, cpuSecondsOf, machine, memoryOf, pinToCore, resetPeak } from "./proc-stats.js";
import { portkeyEndpoint, startPortkey } from "./portkey-gateway.js";
import { redisCallCounter } from "./redis-calls.js";
import { type BenchRun, type Gateway, LOAD_CORE, type Latency, type Scenario, type ScenarioResult, SERVER_CORE, type SlowStreamsResult } from "./results.js";
import { createBenchAccounts, FAST_MODEL, ledgerBalanced, SLOW_MODEL, startSentx } from "./sentx-server.js";
import { mean, median, percentile, sum } from "./statistics.js";
import { uploadFiles } from "./upload-load.js";
import { ensureWrk, runWrk, wrkVersion } from "./wrk.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROUND_SECONDS = Number(process.env.BENCH_ROUND_SECONDS ?? 5);
const WARMUP_SECONDS = 2;
const TTFB_SECONDS = 3;
const ACCOUNTS = 32;
const SLOW_STREAMS = 200;
// Long enough that all 200 streams are open together even when SentX opens them at ~50/s.
const SLOW_CHUNKS = 30;
const SLOW_CHUNK_MS = 250;
// Census requests per connection: enough that a stray background write is noise.
const CENSUS_REQUESTS = { 1: 200, 32: 8 } as Record<number, number>;
const UPLOAD_MB = 25;

const scenario = (connections: number, stream: boolean, accounts = 1): Scenario => ({ connections, stream, accounts });
const bothModes = (connections: number, accounts = 1) => [scenario(connections, false, accounts), scenario(connections, true, accounts)];
// The bare proxy and Portkey ignore keys, so their 32-connection rows stand for both account layouts.
const KEYLESS_SCENARIOS = [...bothModes(1), ...bothModes(32)];
const SENTX_SCENARIOS = [...bothModes(1), ...bothModes(32), ...bothModes(32, ACCOUNTS)];
const EMBEDDED_SCENARIOS = [...bothModes(32), ...bothModes(32, ACCOUNTS)];

const describe = (s: Scenario) => `${s.connections} conn, ${s.stream ? "stream" : "json"}, ${s.accounts} account${s.accounts > 1 ? "s" : ""}`;

/** A gateway as the load sees it. */
interface Target {
  gateway: Gateway;
  pid: number;
  chat: ChatEndpoint;
  /** Where a chat request becomes a slow stream (the bare proxy: by path; Portkey: by its custom-host header; SentX: by model). */
  slowChat: ChatEndpoint;
  keys: string[];
  redisCalls: (() => Promise<number>) | null;
}

const ttfbOf = (samples: ChatSample[]): Latency => {
  const answered = samples.filter((s) => s.status === 200).map((s) => s.ttfbMs);
  return { p50Ms: percentile(answered, 50), p99Ms: percentile(answered, 99) };
};

async function measureScenario(target: Target, s: Scenario): Promise<ScenarioResult> {
  const load = { ...target.chat, body: chatBody(FAST_MODEL, s.stream), keys: target.keys.slice(0, s.accounts), connections: s.connections };
  await runWrk({ ...load, seconds: WARMUP_SECONDS });

  resetPeak(target.pid);
  const cpuBefore = cpuSecondsOf(target.pid);
  const redisBefore = await target.redisCalls?.();
  const coreBusy = coreBusyMeter();
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await runWrk({ ...load, seconds: ROUND_SECONDS }));
  const busy = coreBusy();
  const requests = sum(rounds.map((r) => r.requests));
  const cpuMsPerRequest = ((cpuSecondsOf(target.pid) - cpuBefore) * 1000) / requests;
  const redisCallsPerRequest = target.redisCalls ? ((await target.redisCalls()) - redisBefore!) / requests : null;
  const peakRssMb = memoryOf(target.pid).peakMb;

  const ttfbSamples = s.stream
    ? await runChatClients(load, { keys: load.keys, connections: s.connections, untilMs: TTFB_SECONDS * 1000 })
    : [];
  const result: ScenarioResult = {
    gateway: target.gateway,
    scenario: s,
    requestsPerSecond: median(rounds.map((r) => r.requestsPerSecond)),
    latency: { p50Ms: median(rounds.map((r) => r.p50Ms)), p99Ms: median(rounds.map((r) => r.p99Ms)) },
    ttfb: s.stream ? ttfbOf(ttfbSamples) : null,
    requests,
    failed: sum(rounds.map((r) => r.errors + r.non2xx)) + ttfbSamples.filter((x) => x.status !== 200).length,
    peakRssMb,
    cpuMsPerRequest,
    coreBusy: busy,
    redisCallsPerRequest,
    database: null,
  };
  const perRound = rounds.map((r) => `${r.requestsPerSecond.toFixed(0)}/s p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(2)} ms`).join("; ");
  console.log(`  ${target.gateway}, ${describe(s)}: ${perRound}${result.failed ? `; ${result.failed} FAILED` : ""}`);
  return result;
}

/**
 * Opens SLOW_STREAMS slow streams at once and reads the gateway's memory while
 * they are open. Run first, on a freshly started gateway: after the load
 * scenarios its heap has grown by an amount that varies from run to run.
 */
async function holdSlowStreams(target: Target): Promise<SlowStreamsResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: SLOW_STREAMS });
  const slow = { ...target.slowChat, body: chatBody(SLOW_MODEL, true) };
  // Pools connected and code compiled, so the figure is the streams' and not the first requests'.
  await runChatClients({ ...target.chat, body: chatBody(FAST_MODEL, true) }, { keys: target.keys, connections: 32, requestsEach: 2 });
  let open = 0;
  let mostOpenAtOnce = 0;
  let samplesAtMost: number[] = [];
  const sample = () => {
    const { rssMb } = memoryOf(target.pid);
    if (open > mostOpenAtOnce) [mostOpenAtOnce, samplesAtMost] = [open, []];
    if (open === mostOpenAtOnce) samplesAtMost.push(rssMb);
  };
  resetPeak(target.pid);
  const sampler = setInterval(sample, 100);
  const samples = await Promise.all(
    Array.from({ length: SLOW_STREAMS }, async (_, i) => {
      let opened = false;
      const done = await sendChat(slow, agent, target.keys[i % target.keys.length]!, () => {
        opened = true;
        open++;
      });
      if (opened) open--;
      return done;
    }),
  );
  clearInterval(sampler);
  agent.destroy();
  const result = {
    gateway: target.gateway,
    streams: SLOW_STREAMS,
    mostOpenAtOnce,
    peakRssMb: memoryOf(target.pid).peakMb,
    meanRssWhileOpenMb: mean(samplesAtMost),
    ttfb: ttfbOf(samples),
    failed: samples.filter((s) => s.status !== 200).length,
  };
  console.log(`  ${target.gateway}, ${SLOW_STREAMS} slow streams: ${mostOpenAtOnce} open at once, peak ${result.peakRssMb.toFixed(0)} MB`);
  return result;
}

/** Census pass: the wire counts per request of one scenario, every request finished and its writes settled. */
async function countDatabaseWork(census: Awaited<ReturnType<typeof startPgWireCensus>>, target: Target, s: Scenario): Promise<WireCounts> {
  const chat = { ...target.chat, body: chatBody(FAST_MODEL, s.stream) };
  const keys = target.keys.slice(0, s.accounts);
  await runChatClients(chat, { keys, connections: s.connections, requestsEach: 2 });
  await settled(census.counts);
  census.reset();
  const samples = await runChatClients(chat, { keys, connections: s.connections, requestsEach: CENSUS_REQUESTS[s.connections]! });
  const counts = await settled(census.counts);
  const perRequest = (n: number) => n / samples.length;
  return {
    roundTrips: perRequest(counts.roundTrips),
    transactions: perRequest(counts.transactions),
    inserted: perRequest(counts.inserted),
    updated: perRequest(counts.updated),
    deleted: perRequest(counts.deleted),
  };
}

/** Waits until the counts have not moved for half a second: writes that follow the answer (settles, records) are in. */
async function settled(read: () => WireCounts): Promise<WireCounts> {
  let last = JSON.stringify(read());
  for (;;) {
    await delay(500);
    const now = JSON.stringify(read());
    if (now === last) return JSON.parse(now) as WireCounts;
    last = now;
  }
}

/** Runs `fn` with cleanups registered along the way, run in reverse order however it ends. */
async function withCleanups<T>(fn: (defer: (cleanup: () => unknown) => void) => Promise<T>): Promise<T> {
  const cleanups: Array<() => unknown> = [];
  try {
    return await fn((cleanup) => cleanups.unshift(cleanup));
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

const sentxTarget = (gateway: Gateway, server: ServerProcess, keys: string[], redisCalls: Target["redisCalls"]): Target => ({
  gateway,
  pid: server.pid,
  chat: { url: `${server.url}/v1/chat/completions` },
  slowChat: { url: `${server.url}/v1/chat/completions` },
  keys,
  redisCalls,
});

const startPinnedSentx = async (upstreamUrl: string, env: Record<string, string>) => {
  const server = await startSentx(upstreamUrl, env);
  pinToCore(server.pid, SERVER_CORE);
  return server;
};

/** The slow streams first, on the freshly started gateway, then each scenario. */
async function measureGateway(target: Target, scenarios: Scenario[]) {
  const slowStreams = await holdSlowStreams(target);
  const results = [];
  for (const s of scenarios) results.push(await measureScenario(target, s));
  return { scenarios: results, slowStreams };
}

/** A started gateway that checks no key (the bare proxy, Portkey), moved to the gateway core, measured, and stopped. */
async function benchKeyless(gateway: Gateway, server: HelperProcess, endpoints: Pick<Target, "chat" | "slowChat">) {
  return withCleanups(async (defer) => {
    defer(() => server.stop());
    pinToCore(server.pid, SERVER_CORE);
    return measureGateway({ gateway, pid: server.pid, ...endpoints, keys: ["not-checked"], redisCalls: null }, KEYLESS_SCENARIOS);
  });
}

async function benchBareProxy(upstreamUrl: string) {
  const proxy = await startHelperProcess("bare-proxy.ts", [upstreamUrl]);
  return benchKeyless("bare", proxy, {
    chat: { url: `${proxy.url}/v1/chat/completions` },
    slowChat: { url: `${proxy.url}/slow/v1/chat/completions` },
  });
}

/** Portkey's figures, or why there are none: the run goes on without them. */
async function benchPortkey(upstreamUrl: string) {
  let portkey: HelperProcess;
  try {
    portkey = await startPortkey(upstreamUrl);
  } catch (error) {
    const notMeasured = (error as Error).message;
    console.log(`  Portkey not measured: ${notMeasured}`);
    return { notMeasured, scenarios: [], slowStreams: [] };
  }
  const figures = await benchKeyless("portkey", portkey, {
    chat: portkeyEndpoint(portkey.url, `${upstreamUrl}/v1`),
    slowChat: portkeyEndpoint(portkey.url, `${upstreamUrl}/slow/v1`),
  });
  return { notMeasured: null, scenarios: figures.scenarios, slowStreams: [figures.slowStreams] };
}

async function benchSentxOnPostgres(upstreamUrl: string) {
  return withCleanups(async (defer) => {
    // The pool createTestDatabase opens goes unused (the server has its own); one connection is enough.
    const database = await createTestDatabase({ maxConnections: 1 });
    defer(() => database.drop());
    const redis = await startOwnRedis();
    defer(() => redis.kill());
    const redisCalls = redisCallCounter(redis.url);
    defer(() => redisCalls.close());
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url, REDIS_PREFIX: "sentx-bench:" };

    const server = await startPinnedSentx(upstreamUrl, env);
    defer(() => server.stop());
    const keys = await createBenchAccounts(server, ACCOUNTS);
    const { scenarios, slowStreams } = await measureGateway(sentxTarget("postgres", server, keys, redisCalls.total), SENTX_SCENARIOS);
    const upload = await uploadFiles(server, keys[0]!, 1, UPLOAD_MB * 2 ** 20);
    console.log(`  postgres, one ${UPLOAD_MB} MB upload: ${upload.seconds.toFixed(2)} s, status ${upload.statuses[0]}, peak ${upload.peakMb.toFixed(0)} MB`);
    const balanced = await ledgerBalanced(server);
    await server.stop();

    // A second server on the same database and accounts, reaching PostgreSQL through the census relay.
    const census = await startPgWireCensus(database.url);
    defer(() => census.close());
    const counted = await startPinnedSentx(upstreamUrl, { ...env, DATABASE_URL: census.url });
    defer(() => counted.stop());
    const countedTarget = sentxTarget("postgres", counted, keys, null);
    for (const result of scenarios) result.database = await countDatabaseWork(census, countedTarget, result.scenario);
    console.log(`  postgres: database census done`);
    return { scenarios, slowStreams, upload: { ...upload, megabytes: UPLOAD_MB }, balanced };
  });
}

async function benchEmbedded(upstreamUrl: string) {
  return withCleanups(async (defer) => {
    const dataDir = await mkdtemp(join(tmpdir(), "sentx-bench-embedded-"));
    defer(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startPinnedSentx(upstreamUrl, { DATA_DIR: dataDir });
    defer(() => server.stop());
    const keys = await createBenchAccounts(server, ACCOUNTS);
    await delay(1000);
    const afterStart = memoryOf(server.pid).rssMb;
    const target = sentxTarget("embedded", server, keys, null);
    const scenarios = [];
    for (const s of EMBEDDED_SCENARIOS) scenarios.push(await measureScenario(target, s));
    await delay(2000);
    const afterLoad = memoryOf(server.pid).rssMb;
    return { scenarios, idleRssMb: { afterStart, afterLoad }, balanced: await ledgerBalanced(server) };
  });
}

async function serviceVersions() {
  const sql = postgres(testEnv.adminDatabaseUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<[{ server_version: string }]>`show server_version`;
    const redisServer = execFileSync(testEnv.redisServer, ["--version"], { encoding: "utf8" });
    return { postgres: row.server_version, redis: /v=(\S+)/.exec(redisServer)?.[1] ?? "?", wrk: wrkVersion() ?? "?" };
  } finally {
    await sql.end();
  }
}

async function main() {
  ensureWrk();
  const startedAt = new Date();
  const started = performance.now();
  const busyBeforeMeter = coreBusyMeter();
  await delay(1000);
  const busyBefore = busyBeforeMeter();
  const host = { ...machine(), kernel: release(), ...(await serviceVersions()) };
  pinToCore(process.pid, LOAD_CORE);

  const upstream = await startHelperProcess("fast-upstream.ts", [], { BENCH_SLOW_CHUNKS: String(SLOW_CHUNKS), BENCH_SLOW_CHUNK_MS: String(SLOW_CHUNK_MS) });
  pinToCore(upstream.pid, LOAD_CORE);
  const [bare, portkey, pg, embedded] = await withCleanups(async (defer) => {
    defer(() => upstream.stop());
    console.log("bare proxy");
    const bare = await benchBareProxy(upstream.url);
    console.log("Portkey gateway");
    const portkey = await benchPortkey(upstream.url);
    console.log("SentX on PostgreSQL and Redis");
    const pg = await benchSentxOnPostgres(upstream.url);
    console.log("SentX embedded default");
    return [bare, portkey, pg, await benchEmbedded(upstream.url)] as const;
  });

  const run: BenchRun = {
    startedAt,
    seconds: (performance.now() - started) / 1000,
    machine: host,
    busyBefore,
    pinned: host.cores > 1,
    method: {
      rounds: ROUNDS,
      roundSeconds: ROUND_SECONDS,
      warmupSeconds: WARMUP_SECONDS,
      ttfbSeconds: TTFB_SECONDS,
      slowStream: `${SLOW_CHUNKS} chunks ${SLOW_CHUNK_MS} ms apart`,
      censusRequests: `${CENSUS_REQUESTS[1]} requests at 1 connection, ${CENSUS_REQUESTS[32]} per connection at 32`,
    },
    scenarios: [...bare.scenarios, ...portkey.scenarios, ...pg.scenarios, ...embedded.scenarios],
    slowStreams: [bare.slowStreams, ...portkey.slowStreams, pg.slowStreams],
    embeddedIdleRssMb: embedded.idleRssMb,
    upload: pg.upload,
    ledgerBalanced: { postgres: pg.balanced, embedded: embedded.balanced },
    portkeyNotMeasured: portkey.notMeasured,
  };
  writeFileSync(new URL("../BENCHMARKS.md", import.meta.url), renderBenchmarks(run));
  console.log(`BENCHMARKS.md written; the run took ${run.seconds.toFixed(0)} s`);
}

await main();
