import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { conversationsOf, endUsersOf, moneyState, requestRow } from "../support/queries.js";

// The real server with the built-in demo provider, driven by the official SDK and by raw HTTP.

let t: TestPlatform;
beforeAll(async () => {
  t = await startTestPlatform();
});
afterAll(() => t.close());

const post = (path: string, init: { key?: string; body: string; headers?: Record<string, string> }) =>
  fetch(`${t.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.key && { authorization: `Bearer ${init.key}` }), ...init.headers },
    body: init.body,
  });

const hello = { model: "sentx-v1", messages: [{ role: "user" as const, content: "Hello there" }] };

describe("authentication (SPEC 4)", () => {
  it.each([
    ["a missing header", undefined],
    ["a key of the wrong format", "sk-short"],
    ["a non-bearer scheme", "Basic abc"],
    ["an unknown key", `sk-${"A".repeat(48)}`],
  ])("answers %s with 401 invalid_api_key", async (_case, authorization) => {
    const response = await fetch(`${t.url}/v1/models`, { headers: authorization ? { authorization } : {} });
    expect(response.status).toBe(401);
    const body = await response.json();
    expect(body).toEqual({ error: { message: expect.any(String), type: "authentication_error", code: "invalid_api_key", param: null } });
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("maps to the SDK's AuthenticationError", async () => {
    const error = await t.openai(`sk-${"b".repeat(40)}`).chat.completions.create(hello).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.code).toBe("invalid_api_key");
  });
});

describe("chat completions with the demo provider", () => {
  it("answers, meters and bills a completion; usage has no cost unless asked", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const { data: reply, response } = await t.openai(key).chat.completions.create(hello).withResponse();
    expect(reply.object).toBe("chat.completion");
    expect(reply.model).toBe("sentx-v1");
    expect(reply.choices[0]!.message.content).toContain("Hello there");
    expect(reply.usage).toEqual({
      prompt_tokens: expect.any(Number),
      completion_tokens: expect.any(Number),
      total_tokens: reply.usage!.prompt_tokens + reply.usage!.completion_tokens,
    });
    const requestId = response.headers.get("x-request-id")!;
    const row = await requestRow(t.platform.services.db, requestId);
    expect(row).toMatchObject({
      accountId,
      status: "succeeded",
      httpStatus: 200,
      inputTokens: reply.usage!.prompt_tokens,
      outputTokens: reply.usage!.completion_tokens,
      costCents: 1,
    });
    const money = await moneyState(t.platform.services.db, accountId);
    expect(money).toMatchObject({ balanceCents: 99, heldCents: 0, ledgerSumCents: 99 });
    expect(money.usageEntries).toHaveLength(1);
    expect(money.usageEntries[0]).toMatchObject({ amountCents: -1, balanceAfterCents: 99, requestId });
  });

  it("adds usage.cost_cents with X-Include-Cost: 1, streaming or not", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key, { defaultHeaders: { "X-Include-Cost": "1" } });
    const reply = await client.chat.completions.create(hello);
    expect((reply.usage as unknown as { cost_cents: number }).cost_cents).toBe(1);

    const stream = await client.chat.completions.create({ ...hello, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ cost_cents: 1 });
  });

  it("streams word by word and always ends with a usage chunk and [DONE]", async () => {
    const { key } = await t.createCustomer();
    const response = await post("/v1/chat/completions", { key, body: JSON.stringify({ ...hello, stream: true }) });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const events = (await response.text()).split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    const payloads = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, "")));
    expect(payloads.length).toBeGreaterThan(3);
    for (const p of payloads) expect(p).toMatchObject({ object: "chat.completion.chunk", model: "sentx-v1", id: payloads[0].id });
    const usageChunk = payloads.at(-1);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.total_tokens).toBe(usageChunk.usage.prompt_tokens + usageChunk.usage.completion_tokens);
    expect(usageChunk.usage).not.toHaveProperty("cost_cents");
    const text = payloads.map((p) => p.choices[0]?.delta?.content ?? "").join("");
    expect(text).toContain("Hello there");
  });

  it("records end users and conversations from headers (percent-decoded) over body fields, with running totals", async () => {
    const { accountId, key } = await t.createCustomer();
    const client = t.openai(key, {
      defaultHeaders: { "X-User-Id": "user-%E2%9C%93", "X-User-Name": "Al%C3%A9x", "X-Session-Id": "conv-%E5%BC%A0" },
    });
    await client.chat.completions.create({ ...hello, user: "body-user", user_name: "Body Name" } as never);
    await client.chat.completions.create({ ...hello, stream: false });
    const [user] = await endUsersOf(t.platform.services.db, accountId);
    expect(user).toMatchObject({ externalId: "user-✓", displayName: "Aléx", requestCount: 2, costCents: 2 });
    const [conversation] = await conversationsOf(t.platform.services.db, accountId);
    expect(conversation).toMatchObject({ externalId: "conv-张", endUserId: user!.id, requestCount: 2 });
    expect(conversation!.inputTokens).toBeGreaterThan(0);

    // Body fields alone also work.
    await t.openai(key).chat.completions.create({ ...hello, user: "only-body", user_name: "Bödy" } as never);
    const users = await endUsersOf(t.platform.services.db, accountId);
    expect(users.find((u) => u.externalId === "only-body")).toMatchObject({ displayName: "Bödy", requestCount: 1 });
  });

  it("refuses a malformed percent-escape with 400", async () => {
    const { key } = await t.createCustomer();
    const response = await post("/v1/chat/completions", { key, body: JSON.stringify(hello), headers: { "X-User-Name": "bad%E2%9C" } });
    expect(response.status).toBe(400);
    expect((await response.json()).error).toMatchObject({ code: "invalid_request_error", param: "X-User-Name" });
  });

  it("refuses a NUL in the end user's id or name, or in the model name, with 400 before anything is held or billed", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 10 });
    const refusals: Array<{ body: object; headers?: Record<string, string>; param: string }> = [
      { body: { ...hello, user: "u\u0000x" }, param: "user" },
      { body: { ...hello, user_name: "n\u0000x" }, param: "user_name" },
      { body: hello, headers: { "X-User-Id": "u%00x" }, param: "user" },
      { body: hello, headers: { "X-Session-Id": "s%00x" }, param: "X-Session-Id" },
      { body: { ...hello, model: "sentx\u0000v1" }, param: "model" },
      { body: { ...hello, model: "m".repeat(257) }, param: "model" },
    ];
    for (const { body, headers, param } of refusals) {
      const response = await post("/v1/chat/completions", { key, body: JSON.stringify(body), ...(headers && { headers }) });
      expect(response.status).toBe(400);
      expect((await response.json()).error).toMatchObject({ type: "invalid_request_error", param });
    }
    expect(await moneyState(t.platform.services.db, accountId)).toMatchObject({ balanceCents: 10, heldCents: 0, usageEntries: [] });
  });
});

describe("validation errors in the SPEC 8 shape", () => {
  it.each([
    [{ ...hello, temperature: 3 }, "temperature"],
    [{ ...hello, top_p: 2 }, "top_p"],
    [{ ...hello, n: 2 }, "n"],
    [{ ...hello, max_tokens: 0 }, "max_tokens"],
    [{ ...hello, messages: [] }, "messages"],
    [{ ...hello, messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
  ])("400 with param for %j", async (body, param) => {
    const { key } = await t.createCustomer();
    const error = await t.openai(key).chat.completions.create(body as never).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.status).toBe(400);
    expect(error.type).toBe("invalid_request_error");
    expect(error.param).toBe(param);
  });

  it("400 system_message_too_long past 2,000 characters, and nothing is billed", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 10 });
    const error = await t
      .openai(key)
      .chat.completions.create({ ...hello, messages: [{ role: "system", content: "x".repeat(2001) }, ...hello.messages] })
      .catch((e) => e);
    expect(error.status).toBe(400);
    expect(error.code).toBe("system_message_too_long");
    expect(await moneyState(t.platform.services.db, accountId)).toMatchObject({ balanceCents: 10, heldCents: 0 });
  });

  it("400 unsupported_url_scheme for remote image URLs", async () => {
    const { key } = await t.createCustomer();
    const error = await t
      .openai(key)
      .chat.completions.create({
        model: "sentx-v1",
        messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }],
      })
      .catch((e) => e);
    expect(error.status).toBe(400);
    expect(error.code).toBe("unsupported_url_scheme");
  });

  it("400 for malformed JSON and for a non-object body, never 500", async () => {
    const { key } = await t.createCustomer();
    for (const body of ["{not json", "[1,2]", "", "null"]) {
      const response = await post("/v1/chat/completions", { key, body });
      expect(response.status).toBe(400);
      const json = await response.json();
      expect(json.error.type).toBe("invalid_request_error");
      expect(json.error.code).toBe("invalid_request_error");
    }
  });

  it("413 request_too_large for an oversized body", async () => {
    const { key } = await t.createCustomer();
    const response = await post("/v1/chat/completions", {
      key,
      body: JSON.stringify({ ...hello, messages: [{ role: "user", content: "x".repeat(21 * 1024 * 1024) }] }),
    });
    expect(response.status).toBe(413);
    expect((await response.json()).error).toMatchObject({ code: "request_too_large", type: "invalid_request_error" });
  });

  it("413 request_too_large for an oversized chunked body, which declares no length, and the server goes on serving", async () => {
    const { key } = await t.createCustomer();
    const piece = new TextEncoder().encode("x".repeat(1024 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // 40 MB offered, twice the limit: the server must stop at the limit, not read it all.
        if (sent++ < 40) controller.enqueue(piece);
        else controller.close();
      },
    });
    const response = await fetch(`${t.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body,
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
    expect((await response.json()).error).toMatchObject({ code: "request_too_large", type: "invalid_request_error" });
    expect(sent).toBeLessThan(40);
    const after = await post("/v1/chat/completions", { key, body: JSON.stringify(hello) });
    expect(after.status).toBe(200);
  });

  it("404 not_found in the OpenAI shape for unknown paths and models", async () => {
    const { key } = await t.createCustomer();
    const response = await fetch(`${t.url}/v1/nothing-here`, { headers: { authorization: `Bearer ${key}` } });
    expect(response.status).toBe(404);
    expect((await response.json()).error).toMatchObject({ code: "not_found", type: "not_found_error" });
    const error = await t.openai(key).models.retrieve("no-such-model").catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe("models (SPEC 9)", () => {
  it("lists the model table and labels the demo", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["sentx-v1"]);
    const model = await client.models.retrieve("sentx-v1");
    expect(model).toMatchObject({ id: "sentx-v1", object: "model", owned_by: "sentx-demo", demo: true });
  });

  it("serves unknown model names with the default model", async () => {
    const { key } = await t.createCustomer();
    const reply = await t.openai(key).chat.completions.create({ ...hello, model: "gpt-4o" });
    expect(reply.model).toBe("sentx-v1");
  });
});

describe("balance (SPEC 5)", () => {
  it("402 insufficient_balance with the exact message when nothing is left", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 0 });
    const error = await t.openai(key).chat.completions.create(hello).catch((e) => e);
    expect(error.status).toBe(402);
    expect(error.error).toEqual({
      message: "Balance too low. Top up at sentx.ai.",
      type: "insufficient_balance",
      code: "insufficient_balance",
      param: null,
    });
    expect(await moneyState(t.platform.services.db, accountId)).toMatchObject({ balanceCents: 0, heldCents: 0, ledgerSumCents: 0 });
  });

  it("reduces max_tokens to what the balance covers instead of refusing", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 2 });
    // 4,096 output tokens would cost 5 cents at worst; 2 cents cover about 1,900 of them.
    const reply = await t.openai(key).chat.completions.create({ ...hello, max_tokens: 4096 });
    expect(reply.choices[0]!.message.content).toContain("Hello there");
    expect(await moneyState(t.platform.services.db, accountId)).toMatchObject({ balanceCents: 1, heldCents: 0, ledgerSumCents: 1 });
  });

  it("never lets 50 concurrent requests overdraw an account with 7 cents", async () => {
    // Stream slots would refuse most of the 25 streams first; this test is about money.
    const { accountId, key } = await t.createCustomer({ balanceCents: 7, limits: { concurrentStreams: 50 } });
    const client = t.openai(key);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? client.chat.completions.create({ ...hello, max_tokens: 3000 })
          : (async () => {
              const stream = await client.chat.completions.create({ ...hello, max_tokens: 3000, stream: true });
              for await (const _ of stream);
            })(),
      ),
    );
    const refused = outcomes.filter((o) => o.status === "rejected");
    for (const r of refused) expect((r as PromiseRejectedResult).reason.status).toBe(402);
    const money = await moneyState(t.platform.services.db, accountId);
    expect(money.balanceCents).toBeGreaterThanOrEqual(0);
    expect(money.heldCents).toBe(0);
    expect(money.balanceCents).toBe(money.ledgerSumCents);
    const succeeded = outcomes.length - refused.length;
    expect(succeeded).toBeGreaterThan(0);
    expect(money.usageEntries).toHaveLength(succeeded);
    expect(7 - money.balanceCents).toBe(-money.usageEntries.reduce((s, e) => s + e.amountCents, 0));
  });
});
