import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { type ChatExchange, chatOverFetch, chatRequest, runLoops } from "./support/chat-over-fetch.js";
import { type FaultStack, healthz, isRunning, startFaultStack } from "./support/fault-stack.js";
import { ledgerReport } from "./support/ledger-invariants.js";

// PostgreSQL drops the service's connections (a failover, an operator's
// pg_terminate_backend) while requests run. The process must survive it: a
// request whose database step failed is a clean 503, never a 500 or a crash,
// the next ones succeed without a restart, and the books stay exact.

const LOOPS = 20;
const CUSTOMERS = 4;
// The loops run a while before the first termination and on after the last, so the faults hit
// requests at every step and the requests after them show whether the service recovered.
const BEFORE_FAULTS_MS = 1_000;
const TERMINATIONS = 5;
const TERMINATE_EVERY_MS = 300;
const LOAD_MS = 5_000;

let stack: FaultStack;

beforeAll(async () => {
  // Streams of ~100 ms (10 chunks), so connections die under settles and records as well as under holds.
  stack = await startFaultStack({ upstream: { chunkDelayMs: 10 } });
});

afterAll(async () => {
  await stack?.close();
});

describe("PostgreSQL terminates the server's connections five times under 20 request loops", () => {
  it("keeps the process alive, answers 200 or 503 service_unavailable, and keeps the books exact", async () => {
    const server = await stack.startServer();
    const chat = chatOverFetch(server.url);
    const keys: string[] = [];
    for (let i = 0; i < CUSTOMERS; i++) {
      keys.push((await stack.customer(server, 100_000, { concurrentStreams: LOOPS, requestsPerMinute: 100_000 })).key);
    }
    // A cold process answers its first requests slowly; warm, the faults land on a steady flow.
    await Promise.all(Array.from({ length: LOOPS }, (_, i) => chat.send(keys[i % CUSTOMERS]!, chatRequest(i % 2 === 0))));

    const deadline = performance.now() + LOAD_MS;
    const load = runLoops(LOOPS, { until: () => performance.now() > deadline, maxIterations: 500 }, (loop, iteration) =>
      chat.send(keys[loop % CUSTOMERS]!, chatRequest((loop + iteration) % 2 === 0), { timeoutMs: 10_000 }),
    );
    const terminated: number[] = [];
    await sleep(BEFORE_FAULTS_MS);
    for (let i = 0; i < TERMINATIONS; i++) {
      if (i > 0) await sleep(TERMINATE_EVERY_MS);
      const killed = await stack.sql`
        select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
      terminated.push(killed.length);
    }
    const outcomes = await load;

    const alive = isRunning(server.pid);
    const health = await healthz(server.url);
    const after = await chat.send(keys[0]!, chatRequest(false), { timeoutMs: 10_000 });
    // Requests cut mid-way settle on their own time (retries, an outbox): give them a moment.
    await eventually(() => ledgerReport(stack.sql), (r) => r.discrepancies.length === 0 && r.activeHolds === 0, 5_000);

    const answer = (o: ChatExchange) =>
      `${o.stream ? "stream" : "call"} ${o.status === 0 ? "no answer" : o.status}${o.failure ? ` (${o.failure})` : ""}`;
    const hung = outcomes.filter((o) => o.failure === "TimeoutError");
    const statuses = new Map<string, number>();
    for (const o of outcomes) statuses.set(answer(o), (statuses.get(answer(o)) ?? 0) + 1);
    const unavailable = outcomes.filter((o) => o.status === 503);
    await stack.printSummary("pg_terminate_backend under load", {
      requests: outcomes.length,
      faults: TERMINATIONS,
      connectionsTerminated: terminated.reduce((a, b) => a + b, 0),
      answered503: unavailable.length,
      hung: hung.length,
      streamsWithoutDone: outcomes.filter((o) => o.stream && o.status === 200 && !o.completed).length,
    });
    console.log(`faults: pg_terminate_backend under load: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);

    expect.soft(alive, "the server process is alive").toBe(true);
    expect.soft(health, "/healthz").toBe(200);
    expect.soft(after.status, "a new chat completion after the faults").toBe(200);
    expect
      .soft(outcomes.filter((o) => o.status !== 200 && o.status !== 503).map((o) => `${answer(o)} after ${Math.round(o.elapsedMs)} ms`), "answers other than 200 and 503")
      .toEqual([]);
    expect.soft(hung.map((o) => `${answer(o)} ${o.requestId ?? ""}`), "requests unfinished after 10 s").toEqual([]);
    const codeOf = (o: ChatExchange): string | undefined => o.body?.error?.code;
    expect.soft(unavailable.filter((o) => codeOf(o) !== "service_unavailable").map(codeOf), "503s not service_unavailable").toEqual([]);
    await stack.expectExactBooks();
  }, 45_000);
});
