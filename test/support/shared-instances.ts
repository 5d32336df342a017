import { randomUUID } from "node:crypto";
import { createTestDatabase } from "./db.js";
import { testEnv } from "./env.js";
import { TEST_OPS_TOKEN } from "./platform.js";
import { type ServerProcess, startServerProcess } from "./server-process.js";

export interface SharedInstances {
  a: ServerProcess;
  b: ServerProcess;
  /** Stops both processes and drops their database. */
  close(): Promise<void>;
}

/**
 * Two real server processes behind no load balancer, sharing a database and
 * a Redis keyspace of their own, as a deployment's instances do. `env` adds
 * to (or overrides) what they share.
 */
export async function startSharedInstances(env: Record<string, string>): Promise<SharedInstances> {
  const database = await createTestDatabase();
  const shared = {
    DATABASE_URL: database.url,
    REDIS_URL: testEnv.redisUrl,
    REDIS_PREFIX: `sentx-test:${randomUUID()}:`,
    OPS_TOKEN: TEST_OPS_TOKEN,
    SENTX_BOOTSTRAP: "off",
    ...env,
  };
  const started = await Promise.allSettled([startServerProcess(shared), startServerProcess(shared)]);
  const [a, b] = started.map((s) => (s.status === "fulfilled" ? s.value : undefined));
  if (!a || !b) {
    await Promise.all([a?.stop(), b?.stop()]);
    await database.drop();
    throw started.find((s) => s.status === "rejected")!.reason;
  }
  return {
    a,
    b,
    async close() {
      await Promise.all([a.stop(), b.stop()]);
      await database.drop();
    },
  };
}
