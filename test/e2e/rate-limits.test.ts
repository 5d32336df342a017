import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { offsetClock } from "../support/clock.js";
import { eventually } from "../support/eventually.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { domainCode, opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

// SPEC 6 on the embedded (in-process) limiter, through the real server and SDK.

const clock = offsetClock();
let t: TestPlatform;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  t = await startTestPlatform({
    clock,
    models: { models: [{ id: "sentx-v1", upstreams: [{ provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "llm" }] }] },
  });
});
afterAll(async () => {
  await t.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const hello = { model: "sentx-v1", messages: [{ role: "user" as const, content: "Hi" }] };

const get = (key: string, path = "/v1/models") => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

const postChat = (key: string, body: object) =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

const rateHeaders = (res: Response) => ({
  limit: res.headers.get("x-ratelimit-limit"),
  remaining: res.headers.get("x-ratelimit-remaining"),
  reset: Number(res.headers.get("x-ratelimit-reset")),
  limitRequests: res.headers.get("x-ratelimit-limit-requests"),
  remainingRequests: res.headers.get("x-ratelimit-remaining-requests"),
  resetRequests: res.headers.get("x-ratelimit-reset-requests"),
});

describe("requests per minute (sliding window, per key)", () => {
  it("puts both header families on every authenticated /v1 answer: success, error and stream", async () => {
    const { key } = await t.createCustomer();
    const ok = await get(key);
    expect(ok.status).toBe(200);
    const nowSeconds = clock.now().getTime() / 1000;
    expect(rateHeaders(ok)).toMatchObject({ limit: "60", remaining: "59", limitRequests: "60", remainingRequests: "59", resetRequests: "1m0s" });
    expect(rateHeaders(ok).reset).toBeGreaterThanOrEqual(Math.floor(nowSeconds + 59));
    expect(rateHeaders(ok).reset).toBeLessThanOrEqual(Math.ceil(nowSeconds + 61));

    const bad = await postChat(key, { ...hello, temperature: 7 });
    expect(bad.status).toBe(400);
    expect(rateHeaders(bad)).toMatchObject({ limit: "60", remaining: "58" });

    const stream = await postChat(key, { ...hello, stream: true });
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    expect(rateHeaders(stream)).toMatchObject({ limit: "60", remaining: "57" });
    await stream.text();

    const missing = await get(key, "/v1/models/no-such-model");
    expect(missing.status).toBe(404);
    expect(rateHeaders(missing)).toMatchObject({ remaining: "56" });
  });

  it("refuses the 61st request in a minute with 429, Retry-After and the OpenAI error body", async () => {
    const { key } = await t.createCustomer();
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await get(key)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const refused = await get(key);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({
      error: { message: expect.stringContaining("60 requests per minute"), type: "rate_limit_error", code: "rate_limit_exceeded", param: null },
    });
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(59);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(Number(refused.headers.get("retry-after-ms"))).toBeGreaterThan(58_000);
    expect(rateHeaders(refused)).toMatchObject({ limit: "60", remaining: "0", remainingRequests: "0" });

    // Refused requests are not counted: the window frees up when the first request leaves it.
    clock.advance(60_000);
    expect((await get(key)).status).toBe(200);
  });

  it("counts per key: another key of the same account has its own minute", async () => {
    const { key, accountId } = await t.createCustomer({ limits: { requestsPerMinute: 1 } });
    const other = await t.platform.services.keys.create({ accountId, name: "second" });
    expect((await get(key)).status).toBe(200);
    expect((await get(key)).status).toBe(429);
    expect((await get(other.key)).status).toBe(200);
  });

  it("lets the openai SDK (default retries) wait the announced time and then succeed", async () => {
    const { key } = await t.createCustomer({ limits: { requestsPerMinute: 2 } });
    const attempts: Array<{ status: number; at: number; retryAfterMs: string | null }> = [];
    const client = new OpenAI({
      baseURL: `${t.url}/v1`,
      apiKey: key,
      // Records every attempt the SDK makes; the default maxRetries (2) stays on.
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        attempts.push({ status: res.status, at: performance.now(), retryAfterMs: res.headers.get("retry-after-ms") });
        return res;
      },
    });
    await client.chat.completions.create(hello);
    await client.chat.completions.create(hello);
    // The first two requests now sit 58.5 s back in the window: the next one frees 1.5 s from now.
    clock.advance(58_500);
    const started = performance.now();
    const reply = await client.chat.completions.create(hello);
    expect(reply.choices[0]!.message.content).toBeTruthy();

    expect(attempts.map((a) => a.status)).toEqual([200, 200, 429, 200]);
    const announced = Number(attempts[2]!.retryAfterMs);
    expect(announced).toBeGreaterThan(1_300);
    expect(announced).toBeLessThanOrEqual(1_500);
    const waited = attempts[3]!.at - attempts[2]!.at;
    expect(waited).toBeGreaterThanOrEqual(announced - 50);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe("concurrent streams (leases, per key)", () => {
  /** Opens a stream and waits for its first chunk, so its slot is certainly held. */
  async function openStream(client: OpenAI) {
    const stream = await client.chat.completions.create({ ...hello, stream: true });
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    return {
      stream,
      async drain() {
        while (!(await chunks.next()).done);
      },
    };
  }

  it("allows 5 open streams per key, refuses the 6th with 429, and frees a slot when a stream ends", async () => {
    upstream.set({ replyText: "one two three four five six", chunkDelayMs: 150 });
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const open = await Promise.all(Array.from({ length: 5 }, () => openStream(client)));

    const sixth = await postChat(key, { ...hello, stream: true });
    expect(sixth.status).toBe(429);
    expect(Number(sixth.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await sixth.json()).error).toMatchObject({ code: "rate_limit_exceeded", type: "rate_limit_error" });
    // Non-streamed requests take no slot.
    expect((await postChat(key, hello)).status).toBe(200);

    await open[0]!.drain();
    const next = await openStream(client);
    await Promise.all([...open.slice(1), next].map((s) => s.drain()));
  });

  it("frees the slot of a stream whose client went away, of one that failed mid-way, and of one refused before output", async () => {
    const { key } = await t.createCustomer({ limits: { concurrentStreams: 1 } });
    const client = t.openai(key);
    const slotFree = () =>
      eventually(
        async () => {
          const res = await postChat(key, { ...hello, stream: true });
          await res.text(); // to the end, so this probe's own slot is back before the next one
          return res.status;
        },
        (status) => status === 200,
        3_000,
      );

    upstream.set({ replyText: "a b c d e f g h i j k l", chunkDelayMs: 200 });
    const abandoned = await openStream(client);
    abandoned.stream.controller.abort();
    await upstream.waitForDisconnect();
    upstream.set({ chunkDelayMs: 0 });
    expect(await slotFree()).toBe(200);

    upstream.set({ replyText: "a b c d e f", chunkDelayMs: 0, dieAfterChunks: 2 });
    await expect(openStream(client).then((s) => s.drain())).rejects.toThrow();
    upstream.set({ dieAfterChunks: null });
    expect(await slotFree()).toBe(200);

    upstream.failNext(400, 1, "bad request upstream");
    expect((await postChat(key, { ...hello, stream: true })).status).toBe(502);
    expect((await postChat(key, { ...hello, stream: true, temperature: 9 })).status).toBe(400);
    expect(await slotFree()).toBe(200);
  });
});

describe("per-account overrides and revocation through ops", () => {
  it("applies a new limit on the next request, and null restores the default", async () => {
    const { key, accountId } = await t.createCustomer();
    const ops = opsClient(t.url);
    expect((await get(key)).status).toBe(200);

    const account = await ops.accounts.setLimits.mutate({ accountId, limits: { requestsPerMinute: 2, concurrentStreams: 3 } });
    expect(account.limits).toEqual({ requestsPerMinute: 2, concurrentStreams: 3 });
    expect(account.effectiveLimits).toEqual({ requestsPerMinute: 2, concurrentStreams: 3, keyCreationsPerHour: 5, maxActiveKeys: 25 });
    const second = await get(key);
    expect(rateHeaders(second)).toMatchObject({ limit: "2", remaining: "0" });
    expect((await get(key)).status).toBe(429);

    await ops.accounts.setLimits.mutate({ accountId, limits: { requestsPerMinute: null } });
    expect(rateHeaders(await get(key))).toMatchObject({ limit: "60", remaining: "57" });
  });

  it("rejects bad overrides with a clear error", async () => {
    const { accountId } = await t.createCustomer();
    const ops = opsClient(t.url);
    const zero = await ops.accounts.setLimits.mutate({ accountId, limits: { requestsPerMinute: 0 } }).catch((e) => e);
    expect(zero.data).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });
    const unknown = await ops.accounts.setLimits.mutate({ accountId: "acct_missing", limits: { maxActiveKeys: 3 } }).catch((e) => e);
    expect(domainCode(unknown)).toBe("not_found");
  });

  it("refuses a revoked key and a suspended account's keys on the very next request", async () => {
    const { key, keyId, accountId } = await t.createCustomer();
    const ops = opsClient(t.url);
    expect((await get(key)).status).toBe(200); // now cached
    await ops.keys.revoke.mutate({ keyId });
    expect((await get(key)).status).toBe(401);

    const other = await t.createCustomer();
    expect((await get(other.key)).status).toBe(200);
    await ops.accounts.suspend.mutate({ accountId: other.accountId });
    expect((await get(other.key)).status).toBe(403);
    await ops.accounts.resume.mutate({ accountId: other.accountId });
    expect((await get(other.key)).status).toBe(200);
    expect(accountId).not.toBe(other.accountId);
  });
});
