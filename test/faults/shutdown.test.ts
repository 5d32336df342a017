import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ServerProcess } from "../support/server-process.js";
import { accountBooks } from "./support/account-books.js";
import { type ChatExchange, chatOverFetch, chatRequest, type LiveChat, streamedText, usageOf } from "./support/chat-over-fetch.js";
import { type FaultStack, freshConnectionAttempt, startFaultStack } from "./support/fault-stack.js";

// SPEC 13: SIGTERM drains. The server stops accepting, lets what is in flight
// finish within the grace period, then cuts what is left (billing the output
// already delivered), records and settles everything, gives the stream slots
// back, and exits 0. A second SIGTERM is the operator saying "now".

const STREAMS = 20;
const CHUNK_DELAY_MS = 100;
const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(" ");
const SHORT_REPLY = words(20); // ~2 s at 100 ms a chunk: well inside the default grace
const LONG_REPLY = words(200); // ~20 s: outlasts a 1 s grace

let stack: FaultStack;

beforeEach(async () => {
  stack = await startFaultStack({ upstream: { chunkDelayMs: CHUNK_DELAY_MS } });
});

afterEach(async () => {
  await stack?.close();
});

/** A server with `count` streams flowing on one key, each past its first chunk. */
async function serverWithStreams(count: number, env: Record<string, string> = {}) {
  const server = await stack.startServer(env);
  const customer = await stack.customer(server, 100_000, { concurrentStreams: count, requestsPerMinute: 1_000 });
  const chat = chatOverFetch(server.url);
  const chats = Array.from({ length: count }, () =>
    chat.start(customer.key, chatRequest(true), { headers: { "x-include-cost": "1" }, timeoutMs: 45_000 }),
  );
  await Promise.all(chats.map((c) => c.flowing));
  expect(chats.map((c) => c.exchange.status)).toEqual(Array(count).fill(200));
  return { server, customer, chats };
}

/** Sends SIGTERM; the promise resolves with the exit code, `exitedAt` says when. */
function terminate(server: ServerProcess) {
  const exit = { code: undefined as number | null | undefined, exitedAt: null as number | null };
  const exited = server.stop().then((code) => {
    exit.code = code;
    exit.exitedAt = performance.now();
    return code;
  });
  return { exit, exited, signalledAt: performance.now() };
}

/** One record and one usage charge per request: the state of each request's books, for one assertion. */
async function recordsAndCharges(accountId: string, outcomes: ChatExchange[]) {
  const { requests } = await accountBooks(stack.sql, accountId);
  return outcomes.map(({ requestId: id }) => {
    const trail = requests.find((t) => t.requestId === id);
    return {
      id,
      records: trail?.record ? 1 : 0,
      status: trail?.record?.status ?? null,
      costCents: trail?.record?.costCents ?? null,
      charges: trail?.chargeKeys.length ?? 0,
    };
  });
}

const outcomesOf = (chats: LiveChat[]) => Promise.all(chats.map((c) => c.ended));

describe("SIGTERM during 20 streams", () => {
  it("lets every stream finish within the default grace, refuses new connections, and exits 0 with exact books", async () => {
    stack.upstream.set({ replyText: SHORT_REPLY });
    const { server, customer, chats } = await serverWithStreams(STREAMS);
    await sleep(500);
    const { exited } = terminate(server);
    await sleep(100);
    const lateConnection = await freshConnectionAttempt(server.url);
    const outcomes = await outcomesOf(chats);
    const code = await exited;

    await stack.printSummary("SIGTERM, streams within the grace", { requests: STREAMS, faults: 1 });
    expect.soft(lateConnection, "a new connection after SIGTERM").toSatisfy((r) => r === "ECONNREFUSED" || r === 503);
    expect.soft(code, "exit code").toBe(0);
    expect.soft(outcomes.filter((o) => !o.completed || streamedText(o) !== SHORT_REPLY).map((o) => o.requestId), "streams not delivered whole").toEqual([]);
    expect
      .soft(await recordsAndCharges(customer.accountId, outcomes), "one succeeded record per request, charged what its final usage chunk said")
      .toEqual(outcomes.map((o) => ({ id: o.requestId, records: 1, status: "succeeded", costCents: usageOf(o)?.cost_cents, charges: 1 })));
    expect.soft(await stack.streamSlotsTaken([customer.keyId]), "stream slots left").toBe(0);
    await stack.expectExactBooks();
  }, 45_000);

  it("cuts the streams still running when a 1 s grace ends, bills what they delivered, and exits 0", async () => {
    stack.upstream.set({ replyText: LONG_REPLY });
    const graceSeconds = 1;
    const { server, customer, chats } = await serverWithStreams(STREAMS, { SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
    await sleep(1_000);
    const { exit, exited, signalledAt } = terminate(server);
    const code = await Promise.race([exited, sleep((graceSeconds + 10) * 1_000, "still running" as const)]);
    const outcomes = await outcomesOf(chats);

    await stack.printSummary("SIGTERM, streams past the grace", {
      requests: STREAMS,
      faults: 1,
      ...(exit.exitedAt !== null && { exitedAfterMs: Math.round(exit.exitedAt - signalledAt) }),
    });
    expect(code, `exit within ${graceSeconds + 10} s of SIGTERM`).toBe(0);
    expect.soft(outcomes.filter((o) => o.completed).map((o) => o.requestId), "streams that were not cut").toEqual([]);
    expect
      .soft(await recordsAndCharges(customer.accountId, outcomes), "one interrupted, billed record and one charge per request")
      .toEqual(
        outcomes.map((o) => ({ id: o.requestId, records: 1, status: "interrupted", costCents: expect.toSatisfy((c: number) => c >= 1), charges: 1 })),
      );
    expect.soft(await stack.streamSlotsTaken([customer.keyId]), "stream slots left").toBe(0);
    await stack.expectExactBooks();
  }, 45_000);

  it("exits at once on a second SIGTERM during the grace", async () => {
    stack.upstream.set({ replyText: LONG_REPLY });
    const { server, chats } = await serverWithStreams(3);
    const { exit, exited } = terminate(server);
    await sleep(500);
    // Draining, not gone: otherwise the second signal would prove nothing.
    expect(exit.exitedAt === null, "still draining 500 ms after the first SIGTERM").toBe(true);
    void server.stop();
    const secondAt = performance.now();
    const result = await Promise.race([exited.then(() => "exited" as const), sleep(2_000, "still running" as const)]);
    expect(result, "after the second SIGTERM").toBe("exited");
    // No books here: a process told to exit at once leaves its holds to the sweeper.
    console.log(`faults: second SIGTERM: requests=${chats.length} faults=2 exitedAfterMs=${Math.round(exit.exitedAt! - secondAt)} exitCode=${exit.code}`);
    await outcomesOf(chats);
  }, 30_000);
});
