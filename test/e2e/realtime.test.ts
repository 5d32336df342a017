import { connect as netConnect } from "node:net";
import { eq } from "drizzle-orm";
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ClientOptions, WebSocket } from "ws";
import type { z } from "zod";
import type { modelTableSchema } from "../../src/domain/inference/model-table.js";
import { requests } from "../../src/domain/schema/index.js";
import { eventually } from "../support/eventually.js";
import { refusedBaseUrl } from "../support/fake-upstream.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";
import { openSession, type ServerEvent, type Session } from "../support/realtime-client.js";
import { DEFAULT_REALTIME_USAGE, type RealtimeUpstream, startRealtimeUpstream } from "../support/realtime-upstream.js";

// GET /v1/realtime: the real server relaying WebSocket sessions to a real local
// WebSocket server playing the upstream, driven by the ws client and the
// openai SDK's OpenAIRealtimeWS; billing checked against the ledger.

// DEFAULT_REALTIME_USAGE (1,000 in, 2,000 out) at 300/1,000 cents per million: 2.3 → 2 cents a response.
const DEFAULT_RESPONSE_CENTS = 2;


let t: TestPlatform;
let upstream: RealtimeUpstream;

const realtimeModels = async (baseUrl: string) => {
  const fake = { provider: "openai-compatible" as const, baseUrl, apiKey: "upstream-secret", model: "upstream-rt", timeoutMs: 5000 };
  const dead = { provider: "openai-compatible" as const, baseUrl: await refusedBaseUrl(), model: "dead-rt" };
  return {
    defaultModel: "sentx-v1",
    models: [
      { id: "sentx-v1", upstreams: [{ provider: "demo" as const }], capabilities: ["chat" as const] },
      { id: "rt-model", upstreams: [fake], capabilities: ["realtime" as const] },
      { id: "rt-failover", upstreams: [dead, fake], capabilities: ["realtime" as const] },
      { id: "rt-down", upstreams: [dead], capabilities: ["realtime" as const] },
    ],
  } satisfies z.input<typeof modelTableSchema>;
};

beforeAll(async () => {
  upstream = await startRealtimeUpstream();
  t = await startTestPlatform({ models: await realtimeModels(upstream.baseUrl) });
});
afterAll(async () => {
  await t?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

const db = () => t.platform.services.db;
const wsUrl = (platform: TestPlatform, query = "?model=rt-model", path = "/v1/realtime") => `${platform.url.replace(/^http/, "ws")}${path}${query}`;

/** What a refused handshake answered: status, headers and the SPEC 8 body. */
function refusal(url: string, options: ClientOptions & { protocols?: string[] } = {}) {
  const { protocols, ...clientOptions } = options;
  const socket = new WebSocket(url, protocols ?? [], clientOptions);
  return new Promise<{ status: number; headers: Record<string, unknown>; body: { error: { code: string; type: string; message: string; param: string | null } } }>(
    (resolve, reject) => {
      socket.once("upgrade", () => reject(new Error("the handshake was accepted")));
      socket.once("error", () => {});
      socket.once("unexpected-response", (_request, response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) }));
      });
    },
  );
}

const bearer = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });

/** Sends response.create and waits for the response.done the server relays back. */
async function respond(session: Session): Promise<ServerEvent> {
  session.send({ type: "response.create" });
  return session.next("response.done");
}

const requestsOf = (accountId: string) => db().select().from(requests).where(eq(requests.accountId, accountId));

/** After the session: one record, the hold closed, the ledger's sum equal to the balance. */
async function settled(accountId: string, requestId: string) {
  const row = await eventually(
    () => requestRow(db(), requestId),
    (r) => r !== undefined,
  );
  const money = await eventually(
    () => moneyState(db(), accountId),
    (m) => m.heldCents === 0,
  );
  expect(money.ledgerSumCents).toBe(money.balanceCents);
  expect(await t.platform.services.ledger.verify(db(), accountId)).toEqual([]);
  expect(await requestsOf(accountId)).toHaveLength(1);
  return { row: row!, money };
}

describe("a realtime session", () => {
  it("relays events both ways with the key in the Authorization header, and bills the sum of its responses", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 500 });
    const session = await openSession(wsUrl(t), bearer(key));
    expect(session.requestId).toMatch(/^req_/);
    expect((await session.next("session.created")).session).toMatchObject({ object: "realtime.session" });

    // Client → upstream: the events arrive as sent; upstream → client: its answers come back.
    session.send({ type: "session.update", session: { instructions: "Be brief." } });
    expect((await session.next("session.updated")).session).toEqual({ instructions: "Be brief." });
    const first = await respond(session);
    expect(first.response).toMatchObject({ status: "completed", usage: DEFAULT_REALTIME_USAGE });
    const text = session.events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    expect(text).toBe("Hello from the realtime upstream");
    upstream.set({ usage: { input_tokens: 100_000, output_tokens: 4_000 } });
    await respond(session);
    // Binary frames pass through untouched.
    session.socket.send(Buffer.from([1, 2, 3, 250]));
    expect(Buffer.from((await session.next("binary")).data as Buffer)).toEqual(Buffer.from([1, 2, 3, 250]));

    const connection = upstream.connections[0]!;
    expect(connection.url).toBe("/v1/realtime?model=upstream-rt");
    expect(connection.headers.authorization).toBe("Bearer upstream-secret");
    expect(connection.received.map((e) => e.type)).toEqual(["session.update", "response.create", "response.create"]);

    session.socket.close(1000);
    expect((await session.closed).code).toBe(1000);
    // 2 cents + (100,000 × 300 + 4,000 × 1,000) / 1M = 34 cents: each response priced on its own.
    const { row, money } = await settled(accountId, session.requestId);
    expect(row).toMatchObject({
      endpoint: "/v1/realtime",
      model: "rt-model",
      stream: true,
      status: "succeeded",
      httpStatus: 200,
      inputTokens: 101_000,
      outputTokens: 6_000,
      costCents: DEFAULT_RESPONSE_CENTS + 34,
    });
    expect(money.balanceCents).toBe(500 - 36);
    expect(money.usageEntries.map((e) => e.amountCents)).toEqual([-36]);
  });

  it("takes the key from the browser's subprotocol list, accepts `realtime` back and never passes the key on", async () => {
    const { accountId, key } = await t.createCustomer();
    const session = await openSession(wsUrl(t), { protocols: ["realtime", `openai-insecure-api-key.${key}`, "openai-beta.realtime-v1"] });
    expect(session.socket.protocol).toBe("realtime");
    await respond(session);
    const connection = upstream.connections[0]!;
    expect(connection.headers["openai-beta"]).toBe("realtime=v1");
    expect(JSON.stringify(connection.headers)).not.toContain(key);
    session.socket.close(1000);
    await session.closed;
    const { row } = await settled(accountId, session.requestId);
    expect(row.costCents).toBe(DEFAULT_RESPONSE_CENTS);
  });

  it("works with the openai SDK's OpenAIRealtimeWS", async () => {
    const { accountId, key } = await t.createCustomer();
    const port = Number(new URL(t.url).port);
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1` });
    // The SDK always dials wss://; the test server speaks plain ws on loopback, so the socket is a plain TCP one.
    const rt = new OpenAIRealtimeWS(
      { model: "rt-model", options: { createConnection: () => netConnect({ host: "127.0.0.1", port }) } as ClientOptions },
      client,
    );
    const done = new Promise<{ usage?: unknown }>((resolve) => rt.on("response.done", (event) => resolve(event.response)));
    const errors: unknown[] = [];
    rt.on("error", (error) => errors.push(error));
    await new Promise<void>((resolve) => rt.on("session.created", () => resolve()));
    rt.send({ type: "response.create" });
    expect((await done).usage).toEqual(DEFAULT_REALTIME_USAGE);
    rt.close();
    expect(errors).toEqual([]);
    const row = await eventually(
      async () => (await requestsOf(accountId))[0],
      (r) => r !== undefined,
    );
    expect(row).toMatchObject({ endpoint: "/v1/realtime", costCents: DEFAULT_RESPONSE_CENTS, status: "succeeded" });
  });

  it("falls over to the next realtime upstream when one refuses the connection or answers 5xx", async () => {
    const { key } = await t.createCustomer();
    const session = await openSession(wsUrl(t, "?model=rt-failover"), bearer(key));
    await respond(session);
    expect(upstream.connections[0]!.url).toBe("/v1/realtime?model=upstream-rt");
    session.socket.close(1000);
    await session.closed;
  });

  it("bills a lying upstream's usage as 0 where it is not a count, and clamps absurd counts to the model's bounds", async () => {
    const { accountId, key } = await t.createCustomer();
    const session = await openSession(wsUrl(t), bearer(key));
    upstream.set({ usage: { input_tokens: 1e15, output_tokens: -5 } });
    await respond(session);
    upstream.set({ usage: { input_tokens: "many", output_tokens: 1.5 } });
    await respond(session);
    upstream.set({ usage: { input_tokens: 10, output_tokens: 1e12 } });
    await respond(session);
    session.socket.close(1000);
    await session.closed;
    // 128,000 (the context window) × 300 / 1M = 38 cents; nothing believable: unbilled; 4,096 (max output) × 1,000 / 1M → 4 cents.
    const { row } = await settled(accountId, session.requestId);
    expect(row).toMatchObject({ inputTokens: 128_010, outputTokens: 4_096, costCents: 38 + 4 });
  });
});

describe("refusals before the upgrade, in the SPEC 8 shape", () => {
  it("401 without a key, with a bad key in the header, and with a bad key in the subprotocol list", async () => {
    const none = await refusal(wsUrl(t));
    const header = await refusal(wsUrl(t), bearer("sk-wrongwrongwrongwrongwrongwrongwrong1"));
    const protocol = await refusal(wsUrl(t), { protocols: ["realtime", "openai-insecure-api-key.sk-wrongwrongwrongwrongwrongwrongwrong1"] });
    for (const refused of [none, header, protocol]) {
      expect(refused.status).toBe(401);
      expect(refused.body).toEqual({ error: { message: expect.any(String), type: "authentication_error", code: "invalid_api_key", param: null } });
      expect(refused.headers["x-request-id"]).toMatch(/^req_/);
    }
    expect(upstream.attempts).toBe(0);
  });

  it("403 model_not_allowed for a key scoped to other models", async () => {
    const { accountId } = await t.createCustomer();
    const { key } = await t.platform.services.keys.create({ accountId, name: "scoped", allowedModels: ["sentx-v1"] });
    const refused = await refusal(wsUrl(t), bearer(key));
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: "model_not_allowed", type: "permission_error" });
    expect(upstream.attempts).toBe(0);
  });

  it("400 for a model without realtime, and for no model at all", async () => {
    const { key } = await t.createCustomer();
    const lacking = await refusal(wsUrl(t, "?model=sentx-v1"), bearer(key));
    expect(lacking.status).toBe(400);
    expect(lacking.body.error).toMatchObject({ code: "invalid_request_error", param: "model" });
    expect(lacking.body.error.message).toContain("rt-model");
    const missing = await refusal(wsUrl(t, ""), bearer(key));
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: "invalid_request_error", param: "model" });
    expect(upstream.attempts).toBe(0);
  });

  it("404 for an upgrade on any other path", async () => {
    const { key } = await t.createCustomer();
    const refused = await refusal(wsUrl(t, "?model=rt-model", "/v1/chat/completions"), bearer(key));
    expect(refused.status).toBe(404);
    expect(refused.body.error).toMatchObject({ code: "not_found", type: "not_found_error" });
  });

  it("402 for a key whose account has no credit, before any upstream connection", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 0 });
    const refused = await refusal(wsUrl(t), bearer(key));
    expect(refused.status).toBe(402);
    expect(refused.body.error).toEqual({ message: "Balance too low. Top up at sentx.ai.", type: "insufficient_balance", code: "insufficient_balance", param: null });
    expect(upstream.attempts).toBe(0);
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 0, heldCents: 0 });
  });

  it("403 account_suspended for a suspended account's key", async () => {
    const { accountId, key } = await t.createCustomer();
    await t.platform.services.accounts.setStatus(accountId, "suspended");
    const refused = await refusal(wsUrl(t), bearer(key));
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("account_suspended");
    expect(upstream.attempts).toBe(0);
  });

  it("429 over the key's concurrent stream slots, with Retry-After; the slot comes back when a session ends", async () => {
    const { key } = await t.createCustomer({ limits: { concurrentStreams: 1 } });
    const first = await openSession(wsUrl(t), bearer(key));
    const refused = await refusal(wsUrl(t), bearer(key));
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: "rate_limit_exceeded", type: "rate_limit_error" });
    expect(refused.headers["retry-after"]).toBe("1");
    expect(upstream.attempts).toBe(1);
    first.socket.close(1000);
    await first.closed;
    const again = await eventually(
      () => openSession(wsUrl(t), bearer(key)).catch(() => null),
      (s) => s !== null,
    );
    again!.socket.close(1000);
  });

  it("503 upstream_unavailable when no upstream accepts, unbilled and with the hold released", async () => {
    const { accountId, key } = await t.createCustomer();
    const down = await refusal(wsUrl(t, "?model=rt-down"), bearer(key));
    expect(down.status).toBe(503);
    expect(down.body.error).toMatchObject({ code: "upstream_unavailable", type: "server_error" });
    upstream.set({ refuseWith: 500 });
    const failing = await refusal(wsUrl(t), bearer(key));
    expect(failing.status).toBe(503);
    expect(upstream.attempts).toBe(1);
    const records = await eventually(
      () => requestsOf(accountId),
      (rows) => rows.length === 2,
    );
    expect(records.map((r) => [r.httpStatus, r.costCents, r.errorCode])).toEqual([
      [503, 0, "upstream_unavailable"],
      [503, 0, "upstream_unavailable"],
    ]);
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 500, heldCents: 0 });
  });
});

describe("a session that ends mid-way", () => {
  it("closes with 4402 when the balance runs out, charging at most the balance", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 3 });
    const session = await openSession(wsUrl(t), bearer(key));
    // 2 cents, then the next response's worst case (1 cent) still fits in 3.
    await respond(session);
    // 4 cents so far: the balance (3) cannot cover that and another response.
    session.send({ type: "response.create" });
    expect(await session.closed).toEqual({ code: 4402, reason: "insufficient_balance" });
    const { row, money } = await settled(accountId, session.requestId);
    expect(money.balanceCents).toBe(0);
    expect(row).toMatchObject({ costCents: 3, errorCode: "insufficient_balance", inputTokens: 2000, outputTokens: 4000 });
    expect(upstream.connections[0]!.socket.readyState).not.toBe(WebSocket.OPEN);
  });

  it("closes with 4401 within about a second when its key is revoked", async () => {
    const { accountId, key, keyId } = await t.createCustomer();
    const session = await openSession(wsUrl(t), bearer(key));
    await respond(session);
    await t.platform.services.keys.revoke(keyId);
    const closed = await Promise.race([session.closed, new Promise((r) => setTimeout(() => r("still open"), 2_000))]);
    expect(closed).toEqual({ code: 4401, reason: "invalid_api_key" });
    const { row } = await settled(accountId, session.requestId);
    expect(row).toMatchObject({ costCents: DEFAULT_RESPONSE_CENTS, errorCode: "invalid_api_key" });
  });

  it("closes with 4403 when its account is suspended", async () => {
    const { accountId, key } = await t.createCustomer();
    const session = await openSession(wsUrl(t), bearer(key));
    await t.platform.services.accounts.setStatus(accountId, "suspended");
    const closed = await Promise.race([session.closed, new Promise((r) => setTimeout(() => r("still open"), 2_000))]);
    expect(closed).toEqual({ code: 4403, reason: "account_suspended" });
    // Nothing was generated: unbilled.
    const { row, money } = await settled(accountId, session.requestId);
    expect(row).toMatchObject({ costCents: 0, errorCode: "account_suspended" });
    expect(money.balanceCents).toBe(500);
  });

  it("closes with 1011 when the upstream drops, billing what was delivered", async () => {
    const { accountId, key } = await t.createCustomer();
    const session = await openSession(wsUrl(t), bearer(key));
    await respond(session);
    upstream.dropAll();
    expect(await session.closed).toEqual({ code: 1011, reason: "upstream_error" });
    const { row, money } = await settled(accountId, session.requestId);
    expect(row).toMatchObject({ status: "failed", httpStatus: 200, errorCode: "upstream_error", costCents: DEFAULT_RESPONSE_CENTS });
    expect(money.balanceCents).toBe(500 - DEFAULT_RESPONSE_CENTS);
  });

  it("bills what was delivered when the client disconnects, releases the hold and gives the stream slot back", async () => {
    const { accountId, key } = await t.createCustomer({ limits: { concurrentStreams: 1 } });
    const session = await openSession(wsUrl(t), bearer(key));
    await respond(session);
    session.socket.terminate();
    const { row, money } = await settled(accountId, session.requestId);
    expect(row).toMatchObject({ status: "cancelled", httpStatus: 499, costCents: DEFAULT_RESPONSE_CENTS });
    expect(money.balanceCents).toBe(500 - DEFAULT_RESPONSE_CENTS);
    await eventually(
      async () => upstream.connections[0]!.socket.readyState,
      (state) => state === WebSocket.CLOSED,
    );
    const again = await openSession(wsUrl(t), bearer(key));
    again.socket.close(1000);
    await again.closed;
  });

  it("closes with 1009 a client frame over the size limit", async () => {
    const small = await startTestPlatform({ models: await realtimeModels(upstream.baseUrl), env: { REALTIME_MAX_FRAME_BYTES: "2048" } });
    try {
      const { key: smallKey } = await small.createCustomer();
      const session = await openSession(wsUrl(small), bearer(smallKey));
      session.socket.send("x".repeat(4096));
      expect((await session.closed).code).toBe(1009);
      const row = await eventually(
        () => requestRow(small.platform.services.db, session.requestId),
        (r) => r !== undefined,
      );
      expect(row).toMatchObject({ costCents: 0, errorCode: "request_too_large" });
    } finally {
      await small.close();
    }
  });
});

describe("time limits and shutdown", () => {
  let timed: TestPlatform;
  const logLines: Array<{ line: Record<string, unknown>; message: string | undefined }> = [];
  const capture = (line: object, message?: string) => void logLines.push({ line: { ...line }, message });
  beforeAll(async () => {
    timed = await startTestPlatform({
      models: await realtimeModels(upstream.baseUrl),
      env: { REALTIME_IDLE_TIMEOUT_MS: "400", REALTIME_MAX_SESSION_MS: "1500" },
      logger: { info: capture, warn: capture, error: capture },
    });
  });
  afterAll(async () => {
    await timed?.close();
  });

  it("closes an idle session with 4408", async () => {
    const { key } = await timed.createCustomer();
    const session = await openSession(wsUrl(timed), bearer(key));
    expect(await session.closed).toEqual({ code: 4408, reason: "idle_timeout" });
  });

  it("closes a busy session at the maximum session time with 4410, billing its responses", async () => {
    const { accountId, key } = await timed.createCustomer();
    const session = await openSession(wsUrl(timed), bearer(key));
    const keepBusy = setInterval(() => session.send({ type: "response.create" }), 100);
    const closed = await session.closed;
    clearInterval(keepBusy);
    expect(closed).toEqual({ code: 4410, reason: "session_time_limit" });
    const responses = session.events.filter((e) => e.type === "response.done").length;
    expect(responses).toBeGreaterThan(0);
    const row = await eventually(
      () => requestRow(timed.platform.services.db, session.requestId),
      (r) => r !== undefined,
    );
    expect(row).toMatchObject({ status: "succeeded", costCents: responses * DEFAULT_RESPONSE_CENTS });
    // One access log line for the whole session, once it has settled.
    const access = await eventually(
      async () => logLines.filter((l) => l.message === "request" && l.line.requestId === session.requestId),
      (lines) => lines.length > 0,
    );
    expect(access).toHaveLength(1);
    expect(access[0]!.line).toMatchObject({
      method: "GET",
      route: "/v1/realtime",
      status: 101,
      accountId,
      model: "rt-model",
      outcome: "succeeded",
      costCents: responses * DEFAULT_RESPONSE_CENTS,
      outputTokens: responses * 2000,
    });
    expect(JSON.stringify(access[0]!.line)).not.toContain(key);
    expect(await moneyState(timed.platform.services.db, accountId)).toMatchObject({ heldCents: 0, balanceCents: 500 - responses * DEFAULT_RESPONSE_CENTS });
  });

  it("closes running sessions with 1012 on SIGTERM's drain, billing what they delivered", async () => {
    const { accountId, key } = await timed.createCustomer();
    const session = await openSession(wsUrl(timed), bearer(key));
    await respond(session);
    await timed.platform.drain(0);
    expect(await session.closed).toEqual({ code: 1012, reason: "server_restarting" });
    const row = await requestRow(timed.platform.services.db, session.requestId);
    expect(row).toMatchObject({ status: "interrupted", costCents: DEFAULT_RESPONSE_CENTS });
    expect(await moneyState(timed.platform.services.db, accountId)).toMatchObject({ heldCents: 0, balanceCents: 500 - DEFAULT_RESPONSE_CENTS });
  });
});

describe("no model offers realtime", () => {
  it("refuses with 404 model_not_found", async () => {
    const plain = await startTestPlatform({
      models: { defaultModel: "sentx-v1", models: [{ id: "sentx-v1", upstreams: [{ provider: "demo" }], capabilities: ["chat", "embeddings"] }] },
    });
    try {
      const { key } = await plain.createCustomer();
      const refused = await refusal(wsUrl(plain), bearer(key));
      expect(refused.status).toBe(404);
      expect(refused.body.error).toMatchObject({ code: "model_not_found", type: "not_found_error", param: "model" });
    } finally {
      await plain.close();
    }
  });
});
