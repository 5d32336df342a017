import { type ChildProcess, spawn } from "node:child_process";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBilling } from "../../src/domain/billing.js";
import { systemClock } from "../../src/domain/clock.js";
import { newId } from "../../src/domain/ids.js";
import { holds } from "../../src/domain/schema/index.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { createTestAccount } from "../support/factories.js";
import { TEST_OPS_TOKEN } from "../support/platform.js";
import { startOwnRedis } from "../support/redis-server.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

// JOBS=worker: the API only registers the shared jobs, and `npm run worker`,
// a process of its own, runs them. An abandoned hold is the witness: the
// sweeper is the job that ends it.

let database: TestDatabase;
let redis: Awaited<ReturnType<typeof startOwnRedis>>;
let api: ServerProcess;
let env: Record<string, string>;

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 2 });
  redis = await startOwnRedis();
  env = {
    DATABASE_URL: database.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: `sentx-worker-${newId.request()}:`,
    OPS_TOKEN: TEST_OPS_TOKEN,
    SENTX_BOOTSTRAP: "off",
    JOBS: "worker",
    HOLD_CHECKPOINT_SECONDS: "1",
    HOLD_TTL_SECONDS: "2",
    HOLD_SWEEP_SECONDS: "1",
  };
  api = await startServerProcess(env);
});
afterAll(async () => {
  await api?.stop();
  await redis?.kill();
  await database?.drop();
});

/** `npm run worker` with the API's settings; resolves once it says it runs. */
async function startWorker(): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/worker.ts"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "warn", CLAMD_URL: testEnv.clamdUrl, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await eventually(async () => err, (text) => text.includes("SentX worker running"), 30_000);
  return { child, stderr: () => err, exited };
}

/** A hold whose process is gone: taken with an expiry already past, never checkpointed or settled. */
async function abandonedHold(): Promise<string> {
  const account = await createTestAccount(database.db, { balanceCents: 100 });
  const billing = createBilling({ db: database.db, clock: systemClock, holdTtlMs: 1 });
  const requestId = newId.request();
  await billing.reserveHold({
    accountId: account.id,
    requestId,
    pricing: { inputCentsPerMillion: 300, outputCentsPerMillion: 1000 },
    inputTokens: 10,
    requestedMaxTokens: 10,
    request: { apiKeyId: null, endpoint: "/v1/chat/completions", model: "sentx-v1", stream: true, identity: {} },
  });
  return requestId;
}

const statusOf = async (requestId: string) => (await database.db.select().from(holds).where(eq(holds.requestId, requestId)))[0]!.status;

describe("JOBS=worker and npm run worker", () => {
  it("the API leaves the sweeper to the worker process, which ends the abandoned hold, and stops cleanly on SIGTERM", async () => {
    const requestId = await abandonedHold();
    // Three sweep intervals with only the API up: nothing takes the hold.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(await statusOf(requestId)).toBe("active");

    const worker = await startWorker();
    await eventually(() => statusOf(requestId), (status) => status === "expired", 15_000);

    worker.child.kill("SIGTERM");
    expect(await worker.exited).toBe(0);
  });

  it("refuses to start without Redis or without PostgreSQL, in one line", async () => {
    for (const [unset, variable] of [
      ["REDIS_URL", "REDIS_URL"],
      ["DATABASE_URL", "DATABASE_URL"],
    ] as const) {
      const { [unset]: _, ...rest } = env;
      const child = spawn(process.execPath, ["--import", "tsx", "src/worker.ts"], {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "warn", ...rest, JOBS: "in-process" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      const code = await new Promise((resolve) => child.once("exit", resolve));
      expect(code, unset).toBe(1);
      expect(err.trim().split("\n"), unset).toHaveLength(1);
      expect(err, unset).toContain(variable);
    }
  });
});
