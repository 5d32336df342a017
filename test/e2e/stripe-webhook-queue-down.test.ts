import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startOwnRedis } from "../support/redis-server.js";
import { deliver, STRIPE_TEST_ENV, stripeEvent } from "../support/stripe-stand-in.js";

// A verified event the queue cannot take is not acknowledged: Stripe sends it again later.

let t: TestPlatform;
let redis: Awaited<ReturnType<typeof startOwnRedis>>;

beforeAll(async () => {
  redis = await startOwnRedis();
  t = await startTestPlatform({ env: { ...STRIPE_TEST_ENV, REDIS_URL: redis.url, REDIS_PREFIX: `sentx-test-${randomUUID()}:` } });
});
afterAll(async () => {
  await t?.close();
  await redis?.kill().catch(() => {});
});

it("answers 503 within seconds when Redis is gone, so Stripe retries", async () => {
  await redis.kill();
  const startedAt = Date.now();
  const answer = await deliver(t.url, stripeEvent("checkout.session.completed", { id: "cs_test_any", object: "checkout.session" }));
  expect(answer.status).toBe(503);
  expect(answer.body.error).toMatchObject({ code: "service_unavailable", type: "server_error" });
  expect(Date.now() - startedAt).toBeLessThan(10_000);
}, 30_000);

it("takes both Stripe secrets or neither, in their own formats", () => {
  const base = { DATA_DIR: "/tmp/sentx-config-test" };
  expect(loadConfig(base).stripe).toBeNull();
  expect(() => loadConfig({ ...base, STRIPE_SECRET_KEY: STRIPE_TEST_ENV.STRIPE_SECRET_KEY })).toThrow(ConfigError);
  expect(() => loadConfig({ ...base, ...STRIPE_TEST_ENV, STRIPE_WEBHOOK_SECRET: "not-a-secret" })).toThrow(/STRIPE_WEBHOOK_SECRET/);
  expect(() => loadConfig({ ...base, ...STRIPE_TEST_ENV, STRIPE_SECRET_KEY: "pk_test_publishable" })).toThrow(/STRIPE_SECRET_KEY/);
  expect(loadConfig({ ...base, ...STRIPE_TEST_ENV, STRIPE_API_BASE: "http://localhost:12111" }).stripe).toMatchObject({
    secretKey: STRIPE_TEST_ENV.STRIPE_SECRET_KEY,
    apiBase: new URL("http://localhost:12111"),
  });
});
