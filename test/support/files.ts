import { mkdtempSync, rmSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asc, count, eq } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { expect } from "vitest";
import type { Clock } from "../../src/domain/clock.js";
import type { Logger } from "../../src/domain/logger.js";
import type { Db } from "../../src/domain/db.js";
import { blobs, files } from "../../src/domain/schema/index.js";
import { eventually } from "./eventually.js";
import { startTestPlatform, type TestPlatform } from "./platform.js";

// The Files API's end-to-end tests share these: a platform over its own
// FILES_DIR, uploads through the SDK, and what is kept (rows and bytes on disk).

export const MiB = 1024 * 1024;
export const DAY_MS = 86_400_000;

/** What the SDK's APIError says of a file that is not this account's, deleted or expired (see `refusal`). */
export const fileNotFound = { status: 404, code: "file_not_found", type: "not_found_error", param: "file_id" };

/** Every file under `dir` (recursively), as paths relative to it; [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** Everything the platform keeps of uploads: every file row, every blob row, the bytes under sha256/ and anything staged. */
export async function storage(db: Db, filesDir: string) {
  return {
    files: await db
      .select({ id: files.id, accountId: files.accountId, sha256: files.sha256, status: files.status, expiresAt: files.expiresAt })
      .from(files)
      .orderBy(asc(files.id)),
    blobs: await db.select().from(blobs).orderBy(asc(blobs.sha256)),
    onDisk: await filesUnder(join(filesDir, "sha256")),
    staging: await filesUnder(join(filesDir, "staging")),
  };
}
export type Storage = Awaited<ReturnType<typeof storage>>;

/** Where the bytes of `sha256` live under FILES_DIR/sha256. */
export const blobPath = (sha256: string) => `${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}`;

/**
 * The invariant every test ends on: each blob's ref_count is the number of
 * undeleted file rows on its bytes, exactly the blob rows have bytes on disk,
 * and nothing is left in staging.
 */
export function expectConsistent(state: Storage): void {
  const refs = new Map<string, number>();
  for (const file of state.files) if (file.status === "processed") refs.set(file.sha256, (refs.get(file.sha256) ?? 0) + 1);
  expect(Object.fromEntries(state.blobs.filter((b) => b.refCount > 0).map((b) => [b.sha256, b.refCount]))).toEqual(Object.fromEntries(refs));
  expect(state.onDisk).toEqual(state.blobs.map((b) => blobPath(b.sha256)).sort());
  expect(state.staging).toEqual([]);
}

/** The bytes of a distinct text file of exactly `size` bytes: `tag` on the first line, then "a"s. */
export function textBytes(size: number, tag: string): Buffer {
  const bytes = Buffer.alloc(size, "a");
  bytes.write(`${tag}\n`.slice(0, size));
  return bytes;
}

export const upload = async (client: OpenAI, bytes: Buffer, name: string, purpose: "user_data" | "assistants" = "user_data") =>
  client.files.create({ file: await toFile(bytes, name), purpose });

/** The exact bytes `content` gives back. */
export const downloaded = async (client: OpenAI, fileId: string) => Buffer.from(await (await client.files.content(fileId)).arrayBuffer());

/** The body of a refused raw request, checked to be SPEC 8's error shape. */
export async function errorBody(response: Response, status: number): Promise<{ message: string; type: string; code: string; param: string | null }> {
  expect(response.status).toBe(status);
  const body = await response.json();
  expect(body).toEqual({ error: { message: expect.any(String), type: expect.any(String), code: expect.any(String), param: body.error?.param ?? null } });
  return body.error;
}

export interface FilesPlatform {
  t: TestPlatform;
  filesDir: string;
  db: Db;
  /** An account with one key, and the SDK for it; rate limits high enough for a hundred uploads a minute. */
  customer(): Promise<{ client: OpenAI; accountId: string; key: string }>;
  storage(): Promise<Storage>;
  /**
   * What is kept once nothing is staged (polled for up to 5 s): some refusals
   * are answered while the refused bytes are still being staged, and those are
   * removed just after.
   */
  settled(): Promise<Storage>;
  /** The sha256 of a file row. */
  shaOf(fileId: string): Promise<string>;
  /** How many live (undeleted, unexpired as of now) files an account has, through the API. */
  liveFiles(client: OpenAI): Promise<number>;
  /** How many file rows (of any status) an account has in the database. */
  fileRows(accountId: string): Promise<number>;
  close(): Promise<void>;
}

/** The real server, with FILES_DIR in a temporary folder of its own that the test can look into. */
export async function startFilesPlatform(
  options: { clock?: Clock; env?: Record<string, string>; logger?: Logger } = {},
): Promise<FilesPlatform> {
  const filesDir = mkdtempSync(join(tmpdir(), "sentx-files-"));
  const t = await startTestPlatform({ ...options, env: { FILES_DIR: filesDir, ...options.env } });
  const db = t.platform.services.db;
  return {
    t,
    filesDir,
    db,
    async customer() {
      const { key, accountId } = await t.createCustomer({ limits: { requestsPerMinute: 1_000 } });
      return { client: t.openai(key), accountId, key };
    },
    storage: () => storage(db, filesDir),
    settled: () => eventually(() => storage(db, filesDir), (state) => state.staging.length === 0),
    shaOf: async (fileId) => (await db.select({ sha256: files.sha256 }).from(files).where(eq(files.id, fileId)))[0]!.sha256,
    async liveFiles(client) {
      let n = 0;
      for await (const _ of client.files.list({ limit: 100 })) n++;
      return n;
    },
    async fileRows(accountId) {
      const [row] = await db.select({ n: count() }).from(files).where(eq(files.accountId, accountId));
      return row!.n;
    },
    async close() {
      await t.close();
      rmSync(filesDir, { recursive: true, force: true });
    },
  };
}
