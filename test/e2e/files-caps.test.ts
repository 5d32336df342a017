import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { files } from "../../src/domain/schema/index.js";
import { refusal } from "../support/api-errors.js";
import { expectConsistent, type FilesPlatform, MiB, startFilesPlatform, textBytes, upload } from "../support/files.js";

// SPEC 7's account caps through the SDK: 100 live files and 500 MB, exact
// under concurrent uploads (the account row lock), and a refused upload keeps nothing.

let f: FilesPlatform;
beforeAll(async () => {
  f = await startFilesPlatform();
});
afterAll(() => f.close());

const maxFiles = { status: 409, code: "max_files_reached", type: "invalid_request_error", param: "file" };
const overQuota = { status: 409, code: "storage_quota_exceeded", type: "invalid_request_error", param: "file" };

describe("100 live files per account", () => {
  it("of 10 concurrent distinct uploads at 98 files, exactly 2 succeed; the 101st is refused until one is deleted", async () => {
    const { client, accountId } = await f.customer();
    for (let i = 0; i < 98; i += 14) {
      await Promise.all(Array.from({ length: Math.min(14, 98 - i) }, (_, j) => upload(client, Buffer.from(`small ${i + j}\n`), `s${i + j}.txt`)));
    }
    expect(await f.liveFiles(client)).toBe(98);
    const before = await f.storage();

    // Fire first, check the invariant last.
    const racers = Array.from({ length: 10 }, (_, i) => Buffer.from(`race ${i} ${randomUUID()}\n`));
    const outcomes = await Promise.allSettled(racers.map((bytes, i) => upload(client, bytes, `r${i}.txt`)));
    const won = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    const lost = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
    expect(won).toHaveLength(2);
    expect(lost).toHaveLength(8);
    for (const reason of lost) expect(reason).toMatchObject(maxFiles);

    const live = await f.db.select().from(files).where(and(eq(files.accountId, accountId), eq(files.status, "processed")));
    expect(live).toHaveLength(100);
    expect(await f.liveFiles(client)).toBe(100);
    // Only the two winners' bytes were kept; the eight refused left no row, blob or byte.
    const after = await f.settled();
    expect(after.blobs.length - before.blobs.length).toBe(2);
    expect(after.onDisk.length - before.onDisk.length).toBe(2);
    expectConsistent(after);

    expect(await refusal(upload(client, Buffer.from("the 101st\n"), "101.txt"))).toEqual(maxFiles);
    // Bytes the account already has are not a new file: their id comes back, retention restarted.
    const winner = outcomes.findIndex((o) => o.status === "fulfilled");
    expect((await upload(client, racers[winner]!, "again.txt")).id).toBe(won[0]!.id);

    await client.files.delete(won[0]!.id);
    await expect(upload(client, Buffer.from("room again\n"), "again.txt")).resolves.toMatchObject({ object: "file", status: "processed" });
    expect(await f.liveFiles(client)).toBe(100);
    expectConsistent(await f.storage());
  });
});

describe("500 MB per account", () => {
  it("takes 20 files of 25 MB and refuses one byte more with 409 storage_quota_exceeded", async () => {
    const { client, accountId } = await f.customer();
    const started = performance.now();
    const big = Array.from({ length: 20 }, (_, i) => textBytes(25 * MiB, `big ${i} ${randomUUID()}`));
    const stored = [];
    for (const [i, bytes] of big.entries()) stored.push(await upload(client, bytes, `big${i}.txt`));
    expect((await client.files.list()).data.reduce((sum, file) => sum + file.bytes, 0)).toBe(500 * MiB);

    const before = await f.storage();
    expect(await refusal(upload(client, Buffer.from("one more\n"), "more.txt"))).toEqual(overQuota);
    expect(await f.settled()).toEqual(before);
    expect(await f.fileRows(accountId)).toBe(20);
    // The same bytes again are no new storage: the existing file comes back.
    expect((await upload(client, big[0]!, "big0-again.txt")).id).toBe(stored[0]!.id);

    await client.files.delete(stored[0]!.id);
    await expect(upload(client, Buffer.from("fits again\n"), "fits.txt")).resolves.toMatchObject({ status: "processed" });
    expectConsistent(await f.storage());
    console.info(`storage quota: 20 × 25 MB uploaded and checked in ${Math.round(performance.now() - started)} ms`);
  }, 120_000);
});
