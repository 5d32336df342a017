import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Pricing, priceRequest } from "../../src/domain/pricing.js";
import { eventually } from "../support/eventually.js";
import { FAKE_REPLY, FAKE_USAGE, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { conversationsOf, endUsersOf, moneyState, requestRow } from "../support/queries.js";

// SPEC 10's plain-text chat, POST /api/v1/chat, on the real server in front of a
// real local HTTP server playing the upstream: the same keys, limits, billing and
// error body as /v1/chat/completions, the reply as {text, usage} or as plain text.

/** Prices far above the default, so a request costs more than the 1-cent minimum and the arithmetic shows. */
const PRICING: Pricing = { inputCentsPerMillion: 300_000, outputCentsPerMillion: 1_000_000 };
const MAX_BODY_BYTES = 64 * 1024;
const LONG_REPLY_WORDS = 300;
const LONG_REPLY = Array.from({ length: LONG_REPLY_WORDS }, (_, i) => `word${i}`).join(" ");

let t: TestPlatform;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const fake = { provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "upstream-llm", timeoutMs: 5000 } as const;
  t = await startTestPlatform({
    models: {
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [fake], pricing: PRICING },
        { id: "sentx-demo", upstreams: [{ provider: "demo" }] },
      ],
    },
    env: { MAX_BODY_BYTES: String(MAX_BODY_BYTES) },
  });
});
afterAll(async () => {
  await t?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

const db = () => t.platform.services.db;
const hello = { messages: [{ role: "user", content: "Hi upstream" }] };

const post = (path: string, { key, body, headers, signal }: { key?: string; body: unknown; headers?: Record<string, string>; signal?: AbortSignal }) =>
  fetch(`${t.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key && { authorization: `Bearer ${key}` }), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal && { signal }),
  });

const plainChat = (key: string | undefined, body: unknown, headers?: Record<string, string>) =>
  post("/api/v1/chat", { ...(key && { key }), body, ...(headers && { headers }) });

/** The body as the pieces the client read, decoded. */
async function readPieces(response: Response): Promise<string[]> {
  const decoder = new TextDecoder();
  const pieces: string[] = [];
  const reader = response.body!.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) pieces.push(decoder.decode(read.value, { stream: true }));
  return pieces;
}

/** SPEC 8's error body, exactly. */
const errorShape = (code: string, type: string, param: string | null = null, message: unknown = expect.any(String)) => ({
  error: { message, type, code, param },
});

describe("POST /api/v1/chat, not streamed", () => {
  it("answers {text, usage} and bills exactly what /v1/chat/completions bills for the same chat: SPEC 5's price of the usage", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    const response = await plainChat(key, { ...hello, stream: false });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const body = await response.json();
    const usage = { prompt_tokens: FAKE_USAGE.prompt_tokens, completion_tokens: FAKE_USAGE.completion_tokens, total_tokens: 28 };
    expect(body).toEqual({ text: FAKE_REPLY, usage });

    const price = priceRequest(PRICING, { inputTokens: FAKE_USAGE.prompt_tokens, outputTokens: FAKE_USAGE.completion_tokens });
    // 17 × 300,000 + 11 × 1,000,000 millionths of a cent: 16.1, rounded half up.
    expect(price).toBe(16);
    const requestId = response.headers.get("x-request-id")!;
    expect(await requestRow(db(), requestId)).toMatchObject({
      accountId,
      endpoint: "/api/v1/chat",
      model: "sentx-v1",
      stream: false,
      status: "succeeded",
      httpStatus: 200,
      inputTokens: 17,
      outputTokens: 11,
      costCents: price,
    });
    const money = await moneyState(db(), accountId);
    expect(money).toMatchObject({ balanceCents: 1_000 - price, heldCents: 0, ledgerSumCents: 1_000 - price });
    expect(money.usageEntries).toEqual([expect.objectContaining({ amountCents: -price, requestId })]);

    // The same chat through the OpenAI facade: the same usage, the same charge.
    const viaOpenAI = await t.openai(key).chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "Hi upstream" }] });
    expect(viaOpenAI.usage).toEqual(usage);
    expect(viaOpenAI.choices[0]!.message.content).toBe(body.text);
    const after = await moneyState(db(), accountId);
    expect(after.usageEntries.map((e) => e.amountCents)).toEqual([-price, -price]);
  });

  it("uses the default model when none is named, and another when named; stream defaults to false", async () => {
    const { key } = await t.createCustomer({ balanceCents: 1_000 });
    const unnamed = await plainChat(key, hello);
    expect(unnamed.status).toBe(200);
    expect((await requestRow(db(), unnamed.headers.get("x-request-id")!))?.model).toBe("sentx-v1");
    expect(upstream.requests).toHaveLength(1);

    const demo = await plainChat(key, { ...hello, model: "sentx-demo", max_tokens: 200 });
    expect(demo.status).toBe(200);
    const { text, usage } = await demo.json();
    expect(text).toEqual(expect.any(String));
    expect(text.length).toBeGreaterThan(0);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    expect(upstream.requests).toHaveLength(1);
  });

  it("passes max_tokens to the upstream", async () => {
    const { key } = await t.createCustomer({ balanceCents: 1_000 });
    expect((await plainChat(key, { ...hello, max_tokens: 7 })).status).toBe(200);
    expect(upstream.requests[0]!.body).toMatchObject({ model: "upstream-llm", max_tokens: 7 });
  });
});

describe("POST /api/v1/chat, streamed", () => {
  it("sends the reply as plain UTF-8 text, in pieces that join to the same reply, billed as the same chat", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    upstream.set({ chunkDelayMs: 20 });
    const response = await plainChat(key, { ...hello, stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(response.headers.get("x-ratelimit-limit")).toBe("60");
    const pieces = await readPieces(response);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(FAKE_REPLY);

    const price = priceRequest(PRICING, { inputTokens: 17, outputTokens: 11 });
    const requestId = response.headers.get("x-request-id")!;
    const record = await eventually(() => requestRow(db(), requestId), (row) => row !== undefined);
    expect(record).toMatchObject({ endpoint: "/api/v1/chat", stream: true, status: "succeeded", inputTokens: 17, outputTokens: 11, costCents: price });
    const money = await moneyState(db(), accountId);
    expect(money).toMatchObject({ balanceCents: 1_000 - price, heldCents: 0, ledgerSumCents: 1_000 - price });
  });

  it("keeps multi-byte characters whole across pieces", async () => {
    const { key } = await t.createCustomer({ balanceCents: 1_000 });
    const reply = "Grüße aus 東京 ✓ 🙂 — fin";
    upstream.set({ replyText: reply, chunkDelayMs: 5 });
    const response = await plainChat(key, { ...hello, stream: true });
    expect(response.status).toBe(200);
    expect((await readPieces(response)).join("")).toBe(reply);
  });

  it("fails before any text with the JSON error and its status, unbilled", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    upstream.set({ malformed: "json", malformedAfterChunks: 0 });
    const response = await plainChat(key, { ...hello, stream: true });
    expect(response.status).toBe(502);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await response.json()).toEqual(errorShape("upstream_error", "server_error"));
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 1_000, heldCents: 0, usageEntries: [] });
  });

  it("ends the body with the text so far when the upstream breaks after text began, and bills what was delivered", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    upstream.set({ replyText: LONG_REPLY, dieAfterChunks: 3, usage: null });
    const response = await plainChat(key, { ...hello, stream: true });
    expect(response.status).toBe(200);
    const text = (await readPieces(response)).join("");
    expect(text).toBe(LONG_REPLY.split(" ").slice(0, 3).join(" "));

    const requestId = response.headers.get("x-request-id")!;
    const record = await eventually(() => requestRow(db(), requestId), (row) => row !== undefined);
    expect(record?.status).not.toBe("succeeded");
    expect(record?.outputTokens).toBeGreaterThanOrEqual(3);
    expect(record?.outputTokens).toBeLessThan(LONG_REPLY_WORDS / 10);
    expect(record?.costCents).toBe(priceRequest(PRICING, { inputTokens: record!.inputTokens, outputTokens: record!.outputTokens }));
    const money = await moneyState(db(), accountId);
    expect(money).toMatchObject({ balanceCents: 1_000 - record!.costCents, heldCents: 0 });
    expect(money.usageEntries).toEqual([expect.objectContaining({ amountCents: -record!.costCents, requestId })]);
  });

  it("stops the upstream when the client aborts mid-stream, bills only what was delivered and releases the hold", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    upstream.set({ replyText: LONG_REPLY, chunkDelayMs: 50, usage: null });
    const abort = new AbortController();
    const response = await post("/api/v1/chat", { key, body: { ...hello, stream: true }, signal: abort.signal });
    expect(response.status).toBe(200);
    const requestId = response.headers.get("x-request-id")!;
    const reader = response.body!.getReader();
    let received = "";
    while (received.split(" ").length <= 3) received += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    await upstream.waitForDisconnect(0, 2_000);

    const record = await eventually(() => requestRow(db(), requestId), (row) => row !== undefined);
    expect(record).toMatchObject({ endpoint: "/api/v1/chat", status: "cancelled" });
    // What it received, give or take the piece in flight at the abort; far from the whole reply.
    expect(record?.outputTokens).toBeGreaterThanOrEqual(3);
    expect(record?.outputTokens).toBeLessThan(LONG_REPLY_WORDS / 10);
    expect(record?.costCents).toBe(priceRequest(PRICING, { inputTokens: record!.inputTokens, outputTokens: record!.outputTokens }));
    const money = await eventually(() => moneyState(db(), accountId), (m) => m.heldCents === 0);
    expect(money).toMatchObject({ balanceCents: 1_000 - record!.costCents, heldCents: 0, ledgerSumCents: 1_000 - record!.costCents });
    expect(money.usageEntries).toEqual([expect.objectContaining({ amountCents: -record!.costCents, requestId })]);
  });
});

describe("the same refusals as /v1, in SPEC 8's error body", () => {
  it.each([
    ["a missing key", undefined],
    ["an unknown key", `sk-${"A".repeat(48)}`],
  ])("401 invalid_api_key for %s, streamed or not", async (_case, key) => {
    for (const stream of [false, true]) {
      const response = await plainChat(key, { ...hello, stream });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual(errorShape("invalid_api_key", "authentication_error"));
      expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it.each([
    ["no messages", {}, "messages"],
    ["empty messages", { messages: [] }, "messages"],
    ["messages of the wrong type", { messages: "Hi" }, "messages"],
    ["a message without content", { messages: [{ role: "user" }] }, "messages[0].content"],
    ["an unknown role", { messages: [{ role: "robot", content: "Hi" }] }, "messages[0].role"],
    ["stream of the wrong type", { ...hello, stream: "yes" }, "stream"],
    ["max_tokens below 1", { ...hello, max_tokens: 0 }, "max_tokens"],
    ["max_tokens of the wrong type", { ...hello, max_tokens: "ten" }, "max_tokens"],
    ["model of the wrong type", { ...hello, model: 42 }, "model"],
  ])("400 invalid_request_error for %s, naming the field", async (_case, body, param) => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 10 });
    const response = await plainChat(key, body);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual(errorShape("invalid_request_error", "invalid_request_error", param));
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 10, heldCents: 0, usageEntries: [] });
  });

  it("400 for malformed JSON and for bodies that are not an object, never 500", async () => {
    const { key } = await t.createCustomer();
    for (const body of ["{not json", "", "null", "[1,2]", '"Hi"']) {
      const response = await plainChat(key, body);
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual(errorShape("invalid_request_error", "invalid_request_error"));
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it("413 request_too_large for a body over the limit", async () => {
    const { key } = await t.createCustomer();
    const response = await plainChat(key, { messages: [{ role: "user", content: "x".repeat(MAX_BODY_BYTES) }] });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual(errorShape("request_too_large", "invalid_request_error"));
  });

  it("402 insufficient_balance for a key with $0, streamed or not, before any upstream call", async () => {
    const { key } = await t.createCustomer({ balanceCents: 0 });
    for (const stream of [false, true]) {
      const response = await plainChat(key, { ...hello, stream });
      expect(response.status).toBe(402);
      expect(await response.json()).toEqual(errorShape("insufficient_balance", "insufficient_balance", null, "Balance too low. Top up at sentx.ai."));
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it("429 rate_limit_exceeded over the key's minute, with both header families and Retry-After; /v1 and /api/v1 share it", async () => {
    const { key } = await t.createCustomer({ balanceCents: 1_000, limits: { requestsPerMinute: 2 } });
    const first = await plainChat(key, hello);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit")).toBe("2");
    expect(first.headers.get("x-ratelimit-remaining")).toBe("1");
    expect(first.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    await first.text();
    expect((await post("/v1/chat/completions", { key, body: { ...hello, model: "sentx-v1" } })).status).toBe(200);

    const refused = await plainChat(key, { ...hello, stream: true });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual(errorShape("rate_limit_exceeded", "rate_limit_error"));
    expect(refused.headers.get("x-ratelimit-limit")).toBe("2");
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(refused.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(refused.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d/);
    expect(Number(refused.headers.get("x-ratelimit-reset"))).toBeGreaterThan(Date.now() / 1000);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(upstream.requests).toHaveLength(2);
  });

  it("403 model_not_allowed for a model outside the key's scope, unbilled; its allowed model answers", async () => {
    const { accountId } = await t.createCustomer({ balanceCents: 1_000 });
    const { key } = await t.platform.services.keys.create({ accountId, name: "scoped", allowedModels: ["sentx-v1"] });
    for (const stream of [false, true]) {
      const response = await plainChat(key, { ...hello, model: "sentx-demo", stream });
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual(
        errorShape("model_not_allowed", "permission_error", "model", "This API key may not use the model sentx-demo."),
      );
    }
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 1_000, heldCents: 0, usageEntries: [] });
    expect((await plainChat(key, { ...hello, model: "sentx-v1" })).status).toBe(200);
  });
});

describe("end users and conversations (SPEC 3)", () => {
  it("records the end user and conversation from percent-encoded headers, which win over body fields, streamed or not", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    const headers = { "X-User-Id": "user-%E2%9C%93", "X-User-Name": "Al%C3%A9x", "X-Session-Id": "conv-%E5%BC%A0" };
    expect((await plainChat(key, { ...hello, user: "body-user", user_name: "Body Name" }, headers)).status).toBe(200);
    const streamed = await plainChat(key, { ...hello, stream: true }, headers);
    expect(await streamed.text()).toBe(FAKE_REPLY);

    const price = priceRequest(PRICING, { inputTokens: 17, outputTokens: 11 });
    const [user] = await eventually(
      () => endUsersOf(db(), accountId),
      (users) => users[0]?.requestCount === 2,
    );
    expect(user).toMatchObject({ externalId: "user-✓", displayName: "Aléx", requestCount: 2, costCents: 2 * price });
    const [conversation] = await conversationsOf(db(), accountId);
    expect(conversation).toMatchObject({ externalId: "conv-张", endUserId: user!.id, requestCount: 2 });
    const record = await requestRow(db(), streamed.headers.get("x-request-id")!);
    expect(record).toMatchObject({ endUserId: user!.id, conversationId: conversation!.id });
  });

  it("takes the end user from body fields alone, and refuses a malformed percent-escape with 400", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 1_000 });
    expect((await plainChat(key, { ...hello, user: "only-body", user_name: "Bödy" })).status).toBe(200);
    expect(await endUsersOf(db(), accountId)).toEqual([expect.objectContaining({ externalId: "only-body", displayName: "Bödy" })]);

    const bad = await plainChat(key, hello, { "X-User-Name": "bad%E2%9C" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual(errorShape("invalid_request_error", "invalid_request_error", "X-User-Name"));
  });
});
