import { sql } from "drizzle-orm";
import type { Clock } from "./clock.js";
import type { Db } from "./db.js";
import type { Logger } from "./logger.js";
import { apiKeys } from "./schema/index.js";

/**
 * Keys' last-used times, written in batches: the hot path only notes the key
 * in memory, and one UPDATE a flush covers every key used since the last one.
 */
export function createKeyUsageRecorder({ db, clock, logger }: { db: Db; clock: Clock; logger: Logger }) {
  let pending = new Set<string>();

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const ids = [...pending];
    pending = new Set();
    try {
      // An array, not an IN list: one statement text (and prepared plan) for any number of keys.
      await db.update(apiKeys).set({ lastUsedAt: clock.now() }).where(sql`${apiKeys.id} = any(${sql.param(ids)}::text[])`);
    } catch (error) {
      logger.warn({ err: error, keys: ids.length }, "could not record key last-used times");
    }
  }

  return {
    touch: (keyId: string) => void pending.add(keyId),
    flush,
  };
}

export type KeyUsageRecorder = ReturnType<typeof createKeyUsageRecorder>;
