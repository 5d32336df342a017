import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { DomainError } from "../domain/errors.js";
import { isSha256Hex, type BlobStore } from "../domain/files/blob-store.js";
import { readChunks } from "../domain/files/byte-source.js";

// Blobs on local disk: <root>/staging/<uuid> while an upload is received and
// checked, then <root>/sha256/<aa>/<bb>/<sha256> once committed. Staging and
// blobs share one root, so a commit is a rename on one filesystem: atomic, and
// a reader sees either no blob or the whole of it.

export interface LocalBlobStoreOptions {
  root: string;
}

export interface LocalBlobStore extends BlobStore {
  /** Removes staged files untouched for longer than `olderThanMs` (left by a crashed process); returns how many. */
  sweepStaging(olderThanMs: number): Promise<number>;
}

// Uploads are private to their account: nobody else on the machine reads them.
const FILE_MODE = 0o600;
const FOLDER_MODE = 0o700;

export function createLocalBlobStore(options: LocalBlobStoreOptions): LocalBlobStore {
  const stagingFolder = join(options.root, "staging");
  const blobsFolder = join(options.root, "sha256");

  const blobPath = (sha256: string): string => {
    // Checked before any path is built: the digest is the only caller-supplied part of it.
    if (!isSha256Hex(sha256)) throw new TypeError(`Not a lowercase hex SHA-256 digest: ${JSON.stringify(sha256)}`);
    return join(blobsFolder, sha256.slice(0, 2), sha256.slice(2, 4), sha256);
  };

  return {
    async stage(source, { maxBytes, signal }) {
      if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a whole number of bytes, got ${maxBytes}`);
      signal?.throwIfAborted();
      await mkdir(stagingFolder, { recursive: true, mode: FOLDER_MODE });
      const path = join(stagingFolder, randomUUID());
      const discard = () => rm(path, { force: true });
      const file = await open(path, "wx", FILE_MODE);
      const hash = createHash("sha256");
      let bytes = 0;
      try {
        for await (const chunk of readChunks(source, signal)) {
          bytes += chunk.byteLength;
          // SPEC 7: refused while streaming; leaving the loop stops pulling the source.
          if (bytes > maxBytes) {
            const megabytes = Number((maxBytes / 1024 / 1024).toFixed(1));
            throw new DomainError("file_too_large", `Files may be at most ${megabytes} MB (${maxBytes.toLocaleString("en-US")} bytes).`, "file");
          }
          hash.update(chunk);
          await writeAll(file, chunk);
        }
        // On disk before it can be renamed to a content address: a crash never leaves half a file there.
        await file.sync();
      } catch (error) {
        await file.close().catch(() => {});
        await discard();
        throw error;
      }
      await file.close();
      return { sha256: hash.digest("hex"), bytes, path, discard };
    },

    async commit(staged) {
      const target = blobPath(staged.sha256);
      if (dirname(staged.path) !== stagingFolder) throw new TypeError("Not a blob staged by this store");
      // Same digest, same bytes: whoever stored them first, they are already here.
      if (await isFile(target)) return staged.discard();
      const folder = dirname(target);
      const firstCreated = await mkdir(folder, { recursive: true, mode: FOLDER_MODE });
      // Two commits of identical bytes may both get here; the second rename replaces identical bytes atomically.
      await rename(staged.path, target);
      // The rename (and any new fan-out folder) lasts only once its folder is synced; a lost rename would orphan a file record.
      const folders = [folder];
      if (firstCreated) for (let at = folder; at !== dirname(firstCreated); ) folders.push((at = dirname(at)));
      for (const changed of folders) await syncFolder(changed);
    },

    open(sha256): Readable {
      return createReadStream(blobPath(sha256));
    },

    async exists(sha256) {
      return isFile(blobPath(sha256));
    },

    async remove(sha256) {
      await rm(blobPath(sha256), { force: true });
    },

    async sweepStaging(olderThanMs) {
      // File times are wall-clock, so the cut-off is too (not the injected clock).
      const cutoff = Date.now() - olderThanMs;
      let names: string[];
      try {
        names = await readdir(stagingFolder);
      } catch (error) {
        if (isMissing(error)) return 0;
        throw error;
      }
      let removed = 0;
      for (const name of names) {
        const path = join(stagingFolder, name);
        const info = await lstat(path).catch((error: unknown) => (isMissing(error) ? null : Promise.reject(error)));
        // An upload still streaming, or staged and being scanned, has a recent mtime and is left alone.
        if (!info || info.mtimeMs >= cutoff) continue;
        await rm(path, { force: true, recursive: true });
        removed++;
      }
      return removed;
    },
  };
}

type FileHandle = Awaited<ReturnType<typeof open>>;

/** A single write may take only part of a buffer; keep going until all of it is on its way to disk. */
async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let at = 0; at < chunk.byteLength; ) {
    const { bytesWritten } = await file.write(chunk, at);
    at += bytesWritten;
  }
}

async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException | null)?.code === "ENOENT";
