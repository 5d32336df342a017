import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { startOwnRedis } from "../support/redis-server.js";
import { type ChatExchange, type ChatOverFetch, chatOverFetch, chatRequest, runLoops } from "./support/chat-over-fetch.js";
import { type FaultStack, healthz, isRunning, startFaultStack } from "./support/fault-stack.js";
import { ledgerReport } from "./support/ledger-invariants.js";

// Redis (rate limits, stream slots) dies, comes back empty, then hangs
// without closing its connections, while two instances serve: one told to
// serve without limits when Redis is away (fail-open), one to refuse
// (fail-closed). Neither may answer 500, hang, crash or lose money.

const LOOPS_PER_SERVER = 6;
// A frozen Redis costs each command its 1 s timeout, and a stream makes up to three (window, slot,
// release): ~3 s at worst, plus headroom for a loaded machine. A hang is the 10 s client timeout.
const HANG_LIMIT_MS = 3_500;
// A request sent this close to a change of Redis's state may reach admission on either side of it.
const EDGE_MS = 300;

let redis: Awaited<ReturnType<typeof startOwnRedis>>;
let stack: FaultStack;

beforeAll(async () => {
  redis = await startOwnRedis();
  stack = await startFaultStack({ redisUrl: redis.url, env: { STREAM_SLOT_TTL_SECONDS: "3" }, upstream: { chunkDelayMs: 10 } });
});

afterAll(async () => {
  redis?.thaw();
  await stack?.close();
  await redis?.kill();
});

interface Timeline {
  killedAt: number;
  /** Just before the restart: a request admitted after this may already find Redis back. */
  restartingAt: number;
  /** When the fail-closed instance served again after the restart. */
  backAt: number;
  frozenAt: number;
  /** When the fail-closed instance served again after the thaw. */
  backAgainAt: number;
}

const during = (outcomes: ChatExchange[], from: number, to: number) => outcomes.filter((o) => o.startedAt >= from && o.startedAt < to);
const statusesOf = (outcomes: ChatExchange[]) => [...new Set(outcomes.map((o) => (o.status === 0 ? `no answer (${o.failure})` : o.status)))];

describe("Redis killed, restarted and frozen under both REDIS_DOWN_POLICY values", () => {
  it("never answers 500 or hangs, follows each policy while Redis is away, recovers, and keeps the books exact", async () => {
    const open = await stack.startServer({ REDIS_DOWN_POLICY: "fail-open" });
    const closed = await stack.startServer({ REDIS_DOWN_POLICY: "fail-closed" });
    const limits = { concurrentStreams: LOOPS_PER_SERVER * 2, requestsPerMinute: 100_000 };
    const openKey = (await stack.customer(open, 100_000, limits)).key;
    const closedKey = (await stack.customer(closed, 100_000, limits)).key;
    const [openChat, closedChat] = [chatOverFetch(open.url), chatOverFetch(closed.url)];
    const probe = () => closedChat.send(closedKey, chatRequest(false), { timeoutMs: 10_000 });
    // A cold process answers its first requests slowly; warm, each phase below sees many requests start and end.
    for (const [chat, key] of [[openChat, openKey], [closedChat, closedKey]] as const) {
      await Promise.all(Array.from({ length: LOOPS_PER_SERVER }, (_, i) => chat.send(key, chatRequest(i % 2 === 0))));
    }

    let stop = false;
    const loopsOn = (chat: ChatOverFetch, key: string) =>
      runLoops(LOOPS_PER_SERVER, { until: () => stop, maxIterations: 1_000 }, (loop, iteration) =>
        chat.send(key, chatRequest((loop + iteration) % 2 === 0), { timeoutMs: 10_000 }),
      );
    const loads = Promise.all([loopsOn(openChat, openKey), loopsOn(closedChat, closedKey)]);

    const t = {} as Timeline;
    try {
      await sleep(1_000);
      await redis.kill();
      t.killedAt = performance.now();
      await sleep(2_000);
      t.restartingAt = performance.now();
      await redis.start();
      await eventually(probe, (o) => o.status === 200, 10_000);
      t.backAt = performance.now();
      await sleep(1_000);
      redis.freeze();
      t.frozenAt = performance.now();
      await sleep(2_000);
      redis.thaw();
      await eventually(probe, (o) => o.status === 200, 10_000);
      t.backAgainAt = performance.now();
      await sleep(1_000);
    } finally {
      redis.thaw();
      stop = true;
    }
    const [opened, closedOutcomes] = await loads;
    const all = [...opened, ...closedOutcomes];

    const alive = [isRunning(open.pid) && (await healthz(open.url)) === 200, isRunning(closed.pid) && (await healthz(closed.url)) === 200];
    await eventually(() => ledgerReport(stack.sql), (r) => r.discrepancies.length === 0 && r.activeHolds === 0, 5_000);
    const refusedWhileDown = during(closedOutcomes, t.killedAt + EDGE_MS, t.restartingAt - EDGE_MS);
    await stack.printSummary("Redis killed and frozen", {
      requests: all.length,
      faults: 2,
      failOpenServed: opened.filter((o) => o.status === 200).length,
      failClosed503: closedOutcomes.filter((o) => o.status === 503).length,
      slowestMs: Math.round(Math.max(...all.map((o) => o.elapsedMs))),
    });

    expect.soft(alive, "both processes alive, /healthz 200").toEqual([true, true]);
    expect.soft(statusesOf(all).filter((s) => s !== 200 && s !== 503), "answers other than 200 and 503").toEqual([]);
    expect.soft(statusesOf(opened), "fail-open statuses").toEqual([200]);
    expect.soft(closedOutcomes.filter((o) => o.status === 503 && o.body?.error?.code !== "service_unavailable").length, "503s not service_unavailable").toBe(0);
    expect.soft(statusesOf(refusedWhileDown), "fail-closed while Redis was down").toEqual([503]);
    expect.soft(statusesOf(during(closedOutcomes, t.backAt, t.frozenAt - EDGE_MS)), "fail-closed once Redis was back").toEqual([200]);
    expect.soft(statusesOf(during(closedOutcomes, t.backAgainAt, Infinity)), "fail-closed once Redis was thawed").toEqual([200]);
    expect
      .soft(all.filter((o) => o.elapsedMs > HANG_LIMIT_MS).map((o) => `${o.stream ? "stream" : "call"} ${Math.round(o.elapsedMs)} ms`), "answers slower than ~3 s")
      .toEqual([]);
    await stack.expectExactBooks();
  }, 55_000);
});
