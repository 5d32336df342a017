// SPEC 7: docx and xlsx are zip archives, and mammoth/exceljs inflate every
// part into memory without limits. This guard runs first and refuses a zip
// bomb before a parser sees it.
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { isDomainError } from "../../errors.js";
import type { ExtractionLimits } from "./limits.js";
import { damagedDocument, unreadableDocument } from "../invalid-file-format.js";

// The ratio check applies only to entries that inflate to more than this:
// small parts cannot be bombs, and tiny repetitive XML compresses very well.
const RATIO_CHECK_MIN_BYTES = 1024 * 1024;

const tooLarge = (detail: string) => unreadableDocument(`it is too large when decompressed (${detail})`);
const overTotal = (limits: ExtractionLimits) => tooLarge(`over ${Math.round(limits.maxDecompressedBytes / (1024 * 1024))} MB`);

/**
 * Throws `invalid_file_format` unless the zip at `path` is within `limits`.
 * `kind` names the format in the message ("DOCX file"). Checks the central
 * directory first (entry count, declared sizes, ratios), then — because
 * headers can lie — inflates every entry, discarding the bytes and counting
 * them; yauzl's validateEntrySizes also stops an entry at its declared size.
 */
export async function assertSafeZip(path: string, limits: ExtractionLimits, kind: string): Promise<void> {
  let zip: ZipFile | undefined;
  try {
    zip = await yauzl.openPromise(path, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false });
    if (zip.entryCount > limits.maxZipEntries) {
      throw unreadableDocument(`it has too many parts (${zip.entryCount} zip entries, limit ${limits.maxZipEntries})`);
    }
    const entries = await readDeclaredEntries(zip, limits);
    let budget = limits.maxDecompressedBytes;
    for (const entry of entries) budget -= await inflateCounting(zip, entry, budget, limits);
  } catch (e) {
    if (isDomainError(e)) throw e;
    // yauzl's validateEntrySizes reports an entry that inflates past its
    // declared size only by this message: that is a lying header, i.e. a bomb.
    if (e instanceof Error && e.message.startsWith("too many bytes in the stream")) {
      throw tooLarge("an entry is larger than its header declares");
    }
    throw damagedDocument(kind, e);
  } finally {
    zip?.close();
  }
}

/** The central directory's entries, refused if their declared sizes already break the limits. */
async function readDeclaredEntries(zip: ZipFile, limits: ExtractionLimits): Promise<Entry[]> {
  const entries: Entry[] = [];
  let declared = 0;
  for await (const entry of zip.eachEntry()) {
    declared += entry.uncompressedSize;
    if (declared > limits.maxDecompressedBytes) throw overTotal(limits);
    const ratio = entry.uncompressedSize / Math.max(entry.compressedSize, 1);
    if (entry.uncompressedSize > RATIO_CHECK_MIN_BYTES && ratio > limits.maxCompressionRatio) {
      throw tooLarge(`an entry is compressed ${Math.round(ratio)}:1, limit ${limits.maxCompressionRatio}:1`);
    }
    entries.push(entry);
  }
  return entries;
}

/** Inflates `entry` into nothing, returning its size; throws as soon as it passes `budget` bytes. */
async function inflateCounting(zip: ZipFile, entry: Entry, budget: number, limits: ExtractionLimits): Promise<number> {
  let inflated = 0;
  const counter = new Writable({
    write(chunk: Buffer, _encoding, done) {
      inflated += chunk.length;
      done(inflated > budget ? overTotal(limits) : null);
    },
  });
  await pipeline(await zip.openReadStreamPromise(entry), counter);
  return inflated;
}
