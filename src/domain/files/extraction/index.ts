// SPEC 2/7: pdf, docx, xlsx, csv, txt and md reach the model as their text,
// extracted once at upload. Text files are read here; documents are parsed in
// a disposable child process (run-in-child.ts) behind a zip guard.
import { resolve } from "node:path";
import type { SniffedFileType } from "../file-types.js";
import type { ExtractedText } from "./extracted-text.js";
import { DEFAULT_EXTRACTION_LIMITS, type ExtractionLimits } from "./limits.js";
import { parseInChild } from "./run-in-child.js";
import { readTextFile } from "./text.js";

export type { ExtractedText } from "./extracted-text.js";
export { DEFAULT_EXTRACTION_LIMITS, type ExtractionLimits } from "./limits.js";

/**
 * The text of a document or text file whose type sniffFileType decided.
 * Throws `invalid_file_format` for a document that cannot be read (damaged,
 * a zip bomb, too slow, too much memory); text beyond maxChars is cut, with
 * `truncated: true`. Images and videos have no text: calling it for one is a
 * programming error (TypeError).
 */
export async function extractText(path: string, type: SniffedFileType, limits: Partial<ExtractionLimits> = {}): Promise<ExtractedText> {
  // `{ timeoutMs: undefined }` keeps the default rather than becoming a 0 ms timeout.
  const effective: ExtractionLimits = { ...DEFAULT_EXTRACTION_LIMITS };
  for (const [key, value] of Object.entries(limits) as [keyof ExtractionLimits, number | undefined][]) {
    if (value !== undefined) effective[key] = value;
  }
  switch (type.category) {
    case "text":
      return readTextFile(path, effective);
    case "document":
      return parseInChild({ path: resolve(path), mime: type.mime, limits: effective });
    default:
      throw new TypeError(`extractText: ${type.mime} (${type.category}) has no text to extract`);
  }
}
