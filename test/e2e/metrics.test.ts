import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { listen, type RunningServer } from "../../src/infra/http-server.js";
import { eventually } from "../support/eventually.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";
import { upstreamModelTable } from "../support/upstream-models.js";

// /metrics scraped around known traffic: every counter moves by exactly what
// was sent, and what it says was billed is what the ledger charged.

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus' text format, as far as a scrape needs: `name{label="value",…} number`, comments skipped. */
function parseExposition(text: string): Sample[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
      if (!match) throw new Error(`not an exposition line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, name, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
        labels[name!] = value!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      }
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** The sum of a metric's samples whose labels include `labels`; 0 when there are none yet. */
const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))
    .reduce((sum, s) => sum + s.value, 0);

let t: TestPlatform;
let upstream: FakeUpstream;
let refusedHost: string;

async function scrape(url = t.url, token: string | null = TEST_OPS_TOKEN): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const table = await upstreamModelTable(upstream.baseUrl);
  refusedHost = table.refusedHost;
  t = await startTestPlatform({ models: table.models });
});
afterAll(async () => {
  await t.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const hello = (model = "sentx-v1") => ({ model, messages: [{ role: "user" as const, content: "Hi" }] });
const chatRoute = (status: number) => ({ method: "POST", route: "/v1/chat/completions", status: String(status) });

describe("/metrics", () => {
  it("wants the ops token on the public port", async () => {
    expect((await fetch(`${t.url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${t.url}/metrics`, { headers: { authorization: "Bearer ops_not_the_token_0123456789" } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: "unauthorized" } });
    await scrape();
  });

  it("counts requests, upstream calls, tokens and cents by exactly the traffic sent", async () => {
    const before = await scrape();
    const customers = await Promise.all([1, 2, 3, 4].map(() => t.createCustomer({ balanceCents: 100 })));
    const [a, b, c, d] = customers;

    const answered: string[] = [];
    const first = await t.openai(a!.key).chat.completions.create(hello());
    const second = await t.openai(b!.key).chat.completions.create(hello());
    const failedOver = await t.openai(c!.key).chat.completions.create(hello("failover-model"));
    answered.push(first._request_id!, second._request_id!, failedOver._request_id!);
    const { data: stream, response } = await t.openai(d!.key).chat.completions.create({ ...hello(), stream: true }).withResponse();
    for await (const _ of stream);
    answered.push(response.headers.get("x-request-id")!);
    await t.openai(a!.key).chat.completions.create({ ...hello(), temperature: 5 }).catch(() => {});
    await new OpenAI({ baseURL: `${t.url}/v1`, apiKey: `sk-${"z".repeat(40)}`, maxRetries: 0 }).chat.completions.create(hello()).catch(() => {});

    // A stream's access line (and its count) comes when its response has closed, just after the client read the end.
    const after = await eventually(scrape, (samples) => total(samples, "sentx_http_requests_total", chatRoute(200)) - total(before, "sentx_http_requests_total", chatRoute(200)) >= 4);
    const moved = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);

    expect(moved("sentx_http_requests_total", chatRoute(200))).toBe(4);
    expect(moved("sentx_http_requests_total", chatRoute(400))).toBe(1);
    expect(moved("sentx_http_requests_total", chatRoute(401))).toBe(1);
    expect(moved("sentx_http_request_duration_seconds_count", chatRoute(200))).toBe(4);
    expect(moved("sentx_http_request_duration_seconds_bucket", { ...chatRoute(200), le: "+Inf" })).toBe(4);
    expect(moved("sentx_http_request_duration_seconds_sum", chatRoute(200))).toBeGreaterThan(0);

    const fakeHost = new URL(upstream.baseUrl).host;
    expect(moved("sentx_upstream_response_seconds_count", { upstream: fakeHost })).toBe(4);
    expect(moved("sentx_upstream_errors_total", { upstream: refusedHost, reason: "transport" })).toBe(1);
    expect(moved("sentx_upstream_errors_total")).toBe(1);

    // Billed is what the ledger charged and the request records hold.
    let chargedCents = 0;
    for (const { accountId } of customers) {
      const money = await moneyState(t.platform.services.db, accountId);
      expect(money.ledgerSumCents).toBe(money.balanceCents);
      chargedCents += 100 - money.balanceCents;
    }
    const rows = await Promise.all(answered.map((id) => requestRow(t.platform.services.db, id)));
    const recordedTokens = (kind: "inputTokens" | "outputTokens") => rows.reduce((sum, row) => sum + row![kind], 0);
    expect(chargedCents).toBe(4);
    expect(moved("sentx_billed_cents_total")).toBe(chargedCents);
    expect(moved("sentx_billed_tokens_total", { kind: "input" })).toBe(recordedTokens("inputTokens"));
    expect(moved("sentx_billed_tokens_total", { kind: "output" })).toBe(recordedTokens("outputTokens"));
    expect(moved("sentx_billed_cents_total", { model: "failover-model" })).toBe(1);

    expect(total(after, "sentx_active_streams")).toBe(0);
    expect(total(after, "sentx_holds_outstanding")).toBe(0);
  });

  it("shows a stream and its hold while it runs, and neither once it has ended", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    upstream.set({ chunkDelayMs: 100 });
    const stream = await t.openai(key).chat.completions.create({ ...hello(), stream: true });
    const chunks = stream[Symbol.asyncIterator]();
    await chunks.next();
    const during = await scrape();
    expect(total(during, "sentx_active_streams")).toBe(1);
    expect(total(during, "sentx_holds_outstanding")).toBe(1);
    while (!(await chunks.next()).done);
    const ended = await eventually(scrape, (samples) => total(samples, "sentx_holds_outstanding") === 0);
    expect(total(ended, "sentx_active_streams")).toBe(0);
    expect(total(ended, "sentx_holds_outstanding")).toBe(0);
  });

  it("reports queue depths and the event loop's lag, and labels nothing by request, account or key", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).chat.completions.create(hello());
    const samples = await scrape();
    expect(samples.filter((s) => s.name === "sentx_queue_jobs").map((s) => s.labels.queue)).toContain("in-process");
    expect(samples.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);
    expect(samples.some((s) => s.name === "nodejs_eventloop_lag_p99_seconds")).toBe(true);
    const labelValues = samples.flatMap((s) => Object.values(s.labels));
    for (const forbidden of [reply._request_id!, accountId, key, key.slice(0, 7)]) expect(labelValues).not.toContain(forbidden);
    expect(labelValues.filter((value) => /^(req|acct)_/.test(value))).toEqual([]);
  });
});

describe("/metrics and the ops API on the admin listener (ADMIN_PORT)", () => {
  let withAdmin: TestPlatform;
  let admin: RunningServer;
  beforeAll(async () => {
    withAdmin = await startTestPlatform({ env: { ADMIN_PORT: "0" } });
    admin = await listen(withAdmin.platform.admin!.fetch, "127.0.0.1", 0);
  });
  afterAll(async () => {
    await admin.close();
    await withAdmin.close();
  });

  it("serves them there, /metrics without a token, and not on the public port", async () => {
    expect((await fetch(`${withAdmin.url}/metrics`, { headers: { authorization: `Bearer ${TEST_OPS_TOKEN}` } })).status).toBe(404);
    expect((await fetch(`${withAdmin.url}/trpc/ledger.verify`, { headers: { authorization: `Bearer ${TEST_OPS_TOKEN}` } })).status).toBe(404);

    const { key } = await withAdmin.createCustomer({ balanceCents: 100 });
    await withAdmin.openai(key).chat.completions.create(hello());
    const samples = await eventually(
      () => scrape(admin.url, null),
      (s) => total(s, "sentx_http_requests_total", chatRoute(200)) === 1,
    );
    expect(total(samples, "sentx_http_requests_total", chatRoute(200))).toBe(1);
    expect(total(samples, "sentx_billed_cents_total", { model: "sentx-v1" })).toBe(1);

    await expect(opsClient(admin.url).ledger.verify.query()).resolves.toBeDefined();
    await expect(opsClient(admin.url, "ops_not_the_token_0123456789").ledger.verify.query()).rejects.toThrow();
  });
});
