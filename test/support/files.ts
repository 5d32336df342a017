import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { count, eq } from "drizzle-orm";
import type { Db } from "../../src/domain/db.js";
import { blobs, files } from "../../src/domain/schema/index.js";

/** Every file under `dir` (recursively), as paths relative to it; [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** What the platform holds of uploads: file rows of an account, blob rows, and bytes on disk. */
export async function storedState(db: Db, filesDir: string, accountId: string) {
  const [fileRows] = await db.select({ n: count() }).from(files).where(eq(files.accountId, accountId));
  const blobRows = await db.select().from(blobs);
  return {
    fileRows: fileRows!.n,
    blobs: blobRows,
    onDisk: await filesUnder(join(filesDir, "sha256")),
    staging: await filesUnder(join(filesDir, "staging")),
  };
}

/** The bytes of a distinct text file of exactly `size` bytes. */
export function textBytes(size: number, tag: string): Buffer {
  const bytes = Buffer.alloc(size, "a");
  bytes.write(`${tag}\n`.slice(0, size));
  return bytes;
}
