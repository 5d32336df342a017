import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/infra/logger.js";
import { eventually } from "../support/eventually.js";
import { FAKE_USAGE, type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";
import { upstreamModelTable } from "../support/upstream-models.js";

// The server's own pino logger (redaction included), writing into memory: one
// access line per request, a warning per upstream failure, and no secret in
// any line, whatever the request did.

type LogLine = Record<string, unknown> & { level: number; msg: string };

const UPSTREAM_API_KEY = "sk-upstream-0123456789abcdefghijklmnopqrstuvwxyz";
const WARN = 40;
const INFO = 30;

let t: TestPlatform;
let upstream: FakeUpstream;
let refusedHost: string;
const written: string[] = [];
const lines = () => written.map((line) => JSON.parse(line) as LogLine);
const customerKeys: string[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const table = await upstreamModelTable(upstream.baseUrl, { apiKey: UPSTREAM_API_KEY });
  refusedHost = table.refusedHost;
  t = await startTestPlatform({
    models: table.models,
    env: { UPSTREAM_MAX_ATTEMPTS: "2" },
    logger: createLogger("info", { write: (line: string) => void written.push(line) }),
  });
});
afterAll(async () => {
  await t.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

async function customer() {
  const created = await t.createCustomer({ balanceCents: 100 });
  customerKeys.push(created.key);
  return created;
}

const hello = (model = "sentx-v1") => ({ model, messages: [{ role: "user" as const, content: "Hi" }] });
const fakeHost = () => new URL(upstream.baseUrl).host;

/** The one access line of a request, once its response has ended (a stream's comes when it closes). */
async function accessLineOf(requestId: string | null | undefined): Promise<LogLine> {
  expect(requestId).toMatch(/\S/);
  const found = await eventually(
    async () => lines().filter((line) => line.msg === "request" && line.requestId === requestId),
    (matches) => matches.length > 0,
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** The error the SDK raised; fails the test if the call succeeded. */
const apiError = (attempt: Promise<unknown>) =>
  attempt.then(
    () => {
      throw new Error("expected a refusal");
    },
    (error: InstanceType<typeof OpenAI.APIError>) => error,
  );

/** The access line of a request `sentx-v1` answered in full from the fake upstream, for `accountId`. */
const answeredInFull = (accountId: string) => ({
  route: "/v1/chat/completions",
  status: 200,
  accountId,
  model: "sentx-v1",
  inputTokens: FAKE_USAGE.prompt_tokens,
  outputTokens: FAKE_USAGE.completion_tokens,
  costCents: 1,
  upstream: fakeHost(),
  attempts: 1,
  outcome: "succeeded",
});

const warningsOf = (requestId: string | null | undefined) => lines().filter((line) => line.level === WARN && line.requestId === requestId);

describe("access log", () => {
  it("logs a completion with who asked, the model, tokens, cost, upstream and attempts", async () => {
    const { accountId, key } = await customer();
    const reply = await t.openai(key).chat.completions.create(hello());
    const line = await accessLineOf(reply._request_id);
    expect(line).toMatchObject({ ...answeredInFull(accountId), level: INFO, method: "POST", keyPrefix: key.slice(0, 7) });
    expect(line.durationMs).toBeGreaterThan(0);
    expect(warningsOf(reply._request_id)).toEqual([]);
  });

  it("logs a refused request: its status, the account when the key was good, and no upstream", async () => {
    const { accountId, key } = await customer();
    const invalid = await apiError(t.openai(key).chat.completions.create({ ...hello(), temperature: 5 }));
    expect(invalid.status).toBe(400);
    expect(await accessLineOf(invalid.requestID)).toMatchObject({
      route: "/v1/chat/completions",
      status: 400,
      accountId,
      keyPrefix: key.slice(0, 7),
      upstream: null,
      attempts: 0,
      costCents: 0,
    });

    const wrongKey = `sk-${"x".repeat(40)}`;
    customerKeys.push(wrongKey);
    const unknown = await apiError(t.openai(wrongKey).models.list());
    expect(unknown.status).toBe(401);
    expect(await accessLineOf(unknown.requestID)).toMatchObject({ method: "GET", route: "/v1/models", status: 401, accountId: null, keyPrefix: null });
  });

  it("logs a stream when it has ended, with its usage and cost", async () => {
    const { accountId, key } = await customer();
    const { data: stream, response } = await t.openai(key).chat.completions.create({ ...hello(), stream: true }).withResponse();
    for await (const _ of stream);
    expect(await accessLineOf(response.headers.get("x-request-id"))).toMatchObject(answeredInFull(accountId));
  });

  it("logs a stream the client left mid-way once its call has settled, with what was billed", async () => {
    const { key } = await customer();
    upstream.set({ chunkDelayMs: 50 });
    const { data: stream, response } = await t.openai(key).chat.completions.create({ ...hello(), stream: true }).withResponse();
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    await chunks.next();
    stream.controller.abort();
    const line = await accessLineOf(response.headers.get("x-request-id"));
    expect(line).toMatchObject({ status: 200, outcome: "cancelled", upstream: fakeHost(), attempts: 1 });
    expect(line.outputTokens).toBeGreaterThan(0);
    expect(line.costCents).toBeGreaterThan(0);
    expect(line).not.toHaveProperty("settling");
  });

  it("logs each failed upstream attempt as a warning, and the failover's attempts on the access line", async () => {
    const { key } = await customer();
    const reply = await t.openai(key).chat.completions.create(hello("failover-model"));
    expect(await accessLineOf(reply._request_id)).toMatchObject({ status: 200, model: "failover-model", upstream: fakeHost(), attempts: 2 });
    expect(warningsOf(reply._request_id)).toEqual([
      expect.objectContaining({
        msg: "upstream call failed; failing over to the next upstream",
        model: "failover-model",
        upstream: refusedHost,
        attempt: 1,
        reason: "transport",
        next: fakeHost(),
      }),
    ]);
  });

  it("warns of an upstream 500 that a retry got past", async () => {
    const { key } = await customer();
    upstream.failNext(500, 1);
    const reply = await t.openai(key).chat.completions.create(hello());
    expect(await accessLineOf(reply._request_id)).toMatchObject({ status: 200, upstream: fakeHost(), attempts: 2 });
    expect(warningsOf(reply._request_id)).toEqual([
      expect.objectContaining({ msg: "upstream call failed; retrying after a backoff", upstream: fakeHost(), reason: "http_5xx", attempt: 1 }),
    ]);
  });

  it("warns of every attempt in a total outage, and logs the 503", async () => {
    const { key } = await customer();
    const failure = await apiError(t.openai(key).chat.completions.create(hello("down-model")));
    expect(failure.status).toBe(503);
    expect(await accessLineOf(failure.requestID)).toMatchObject({
      status: 503,
      model: "down-model",
      upstream: null,
      attempts: 2,
      costCents: 0,
      outcome: "failed",
    });
    expect(warningsOf(failure.requestID).map((line) => [line.msg, line.attempt, line.upstream])).toEqual([
      ["upstream call failed; retrying after a backoff", 1, refusedHost],
      ["upstream call failed; no attempts left", 2, refusedHost],
    ]);
  });

  it("warns of an upstream that breaks off mid-stream, and logs what was billed", async () => {
    const { key } = await customer();
    upstream.set({ dieAfterChunks: 2, usage: null });
    const { data: stream, response } = await t.openai(key).chat.completions.create({ ...hello(), stream: true }).withResponse();
    await expect(async () => {
      for await (const _ of stream);
    }).rejects.toThrow();
    const requestId = response.headers.get("x-request-id");
    const line = await accessLineOf(requestId);
    expect(line).toMatchObject({ status: 200, upstream: fakeHost(), attempts: 1, outcome: "failed" });
    expect(line.outputTokens).toBeGreaterThan(0);
    expect(line.costCents).toBeGreaterThan(0);
    expect(warningsOf(requestId)).toEqual([
      expect.objectContaining({ msg: "upstream failed after it began answering", upstream: fakeHost(), reason: "transport" }),
    ]);
  });

  it("never writes a secret: API keys, the ops token, Authorization headers, the upstream's key", async () => {
    const { key } = await customer();
    // An upstream that echoes its own key in an error, as some do.
    upstream.failNext(401, 1, `Invalid API key ${UPSTREAM_API_KEY} (Authorization: Bearer ${UPSTREAM_API_KEY})`);
    await t.openai(key).chat.completions.create(hello()).catch(() => {});
    await opsClient(t.url).ledger.verify.query();
    await opsClient(t.url, `ops_wrong_${"y".repeat(30)}`).ledger.verify.query().catch(() => {});
    const scrape = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TEST_OPS_TOKEN}` } });
    expect(scrape.status).toBe(200);
    await eventually(async () => lines().filter((line) => line.route === "/trpc/*"), (ops) => ops.length >= 2);

    expect(written.length).toBeGreaterThan(10);
    const secrets = [...customerKeys, TEST_OPS_TOKEN, UPSTREAM_API_KEY, `ops_wrong_${"y".repeat(30)}`];
    for (const line of written) {
      for (const secret of secrets) expect(line).not.toContain(secret);
      expect(line).not.toMatch(/Bearer\s+(?!\[redacted\])/i);
    }
  });
});
