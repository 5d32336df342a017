import type { Readable } from "node:stream";
import type { ByteSource } from "./byte-source.js";

/**
 * Where file bytes live, addressed by their SHA-256 (SPEC 7: identical bytes
 * are stored once whoever uploads them). Local disk today; an S3-compatible
 * store can implement the same port later.
 */
export interface BlobStore {
  /**
   * Streams bytes to a private staging area while hashing and counting;
   * rejects with DomainError("file_too_large", …, "file") as soon as more
   * than maxBytes arrive (the staged file is removed), never after the fact.
   */
  stage(source: ByteSource, opts: { maxBytes: number; signal?: AbortSignal }): Promise<StagedBlob>;
  /** Moves a staged blob to its content address; a no-op (staged copy discarded) when those bytes are already stored. */
  commit(staged: StagedBlob): Promise<void>;
  /** The stored bytes; throws on a malformed digest, and the stream errors when the blob is absent. */
  open(sha256: string): Readable;
  exists(sha256: string): Promise<boolean>;
  /** Idempotent: removing an absent blob succeeds. */
  remove(sha256: string): Promise<void>;
}

/** Bytes received in full but not yet stored: the scanner, sniffer and extractor read them first. */
export interface StagedBlob {
  sha256: string;
  bytes: number;
  /** A local file holding exactly these bytes, until commit or discard. */
  path: string;
  /** Idempotent. */
  discard(): Promise<void>;
}

/** Content addresses are lowercase hex SHA-256; anything else must never reach a path. */
export const isSha256Hex = (value: string): boolean => /^[0-9a-f]{64}$/.test(value);
