import { capText, type ExtractedText } from "./extracted-text.js";
import type { ExtractionLimits } from "./limits.js";
import { damagedDocument } from "../invalid-file-format.js";
import { assertSafeZip } from "./zip-guard.js";

/** A Word document's text, paragraphs separated by blank lines (mammoth's raw text). */
export async function extractDocxText(path: string, limits: ExtractionLimits): Promise<ExtractedText> {
  await assertSafeZip(path, limits, "DOCX file");
  // Loaded on first use: most processes never read a document, and it weighs ~15 MB resident.
  const { default: mammoth } = await import("mammoth");
  const { value } = await mammoth.extractRawText({ path }).catch((e: unknown) => {
    throw damagedDocument("DOCX file", e);
  });
  return capText(value.trim(), limits.maxChars);
}
