import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FakeUpstream, type FakeUpstreamKnobs, HANG_MID_STREAM_AFTER_CHUNKS } from "../support/fake-upstream.js";
import type { ServerProcess } from "../support/server-process.js";
import { onlyRequest } from "./support/account-books.js";
import {
  type ChatExchange,
  type ChatOverFetch,
  chatOverFetch,
  chatRequest,
  contentChunks,
  finishReasonOf,
  streamedError,
  usageOf,
} from "./support/chat-over-fetch.js";
import { type FaultStack, startFaultStack } from "./support/fault-stack.js";

// SPEC 5, 8 and 9 under a misbehaving upstream, through the real server
// process: whatever the upstream does, the client gets a well-formed answer or
// error in bounded time, a request that failed before any output costs
// nothing, output that reached the client is billed, and the upstream's own
// numbers never make the books wrong.

/** The upstream's timeout (headers, and each silence in a body): short, so hangs end quickly. */
const TIMEOUT_MS = 1_500;
/** UPSTREAM_MAX_ATTEMPTS, left at its default. */
const MAX_ATTEMPTS = 3;
/** undici checks its timeouts on a clock that ticks once a second, so each may run up to a second late. */
const TIMER_TICK_MS = 1_000;
/** A hang before any output: every attempt times out, plus backoff and slack. */
const HANG_BEFORE_OUTPUT_BOUND_MS = MAX_ATTEMPTS * (TIMEOUT_MS + TIMER_TICK_MS) + 2_000;
/** A hang after output began is not retried: one idle timeout, plus slack. */
const HANG_AFTER_OUTPUT_BOUND_MS = TIMEOUT_MS + TIMER_TICK_MS + 2_000;
/** sentx-v1's defaults (SPEC 5 and 9). */
const CONTEXT_WINDOW = 128_000;
const PRICE = { inputCentsPerMillion: 300, outputCentsPerMillion: 1_000 };
const BALANCE_CENTS = 1_000;

let stack: FaultStack;
let server: ServerProcess;
let chat: ChatOverFetch;
let cases = 0;
let faults = 0;

beforeAll(async () => {
  stack = await startFaultStack();
  server = await stack.startServer({
    SENTX_MODELS: JSON.stringify({
      models: [
        {
          id: "sentx-v1",
          upstreams: [{ provider: "openai-compatible", baseUrl: stack.upstream.baseUrl, model: "llm", timeoutMs: TIMEOUT_MS }],
        },
      ],
    }),
  });
  chat = chatOverFetch(server.url);
});

afterAll(async () => {
  if (stack) await stack.printSummary("upstream matrix", { requests: chat?.sent ?? 0, faults, cases });
  await stack?.close();
});

beforeEach(() => {
  stack.upstream.reset();
  cases++;
});

/** Makes the upstream misbehave for this case (counted for the summary). */
function injectFault(fault: (upstream: FakeUpstream) => void) {
  faults++;
  fault(stack.upstream);
}

const ask = (stream: boolean, extra: Record<string, unknown> = {}) =>
  chatRequest(stream, { messages: [{ role: "user", content: "Say something." }], ...extra });

/** Sends one request as a new customer, with the upstream set up as the case says. */
async function sendAsNewCustomer(stream: boolean, extra?: Record<string, unknown>) {
  const { accountId, key } = await stack.customer(server, BALANCE_CENTS);
  const exchange = await chat.send(key, ask(stream, extra), { headers: { "x-include-cost": "1" } });
  return { accountId, exchange };
}

/** The same request streamed and not, side by side, each as a new customer, under the same upstream fault. */
async function bothWays() {
  const [plain, streamed] = await Promise.all([sendAsNewCustomer(false), sendAsNewCustomer(true)]);
  return { plain, streamed };
}

/** SPEC 5: a request that failed before any output costs nothing, and its hold is given back. */
async function expectUnbilledFailure(accountId: string) {
  const trail = await onlyRequest(stack.sql, accountId);
  expect(trail.record).toMatchObject({ status: "failed", costCents: 0 });
  expect(trail.hold?.status).toBe("released");
  expect(trail.chargedCents).toBe(0);
}

/** SPEC 8: the error a client gets when the upstream failed before any output. */
function expectUpstreamRefusal(exchange: ChatExchange, statuses: number[], code?: string) {
  expect(statuses).toContain(exchange.status);
  expect(exchange.body?.error).toMatchObject({ type: "server_error", ...(code && { code }) });
}

/**
 * A stream cut short by the upstream after `delivered` content chunks: the
 * server still ends it properly, with an error event instead of [DONE].
 */
function expectStreamCutShort(exchange: ChatExchange, delivered: number) {
  expect(exchange.status).toBe(200);
  expect(contentChunks(exchange)).toBe(delivered);
  expect(streamedError(exchange)).toMatchObject({ type: "server_error" });
  expect(exchange.completed).toBe(false);
  // Ended by the server, not by a broken connection or a malformed event.
  expect(exchange.failure).toBeNull();
}

/** SPEC 5: output that reached the client is billed, at least the 1-cent minimum, and the request is recorded as failed. */
async function expectDeliveredOutputBilled(accountId: string) {
  const trail = await onlyRequest(stack.sql, accountId);
  expect(trail.record?.status).toBe("failed");
  expect(trail.record?.outputTokens).toBeGreaterThanOrEqual(1);
  expect(trail.chargedCents).toBeGreaterThanOrEqual(1);
  expect(trail.hold?.status).toBe("settled");
}

/** SPEC 5's price, in integer arithmetic: round-half-up, then between 1 and 500 cents. */
function listPriceCents(inputTokens: number, outputTokens: number): number {
  const millionths = BigInt(inputTokens) * BigInt(PRICE.inputCentsPerMillion) + BigInt(outputTokens) * BigInt(PRICE.outputCentsPerMillion);
  const cents = Number((millionths + 500_000n) / 1_000_000n);
  return Math.min(500, Math.max(1, cents));
}

const isTokenCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;

describe("5xx before any output", () => {
  it.each([false, true])("stream=%s: 503 upstream_unavailable after UPSTREAM_MAX_ATTEMPTS tries, unbilled, failed", async (stream) => {
    injectFault((upstream) => upstream.failNext(503, MAX_ATTEMPTS + 5));
    const { accountId, exchange } = await sendAsNewCustomer(stream);
    expectUpstreamRefusal(exchange, [503], "upstream_unavailable");
    expect(stack.upstream.requests).toHaveLength(MAX_ATTEMPTS);
    await expectUnbilledFailure(accountId);
    await stack.expectExactBooks();
  });
});

describe("an upstream that hangs", () => {
  it.each(["before-headers", "after-headers"] as const)(
    "%s: 502 or 503 in bounded time, streamed or not, nothing charged, every upstream connection closed",
    async (hang) => {
      injectFault((upstream) => upstream.set({ hang }));
      const { plain, streamed } = await bothWays();
      for (const { accountId, exchange } of [plain, streamed]) {
        expectUpstreamRefusal(exchange, [502, 503]);
        expect(exchange.elapsedMs).toBeLessThan(HANG_BEFORE_OUTPUT_BOUND_MS);
        await expectUnbilledFailure(accountId);
      }
      expect(stack.upstream.requests.every((r) => r.disconnected)).toBe(true);
      await stack.expectExactBooks();
    },
    HANG_BEFORE_OUTPUT_BOUND_MS + 10_000,
  );

  it("mid-answer: a stream ends with an error event after the idle timeout, billed; a stalled plain answer is 502/503", async () => {
    injectFault((upstream) => upstream.set({ hang: "mid-stream" }));
    const { plain, streamed } = await bothWays();

    expectStreamCutShort(streamed.exchange, HANG_MID_STREAM_AFTER_CHUNKS);
    expect(streamed.exchange.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(streamed.exchange.elapsedMs).toBeLessThan(HANG_AFTER_OUTPUT_BOUND_MS);
    await expectDeliveredOutputBilled(streamed.accountId);

    expectUpstreamRefusal(plain.exchange, [502, 503]);
    await expectUnbilledFailure(plain.accountId);
    expect(stack.upstream.requests.every((r) => r.disconnected)).toBe(true);
    await stack.expectExactBooks();
  }, 20_000);
});

describe("a connection reset mid-answer", () => {
  it("a stream ends with an error event and its output is billed; a non-streamed body cut halfway is 502/503, unbilled", async () => {
    const delivered = 3;
    injectFault((upstream) => upstream.set({ dieAfterChunks: delivered }));
    const { plain, streamed } = await bothWays();

    expectStreamCutShort(streamed.exchange, delivered);
    await expectDeliveredOutputBilled(streamed.accountId);

    expectUpstreamRefusal(plain.exchange, [502, 503]);
    await expectUnbilledFailure(plain.accountId);
    // SPEC 9: nothing is retried once output may have begun.
    expect(stack.upstream.requests).toHaveLength(2);
    await stack.expectExactBooks();
  });
});

describe("malformed upstream output", () => {
  // A non-streamed body is cut in half whatever malformedAfterChunks says; a stream is malformed at its first event.
  it.each([
    ["non-streamed JSON cut in half", false, "json"],
    ["a stream malformed (json) before any output", true, "json"],
    ["a stream malformed (sse) before any output", true, "sse"],
  ] as const)("%s: 502 upstream_error, nothing charged", async (_name, stream, malformed) => {
    injectFault((upstream) => upstream.set({ malformed, malformedAfterChunks: 0 }));
    const { accountId, exchange } = await sendAsNewCustomer(stream);
    expectUpstreamRefusal(exchange, [502], "upstream_error");
    await expectUnbilledFailure(accountId);
    await stack.expectExactBooks();
  });

  it.each(["json", "sse"] as const)("a stream malformed (%s) after output began: an error event, the output billed", async (malformed) => {
    injectFault((upstream) => upstream.set({ malformed, malformedAfterChunks: 1 }));
    const { accountId, exchange } = await sendAsNewCustomer(true);
    expectStreamCutShort(exchange, 1);
    expect(streamedError(exchange)?.code).toBe("upstream_error");
    await expectDeliveredOutputBilled(accountId);
    await stack.expectExactBooks();
  });
});

// SPEC 5 and issue 8: the upstream's usage is untrusted. Whatever it reports,
// the answer is 200 and the charge stays within the 1-cent minimum, the
// 500-cent cap and the request's hold.
const untrustedUsage: Array<[string, FakeUpstreamKnobs["usage"]]> = [
  ["prompt_tokens 2^60", { prompt_tokens: 2 ** 60, completion_tokens: 11 }],
  ["completion_tokens 2^60", { prompt_tokens: 17, completion_tokens: 2 ** 60 }],
  ["negative counts", { prompt_tokens: -17, completion_tokens: -3 }],
  ["fractional counts", { prompt_tokens: 17.5, completion_tokens: 1.5 }],
  ["counts as strings", { prompt_tokens: "17", completion_tokens: "11" }],
  ["no counts at all", {}],
  ["no completion_tokens", { prompt_tokens: 17 }],
  ["usage null (none reported)", null],
];

describe("absurd or missing usage from the upstream", () => {
  it.each(untrustedUsage.flatMap(([name, usage]) => [false, true].map((stream) => [name, stream, usage] as const)))(
    "%s, stream=%s: 200, sane usage, a charge between 1 ¢ and the hold, usage.cost_cents = the charge",
    async (_name, stream, usage) => {
      injectFault((upstream) => upstream.set({ usage }));
      const { accountId, exchange } = await sendAsNewCustomer(stream);
      expect(exchange.status).toBe(200);
      if (stream) expect(exchange.completed).toBe(true);

      const reported = usageOf(exchange);
      expect(isTokenCount(reported?.prompt_tokens), `prompt_tokens ${reported?.prompt_tokens}`).toBe(true);
      expect(isTokenCount(reported?.completion_tokens), `completion_tokens ${reported?.completion_tokens}`).toBe(true);
      expect(reported.total_tokens).toBe(reported.prompt_tokens + reported.completion_tokens);

      const trail = await onlyRequest(stack.sql, accountId);
      expect(trail.chargedCents).toBeGreaterThanOrEqual(1);
      expect(trail.chargedCents).toBeLessThanOrEqual(500);
      expect(trail.chargedCents).toBeLessThanOrEqual(trail.hold?.amountCents ?? 0);
      expect(reported.cost_cents).toBe(trail.chargedCents);

      expect(trail.hold?.status).toBe("settled");
      const record = trail.record;
      expect(record?.status).toBe("succeeded");
      for (const tokens of [record?.inputTokens, record?.outputTokens]) {
        expect(isTokenCount(tokens), `recorded tokens ${tokens}`).toBe(true);
        expect(tokens).toBeLessThanOrEqual(CONTEXT_WINDOW);
      }
      // What the client is told it used is what the request log says.
      expect([reported.prompt_tokens, reported.completion_tokens]).toEqual([record?.inputTokens, record?.outputTokens]);
      await stack.expectExactBooks();
    },
  );
});

describe("max_tokens", () => {
  const MAX_TOKENS = 20;
  const LONG_REPLY = Array.from({ length: 2_000 }, () => "word").join(" ");

  it.each([false, true])("stream=%s, an upstream that ignores it: billed for at most the max_tokens granted", async (stream) => {
    injectFault((upstream) =>
      upstream.set({ replyText: LONG_REPLY, honourMaxTokens: false, usage: { prompt_tokens: 17, completion_tokens: 2_000 } }),
    );
    const { accountId, exchange } = await sendAsNewCustomer(stream, { max_tokens: MAX_TOKENS });
    expect(exchange.status).toBe(200);
    expect(stack.upstream.requests[0]?.body.max_tokens).toBe(MAX_TOKENS);

    const trail = await onlyRequest(stack.sql, accountId);
    const record = trail.record!;
    expect(record.outputTokens).toBeLessThanOrEqual(MAX_TOKENS);
    expect(usageOf(exchange)?.completion_tokens).toBeLessThanOrEqual(MAX_TOKENS);
    expect(trail.chargedCents).toBe(listPriceCents(record.inputTokens, record.outputTokens));
    expect(usageOf(exchange)?.cost_cents).toBe(trail.chargedCents);
    await stack.expectExactBooks();
  });

  // The control: the same request to an upstream that keeps to max_tokens is billed as reported.
  it.each([false, true])("stream=%s, an upstream that honours it: cut with finish_reason length, billed as reported", async (stream) => {
    stack.upstream.set({ replyText: LONG_REPLY, honourMaxTokens: true, usage: { prompt_tokens: 17, completion_tokens: MAX_TOKENS } });
    const { accountId, exchange } = await sendAsNewCustomer(stream, { max_tokens: MAX_TOKENS });
    expect(exchange.status).toBe(200);
    expect(finishReasonOf(exchange)).toBe("length");

    const trail = await onlyRequest(stack.sql, accountId);
    expect(trail.record).toMatchObject({ status: "succeeded", inputTokens: 17, outputTokens: MAX_TOKENS });
    expect(trail.chargedCents).toBe(listPriceCents(17, MAX_TOKENS));
    await stack.expectExactBooks();
  });
});
