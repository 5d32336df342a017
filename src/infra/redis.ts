import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../domain/logger.js";

const LOG_ERRORS_EVERY_MS = 10_000;

export type RedisRole = "commands" | "subscriber" | "queue";

// Work off the request path (listening, queued jobs) waits for Redis instead of failing;
// BullMQ requires exactly this (no retry limit per command).
const waitsForRedis: RedisOptions = {
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
  connectTimeout: 2_000,
};

const optionsFor: Record<RedisRole, RedisOptions> = {
  // Commands fail fast while Redis is away instead of queueing, so a request
  // never waits on it: the limits' down policy decides what happens instead.
  commands: {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 1_000,
    connectTimeout: 2_000,
  },
  // A subscriber only listens; it resubscribes by itself.
  subscriber: waitsForRedis,
  queue: waitsForRedis,
};

/** A Redis connection that reconnects forever and logs its troubles without flooding the log. */
export function connectRedis(url: string, role: RedisRole, logger: Logger): Redis {
  const redis = new Redis(url, {
    ...optionsFor[role],
    connectionName: `sentx-${role}`,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
  let lastLoggedAt = 0;
  redis.on("error", (error: Error) => {
    const now = Date.now();
    if (now - lastLoggedAt < LOG_ERRORS_EVERY_MS) return;
    lastLoggedAt = now;
    logger.warn({ err: error, role }, "Redis connection problem; retrying");
  });
  redis.on("ready", () => {
    if (lastLoggedAt > 0) logger.info({ role }, "Redis connection restored");
    lastLoggedAt = 0;
  });
  return redis;
}

/** Closes politely when Redis answers, at once when it doesn't. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === "ready") {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
