import { createInProcessInvalidationBus, type InvalidationBus } from "../domain/invalidation.js";
import { createInProcessLimitStore } from "../domain/limits/in-process-limit-store.js";
import type { LimitStore } from "../domain/limits/limit-store.js";
import type { Logger } from "../domain/logger.js";
import { closeRedis, connectRedis } from "./redis.js";
import { createRedisInvalidationBus } from "./redis-invalidation-bus.js";
import { createRedisLimitStore } from "./redis-limit-store.js";

/** What server instances must share to act as one: limit counters and cache invalidations. */
export interface Coordination {
  limitStore: LimitStore;
  bus: InvalidationBus;
  /** "embedded" when there is no Redis: one process needs none. */
  status(): "embedded" | "connected" | "unreachable";
  close(): Promise<void>;
}

/** Through Redis when configured (production, several instances); in memory otherwise. */
export function openCoordination(redis: { url: string; prefix: string } | null, logger: Logger): Coordination {
  if (!redis) {
    return {
      limitStore: createInProcessLimitStore(),
      bus: createInProcessInvalidationBus(),
      status: () => "embedded",
      close: async () => {},
    };
  }
  const commands = connectRedis(redis.url, "commands", logger);
  const subscriber = connectRedis(redis.url, "subscriber", logger);
  return {
    limitStore: createRedisLimitStore(commands, redis.prefix),
    bus: createRedisInvalidationBus({ publisher: commands, subscriber, channel: `${redis.prefix}invalidations`, logger }),
    status: () => (commands.status === "ready" ? "connected" : "unreachable"),
    async close() {
      await Promise.all([closeRedis(commands), closeRedis(subscriber)]);
    },
  };
}
