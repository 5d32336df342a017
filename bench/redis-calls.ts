import { Redis } from "ioredis";

/**
 * Counts the commands a Redis server has executed, from INFO commandstats,
 * leaving out INFO itself (the counter's own reads). The benchmark gives SentX
 * a Redis of its own, so every other command counted is SentX's.
 */
export function redisCallCounter(url: string) {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  return {
    async total(): Promise<number> {
      const stats = await redis.info("commandstats");
      let total = 0;
      for (const [, command, calls] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (command !== "info") total += Number(calls);
      return total;
    },
    close: () => void redis.disconnect(),
  };
}
