import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../src/domain/logger.js";
import { eventually } from "../support/eventually.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startOwnRedis } from "../support/redis-server.js";

// Production mode with Redis taken away and brought back: the configured
// REDIS_DOWN_POLICY decides, nothing crashes or hangs, and limits come back.

type Warning = { obj: object; msg?: string };

let redis: Awaited<ReturnType<typeof startOwnRedis>>;
let open: TestPlatform;
let closed: TestPlatform;
const warnings: Warning[] = [];
const recordingLogger: Logger = { info() {}, error() {}, warn: (obj, msg) => void warnings.push({ obj, ...(msg && { msg }) }) };

beforeAll(async () => {
  redis = await startOwnRedis();
  const env = (policy: string) => ({ REDIS_URL: redis.url, REDIS_PREFIX: `sentx-test:${randomUUID()}:`, REDIS_DOWN_POLICY: policy });
  [open, closed] = await Promise.all([
    startTestPlatform({ env: env("fail-open"), logger: recordingLogger }),
    startTestPlatform({ env: env("fail-closed") }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([open?.close(), closed?.close()]);
  await redis?.kill();
});

const get = (t: TestPlatform, key: string, path = "/v1/models") => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${key}` } });

/** Status and how long the answer took: "never hangs" is measured, not assumed. */
async function timed(request: Promise<Response>) {
  const started = performance.now();
  const res = await request;
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - started, headers: res.headers };
}

const readiness = async (t: TestPlatform) => {
  const res = await fetch(`${t.url}/readyz`);
  return { status: res.status, body: await res.json() };
};

describe("Redis goes away and comes back", () => {
  it("limits through Redis while it is up, then follows each policy while it is down, then recovers", async () => {
    const openCustomer = await open.createCustomer({ limits: { requestsPerMinute: 3 } });
    const closedCustomer = await closed.createCustomer();
    expect((await timed(get(open, openCustomer.key))).status).toBe(200);
    expect((await timed(get(closed, closedCustomer.key))).status).toBe(200);
    expect(await readiness(open)).toEqual({ status: 200, body: { status: "ready", database: "connected", redis: "connected", scanner: "connected" } });

    await redis.kill();

    // fail-open: served without limits, quickly, with a logged warning; still ready.
    const served = await Promise.all(Array.from({ length: 5 }, () => timed(get(open, openCustomer.key))));
    expect(served.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (const r of served) expect(r.ms).toBeLessThan(2_500);
    expect(warnings.some((w) => w.msg?.includes("fail-open"))).toBe(true);
    const streamed = await timed(
      fetch(`${open.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${openCustomer.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "sentx-v1", stream: true, messages: [{ role: "user", content: "Hi" }] }),
      }),
    );
    expect(streamed.status).toBe(200);
    expect(streamed.body).toContain("[DONE]");
    expect(await readiness(open)).toMatchObject({ status: 200, body: { status: "ready", redis: "unreachable" } });

    // fail-closed: a clear 503 in the OpenAI error shape, quickly; not ready.
    const refused = await timed(get(closed, closedCustomer.key));
    expect(refused.status).toBe(503);
    expect(refused.ms).toBeLessThan(2_500);
    expect(JSON.parse(refused.body)).toEqual({
      error: { message: expect.stringContaining("Rate limiting is unavailable"), type: "server_error", code: "service_unavailable", param: null },
    });
    expect(await readiness(closed)).toMatchObject({ status: 503, body: { status: "unavailable", redis: "unreachable" } });

    // Revoking still takes effect while Redis is down.
    await closed.platform.services.keys.revoke(closedCustomer.keyId);
    expect((await timed(get(closed, closedCustomer.key))).status).toBe(401);

    await redis.start();

    const recovered = await closed.createCustomer();
    const back = await eventually(() => timed(get(closed, recovered.key)), (r) => r.status === 200, 10_000);
    expect(back.status).toBe(200);
    expect(await readiness(closed)).toMatchObject({ status: 200, body: { redis: "connected" } });

    // Limits hold again (the restarted Redis is empty, so a fresh minute begins).
    const limited = await open.createCustomer({ limits: { requestsPerMinute: 2 } });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await timed(get(open, limited.key))).status);
    expect(statuses).toEqual([200, 200, 429]);
  });
});

describe("Redis hangs without closing its connections", () => {
  it("answers within the command timeout instead of waiting on it, and carries on once it answers again", async () => {
    const customer = await open.createCustomer();
    const refusedCustomer = await closed.createCustomer();
    expect((await timed(get(open, customer.key))).status).toBe(200);
    redis.freeze();
    try {
      const [served, refused] = await Promise.all([timed(get(open, customer.key)), timed(get(closed, refusedCustomer.key))]);
      expect(served.status).toBe(200);
      expect(refused.status).toBe(503);
      for (const r of [served, refused]) expect(r.ms).toBeLessThan(3_000);
    } finally {
      redis.thaw();
    }
    const back = await eventually(() => timed(get(closed, refusedCustomer.key)), (r) => r.status === 200, 10_000);
    expect(back.status).toBe(200);
  });
});
