// `npm run bench`: what one platform process sustains in front of an instant
// upstream, so the figures are the platform's own overhead (auth, hold,
// upstream call, settle, request log). Reports figures; asserts nothing.
//   BENCH_POSTGRES=1  measure on PostgreSQL (a fresh database via SENTX_TEST_DATABASE_URL) instead of PGlite
//   BENCH_REQUESTS (default 600), BENCH_CONCURRENCY (default 16), BENCH_ACCOUNTS (default 1:
//   every request on one account, the worst case for its row lock; set it to the concurrency for one each)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadConfig } from "../src/config.js";
import { silentLogger } from "../src/domain/logger.js";
import { listen } from "../src/infra/http-server.js";
import { createPlatform } from "../src/platform.js";
import { createTestDatabase } from "../test/support/db.js";
import { startFakeUpstream } from "../test/support/fake-upstream.js";

const requests = Number(process.env.BENCH_REQUESTS ?? 600);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const accountCount = Number(process.env.BENCH_ACCOUNTS ?? 1);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function main() {
  const upstream = await startFakeUpstream();
  const dataDir = mkdtempSync(join(tmpdir(), "sentx-bench-"));
  const pg = process.env.BENCH_POSTGRES ? await createTestDatabase({ maxConnections: 20 }) : undefined;
  const started = performance.now();
  const config = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    ...(pg && { DATABASE_URL: pg.url }),
    SENTX_MODELS: JSON.stringify({
      models: [{ id: "sentx-v1", upstreams: [{ provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "bench" }] }],
    }),
  });
  const platform = await createPlatform(config, { logger: silentLogger, ...(pg && { database: pg }) });
  const server = await listen(platform.fetch, "127.0.0.1", 0);
  const startMs = performance.now() - started;

  const keys: string[] = [];
  for (let i = 0; i < accountCount; i++) {
    const account = await platform.services.accounts.create({
      email: `bench-${i}@example.com`,
      initialCreditsCents: 1_000_000,
      // Limits are still checked on every request; they just never refuse one here.
      limits: { requestsPerMinute: 10_000_000, concurrentStreams: 10_000 },
    });
    keys.push((await platform.services.keys.create({ accountId: account.id, name: "bench" })).key);
  }
  const body = (stream: boolean) =>
    JSON.stringify({ model: "sentx-v1", stream, messages: [{ role: "user", content: "Benchmark me, please." }] });

  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

  async function run(stream: boolean) {
    const latencies: number[] = [];
    let next = 0;
    let failures = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        const key = keys[worker % keys.length];
        while (next++ < requests) {
          const t = performance.now();
          const response = await fetch(`${server.url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: body(stream),
          });
          await response.text();
          if (response.status !== 200) failures++;
          latencies.push(performance.now() - t);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      mode: stream ? "stream" : "json",
      requests,
      concurrency,
      accounts: accountCount,
      failures,
      "req/s": Math.round(requests / seconds),
      "p50 ms": percentile(latencies, 50).toFixed(1),
      "p95 ms": percentile(latencies, 95).toFixed(1),
      "p99 ms": percentile(latencies, 99).toFixed(1),
    };
  }

  await run(false); // warm-up: JIT, connection pools
  const results = [await run(false), await run(true)];
  clearInterval(sampler);

  const mismatches = await platform.services.ledger.verify(platform.services.db);
  console.log(`database: ${platform.database.driver}; platform start ${startMs.toFixed(0)} ms; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (server and load generator in one process)`);
  console.table(results);
  console.log(`ledger verify: ${mismatches.length === 0 ? "balanced" : `${mismatches.length} mismatches`}`);

  await server.close();
  await platform.close();
  await pg?.drop();
  await upstream.close();
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
