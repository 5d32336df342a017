import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startOwnRedis } from "../support/redis-server.js";

// /readyz tells a load balancer whether this instance would serve requests:
// with REDIS_DOWN_POLICY=fail-closed, a Redis that keeps its connections open
// but answers nothing (SIGSTOP) means every call gets 503, so the instance is
// not ready. Probes are answered from one check for about a second.

let redis: Awaited<ReturnType<typeof startOwnRedis>>;
let closed: TestPlatform;
let open: TestPlatform;

beforeAll(async () => {
  redis = await startOwnRedis();
  const env = (policy: string) => ({ REDIS_URL: redis.url, REDIS_PREFIX: `sentx-test:${randomUUID()}:`, REDIS_DOWN_POLICY: policy });
  [closed, open] = await Promise.all([startTestPlatform({ env: env("fail-closed") }), startTestPlatform({ env: env("fail-open") })]);
}, 60_000);

afterAll(async () => {
  redis?.thaw();
  await Promise.all([closed?.close(), open?.close()]);
  await redis?.kill();
});

const readiness = async (t: TestPlatform) => {
  const res = await fetch(`${t.url}/readyz`);
  return { status: res.status, body: await res.json() };
};

const ready = { status: 200, body: { status: "ready", database: "connected", redis: "connected", scanner: "connected" } };

describe("readiness while Redis is frozen", () => {
  it("is 503 on a fail-closed instance, as its requests are; the answer is reused for about a second; ready again once Redis answers", async () => {
    const customer = await closed.createCustomer();
    expect(await readiness(closed)).toEqual(ready);

    redis.freeze();
    let thawedAt: number;
    try {
      const request = await fetch(`${closed.url}/v1/models`, { headers: { authorization: `Bearer ${customer.key}` } });
      expect(request.status).toBe(503);
      const frozen = await eventually(() => readiness(closed), (r) => r.status === 503, 5_000);
      expect(frozen).toEqual({ status: 503, body: { status: "unavailable", database: "connected", redis: "unreachable", scanner: "connected" } });
    } finally {
      redis.thaw();
      thawedAt = performance.now();
    }

    // Redis answers again at once, but the probe just made still stands.
    expect((await readiness(closed)).status).toBe(503);
    const back = await eventually(() => readiness(closed), (r) => r.status === 200, 5_000);
    expect(back).toEqual(ready);
    expect(performance.now() - thawedAt).toBeLessThan(3_000);
  });

  it("stays 200 on a fail-open instance, which serves without limits, and says Redis is unreachable", async () => {
    expect(await readiness(open)).toEqual(ready);
    redis.freeze();
    try {
      const frozen = await eventually(() => readiness(open), (r) => r.body.redis === "unreachable", 5_000);
      expect(frozen).toEqual({ status: 200, body: { status: "ready", database: "connected", redis: "unreachable", scanner: "connected" } });
    } finally {
      redis.thaw();
    }
    expect(await eventually(() => readiness(open), (r) => r.body.redis === "connected", 5_000)).toEqual(ready);
  });
});
