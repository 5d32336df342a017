/** A document's text, as it will reach the model (SPEC 2: extracted once, at upload). */
export interface ExtractedText {
  text: string;
  /** True when maxChars or maxPages cut the text short. */
  truncated: boolean;
  /** PDFs: the document's page count (all of them, even past maxPages). */
  pages?: number;
  /** XLSX: the workbook's worksheet count. */
  sheets?: number;
}

/**
 * `text` cut to at most `maxChars` UTF-16 units, never between the two halves
 * of a surrogate pair (which would leave a lone, invalid half at the end).
 */
export function capText(text: string, maxChars: number): Pick<ExtractedText, "text" | "truncated"> {
  if (text.length <= maxChars) return { text, truncated: false };
  const last = text.charCodeAt(maxChars - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? maxChars - 1 : maxChars;
  return { text: text.slice(0, end), truncated: true };
}
