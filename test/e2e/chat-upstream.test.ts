import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_SAFETY_PROMPT } from "../../src/config.js";
import { eventually } from "../support/eventually.js";
import { FAKE_REPLY, type FakeUpstream, refusedBaseUrl, startFakeUpstream } from "../support/fake-upstream.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";

// The real server in front of a real local HTTP server playing the upstream model.

let t: TestPlatform;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const refused = await refusedBaseUrl();
  const fake = { provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "upstream-llm", timeoutMs: 5000 } as const;
  const dead = { provider: "openai-compatible", baseUrl: refused, model: "dead-llm" } as const;
  t = await startTestPlatform({
    models: {
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [fake] },
        { id: "failover-model", upstreams: [dead, fake] },
        { id: "down-model", upstreams: [dead] },
      ],
    },
  });
});
afterAll(async () => {
  await t.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const hello = { model: "sentx-v1", messages: [{ role: "user" as const, content: "Hi upstream" }] };
const db = () => t.platform.services.db;


describe("openai-compatible upstream", () => {
  it("sends the safety prompt first and the configured upstream model, and bills the upstream's usage", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const client = t.openai(key, { defaultHeaders: { "X-Include-Cost": "1" } });
    const reply = await client.chat.completions.create({
      ...hello,
      messages: [{ role: "system", content: "Be brief." }, ...hello.messages],
      temperature: 0.3,
      max_tokens: 50,
    });
    expect(reply.choices[0]!.message.content).toBe(FAKE_REPLY);
    expect(reply.usage).toEqual({ prompt_tokens: 17, completion_tokens: 11, total_tokens: 28, cost_cents: 1 });

    const sent = upstream.requests[0]!.body;
    expect(sent.model).toBe("upstream-llm");
    expect(sent.messages.map((m: { role: string; content: string }) => [m.role, m.content])).toEqual([
      ["system", DEFAULT_SAFETY_PROMPT],
      ["system", "Be brief."],
      ["user", "Hi upstream"],
    ]);
    expect(sent).toMatchObject({ temperature: 0.3, max_tokens: 50 });
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 99, heldCents: 0, ledgerSumCents: 99 });
  });

  it("streams the upstream's chunks and ends with its usage", async () => {
    const { key } = await t.createCustomer();
    const stream = await t.openai(key).chat.completions.create({ ...hello, stream: true });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(FAKE_REPLY);
    expect(usage).toMatchObject({ prompt_tokens: 17, completion_tokens: 11 });
  });

  it("counts tokens itself when the upstream reports no usage", async () => {
    upstream.set({ usage: null });
    const { key } = await t.createCustomer();
    const reply = await t.openai(key).chat.completions.create(hello);
    expect(reply.usage!.completion_tokens).toBeGreaterThan(5);
    expect(reply.usage!.prompt_tokens).toBeGreaterThan(20); // the safety prompt counts too
  });

  it("retries a 5xx before the first byte and succeeds", async () => {
    upstream.failNext(502, 1);
    const { key } = await t.createCustomer();
    const reply = await t.openai(key).chat.completions.create(hello);
    expect(reply.choices[0]!.message.content).toBe(FAKE_REPLY);
    expect(upstream.requests).toHaveLength(2);
  });

  it("falls over from a refused connection to the next upstream", async () => {
    const { key } = await t.createCustomer();
    const reply = await t.openai(key).chat.completions.create({ ...hello, model: "failover-model", stream: false });
    expect(reply.model).toBe("failover-model");
    expect(reply.choices[0]!.message.content).toBe(FAKE_REPLY);
  });

  it("503 upstream_unavailable when every attempt fails; nothing billed, hold released, request logged", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 50 });
    upstream.failNext(503, 10);
    const { response } = await t.openai(key).chat.completions.create(hello).withResponse().catch((e) => ({ response: e }));
    const error = response as InstanceType<typeof OpenAI.APIError>;
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error.status).toBe(503);
    expect(error.code).toBe("upstream_unavailable");
    expect(upstream.requests).toHaveLength(3); // UPSTREAM_MAX_ATTEMPTS
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 50, heldCents: 0, usageEntries: [] });
    const row = await requestRow(db(), error.headers!.get("x-request-id")!);
    expect(row).toMatchObject({ status: "failed", httpStatus: 503, errorCode: "upstream_unavailable", costCents: 0 });

    const down = await t.openai(key).chat.completions.create({ ...hello, model: "down-model", stream: true }).catch((e) => e);
    expect(down.status).toBe(503);
    expect(JSON.stringify(down.error)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED/);
  });

  it("502 upstream_error for an upstream 4xx, not retried", async () => {
    upstream.failNext(400, 1, "bad tool schema");
    const { key } = await t.createCustomer();
    const error = await t.openai(key).chat.completions.create(hello).catch((e) => e);
    expect(error.status).toBe(502);
    expect(error.code).toBe("upstream_error");
    expect(upstream.requests).toHaveLength(1);
  });

  it("502 for malformed upstream JSON, never a 500", async () => {
    upstream.set({ malformed: "json" });
    const { key } = await t.createCustomer();
    const error = await t.openai(key).chat.completions.create(hello).catch((e) => e);
    expect(error.status).toBe(502);
    expect(error.error.type).toBe("server_error");
  });

  it("tolerates a slow upstream", async () => {
    upstream.set({ headersDelayMs: 400, chunkDelayMs: 20 });
    const { key } = await t.createCustomer();
    const stream = await t.openai(key).chat.completions.create({ ...hello, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(FAKE_REPLY);
  });

  it("a mid-stream failure reaches the SDK as an error, is not retried, and bills what was generated", async () => {
    upstream.set({ dieAfterChunks: 3, usage: null });
    const { accountId, key } = await t.createCustomer({ balanceCents: 20 });
    const stream = await t.openai(key).chat.completions.create({ ...hello, stream: true });
    let text = "";
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    })().catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toBe(FAKE_REPLY);
    expect(upstream.requests).toHaveLength(1);
    const money = await moneyState(db(), accountId);
    expect(money).toMatchObject({ balanceCents: 19, heldCents: 0, ledgerSumCents: 19 });
    const row = await requestRow(db(), money.usageEntries[0]!.requestId!);
    expect(row).toMatchObject({ status: "failed", costCents: 1, errorCode: "upstream_error" });
    expect(row!.outputTokens).toBeGreaterThan(0);
  });

  it("a client that disconnects mid-stream stops the upstream and is billed for the tokens generated", async () => {
    upstream.set({ chunkDelayMs: 100, usage: null, replyText: "word ".repeat(200).trim() });
    const { accountId, key } = await t.createCustomer({ balanceCents: 20 });
    const stream = await t.openai(key).chat.completions.create({ ...hello, stream: true });
    let seen = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) seen++;
      if (seen === 3) break; // the SDK aborts the HTTP request
    }
    await upstream.waitForDisconnect(0, 5000);
    expect(upstream.requests[0]!.disconnected).toBe(true);

    // The server learns of the disconnect on its own schedule: wait for the request log.
    const money = await eventually(
      () => moneyState(db(), accountId),
      (m) => m.usageEntries.length === 1,
    );
    expect(money).toMatchObject({ balanceCents: 19, heldCents: 0, ledgerSumCents: 19 });
    const row = await eventually(
      () => requestRow(db(), money.usageEntries[0]!.requestId!),
      (r) => r !== undefined,
    );
    expect(row!.status).toBe("cancelled");
    expect(row!.outputTokens).toBeGreaterThanOrEqual(3);
    expect(row!.outputTokens).toBeLessThan(200);
  });
});
