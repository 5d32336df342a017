import { createReadStream } from "node:fs";
import type { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { and, asc, count, desc, eq, gt, lte, sql, sum } from "drizzle-orm";
import pLimit from "p-limit";
import type { Clock } from "../clock.js";
import type { Db, DbOrTx } from "../db.js";
import { DomainError } from "../errors.js";
import { newId } from "../ids.js";
import type { Logger } from "../logger.js";
import { accounts, blobs, type FileRecord, files, type ScanStatus } from "../schema/index.js";
import { inScope, type TxScope } from "../tx-scope.js";
import type { BlobStore, StagedBlob } from "./blob-store.js";
import type { ByteSource } from "./byte-source.js";
import { extractText } from "./extraction/index.js";
import { isFileId } from "./file-id.js";
import { assertDeclaredTypeMatches, type SniffedFileType, sniffFileType } from "./file-types.js";
import type { VirusScanner } from "./virus-scanner.js";

const MiB = 1024 * 1024;

/** SPEC 7's caps and retention. */
export const FILE_RULES = {
  maxFileBytes: 25 * MiB,
  maxAccountBytes: 500 * MiB,
  maxLiveFiles: 100,
  retentionMs: 30 * 24 * 3_600_000,
} as const;

export interface NewFile {
  accountId: string;
  filename: string;
  /** The Content-Type the client gave the file; undefined when it gave none. */
  contentType: string | undefined;
  purpose: string;
}

export interface ListFilesQuery {
  limit: number;
  after?: string | undefined;
  order: "asc" | "desc";
  purpose?: string | undefined;
  /** Ops only: deleted and expired files too, whose rows are kept. */
  includeDeleted?: boolean | undefined;
}

/** What a purge removed: the bytes, and every file row that referred to them. */
export interface PurgedFile {
  sha256: string;
  files: Array<Pick<FileRecord, "id" | "accountId" | "filename">>;
}

export interface FilesDeps {
  db: Db;
  clock: Clock;
  blobStore: BlobStore;
  /** null only when the operator turned scanning off explicitly (FILE_SCANNING=off). */
  scanner: VirusScanner | null;
  /**
   * SPEC 7's one exception, for the embedded default bound to loopback: an
   * upload made while the scanner does not answer is stored unscanned, not refused.
   */
  storeUnscannedWhileScannerDown: boolean;
  logger: Logger;
  /**
   * Documents are parsed in child processes of up to ~1 GB each; more at once
   * than there are cores only queues work and risks memory.
   */
  maxConcurrentExtractions: number;
}

// Only an id in the issued form is echoed back: anything else may be huge or hold control characters.
const notFound = (fileId: string) =>
  new DomainError("file_not_found", isFileId(fileId) ? `No such file: ${fileId}.` : "No such file: that is not a file id.", "file_id");

/** Serialises changes to one blob's reference count across transactions and instances. */
const lockBlob = (tx: DbOrTx, sha256: string) => tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${sha256}, 0))`);

/**
 * The Files API's rules (SPEC 7): every upload is typed from its bytes,
 * scanned, capped, deduplicated and kept 30 days; documents are turned into
 * text once, at upload. Expired and deleted files are gone to their owner at
 * once; their bytes go when no live file refers to them.
 */
export function createFiles({ db, clock, blobStore, scanner, storeUnscannedWhileScannerDown, logger, maxConcurrentExtractions }: FilesDeps) {
  const extraction = pLimit(maxConcurrentExtractions);
  const live = (accountId: string) =>
    and(eq(files.accountId, accountId), eq(files.status, "processed"), gt(files.expiresAt, clock.now()));

  const expiresFromNow = () => new Date(clock.now().getTime() + FILE_RULES.retentionMs);

  /** The account's live copy of these bytes, with its retention restarted; null when there is none. */
  async function refreshDuplicate(tx: DbOrTx, accountId: string, sha256: string): Promise<FileRecord | null> {
    const [duplicate] = await tx
      .update(files)
      .set({ expiresAt: expiresFromNow() })
      .where(and(live(accountId), eq(files.sha256, sha256)))
      .returning();
    return duplicate ?? null;
  }

  async function assertWithinCaps(tx: DbOrTx, accountId: string, bytes: number): Promise<void> {
    const [usage] = await tx.select({ files: count(), bytes: sum(files.bytes) }).from(files).where(live(accountId));
    if ((usage?.files ?? 0) >= FILE_RULES.maxLiveFiles) {
      throw new DomainError(
        "max_files_reached",
        `This account already has ${FILE_RULES.maxLiveFiles} files, the most allowed. Delete one to upload another.`,
        "file",
      );
    }
    const stored = Number(usage?.bytes ?? 0);
    if (stored + bytes > FILE_RULES.maxAccountBytes) {
      throw new DomainError(
        "storage_quota_exceeded",
        `This upload would take the account past its ${FILE_RULES.maxAccountBytes / MiB} MB of file storage (${Math.ceil(stored / MiB)} MB in use). Delete files to make room.`,
        "file",
      );
    }
  }

  /** Scanned and clean, or to be stored unscanned where that is allowed; a hit, or no verdict where one is required, throws. */
  async function assertClean(staged: StagedBlob): Promise<ScanStatus> {
    if (!scanner) return "unscanned";
    if (storeUnscannedWhileScannerDown && !(await scanner.ping())) return "unscanned";
    const verdict = await scanner.scan(createReadStream(staged.path));
    if (!verdict.clean) {
      throw new DomainError("av_hit", `The virus scanner flagged this file (${verdict.signature}); it was not stored.`, "file");
    }
    return "scanned";
  }

  async function textOf(staged: StagedBlob, type: SniffedFileType): Promise<{ text: string | null; truncated: boolean }> {
    if (type.category !== "document" && type.category !== "text") return { text: null, truncated: false };
    return extraction(() => extractText(staged.path, type));
  }

  /** Drops one reference to a file's bytes; the last reference leaves them for removeUnreferencedBlobs. */
  async function release(tx: DbOrTx, file: Pick<FileRecord, "sha256">): Promise<void> {
    await lockBlob(tx, file.sha256);
    await tx
      .update(blobs)
      .set({ refCount: sql`${blobs.refCount} - 1` })
      .where(eq(blobs.sha256, file.sha256));
  }

  return {
    /** Receives an upload's bytes, hashing and counting; over 25 MB it stops reading and refuses at once. */
    receive(source: ByteSource, signal?: AbortSignal): Promise<StagedBlob> {
      return blobStore.stage(source, { maxBytes: FILE_RULES.maxFileBytes, ...(signal && { signal }) });
    },

    /**
     * Checks and keeps received bytes as the account's file. Identical bytes the
     * account already has return that file, its retention restarted. The staged
     * bytes are always consumed: stored, or discarded.
     */
    async create(input: NewFile, staged: StagedBlob): Promise<FileRecord> {
      try {
        // Typed before the duplicate check, so a misdeclared copy is refused without restarting its twin's retention.
        const type = await sniffFileType(staged.path, input.filename);
        assertDeclaredTypeMatches(type, input);
        const known = await refreshDuplicate(db, input.accountId, staged.sha256);
        if (known) return known;
        const scanStatus = await assertClean(staged);
        const extracted = await textOf(staged, type);
        const id = newId.file();

        const file = await db.transaction(async (tx) => {
          // The account row lock makes the caps exact under concurrent uploads.
          const [account] = await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, input.accountId)).for("update");
          if (!account) throw new DomainError("not_found", `No account ${input.accountId}.`);
          const raced = await refreshDuplicate(tx, input.accountId, staged.sha256);
          if (raced) return raced;
          await assertWithinCaps(tx, input.accountId, staged.bytes);

          await lockBlob(tx, staged.sha256);
          await tx
            .insert(blobs)
            .values({ sha256: staged.sha256, bytes: staged.bytes, refCount: 1, createdAt: clock.now() })
            .onConflictDoUpdate({ target: blobs.sha256, set: { refCount: sql`${blobs.refCount} + 1` } });
          const [file] = await tx
            .insert(files)
            .values({
              id,
              accountId: input.accountId,
              sha256: staged.sha256,
              filename: input.filename,
              purpose: input.purpose,
              bytes: staged.bytes,
              mimeType: type.mime,
              extractedText: extracted.text,
              extractedTextTruncated: extracted.truncated,
              scanStatus,
              createdAt: clock.now(),
              expiresAt: expiresFromNow(),
            })
            .returning();
          // Under the blob lock, so a concurrent removal of the same bytes cannot slip between the row and the bytes.
          await blobStore.commit(staged);
          return file!;
        });
        if (file.id === id && scanStatus === "unscanned") {
          logger.warn(
            { fileId: id, accountId: input.accountId, scanStatus },
            scanner ? "upload stored WITHOUT a virus scan: the scanner did not answer" : "upload stored WITHOUT a virus scan: FILE_SCANNING=off",
          );
        }
        return file;
      } finally {
        await staged.discard();
      }
    },

    async list(accountId: string, query: ListFilesQuery): Promise<{ data: FileRecord[]; hasMore: boolean }> {
      const conditions = [query.includeDeleted ? eq(files.accountId, accountId) : live(accountId)];
      if (query.purpose) conditions.push(eq(files.purpose, query.purpose));
      if (query.after) {
        const [cursor] = await db.select().from(files).where(and(eq(files.accountId, accountId), eq(files.id, query.after)));
        if (!cursor) throw new DomainError("invalid_request_error", `No such file to list after: ${query.after}.`, "after");
        const at = sql`${cursor.createdAt.toISOString()}::timestamptz`;
        const beyond =
          query.order === "asc"
            ? sql`(${files.createdAt}, ${files.id}) > (${at}, ${cursor.id})`
            : sql`(${files.createdAt}, ${files.id}) < (${at}, ${cursor.id})`;
        conditions.push(beyond);
      }
      const direction = query.order === "asc" ? asc : desc;
      const rows = await db
        .select()
        .from(files)
        .where(and(...conditions))
        .orderBy(direction(files.createdAt), direction(files.id))
        .limit(query.limit + 1);
      return { data: rows.slice(0, query.limit), hasMore: rows.length > query.limit };
    },

    /** A live file of this account; another account's, a deleted or an expired one is not found. */
    async get(accountId: string, fileId: string): Promise<FileRecord> {
      if (!isFileId(fileId)) throw notFound(fileId);
      const [file] = await db
        .select()
        .from(files)
        .where(and(live(accountId), eq(files.id, fileId)));
      if (!file) throw notFound(fileId);
      return file;
    },

    open: (file: Pick<FileRecord, "sha256">): Readable => blobStore.open(file.sha256),

    /** A whole file in memory: for attachments, which are at most 25 MB. */
    readBytes: (file: Pick<FileRecord, "sha256">): Promise<Buffer> => buffer(blobStore.open(file.sha256)),

    async delete(accountId: string, fileId: string): Promise<FileRecord> {
      if (!isFileId(fileId)) throw notFound(fileId);
      return db.transaction(async (tx) => {
        const [file] = await tx
          .update(files)
          .set({ status: "deleted", deletedAt: clock.now() })
          .where(and(live(accountId), eq(files.id, fileId)))
          .returning();
        if (!file) throw notFound(fileId);
        await release(tx, file);
        return file;
      });
    },

    /**
     * A takedown (SPEC 12): the file's bytes leave storage now, with every file
     * row that refers to them, of any account: identical bytes are stored once
     * (SPEC 7), so the content is the same wherever it was uploaded. Unlike
     * delete, no row is kept, extracted text included.
     */
    async purge(fileId: string, scope?: TxScope): Promise<PurgedFile> {
      if (!isFileId(fileId)) throw notFound(fileId);
      return inScope(db, scope, async ({ tx }) => {
        const [file] = await tx.select({ sha256: files.sha256 }).from(files).where(eq(files.id, fileId));
        if (!file) throw notFound(fileId);
        await lockBlob(tx, file.sha256);
        const removed = await tx
          .delete(files)
          .where(eq(files.sha256, file.sha256))
          .returning({ id: files.id, accountId: files.accountId, filename: files.filename });
        await tx.delete(blobs).where(eq(blobs.sha256, file.sha256));
        // Under the blob lock, before the commit: an upload of the same bytes waits, then stores them
        // afresh. Should the commit fail, the rows come back without bytes: for a takedown, the bytes going is what counts.
        await blobStore.remove(file.sha256);
        return { sha256: file.sha256, files: removed };
      });
    },

    /** Retention (SPEC 7): files past their expiry give up their bytes. Returns how many expired. */
    async expireDue(batchSize = 500): Promise<number> {
      return db.transaction(async (tx) => {
        const due = await tx
          .select({ id: files.id })
          .from(files)
          .where(and(eq(files.status, "processed"), lte(files.expiresAt, clock.now())))
          .orderBy(files.sha256)
          .limit(batchSize)
          .for("update", { skipLocked: true });
        for (const { id } of due) {
          const [file] = await tx.update(files).set({ status: "deleted", deletedAt: clock.now() }).where(eq(files.id, id)).returning();
          await release(tx, file!);
        }
        return due.length;
      });
    },

    /** Removes bytes no file refers to any more. Returns how many blobs went. */
    async removeUnreferencedBlobs(batchSize = 100): Promise<number> {
      const candidates = await db.select({ sha256: blobs.sha256 }).from(blobs).where(lte(blobs.refCount, 0)).limit(batchSize);
      let removed = 0;
      for (const { sha256 } of candidates) {
        await db.transaction(async (tx) => {
          await lockBlob(tx, sha256);
          // Checked again under the lock: an upload may have taken the bytes back meanwhile.
          const [gone] = await tx
            .delete(blobs)
            .where(and(eq(blobs.sha256, sha256), lte(blobs.refCount, 0)))
            .returning();
          if (!gone) return;
          // Inside the transaction: should the commit fail, the row stays and the next sweep retries.
          await blobStore.remove(sha256);
          removed++;
        });
      }
      return removed;
    },
  };
}

export type Files = ReturnType<typeof createFiles>;
