import { LRUCache } from "lru-cache";
import type { InvalidationBus } from "./invalidation.js";
import { hashApiKey, type Keys } from "./keys.js";

export interface UnknownKeyCacheOptions {
  keys: Pick<Keys, "findBySecret">;
  bus: InvalidationBus;
  ttlMs?: number;
  maxEntries?: number;
}

/**
 * Remembers for a few seconds that a secret matched no key, so a client
 * retrying a wrong key, however fast, costs one database query per few
 * seconds instead of one per request. Any invalidation on the bus empties it
 * (it holds only seconds' worth, not worth sorting events for), so a key
 * whose creation is announced is found at once on every instance; the few
 * seconds bound every other way a remembered secret could come to match.
 */
export function createUnknownKeyCache({ keys, bus, ttlMs = 5_000, maxEntries = 10_000 }: UnknownKeyCacheOptions) {
  // Keyed by hash, so the cache holds no secrets.
  const unknown = new LRUCache<string, true>({ max: maxEntries, ttl: ttlMs });
  // Bumped by every invalidation, so a lookup that raced one is not remembered.
  let generation = 0;

  bus.subscribe(() => {
    generation++;
    unknown.clear();
  });

  return {
    async findBySecret(secret: string) {
      const hash = hashApiKey(secret);
      if (unknown.has(hash)) return null;
      const startedAt = generation;
      const found = await keys.findBySecret(secret);
      if (!found && generation === startedAt) unknown.set(hash, true);
      return found;
    },
  };
}
