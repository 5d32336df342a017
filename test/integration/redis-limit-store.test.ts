import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { LimitStoreUnavailableError } from "../../src/domain/limits/limit-store.js";
import { silentLogger } from "../../src/domain/logger.js";
import { closeRedis, connectRedis } from "../../src/infra/redis.js";
import { createRedisLimitStore } from "../../src/infra/redis-limit-store.js";
import { testEnv } from "../support/env.js";
import { describeLimitStoreContract } from "./limit-store.contract.js";

const prefix = `sentx-test:${randomUUID()}:`;

describeLimitStoreContract("Redis", async () => {
  const redis = connectRedis(testEnv.redisUrl, "commands", silentLogger);
  await new Promise((resolve) => redis.once("ready", resolve));
  return { store: createRedisLimitStore(redis, prefix), close: () => closeRedis(redis) };
});

describe("Redis limit store specifics", () => {
  const inspector = new Redis(testEnv.redisUrl);
  afterAll(() => inspector.quit());

  it("gives windows and leases an expiry, so Redis never keeps dead keys", async () => {
    const redis = connectRedis(testEnv.redisUrl, "commands", silentLogger);
    await new Promise((resolve) => redis.once("ready", resolve));
    const store = createRedisLimitStore(redis, prefix);
    const now = Date.now();
    await store.hitWindow("ttl:window", { limit: 5, windowMs: 60_000, nowMs: now });
    await store.acquireLease("ttl:leases", { leaseId: "a", limit: 5, ttlMs: 30_000, nowMs: now });
    const windowTtl = await inspector.pttl(`${prefix}ttl:window`);
    const leaseTtl = await inspector.pttl(`${prefix}ttl:leases`);
    expect(windowTtl).toBeGreaterThan(0);
    expect(windowTtl).toBeLessThanOrEqual(60_000);
    expect(leaseTtl).toBeGreaterThan(0);
    expect(leaseTtl).toBeLessThanOrEqual(30_000);
    await closeRedis(redis);
  });

  it("fails fast with LimitStoreUnavailableError when Redis cannot be reached", async () => {
    const redis = connectRedis("redis://127.0.0.1:1", "commands", silentLogger);
    const store = createRedisLimitStore(redis, prefix);
    const started = performance.now();
    const failure = await store.hitWindow("down", { limit: 1, windowMs: 60_000, nowMs: Date.now() }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(LimitStoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(2_000);
    await expect(store.acquireLease("down", { leaseId: "a", limit: 1, ttlMs: 1_000, nowMs: Date.now() })).rejects.toBeInstanceOf(
      LimitStoreUnavailableError,
    );
    await closeRedis(redis);
  });
});
