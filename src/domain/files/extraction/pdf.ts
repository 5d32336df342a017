import { readFile } from "node:fs/promises";
import { getDocumentProxy } from "unpdf";
import { capText, type ExtractedText } from "./extracted-text.js";
import type { ExtractionLimits } from "./limits.js";
import { damagedDocument } from "../invalid-file-format.js";

/** The text of the first `maxPages` pages, one page per paragraph (joined by blank lines). */
export async function extractPdfText(path: string, limits: ExtractionLimits): Promise<ExtractedText> {
  const data = new Uint8Array(await readFile(path));
  // isEvalSupported: false — never compile code from an untrusted PDF's fonts.
  // verbosity 0 — pdf.js's warnings about sloppy PDFs are noise in the logs.
  const pdf = await getDocumentProxy(data, { isEvalSupported: false, verbosity: 0 }).catch((e: unknown) => {
    throw damagedDocument("PDF", e);
  });
  try {
    const pages: string[] = [];
    let chars = 0;
    // Page by page, stopping once maxChars is reached, so a 500-page PDF that
    // hits the cap on page 3 does not have its other 497 pages parsed.
    for (let n = 1; n <= Math.min(pdf.numPages, limits.maxPages) && chars <= limits.maxChars; n++) {
      const page = await pdf.getPage(n);
      const content = await page.getTextContent();
      const text = content.items
        .map((item) => ("str" in item ? item.str + (item.hasEOL ? "\n" : "") : ""))
        .join("")
        .trim();
      page.cleanup();
      pages.push(text);
      chars += text.length + 2;
    }
    const capped = capText(pages.join("\n\n"), limits.maxChars);
    return { ...capped, truncated: capped.truncated || pdf.numPages > limits.maxPages, pages: pdf.numPages };
  } catch (e) {
    throw damagedDocument("PDF", e);
  } finally {
    await pdf.destroy();
  }
}
