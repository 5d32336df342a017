import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import type { ServerProcess } from "../support/server-process.js";
import { type AccountBooks, accountBooks } from "./support/account-books.js";
import { type ChatOverFetch, chatOverFetch, chatRequest, contentChunks } from "./support/chat-over-fetch.js";
import { type FaultStack, startFaultStack } from "./support/fault-stack.js";

// SPEC 2 and 5, issue 8: a client that goes away, before the first byte or
// mid-stream, releases its hold and its stream slot at once, its request is
// recorded as cancelled, and what it had received is billed. Through the real
// server process, with plain fetch and an AbortController, as a client would.

/** The upstream takes this long to answer, so an abort at ABORT_AFTER_MS lands before its first byte. */
const UPSTREAM_HEADERS_DELAY_MS = 1_500;
const ABORT_AFTER_MS = 200;
/** "At once": the server must have settled the books this soon after the client left. */
const SETTLED_WITHIN_MS = 1_000;
/** A slow stream, long enough that an abort lands early in it. */
const CHUNK_DELAY_MS = 100;
const LONG_REPLY_WORDS = 300;
const LONG_REPLY = Array.from({ length: LONG_REPLY_WORDS }, () => "word").join(" ");
const ABORT_AFTER_CHUNKS = 3;
/** sentx-v1's largest max_tokens: a 4-cent hold, so three of them outweigh a 10-cent balance. */
const MAX_OUTPUT_TOKENS = 4_096;

let stack: FaultStack;
let server: ServerProcess;
let chat: ChatOverFetch;
let aborts = 0;

beforeAll(async () => {
  stack = await startFaultStack();
  server = await stack.startServer();
  chat = chatOverFetch(server.url);
});

afterAll(async () => {
  if (stack) await stack.printSummary("client aborts", { requests: chat?.sent ?? 0, faults: aborts });
  await stack?.close();
});

beforeEach(() => stack.upstream.reset());

/**
 * Sends a request and aborts it ABORT_AFTER_MS later, and not before the
 * upstream has it: the hold is taken and the call is under way, but the
 * upstream has not answered yet. Returns the index of its upstream request.
 */
async function abortBeforeFirstByte(key: string, stream: boolean, extra?: Record<string, unknown>) {
  aborts++;
  const abort = new AbortController();
  const upstreamIndex = stack.upstream.requests.length;
  const sending = chat.send(key, chatRequest(stream, extra), { signal: abort.signal });
  await Promise.all([
    sleep(ABORT_AFTER_MS),
    eventually(async () => stack.upstream.requests.length, (n) => n > upstreamIndex, UPSTREAM_HEADERS_DELAY_MS),
  ]);
  abort.abort();
  const exchange = await sending;
  expect(exchange.aborted).toBe(true);
  expect(exchange.status).toBe(0);
  return upstreamIndex;
}

/** The account's books once every request on it has ended (or as they are after SETTLED_WITHIN_MS, to assert on). */
const settledBooks = (accountId: string, requests: number) =>
  eventually(
    () => accountBooks(stack.sql, accountId),
    (books: AccountBooks) => books.heldCents === 0 && books.requests.length === requests && books.requests.every((r) => r.record),
    SETTLED_WITHIN_MS,
  );

describe("a client that aborts before the first byte", () => {
  it.each([false, true])(
    "stream=%s: the hold is released at once and the request recorded cancelled, unbilled; the upstream call is stopped",
    async (stream) => {
      const { accountId, key } = await stack.customer(server, 1_000);
      stack.upstream.set({ headersDelayMs: UPSTREAM_HEADERS_DELAY_MS });
      const upstreamIndex = await abortBeforeFirstByte(key, stream);
      await stack.upstream.waitForDisconnect(upstreamIndex, SETTLED_WITHIN_MS);

      const books = await settledBooks(accountId, 1);
      expect(books.heldCents).toBe(0);
      expect(books.balanceCents).toBe(1_000);
      const [trail] = books.requests;
      expect(trail?.hold?.status).toBe("released");
      expect(trail?.record).toMatchObject({ status: "cancelled", costCents: 0 });
      expect(trail?.chargedCents).toBe(0);
      await stack.expectExactBooks();
    },
  );

  it("three aborts on a 10-cent account leave its balance free: the next request is 200, not 402 (issue 8)", async () => {
    const { accountId, key } = await stack.customer(server, 10);
    stack.upstream.set({ headersDelayMs: UPSTREAM_HEADERS_DELAY_MS });
    for (const stream of [false, true, false]) await abortBeforeFirstByte(key, stream, { max_tokens: MAX_OUTPUT_TOKENS });

    // Once the server has settled them (the sweeper's 15 minutes are not "at once"), the holds are gone.
    const afterAborts = await settledBooks(accountId, 3);
    stack.upstream.set({ headersDelayMs: 0 });
    const next = await chat.send(key, chatRequest(false, { max_tokens: MAX_OUTPUT_TOKENS }));
    expect(next.status).toBe(200);

    expect(afterAborts.heldCents).toBe(0);
    expect(afterAborts.requests.map((r) => [r.hold?.status, r.record?.status, r.chargedCents])).toEqual(
      Array(3).fill(["released", "cancelled", 0]),
    );
    await stack.expectExactBooks();
  });
});

describe("a client that aborts mid-stream", () => {
  it(`after ${ABORT_AFTER_CHUNKS} chunks: billed for what it received, recorded cancelled, its stream slot free at once`, async () => {
    const { accountId, key } = await stack.customer(server, 1_000, { concurrentStreams: 1 });
    stack.upstream.set({ replyText: LONG_REPLY, chunkDelayMs: CHUNK_DELAY_MS, usage: null });

    const abort = new AbortController();
    aborts++;
    const exchange = await chat.send(key, chatRequest(true), {
      signal: abort.signal,
      onEvent: (soFar) => contentChunks(soFar) >= ABORT_AFTER_CHUNKS && abort.abort(),
    });
    expect(exchange.status).toBe(200);
    expect(exchange.aborted).toBe(true);
    expect(contentChunks(exchange)).toBe(ABORT_AFTER_CHUNKS);
    await stack.upstream.waitForDisconnect(0, SETTLED_WITHIN_MS);

    const books = await settledBooks(accountId, 1);
    expect(books.heldCents).toBe(0);
    const [trail] = books.requests;
    expect(trail?.hold?.status).toBe("settled");
    expect(trail?.record?.status).toBe("cancelled");
    expect(trail?.record?.costCents).toBeGreaterThanOrEqual(1);
    expect(trail?.chargedCents).toBe(trail?.record?.costCents);
    // What it received, give or take the chunk in flight at the abort; far from the whole answer.
    expect(trail?.record?.outputTokens).toBeGreaterThanOrEqual(ABORT_AFTER_CHUNKS);
    expect(trail?.record?.outputTokens).toBeLessThan(LONG_REPLY_WORDS / 10);

    // One stream allowed on this key: the aborted one no longer holds it.
    stack.upstream.set({ chunkDelayMs: 0 });
    const next = await chat.send(key, chatRequest(true));
    expect(next.status).toBe(200);
    expect(next.completed).toBe(true);
    await stack.expectExactBooks();
  });
});
