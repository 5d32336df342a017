import { expect, it } from "vitest";
import { createTestDatabase } from "../support/db.js";
import { startOwnRedis } from "../support/redis-server.js";
import { startServerProcess } from "../support/server-process.js";

// SIGTERM must end the process even when Redis went away first: BullMQ's
// close waits for Redis forever, so the job queue is closed by force after
// its wait (10 s), and the process still exits 0.
it("exits 0 on SIGTERM within the queue's stop wait when Redis is gone", async () => {
  const database = await createTestDatabase({ maxConnections: 1 });
  const redis = await startOwnRedis();
  const server = await startServerProcess({ DATABASE_URL: database.url, REDIS_URL: redis.url, SENTX_BOOTSTRAP: "off" });
  try {
    await redis.kill();
    const startedAt = Date.now();
    const exit = await Promise.race([server.stop(), new Promise((resolve) => setTimeout(() => resolve("still running"), 20_000))]);
    expect(exit).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(15_000);
  } finally {
    await server.kill().catch(() => {});
    await database.drop();
  }
}, 60_000);
