import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCallerCache } from "../../src/domain/caller-cache.js";
import { systemClock } from "../../src/domain/clock.js";
import type { Invalidation, InvalidationBus } from "../../src/domain/invalidation.js";
import { createKeys } from "../../src/domain/keys.js";
import { silentLogger } from "../../src/domain/logger.js";
import { closeRedis, connectRedis } from "../../src/infra/redis.js";
import { createRedisInvalidationBus } from "../../src/infra/redis-invalidation-bus.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { createTestAccount } from "../support/factories.js";

// SPEC 4: a revoked key stops working on every instance within 1 second, though
// instances cache key lookups. Two buses on one Redis channel play two instances.

interface Instance {
  bus: InvalidationBus;
  subscriber: Redis;
  received: Invalidation[];
  close(): Promise<void>;
}

const channel = `sentx-test:${randomUUID()}:invalidations`;
let database: TestDatabase;
let a: Instance;
let b: Instance;

async function instance(): Promise<Instance> {
  const publisher = connectRedis(testEnv.redisUrl, "commands", silentLogger);
  const subscriber = connectRedis(testEnv.redisUrl, "subscriber", silentLogger);
  const bus = createRedisInvalidationBus({ publisher, subscriber, channel, logger: silentLogger });
  const received: Invalidation[] = [];
  bus.subscribe((event) => received.push(event));
  await eventually(async () => bus.isLive(), Boolean, 5_000);
  return { bus, subscriber, received, close: async () => void (await Promise.all([closeRedis(publisher), closeRedis(subscriber)])) };
}

beforeAll(async () => {
  database = await createTestDatabase();
  [a, b] = await Promise.all([instance(), instance()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await database?.drop();
});

/** A key created through instance A and looked up (so cached) on instance B. */
async function keyCachedOnB() {
  const keysOnA = createKeys({ db: database.db, clock: systemClock, bus: a.bus });
  const cacheOnB = createCallerCache({ keys: createKeys({ db: database.db, clock: systemClock, bus: b.bus }), bus: b.bus });
  const account = await createTestAccount(database.db);
  const { key, apiKey } = await keysOnA.create({ accountId: account.id, name: "cached" });
  expect((await cacheOnB.findBySecret(key))?.apiKey.status).toBe("active");
  return { keysOnA, cacheOnB, key, apiKey };
}

describe("Redis invalidation bus", () => {
  it("is live once subscribed, delivers to its own listeners at once and to the other instance's shortly", async () => {
    expect(a.bus.isLive() && b.bus.isLive()).toBe(true);
    const event: Invalidation = { kind: "key", keyId: `key_${randomUUID()}` };
    await a.bus.publish(event);
    expect(a.received).toContainEqual(event);
    const seen = await eventually(async () => b.received.some((e) => JSON.stringify(e) === JSON.stringify(event)), Boolean, 1_000);
    expect(seen).toBe(true);
    // An instance does not hear its own broadcast twice.
    expect(a.received.filter((e) => JSON.stringify(e) === JSON.stringify(event))).toHaveLength(1);
  });

  it("drops a key another instance revoked from this instance's cache within 1 second", async () => {
    const { keysOnA, cacheOnB, key, apiKey } = await keyCachedOnB();
    await keysOnA.revoke(apiKey.id);
    const revokedAt = performance.now();
    const status = await eventually(async () => (await cacheOnB.findBySecret(key))?.apiKey.status, (s) => s === "revoked", 2_000);
    expect(status).toBe("revoked");
    expect(performance.now() - revokedAt).toBeLessThan(1_000);
  });

  it("bypasses the cache while its subscription is down, and trusts it again once it is back", async () => {
    const { cacheOnB, key, apiKey } = await keyCachedOnB();

    // B's subscriber drops (as when Redis goes away); B may now miss events.
    b.subscriber.disconnect(true);
    await eventually(async () => b.bus.isLive(), (live) => !live, 2_000);
    expect(b.bus.isLive()).toBe(false);
    // Revoked without B hearing of it (A's broadcast may fall in the gap), straight in the database:
    await createKeys({ db: database.db, clock: systemClock, bus: { ...a.bus, publish: async () => {} } }).revoke(apiKey.id);
    expect((await cacheOnB.findBySecret(key))?.apiKey.status).toBe("revoked");

    expect(await eventually(async () => b.bus.isLive(), Boolean, 5_000)).toBe(true);
    expect((await cacheOnB.findBySecret(key))?.apiKey.status).toBe("revoked");
  });
});
