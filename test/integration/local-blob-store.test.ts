import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { createLocalBlobStore, type LocalBlobStore } from "../../src/infra/local-blob-store.js";

const MiB = 1024 * 1024;
const TOO_LARGE = { code: "file_too_large", param: "file" };

let root: string;
let store: LocalBlobStore;
const roots: string[] = [];
beforeEach(async () => {
  // A fresh root per test, so leftovers are counted for that test alone.
  root = await mkdtemp(join(tmpdir(), "sentx-blobs-"));
  roots.push(root);
  store = createLocalBlobStore({ root });
});
afterAll(() => Promise.all(roots.map((folder) => rm(folder, { recursive: true, force: true }))));

// Compared by digest: vitest's deep equality walks a large Buffer byte by byte.
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const stagingLeftovers = () => readdir(join(root, "staging")).catch(() => []);
const storedBlobs = async () =>
  (await readdir(join(root, "sha256"), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((e) => e.name);

/** `total` bytes in `pieceBytes` pieces, counting how far the consumer pulled and whether it let go. */
function countedSource(total: number, pieceBytes = 64 * 1024) {
  const seen = { pulled: 0, released: false };
  async function* source() {
    try {
      for (let sent = 0; sent < total; ) {
        const piece = Buffer.alloc(Math.min(pieceBytes, total - sent), sent % 251);
        sent += piece.length;
        seen.pulled = sent;
        yield piece;
      }
    } finally {
      seen.released = true;
    }
  }
  return { seen, source: source() };
}

describe("local blob store", () => {
  it("stages, commits and reads back bytes at their SHA-256, privately", async () => {
    const bytes = randomBytes(300 * 1024);
    const staged = await store.stage(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), { maxBytes: MiB });

    expect(staged).toMatchObject({ sha256: sha256(bytes), bytes: bytes.length });
    expect(sha256(await readFile(staged.path))).toBe(sha256(bytes));
    expect(await store.exists(staged.sha256)).toBe(false);

    await store.commit(staged);
    expect(await store.exists(staged.sha256)).toBe(true);
    expect(sha256(await buffer(store.open(staged.sha256)))).toBe(sha256(bytes));
    expect(await stagingLeftovers()).toEqual([]);

    const digest = staged.sha256;
    const blob = join(root, "sha256", digest.slice(0, 2), digest.slice(2, 4), digest);
    expect((await stat(blob)).mode & 0o777).toBe(0o600);
    expect((await stat(join(root, "sha256", digest.slice(0, 2)))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, "staging"))).mode & 0o777).toBe(0o700);
    // Discarding after the commit must not touch the stored blob.
    await staged.discard();
    expect(await store.exists(digest)).toBe(true);
  });

  it("stores the same bytes once however often they are committed", async () => {
    const bytes = Buffer.from("the same bytes, uploaded twice\n");
    const first = await store.stage(Readable.from([bytes]), { maxBytes: MiB });
    const second = await store.stage(Readable.from([bytes]), { maxBytes: MiB });
    expect(second.sha256).toBe(first.sha256);
    await store.commit(first);
    await store.commit(second);
    expect(await storedBlobs()).toEqual([first.sha256]);
    expect(await stagingLeftovers()).toEqual([]);
  });

  it("lets concurrent commits of identical bytes all succeed and keeps one blob", async () => {
    const bytes = randomBytes(64 * 1024);
    const staged = await Promise.all(Array.from({ length: 12 }, () => store.stage(Readable.from([bytes]), { maxBytes: MiB })));
    await Promise.all(staged.map((blob) => store.commit(blob)));
    expect(await storedBlobs()).toEqual([sha256(bytes)]);
    expect(await stagingLeftovers()).toEqual([]);
    expect(sha256(await buffer(store.open(sha256(bytes))))).toBe(sha256(bytes));
  });

  it("accepts exactly maxBytes (25 MB)", async () => {
    const { source } = countedSource(25 * MiB);
    const staged = await store.stage(source, { maxBytes: 25 * MiB });
    expect(staged.bytes).toBe(25 * MiB);
    expect((await stat(staged.path)).size).toBe(25 * MiB);
    await staged.discard();
    await staged.discard();
    expect(await stagingLeftovers()).toEqual([]);
  });

  it("refuses maxBytes + 1 right after that byte arrives, and keeps nothing", async () => {
    // 25 MB, then one byte at a time without end: the byte past the cap must be the last one pulled.
    const seen = { pulled: 0, released: false };
    async function* source() {
      try {
        for (; seen.pulled < 25 * MiB; seen.pulled += 64 * 1024) yield Buffer.alloc(64 * 1024);
        for (;;) {
          seen.pulled += 1;
          yield Buffer.alloc(1);
        }
      } finally {
        seen.released = true;
      }
    }
    await expect(store.stage(source(), { maxBytes: 25 * MiB })).rejects.toMatchObject(TOO_LARGE);
    expect(seen.pulled).toBe(25 * MiB + 1);
    expect(seen.released).toBe(true);
    expect(await stagingLeftovers()).toEqual([]);
  });

  it("stops pulling an endless source at the cap", async () => {
    const { seen, source } = countedSource(Number.POSITIVE_INFINITY);
    await expect(store.stage(source, { maxBytes: MiB })).rejects.toMatchObject(TOO_LARGE);
    expect(seen.pulled).toBe(MiB + 64 * 1024);
    expect(seen.released).toBe(true);
    expect(await stagingLeftovers()).toEqual([]);
  });

  it("rejects with the source's error and keeps nothing", async () => {
    const source = new Readable({ read() {} });
    source.push(randomBytes(100 * 1024));
    setTimeout(() => source.destroy(new Error("client went away")), 20);
    await expect(store.stage(source, { maxBytes: MiB })).rejects.toThrow("client went away");
    expect(await stagingLeftovers()).toEqual([]);
  });

  it("stops on abort, even while the source is stalled, and keeps nothing", async () => {
    const controller = new AbortController();
    async function* stalled() {
      yield Buffer.from("the first bytes");
      setTimeout(() => controller.abort(new Error("request closed")), 20);
      await new Promise(() => {});
    }
    await expect(store.stage(stalled(), { maxBytes: MiB, signal: controller.signal })).rejects.toThrow("request closed");
    expect(await stagingLeftovers()).toEqual([]);

    await expect(store.stage(Readable.from([Buffer.from("x")]), { maxBytes: MiB, signal: controller.signal })).rejects.toThrow(
      "request closed",
    );
    expect(await stagingLeftovers()).toEqual([]);
  });

  it("removes idempotently", async () => {
    const staged = await store.stage(Readable.from([Buffer.from("short-lived")]), { maxBytes: MiB });
    await store.commit(staged);
    await store.remove(staged.sha256);
    expect(await store.exists(staged.sha256)).toBe(false);
    await store.remove(staged.sha256);
    await expect(buffer(store.open(staged.sha256))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it.each(["../../../../etc/passwd", "ab", "A".repeat(64), `${"a".repeat(63)}/`, `${"0".repeat(64)}\n`])(
    "refuses the digest %j before building a path",
    async (digest) => {
      expect(() => store.open(digest)).toThrow(/SHA-256/);
      await expect(store.exists(digest)).rejects.toThrow(/SHA-256/);
      await expect(store.remove(digest)).rejects.toThrow(/SHA-256/);
    },
  );

  it("sweeps only staged files older than the cut-off", async () => {
    const old = await store.stage(Readable.from([Buffer.from("left by a crash")]), { maxBytes: MiB });
    const fresh = await store.stage(Readable.from([Buffer.from("still being scanned")]), { maxBytes: MiB });
    const anHourAgo = new Date(Date.now() - 60 * 60_000);
    await utimes(old.path, anHourAgo, anHourAgo);

    expect(await store.sweepStaging(10 * 60_000)).toBe(1);
    expect(await stagingLeftovers()).toEqual([fresh.path.split("/").pop()]);
    await store.commit(fresh);
    expect(await store.exists(fresh.sha256)).toBe(true);
  });

  it("sweeps nothing before anything was staged", async () => {
    expect(await store.sweepStaging(0)).toBe(0);
  });
});
