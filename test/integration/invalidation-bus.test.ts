import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccounts } from "../../src/domain/accounts.js";
import { createCallerCache } from "../../src/domain/caller-cache.js";
import { systemClock } from "../../src/domain/clock.js";
import type { Invalidation, InvalidationBus } from "../../src/domain/invalidation.js";
import { createKeys, type Keys } from "../../src/domain/keys.js";
import { createLedger } from "../../src/domain/ledger.js";
import { silentLogger } from "../../src/domain/logger.js";
import { closeRedis, connectRedis } from "../../src/infra/redis.js";
import { createRedisInvalidationBus } from "../../src/infra/redis-invalidation-bus.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";

// SPEC 4: a revoked key stops working on every instance within 1 second, though
// instances cache key lookups. Two buses on one Redis channel play two instances.

interface Instance {
  bus: InvalidationBus;
  subscriber: Redis;
  received: Invalidation[];
  keys: Keys;
  close(): Promise<void>;
}

const channel = `sentx-test:${randomUUID()}:invalidations`;
const clock = systemClock;
let database: TestDatabase;
let a: Instance;
let b: Instance;
const liveBeforeSubscribing: boolean[] = [];

async function instance(): Promise<Instance> {
  const publisher = connectRedis(testEnv.redisUrl, "commands", silentLogger);
  const subscriber = connectRedis(testEnv.redisUrl, "subscriber", silentLogger);
  const bus = createRedisInvalidationBus({ publisher, subscriber, channel, logger: silentLogger });
  liveBeforeSubscribing.push(bus.isLive());
  const received: Invalidation[] = [];
  bus.subscribe((event) => received.push(event));
  await eventually(async () => bus.isLive(), Boolean, 5_000);
  return {
    bus,
    subscriber,
    received,
    keys: createKeys({ db: database.db, clock, bus }),
    close: async () => void (await Promise.all([closeRedis(publisher), closeRedis(subscriber)])),
  };
}

beforeAll(async () => {
  database = await createTestDatabase();
  [a, b] = await Promise.all([instance(), instance()]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await database?.drop();
});

const sameEvent = (x: Invalidation) => (y: Invalidation) => JSON.stringify(x) === JSON.stringify(y);

/** Revokes in the database without telling any instance: what a cache would hold on to. */
const silentRevoke = (keyId: string) => createKeys({ db: database.db, clock, bus: { ...a.bus, publish: async () => {} } }).revoke(keyId);

/** A key created through instance A and looked up, so cached, on instance B. */
async function keyCachedOnB() {
  const accounts = createAccounts({ db: database.db, clock, ledger: createLedger({ clock }), bus: a.bus });
  const account = await accounts.create({ email: `bus-${randomUUID()}@example.com` });
  const cacheOnB = createCallerCache({ keys: b.keys, bus: b.bus });
  const { key, apiKey } = await a.keys.create({ accountId: account.id, name: "cached" });
  expect((await cacheOnB.findBySecret(key))?.apiKey.status).toBe("active");
  return { cacheOnB, key, apiKey };
}

describe("Redis invalidation bus", () => {
  it("becomes live once subscribed", () => {
    expect(liveBeforeSubscribing).toEqual([false, false]);
    expect([a.bus.isLive(), b.bus.isLive()]).toEqual([true, true]);
  });

  it("delivers to its own listeners synchronously, once, and to the other instance's within 1 second", async () => {
    const event: Invalidation = { kind: "key", keyId: `key_${randomUUID()}` };
    const publishing = a.bus.publish(event);
    expect(a.received).toContainEqual(event);
    await publishing;
    const seen = await eventually(async () => b.received.some(sameEvent(event)), Boolean, 1_000);
    expect(seen).toBe(true);
    // An instance does not hear its own broadcast a second time.
    expect(a.received.filter(sameEvent(event))).toHaveLength(1);
  });

  it("serves a key from the cache, and drops it within 1 second of another instance revoking it", async () => {
    const { cacheOnB, key, apiKey } = await keyCachedOnB();
    // Served from the cache: a change nobody announced is not seen.
    await silentRevoke(apiKey.id);
    expect((await cacheOnB.findBySecret(key))?.apiKey.status).toBe("active");

    const { key: other, apiKey: otherKey } = await keyCachedOnB();
    const started = performance.now();
    await a.keys.revoke(otherKey.id);
    const status = await eventually(async () => (await cacheOnB.findBySecret(other))?.apiKey.status, (s) => s !== "active", 2_000);
    const elapsedMs = performance.now() - started;
    expect(status).toBe("revoked");
    expect(elapsedMs).toBeLessThan(1_000);
  });

  it("bypasses the cache while its subscription is down, and trusts it again once it is back", async () => {
    const { cacheOnB, key, apiKey } = await keyCachedOnB();

    // B's subscriber drops (as when Redis goes away), and stays down until reconnected below: B may miss events.
    b.subscriber.disconnect();
    expect(await eventually(async () => b.bus.isLive(), (live) => !live, 2_000)).toBe(false);
    await silentRevoke(apiKey.id);
    expect((await cacheOnB.findBySecret(key))?.apiKey.status).toBe("revoked");
    expect(b.bus.isLive()).toBe(false);

    await b.subscriber.connect();
    expect(await eventually(async () => b.bus.isLive(), Boolean, 5_000)).toBe(true);
    // Live again, so cached again: a fresh lookup is kept, and an unannounced change goes unseen.
    const fresh = await keyCachedOnB();
    await silentRevoke(fresh.apiKey.id);
    expect((await fresh.cacheOnB.findBySecret(fresh.key))?.apiKey.status).toBe("active");
  });
});
