import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileRetentionJob } from "../../src/domain/jobs/file-retention.js";
import { refusal } from "../support/api-errors.js";
import { offsetClock } from "../support/clock.js";
import { testEnv } from "../support/env.js";
import { eventually } from "../support/eventually.js";
import { blobPath, DAY_MS, downloaded, expectConsistent, fileNotFound, type FilesPlatform, startFilesPlatform, upload } from "../support/files.js";

// SPEC 7's retention through the SDK: 30 days from the last upload, then the
// file is 404 at once; a scheduled job removes bytes no live file uses.

const clock = offsetClock();
let f: FilesPlatform;
beforeAll(async () => {
  f = await startFilesPlatform({ clock });
});
afterAll(() => f.close());

const sweep = () => fileRetentionJob(f.t.platform.services.files, { everyMs: 1_000 }).run();

describe("retention", () => {
  it("makes a file 404 the moment its 30 days are over; the job then removes bytes no live file uses and keeps the rest", async () => {
    const a = await f.customer();
    const b = await f.customer();
    const lonelyBytes = Buffer.from(`lonely ${randomUUID()}\n`);
    const sharedBytes = Buffer.from(`kept ${randomUUID()}\n`);
    const againBytes = Buffer.from(`again ${randomUUID()}\n`);
    const lonely = await upload(a.client, lonelyBytes, "lonely.txt");
    const aShared = await upload(a.client, sharedBytes, "kept.txt");
    const aAgain = await upload(a.client, againBytes, "again.txt");
    const [lonelySha, sharedSha, againSha] = [await f.shaOf(lonely.id), await f.shaOf(aShared.id), await f.shaOf(aAgain.id)];

    clock.advance(30 * DAY_MS - 1_000);
    expect(await a.client.files.retrieve(lonely.id)).toEqual(lonely); // a second to go
    const bShared = await upload(b.client, sharedBytes, "kept.txt"); // B's copy of the same bytes starts its own 30 days
    clock.advance(2_000); // 30 days and 1 second after A's uploads

    for (const id of [lonely.id, aShared.id, aAgain.id]) {
      expect(await refusal(a.client.files.retrieve(id))).toEqual(fileNotFound);
      expect(await refusal(a.client.files.content(id))).toEqual(fileNotFound);
      expect(await refusal(a.client.files.delete(id))).toEqual(fileNotFound);
    }
    expect((await a.client.files.list()).data).toEqual([]);
    // Expired bytes uploaded again are a new file, not the expired one brought back.
    const aAgainNew = await upload(a.client, againBytes, "again.txt");
    expect(aAgainNew.id).not.toBe(aAgain.id);

    // Until the job runs, the bytes are still there: expiry alone hides, it does not remove.
    expect((await f.storage()).onDisk).toEqual(expect.arrayContaining([blobPath(lonelySha), blobPath(sharedSha), blobPath(againSha)]));
    await sweep();
    const swept = await f.storage();
    expect(swept.blobs.map((blob) => blob.sha256)).not.toContain(lonelySha);
    expect(swept.onDisk).not.toContain(blobPath(lonelySha));
    expect(swept.blobs.filter((blob) => [sharedSha, againSha].includes(blob.sha256)).map((blob) => blob.refCount)).toEqual([1, 1]);
    expect(swept.files.filter((file) => [lonely.id, aShared.id, aAgain.id].includes(file.id)).map((file) => file.status)).toEqual([
      "deleted",
      "deleted",
      "deleted",
    ]);
    expectConsistent(swept);
    expect(await downloaded(b.client, bShared.id)).toEqual(sharedBytes);
    expect(await downloaded(a.client, aAgainNew.id)).toEqual(againBytes);

    // Once B's copy expires too, its bytes go as well.
    clock.advance(30 * DAY_MS);
    await sweep();
    const empty = await f.storage();
    expect(empty.onDisk).toEqual([]);
    expect(empty.blobs).toEqual([]);
    expectConsistent(empty);
  });

  it("runs through BullMQ by itself when Redis is configured", async () => {
    const prefix = `sentx-test:${randomUUID()}:`;
    const ownClock = offsetClock();
    const queued = await startFilesPlatform({
      clock: ownClock,
      env: { REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: prefix, FILE_RETENTION_SWEEP_SECONDS: "1" },
    });
    const redis = new Redis(testEnv.redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue("recurring", { connection: redis, prefix: `${prefix}bull` });
    try {
      const { client } = await queued.customer();
      const file = await upload(client, Buffer.from(`queued ${randomUUID()}\n`), "queued.txt");
      const sha256 = await queued.shaOf(file.id);
      expect((await queued.storage()).onDisk).toEqual([blobPath(sha256)]);

      ownClock.advance(30 * DAY_MS + 1_000);
      expect(await refusal(client.files.retrieve(file.id))).toEqual(fileNotFound);
      const expiredAt = performance.now();
      const state = await eventually(() => queued.storage(), (s) => s.onDisk.length === 0 && s.blobs.length === 0, 10_000);
      expect(state).toMatchObject({ onDisk: [], blobs: [], staging: [] });
      expect(performance.now() - expiredAt).toBeLessThan(5_000);
      // It was BullMQ's doing: the schedule lives in Redis, and a run of it has completed there.
      expect(await queue.getJobScheduler("file-retention")).toMatchObject({ every: 1_000 });
      expect((await queue.getCompleted()).map((job) => job.name)).toContain("file-retention");
    } finally {
      await queued.close();
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
    }
  });
});
