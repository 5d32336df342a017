import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LimitStore } from "../../src/domain/limits/limit-store.js";
import { LimitStoreUnavailableError } from "../../src/domain/limits/limit-store.js";
import { silentLogger } from "../../src/domain/logger.js";
import { closeRedis, connectRedis } from "../../src/infra/redis.js";
import { createRedisLimitStore } from "../../src/infra/redis-limit-store.js";
import { testEnv } from "../support/env.js";
import { freePort } from "../support/ports.js";
import { describeLimitStoreContract } from "./limit-store.contract.js";

// Every key this file writes is under its own prefix, so nothing leaks between files or runs.
const prefix = `sentx-test:${randomUUID()}:`;

async function connected(url: string): Promise<Redis> {
  const redis = connectRedis(url, "commands", silentLogger);
  await new Promise((resolve) => redis.once("ready", resolve));
  return redis;
}

describeLimitStoreContract("Redis", async () => {
  const redis = await connected(testEnv.redisUrl);
  return { store: createRedisLimitStore(redis, prefix), close: () => closeRedis(redis) };
});

/** A port nothing listens on: taken from the OS, then given back. */
describe("Redis limit store specifics", () => {
  let redis: Redis;
  let store: LimitStore;
  beforeAll(async () => {
    redis = await connected(testEnv.redisUrl);
    store = createRedisLimitStore(redis, prefix);
  });
  afterAll(() => closeRedis(redis));

  // Expiries are durations from the caller's now, so real time is used here.
  describe("keys expire, so Redis never keeps dead ones", () => {
    it("a window lives until its newest counted request leaves it, never longer than the window", async () => {
      const key = `ttl:window:${randomUUID()}`;
      const now = Date.now();
      for (const at of [now - 40_000, now - 20_000, now]) await store.hitWindow(key, { limit: 3, windowMs: 60_000, nowMs: at });
      const ttl = await redis.pttl(prefix + key);
      // Expiring with the oldest request (20 s here) would take the two newer ones with it.
      expect(ttl).toBeGreaterThan(59_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    });

    it("a lease set lives until its longest-lived lease lapses, never longer than that TTL", async () => {
      const key = `ttl:leases:${randomUUID()}`;
      const now = Date.now();
      await store.acquireLease(key, { leaseId: "long", limit: 5, ttlMs: 30_000, nowMs: now });
      await store.acquireLease(key, { leaseId: "short", limit: 5, ttlMs: 1_000, nowMs: now });
      const ttl = await redis.pttl(prefix + key);
      expect(ttl).toBeGreaterThan(29_000);
      expect(ttl).toBeLessThanOrEqual(30_000);
      expect(await store.renewLease(key, { leaseId: "short", ttlMs: 1_000, nowMs: now + 500 })).toBe(true);
      expect(await redis.pttl(prefix + key)).toBeGreaterThan(29_000);
    });
  });

  it("rejects with LimitStoreUnavailableError, quickly, when Redis cannot be reached", { timeout: 10_000 }, async () => {
    const unreachable = connectRedis(`redis://127.0.0.1:${await freePort()}`, "commands", silentLogger);
    const down = createRedisLimitStore(unreachable, prefix);
    const nowMs = Date.now();
    const calls: Array<() => Promise<unknown>> = [
      () => down.hitWindow("down", { limit: 1, windowMs: 60_000, nowMs }),
      () => down.acquireLease("down", { leaseId: "a", limit: 1, ttlMs: 1_000, nowMs }),
      () => down.renewLease("down", { leaseId: "a", ttlMs: 1_000, nowMs }),
      () => down.releaseLease("down", "a"),
    ];
    try {
      for (const call of calls) {
        const started = performance.now();
        await expect(call()).rejects.toBeInstanceOf(LimitStoreUnavailableError);
        expect(performance.now() - started).toBeLessThan(2_000);
      }
    } finally {
      await closeRedis(unreachable);
    }
  });
});
