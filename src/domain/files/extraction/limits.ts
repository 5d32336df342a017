/** How far extraction may go before a document is refused or its text cut. */
export interface ExtractionLimits {
  /** PDF pages read; later pages are skipped and the text marked truncated. */
  maxPages: number;
  /** Characters of text kept; the rest is cut and the text marked truncated (not an error). */
  maxChars: number;
  /** Total bytes an office zip may inflate to, summed over all its entries. */
  maxDecompressedBytes: number;
  /** Entries in an office zip's central directory. */
  maxZipEntries: number;
  /** Uncompressed ÷ compressed size allowed for one large zip entry. */
  maxCompressionRatio: number;
  /** Wall-clock time for one extraction, including starting its process. */
  timeoutMs: number;
  /** V8 heap of the extraction process (--max-old-space-size). */
  maxHeapMb: number;
  /** Resident memory of the extraction process, heap and buffers together (watched on Linux). */
  maxRssMb: number;
}

// Why these numbers: a 25 MB upload (SPEC 7) of real prose or tables is far
// below all of them — 500 pages and 1M characters (~250k tokens) are more than
// any model's context takes, a genuine office file rarely inflates beyond
// 10-20× its size or to more than a few thousand entries — while a zip bomb
// (1000:1 and up) or a document built to exhaust the parser stops early.
// Memory: pdf.js, mammoth and exceljs hold a whole document model, a few times
// the inflated XML, so 512 MB of heap covers a legitimate 100 MB-inflated file;
// pdf.js decodes streams into buffers outside the V8 heap, hence the separate
// RSS cap. 20 s is generous for a 25 MB document and short enough that an
// upload request does not appear hung.
export const DEFAULT_EXTRACTION_LIMITS: Readonly<ExtractionLimits> = Object.freeze({
  maxPages: 500,
  maxChars: 1_000_000,
  maxDecompressedBytes: 100 * 1024 * 1024,
  maxZipEntries: 10_000,
  maxCompressionRatio: 100,
  timeoutMs: 20_000,
  maxHeapMb: 512,
  maxRssMb: 1024,
});
