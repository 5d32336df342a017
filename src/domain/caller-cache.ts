import { LRUCache } from "lru-cache";
import type { Invalidation, InvalidationBus } from "./invalidation.js";
import { hashApiKey, type Keys } from "./keys.js";
import type { Account, ApiKey } from "./schema/index.js";

interface CachedCaller {
  apiKey: ApiKey;
  account: Account;
}

export interface CallerCacheOptions {
  keys: Pick<Keys, "findBySecret">;
  bus: InvalidationBus;
  /** A backstop for a lost invalidation; revocations normally arrive over the bus within milliseconds. */
  ttlMs?: number;
  maxEntries?: number;
}

/** Whether an invalidation concerns this caller's key or account. */
export const matches = (event: Invalidation, { apiKey, account }: CachedCaller): boolean =>
  event.kind === "everything" ||
  (event.kind === "key" && event.keyId === apiKey.id) ||
  (event.kind === "account" && event.accountId === account.id);

/**
 * Key lookups without a database round trip per request (ARCHITECTURE: the
 * hot path is lean). Entries are dropped when the bus says a key or account
 * changed, and the cache is bypassed while the bus may be missing events.
 */
export function createCallerCache({ keys, bus, ttlMs = 30_000, maxEntries = 10_000 }: CallerCacheOptions) {
  const cache = new LRUCache<string, CachedCaller>({ max: maxEntries, ttl: ttlMs });
  // Bumped by every invalidation, so a lookup that raced one is not cached stale.
  let generation = 0;

  bus.subscribe((event) => {
    generation++;
    if (event.kind === "everything") return cache.clear();
    for (const [hash, caller] of cache.entries()) if (matches(event, caller)) cache.delete(hash);
  });

  return {
    async findBySecret(secret: string): Promise<CachedCaller | null> {
      if (!bus.isLive()) return keys.findBySecret(secret);
      // Keyed by hash, so the cache holds no secrets.
      const hash = hashApiKey(secret);
      const cached = cache.get(hash);
      if (cached) return cached;
      const startedAt = generation;
      const found = await keys.findBySecret(secret);
      if (found && generation === startedAt && bus.isLive()) cache.set(hash, found);
      return found;
    },
  };
}

export type CallerCache = ReturnType<typeof createCallerCache>;
