import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { startOwnRedis } from "../support/redis-server.js";

// Redis without persistence loses the job schedules when it restarts; the
// platform must put them back by itself, or the hold sweeper and file
// retention stop until someone restarts SentX.

let redis: Awaited<ReturnType<typeof startOwnRedis>>;
let t: TestPlatform;
let queue: Queue;
let probe: Redis;

beforeAll(async () => {
  redis = await startOwnRedis();
  t = await startTestPlatform({ env: { REDIS_URL: redis.url, REDIS_PREFIX: "sentx-recover:", HOLD_SWEEP_SECONDS: "1", FILE_RETENTION_SWEEP_SECONDS: "2" } });
  probe = new Redis(redis.url, { maxRetriesPerRequest: null });
  queue = new Queue("recurring", { connection: probe, prefix: "sentx-recover:bull" });
});
afterAll(async () => {
  await t?.close();
  await queue?.close();
  probe?.disconnect();
  await redis?.kill();
});

it("registers the schedules again after Redis lost its data", async () => {
  await eventually(() => queue.getJobScheduler("settle-abandoned-holds"), (scheduler) => Boolean(scheduler), 10_000);
  await probe.flushall();
  expect(await queue.getJobScheduler("settle-abandoned-holds")).toBeFalsy();
  const back = await eventually(() => queue.getJobScheduler("settle-abandoned-holds"), (scheduler) => Boolean(scheduler), 15_000);
  expect(back).toMatchObject({ every: 1_000 });
  // Each schedule is checked at its own interval (at least every 5 s).
  await eventually(() => queue.getJobScheduler("file-retention"), (scheduler) => Boolean(scheduler), 15_000);
}, 40_000);
