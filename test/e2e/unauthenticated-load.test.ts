import { randomUUID } from "node:crypto";
import postgres from "postgres";
import { Agent, fetch as fetchVia } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBase62 } from "../../src/domain/ids.js";
import { testEnv } from "../support/env.js";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";

// SPEC 4 under load from callers without a valid secret: an unknown key costs
// the database one query per few seconds, not one per request, and an address
// that keeps failing to authenticate (API keys on /v1, the ops token on /trpc)
// is refused with 429 before its credentials are looked at.

const FAILURES_PER_MINUTE = 3;

// Linux routes all of 127/8 to loopback: each address below is a client of its own.
const agents = new Map<string, Agent>();
const from = (address: string) => {
  if (!agents.has(address)) agents.set(address, new Agent({ localAddress: address }));
  return agents.get(address)!;
};

const unknownKey = () => `sk-${randomBase62(48)}`;

async function call(t: TestPlatform, path: string, options: { address: string; secret: string; headers?: Record<string, string>; timeoutMs?: number }) {
  const res = await fetchVia(`${t.url}${path}`, {
    headers: { authorization: `Bearer ${options.secret}`, ...options.headers },
    dispatcher: from(options.address),
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const models = (t: TestPlatform, address: string, secret: string, timeoutMs?: number) =>
  call(t, "/v1/models", { address, secret, ...(timeoutMs && { timeoutMs }) });
const opsQuery = (t: TestPlatform, address: string, secret: string) => call(t, "/trpc/ledger.verify", { address, secret });

/** Holds an exclusive lock on api_keys: any key lookup that reaches the database waits until released. */
async function lockApiKeys(databaseUrl: string): Promise<() => Promise<void>> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const connection = await sql.reserve();
  await connection`begin`;
  await connection`lock table api_keys in access exclusive mode`;
  return async () => {
    await connection`rollback`;
    connection.release();
    await sql.end({ timeout: 5 });
  };
}

/** Settles to the status, or to "no answer" when the request outlived its timeout. */
const statusOrTimeout = (attempt: Promise<{ status: number }>) => attempt.then((r) => r.status, () => "no answer" as const);

afterAll(async () => {
  await Promise.all([...agents.values()].map((agent) => agent.close()));
});

describe.each([
  ["in-process limits", {}],
  ["limits in Redis", { REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `sentx-test:${randomUUID()}:` }],
])("failed authentication per client address (%s)", (_label, env: Record<string, string>) => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform({ env: { ...env, AUTH_FAILURES_PER_MINUTE: String(FAILURES_PER_MINUTE) } });
  });
  afterAll(() => t?.close());

  it("answers 401 up to the limit, then 429 with Retry-After to every key from that address, valid ones included", async () => {
    const { key } = await t.createCustomer();
    const attacker = "127.0.0.11";
    for (let i = 0; i < FAILURES_PER_MINUTE; i++) expect((await models(t, attacker, unknownKey())).status).toBe(401);

    const refused = await models(t, attacker, unknownKey());
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(59);
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(refused.body).toEqual({
      error: { message: expect.stringContaining("failed authentication"), type: "rate_limit_error", code: "rate_limit_exceeded", param: null },
    });
    // A right guess from a refused address is refused too, so guessing gains nothing.
    expect((await models(t, attacker, key)).status).toBe(429);

    const neighbour = "127.0.0.12";
    expect((await models(t, neighbour, key)).status).toBe(200);
    expect((await models(t, neighbour, unknownKey())).status).toBe(401);
  });

  it("refuses a throttled address without a database query: 200 more bad keys are answered while api_keys is locked", async () => {
    const attacker = "127.0.0.13";
    for (let i = 0; i < FAILURES_PER_MINUTE; i++) expect((await models(t, attacker, unknownKey())).status).toBe(401);
    const unlock = await lockApiKeys(t.database.url);
    try {
      const statuses = await Promise.all(Array.from({ length: 200 }, () => statusOrTimeout(models(t, attacker, unknownKey(), 3_000))));
      expect(new Set(statuses)).toEqual(new Set([429]));
    } finally {
      await unlock();
    }
  });

  it("counts wrong ops tokens on /trpc against the same limit, and then refuses the right one from that address", async () => {
    const attacker = "127.0.0.14";
    for (let i = 0; i < FAILURES_PER_MINUTE; i++) {
      const wrong = await opsQuery(t, attacker, `ops_wrong_${randomBase62(24)}`);
      expect(wrong.status).toBe(401);
    }
    const refused = await opsQuery(t, attacker, `ops_wrong_${randomBase62(24)}`);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(59);
    expect(refused.body).toMatchObject({
      error: {
        message: expect.stringContaining("failed authentication"),
        data: { code: "TOO_MANY_REQUESTS", httpStatus: 429, domainCode: "rate_limit_exceeded" },
      },
    });
    expect((await opsQuery(t, attacker, TEST_OPS_TOKEN)).status).toBe(429);
    expect((await opsQuery(t, "127.0.0.15", TEST_OPS_TOKEN)).status).toBe(200);
  });

  it("does not let a client pick its address with X-Forwarded-For when no proxy is trusted", async () => {
    const attacker = "127.0.0.16";
    const statuses = [];
    for (let i = 0; i <= FAILURES_PER_MINUTE; i++) {
      const spoofed = { "x-forwarded-for": `203.0.113.${i + 1}` };
      statuses.push((await call(t, "/v1/models", { address: attacker, secret: unknownKey(), headers: spoofed })).status);
    }
    expect(statuses).toEqual([...Array(FAILURES_PER_MINUTE).fill(401), 429]);
  });
});

describe("behind a trusted proxy (TRUSTED_PROXY_HOPS=1)", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform({ env: { AUTH_FAILURES_PER_MINUTE: String(FAILURES_PER_MINUTE), TRUSTED_PROXY_HOPS: "1" } });
  });
  afterAll(() => t?.close());

  it("limits the client the proxy names, not the proxy, and ignores what the client wrote before it", async () => {
    const proxy = "127.0.0.21";
    const through = (client: string, spoofed = "") =>
      call(t, "/v1/models", { address: proxy, secret: unknownKey(), headers: { "x-forwarded-for": `${spoofed}${client}` } }).then((r) => r.status);
    const statuses = [];
    for (let i = 0; i <= FAILURES_PER_MINUTE; i++) statuses.push(await through("198.51.100.7", `203.0.113.${i + 1}, `));
    expect(statuses).toEqual([...Array(FAILURES_PER_MINUTE).fill(401), 429]);
    // Another client behind the same proxy is not refused for the first one's failures.
    expect(await through("198.51.100.8")).toBe(401);
  });
});

describe("unknown keys", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(() => t?.close());

  it("are looked up once, then answered from memory for a few seconds without the database", async () => {
    const client = "127.0.0.31";
    const key = unknownKey();
    expect((await models(t, client, key)).status).toBe(401);

    const unlock = await lockApiKeys(t.database.url);
    try {
      const started = performance.now();
      const again = await models(t, client, key, 2_000);
      expect(again.status).toBe(401);
      expect(again.body).toMatchObject({ error: { code: "invalid_api_key", type: "authentication_error" } });
      expect(performance.now() - started).toBeLessThan(1_000);

      // Control: a key never seen before does reach the (locked) database.
      expect(await statusOrTimeout(models(t, client, unknownKey(), 1_000))).toBe("no answer");

      // "A few seconds": after them, the same key is looked up again.
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      expect(await statusOrTimeout(models(t, client, key, 1_000))).toBe("no answer");
    } finally {
      await unlock();
    }
  }, 20_000);
});
