import type { Redis, Result } from "ioredis";
import { type LimitStore, LimitStoreUnavailableError } from "../domain/limits/limit-store.js";

// Each check is one Lua script: one round trip, atomic across every instance.

// A sorted set of the window's counted requests, scored by time.
const HIT_WINDOW = `
local limit, window, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
-- Relative to the caller's clock, never Redis's: instances' clocks, not Redis's, define the window.
-- The key lives until its newest request leaves the window (expiring with the oldest would drop the newer ones).
if newest[2] then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(newest[2]) + window - now)) end
return {allowed, count, oldest[2] or ARGV[3]}
`;

// A sorted set of leases, scored by when each lapses; the set lives as long as its longest-lived lease.
const ACQUIRE_LEASE = `
local limit, ttl, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(ttl, tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]) - now))
return 1
`;

const RENEW_LEASE = `
local ttl, now = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(ttl, tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]) - now))
return 1
`;

declare module "ioredis" {
  interface RedisCommander<Context> {
    sentxHitWindow(key: string, limit: number, windowMs: number, nowMs: number, member: string): Result<[number, number, string], Context>;
    sentxAcquireLease(key: string, leaseId: string, limit: number, ttlMs: number, nowMs: number): Result<number, Context>;
    sentxRenewLease(key: string, leaseId: string, ttlMs: number, nowMs: number): Result<number, Context>;
  }
}

/** Connection trouble becomes LimitStoreUnavailableError; a script error stays a bug. */
async function reachable<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (error) {
    if ((error as Error).name === "ReplyError") throw error;
    throw new LimitStoreUnavailableError("Redis is unreachable", { cause: error });
  }
}

/** The shared limit store: every instance sees the same windows and leases. */
export function createRedisLimitStore(redis: Redis, prefix: string): LimitStore {
  redis.defineCommand("sentxHitWindow", { numberOfKeys: 1, lua: HIT_WINDOW });
  redis.defineCommand("sentxAcquireLease", { numberOfKeys: 1, lua: ACQUIRE_LEASE });
  redis.defineCommand("sentxRenewLease", { numberOfKeys: 1, lua: RENEW_LEASE });
  let sequence = 0;

  return {
    async hitWindow(key, { limit, windowMs, nowMs }) {
      // Unique per request, so two requests in the same millisecond both count.
      const member = `${nowMs}:${process.pid}:${++sequence}:${Math.random().toString(36).slice(2, 8)}`;
      const [allowed, count, oldest] = await reachable(redis.sentxHitWindow(prefix + key, limit, windowMs, nowMs, member));
      return { allowed: allowed === 1, limit, remaining: Math.max(0, limit - count), resetAtMs: Number(oldest) + windowMs };
    },

    async acquireLease(key, { leaseId, limit, ttlMs, nowMs }) {
      return (await reachable(redis.sentxAcquireLease(prefix + key, leaseId, limit, ttlMs, nowMs))) === 1;
    },

    async renewLease(key, { leaseId, ttlMs, nowMs }) {
      return (await reachable(redis.sentxRenewLease(prefix + key, leaseId, ttlMs, nowMs))) === 1;
    },

    async releaseLease(key, leaseId) {
      await reachable(redis.zrem(prefix + key, leaseId));
    },
  };
}
