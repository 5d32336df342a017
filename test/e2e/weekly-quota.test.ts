import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/domain/logger.js";
import { listen } from "../../src/infra/http-server.js";
import { createPlatform, type Platform } from "../../src/platform.js";
import { offsetClock } from "../support/clock.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { domainCode, opsClient } from "../support/ops-client.js";
import { moneyState, requestRow } from "../support/queries.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";

// SPEC 10: plans with weekly chat quotas, through the official SDK against the
// real server (demo model), the ops API, and a second server instance on the
// same database.

const clock = offsetClock();
// A Wednesday noon (UTC): its week began Monday 2027-03-01 and ends Monday 2027-03-08.
const WEDNESDAY = new Date("2027-03-03T12:00:00Z");
const NEXT_MONDAY = new Date("2027-03-08T00:00:00Z");
const unixSeconds = (at: Date) => String(at.getTime() / 1000);

let t: TestPlatform;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  t = await startTestPlatform({
    clock,
    env: { UPSTREAM_MAX_ATTEMPTS: "1" },
    models: {
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [{ provider: "demo" }] },
        { id: "upstream-model", upstreams: [{ provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "llm", timeoutMs: 5000 }] },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await upstream?.close();
});
beforeEach(() => {
  clock.set(WEDNESDAY);
  upstream.reset();
});

const ops = () => opsClient(t.url);
const db = () => t.platform.services.db;
const hello = { model: "sentx-v1", messages: [{ role: "user" as const, content: "Hi" }] };
// Far above what a test sends in a minute: only the weekly quota is under test here.
const roomyLimits = { requestsPerMinute: 10_000 };

/** An account on `plan` with `balanceCents` of credit and a key. */
async function customer(plan: "free" | "core" | "pro" | "payg", balanceCents = 0) {
  const created = await t.createCustomer({ balanceCents, limits: roomyLimits });
  if (plan !== "payg") await ops().accounts.setPlan.mutate({ accountId: created.accountId, plan });
  return { ...created, client: t.openai(created.key) };
}

const weeklyHeaders = (headers: Headers) => ({
  limit: headers.get("x-weekly-chats-limit"),
  remaining: headers.get("x-weekly-chats-remaining"),
  reset: headers.get("x-weekly-chats-reset"),
});

const chatOnce = (client: OpenAI, body: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}) =>
  client.chat.completions.create({ ...hello, ...body }).withResponse();

/** The SDK's error for a call expected to fail. */
async function failure(attempt: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await attempt;
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}

/** Runs `count` chats one after another, each covered by the plan. */
async function useChats(client: OpenAI, count: number) {
  for (let i = 0; i < count; i++) await client.chat.completions.create(hello);
}

const quota = (accountId: string) => ops().plans.weeklyQuota.query({ accountId });

describe("a Free account with no credits", () => {
  let free: Awaited<ReturnType<typeof customer>>;

  it("takes its plan on the very next request, then chats 50 times covered: no debit, cost 0, the headers counting down", async () => {
    free = await customer("payg");
    // As pay-as-you-go with $0 it cannot chat; the refusal also puts the key and account in the instance's cache.
    const payg = await failure(free.client.chat.completions.create(hello));
    expect({ status: payg.status, code: payg.code }).toEqual({ status: 402, code: "insufficient_balance" });
    expect(payg.headers?.get("x-weekly-chats-limit")).toBeNull();

    await ops().accounts.setPlan.mutate({ accountId: free.accountId, plan: "free" });
    for (let i = 1; i <= 50; i++) {
      const { data, response } = await chatOnce(free.client);
      expect(data.choices[0]!.message.content).toBeTruthy();
      expect(weeklyHeaders(response.headers)).toEqual({ limit: "50", remaining: String(50 - i), reset: unixSeconds(NEXT_MONDAY) });
      if (i === 50) {
        const record = await requestRow(db(), response.headers.get("x-request-id")!);
        expect(record).toMatchObject({ status: "succeeded", costCents: 0 });
        expect(record!.outputTokens).toBeGreaterThan(0);
      }
    }
    const money = await moneyState(db(), free.accountId);
    expect(money).toMatchObject({ balanceCents: 0, heldCents: 0, ledgerSumCents: 0, usageEntries: [] });
    expect(await quota(free.accountId)).toEqual({
      plan: "free",
      weekStart: "2027-03-01T00:00:00.000Z",
      weekEndsAt: "2027-03-08T00:00:00.000Z",
      allowance: 50,
      used: 50,
      boosts: 0,
      remaining: 0,
    });
  });

  it("refuses the 51st with 429 weekly_quota_exceeded, saying why and when the week resets, with Retry-After and the headers", async () => {
    const refused = await failure(free.client.chat.completions.create(hello));
    expect({ status: refused.status, code: refused.code, type: refused.type }).toEqual({
      status: 429,
      code: "weekly_quota_exceeded",
      type: "rate_limit_error",
    });
    expect(refused.message).toContain("weekly allowance of 50 chats is used up");
    expect(refused.message).toContain("balance is too low to pay");
    expect(refused.message).toContain("2027-03-08T00:00:00Z");
    const untilMonday = (NEXT_MONDAY.getTime() - WEDNESDAY.getTime()) / 1000;
    const retryAfter = Number(refused.headers!.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(untilMonday - 60);
    expect(retryAfter).toBeLessThanOrEqual(untilMonday);
    expect(weeklyHeaders(refused.headers!)).toEqual({ limit: "50", remaining: "0", reset: unixSeconds(NEXT_MONDAY) });
    // Streamed, the same refusal before any byte of an answer.
    const streamed = await failure(free.client.chat.completions.create({ ...hello, stream: true }));
    expect({ status: streamed.status, code: streamed.code }).toEqual({ status: 429, code: "weekly_quota_exceeded" });
    expect((await quota(free.accountId)).used).toBe(50);
  });

  it("once it has credits, pays the 51st as overflow at the SPEC 5 price, and the usage still says the allowance is used", async () => {
    await ops().credits.grant.mutate({ accountId: free.accountId, amountCents: 1_000, idempotencyKey: "overflow-credit" });
    const { data, response } = await chatOnce(free.client);
    expect(weeklyHeaders(response.headers)).toEqual({ limit: "50", remaining: "0", reset: unixSeconds(NEXT_MONDAY) });
    const record = await requestRow(db(), response.headers.get("x-request-id")!);
    const expected = Math.max(1, Math.round((data.usage!.prompt_tokens * 300 + data.usage!.completion_tokens * 1_000) / 1_000_000));
    expect(record).toMatchObject({ status: "succeeded", costCents: expected });
    const money = await moneyState(db(), free.accountId);
    expect(money.usageEntries.map((e) => e.amountCents)).toEqual([-expected]);
    expect(money).toMatchObject({ balanceCents: 1_000 - expected, ledgerSumCents: 1_000 - expected, heldCents: 0 });
    expect(await quota(free.accountId)).toMatchObject({ used: 50, remaining: 0 });
  });

  it("buys a Weekly Boost once per key: 500 more chats this week for one debit of 500 cents", async () => {
    const before = (await moneyState(db(), free.accountId)).balanceCents;
    const first = await ops().plans.buyWeeklyBoost.mutate({ accountId: free.accountId, idempotencyKey: "boost-1" });
    const again = await ops().plans.buyWeeklyBoost.mutate({ accountId: free.accountId, idempotencyKey: "boost-1" });
    expect(first).toMatchObject({
      duplicate: false,
      boost: { chats: 500, priceCents: 500, weekStart: "2027-03-01T00:00:00.000Z", weekEndsAt: "2027-03-08T00:00:00.000Z" },
      quota: { allowance: 550, used: 50, boosts: 1, remaining: 500 },
    });
    expect(again).toMatchObject({ duplicate: true, boost: first.boost, quota: { allowance: 550, boosts: 1 } });

    const money = await moneyState(db(), free.accountId);
    expect(money.balanceCents).toBe(before - 500);
    expect(money.ledgerSumCents).toBe(money.balanceCents);
    const boosts = (await ops().ledger.list.query({ accountId: free.accountId })).filter((e) => e.kind === "boost");
    expect(boosts).toEqual([expect.objectContaining({ id: first.boost.ledgerEntryId, amountCents: -500 })]);
    expect(await ops().ledger.verify.query({ accountId: free.accountId })).toEqual({ ok: true, mismatches: [] });

    // The boost's chats are covered again, streamed too: no debit.
    const stream = await free.client.chat.completions.create({ ...hello, stream: true }).withResponse();
    for await (const _chunk of stream.data);
    expect(weeklyHeaders(stream.response.headers)).toEqual({ limit: "550", remaining: "499", reset: unixSeconds(NEXT_MONDAY) });
    expect((await moneyState(db(), free.accountId)).balanceCents).toBe(before - 500);
    expect(await quota(free.accountId)).toMatchObject({ used: 51, remaining: 499 });
  });

  it("refuses a boost without 500 cents available (402), and on a plan with nothing to boost (400), debiting nothing", async () => {
    const broke = await customer("free", 499);
    const refused = await ops().plans.buyWeeklyBoost.mutate({ accountId: broke.accountId, idempotencyKey: "k" }).catch((e: unknown) => e);
    expect(domainCode(refused)).toBe("insufficient_balance");
    expect((refused as { data: { httpStatus: number } }).data.httpStatus).toBe(402);

    for (const plan of ["payg", "pro"] as const) {
      const rich = await customer(plan, 5_000);
      const error = await ops().plans.buyWeeklyBoost.mutate({ accountId: rich.accountId, idempotencyKey: "k" }).catch((e: unknown) => e);
      expect((error as { data: { httpStatus: number } }).data.httpStatus).toBe(400);
      expect((error as Error).message).toMatch(/Nothing to boost/);
      expect((await moneyState(db(), rich.accountId)).balanceCents).toBe(5_000);
    }
    expect((await moneyState(db(), broke.accountId)).balanceCents).toBe(499);
    expect(await quota(broke.accountId)).toMatchObject({ allowance: 50, boosts: 0 });
  });
});

describe("plans", () => {
  it("accepts only the seven plan names", async () => {
    const { accountId } = await customer("payg");
    const refused = await ops().accounts.setPlan.mutate({ accountId, plan: "gold" as "pro" }).catch((e: unknown) => e);
    expect((refused as { data: { httpStatus: number; param: string } }).data).toMatchObject({ httpStatus: 400, param: "plan" });
    for (const plan of ["free", "core", "plus", "pro", "teams", "enterprise", "payg"] as const) {
      expect(await ops().accounts.setPlan.mutate({ accountId, plan })).toMatchObject({ plan });
    }
  });

  it("never limits an unlimited plan: chats covered with no balance and no headers; the week still counts them", async () => {
    const pro = await customer("pro");
    for (let i = 0; i < 3; i++) {
      const { response } = await chatOnce(pro.client);
      expect(weeklyHeaders(response.headers)).toEqual({ limit: null, remaining: null, reset: null });
    }
    expect(await moneyState(db(), pro.accountId)).toMatchObject({ balanceCents: 0, usageEntries: [] });
    expect(await quota(pro.accountId)).toMatchObject({ plan: "pro", allowance: null, used: 3, remaining: null });
  });

  it("never limits pay-as-you-go: every chat billed, no headers, and 402 (not 429) without balance", async () => {
    const payg = await customer("payg", 100);
    const { response } = await chatOnce(payg.client);
    expect(weeklyHeaders(response.headers)).toEqual({ limit: null, remaining: null, reset: null });
    expect((await moneyState(db(), payg.accountId)).usageEntries).toHaveLength(1);
    expect(await quota(payg.accountId)).toMatchObject({ plan: "payg", allowance: null, used: 0, remaining: null });

    const broke = await customer("payg", 0);
    const refused = await failure(broke.client.chat.completions.create(hello));
    expect({ status: refused.status, code: refused.code }).toEqual({ status: 402, code: "insufficient_balance" });
    expect(refused.headers?.get("x-weekly-chats-limit")).toBeNull();
  });

  it("a Core account's week allows 500", async () => {
    const core = await customer("core");
    const { response } = await chatOnce(core.client);
    expect(weeklyHeaders(response.headers)).toMatchObject({ limit: "500", remaining: "499" });
  });
});

describe("the week", () => {
  it("is used up on Sunday 23:59 UTC and comes back at Monday 00:00 UTC", async () => {
    const sunday = new Date("2027-03-14T23:59:00Z");
    const monday = new Date("2027-03-15T00:00:00Z");
    clock.set(sunday);
    const free = await customer("free");
    await useChats(free.client, 50);
    const refused = await failure(free.client.chat.completions.create(hello));
    expect(refused.code).toBe("weekly_quota_exceeded");
    expect(Number(refused.headers!.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(refused.headers!.get("x-weekly-chats-reset")).toBe(unixSeconds(monday));

    clock.set(monday);
    const { response } = await chatOnce(free.client);
    expect(weeklyHeaders(response.headers)).toEqual({ limit: "50", remaining: "49", reset: unixSeconds(new Date("2027-03-22T00:00:00Z")) });
    expect(await quota(free.accountId)).toMatchObject({ weekStart: monday.toISOString(), used: 1, remaining: 49 });
    expect(await moneyState(db(), free.accountId)).toMatchObject({ balanceCents: 0, usageEntries: [] });
  });
});

describe("what counts as a chat", () => {
  it("gives the chat back when the upstream fails before any output, streamed or not", async () => {
    const free = await customer("free");
    upstream.failNext(500, 2);
    const plain = await failure(free.client.chat.completions.create({ ...hello, model: "upstream-model" }));
    expect(plain.status).toBe(503);
    const streamed = await failure(free.client.chat.completions.create({ ...hello, model: "upstream-model", stream: true }));
    expect(streamed.status).toBe(503);
    expect(await quota(free.accountId)).toMatchObject({ used: 0, remaining: 50 });

    const { response } = await chatOnce(free.client, { model: "upstream-model" });
    expect(weeklyHeaders(response.headers)).toMatchObject({ remaining: "49" });
    expect(await quota(free.accountId)).toMatchObject({ used: 1, remaining: 49 });
  });

  it("counts a stream that broke after output began (billable), charging nothing for it", async () => {
    const free = await customer("free");
    upstream.set({ dieAfterChunks: 2 });
    const stream = await free.client.chat.completions.create({ ...hello, model: "upstream-model", stream: true });
    const broke = await (async () => {
      for await (const _chunk of stream);
    })().then(
      () => null,
      (error: unknown) => error,
    );
    expect(broke).toBeInstanceOf(Error);
    await expect.poll(() => quota(free.accountId)).toMatchObject({ used: 1, remaining: 49 });
    expect(await moneyState(db(), free.accountId)).toMatchObject({ balanceCents: 0, heldCents: 0, usageEntries: [] });
  });

  it("settles a crashed chat through the sweeper exactly as a settle would, and a late settle counts nothing more", async () => {
    const free = await customer("free");
    const { billing } = t.platform.services;
    const reserve = (requestId: string) =>
      billing.reserveHold({
        accountId: free.accountId,
        requestId,
        pricing: { inputCentsPerMillion: 300, outputCentsPerMillion: 1_000 },
        inputTokens: 10,
        requestedMaxTokens: 100,
        request: { apiKeyId: free.keyId, endpoint: "/v1/chat/completions", model: "sentx-v1", stream: true, identity: {} },
        weeklyChat: true,
      });
    const silent = `req_crashsilent${Date.now()}`;
    const spoke = `req_crashspoke${Date.now()}`;
    expect(await reserve(silent)).toMatchObject({ covered: true, amountCents: 0, weeklyChats: { limit: 50, remaining: 49 } });
    expect(await reserve(spoke)).toMatchObject({ covered: true, amountCents: 0, weeklyChats: { limit: 50, remaining: 48 } });
    // A retried reserve of the same request takes no second chat.
    expect(await reserve(spoke)).toMatchObject({ covered: true, weeklyChats: { remaining: 48 } });
    await billing.checkpoint([{ requestId: spoke, inputTokens: 10, outputTokens: 5, costCents: 1 }]);

    // The process "died": past the holds' expiry, the sweeper ends both.
    clock.set(new Date(WEDNESDAY.getTime() + 24 * 60 * 60 * 1000));
    await billing.settleAbandonedHolds();
    expect(await quota(free.accountId)).toMatchObject({ used: 1, remaining: 49 });
    expect(await requestRow(db(), spoke)).toMatchObject({ status: "interrupted", costCents: 0, outputTokens: 5 });

    const ending = { status: "succeeded" as const, httpStatus: 200, errorCode: null, inputTokens: 10, outputTokens: 5 };
    expect(await billing.settleHold({ requestId: spoke, costCents: 1, ending })).toEqual({ chargedCents: 0, settledNow: false, endedBySweeper: true });
    expect(await quota(free.accountId)).toMatchObject({ used: 1, remaining: 49 });
    expect(await moneyState(db(), free.accountId)).toMatchObject({ balanceCents: 0, heldCents: 0, usageEntries: [] });
  });
});

describe("two server instances on one database", () => {
  let b: { platform: Platform; url: string; close(): Promise<void> };

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sentx-test-"));
    const platform = await createPlatform(
      loadConfig({ DATABASE_URL: t.database.url, DATA_DIR: dataDir, OPS_TOKEN: TEST_OPS_TOKEN, LOG_LEVEL: "silent", SENTX_BOOTSTRAP: "off" }),
      { clock, logger: silentLogger },
    );
    const server = await listen(platform.fetch, "127.0.0.1", 0);
    b = {
      platform,
      url: server.url,
      async close() {
        await server.close();
        await platform.close();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  });
  afterAll(() => b?.close());

  /** 10 chats at once, alternating between the two instances. */
  async function tenAtOnce(key: string) {
    const clients = [t.openai(key), new OpenAI({ baseURL: `${b.url}/v1`, apiKey: key, maxRetries: 0 })];
    return Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        clients[i % 2]!.chat.completions
          .create(hello)
          .withResponse()
          .then(
            ({ response }) => ({ status: 200, requestId: response.headers.get("x-request-id")! }),
            (error: InstanceType<typeof OpenAI.APIError>) => ({ status: error.status, code: error.code }),
          ),
      ),
    );
  }

  it("covers exactly the 3 chats left of 10 concurrent ones, and refuses the other 7 with 429", async () => {
    const free = await customer("free");
    await useChats(free.client, 47);
    const results = await tenAtOnce(free.key);
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429 && "code" in r && r.code === "weekly_quota_exceeded")).toHaveLength(7);
    expect(await quota(free.accountId)).toMatchObject({ used: 50, remaining: 0 });
    expect(await moneyState(db(), free.accountId)).toMatchObject({ balanceCents: 0, heldCents: 0, usageEntries: [] });
  });

  it("with credits, covers exactly 3 and bills the other 7 as overflow", async () => {
    const free = await customer("free", 1_000);
    await useChats(free.client, 47);
    const results = await tenAtOnce(free.key);
    expect(results.every((r) => r.status === 200)).toBe(true);
    const costs = await Promise.all(results.map(async (r) => (await requestRow(db(), (r as { requestId: string }).requestId))!.costCents));
    expect(costs.filter((c) => c === 0)).toHaveLength(3);
    expect(costs.filter((c) => c > 0)).toHaveLength(7);
    const money = await moneyState(db(), free.accountId);
    expect(money.usageEntries).toHaveLength(7);
    expect(money.balanceCents).toBe(1_000 - costs.reduce((sum, c) => sum + c, 0));
    expect(money.ledgerSumCents).toBe(money.balanceCents);
    expect(await quota(free.accountId)).toMatchObject({ used: 50, remaining: 0 });
  });
});
