import { createReadStream } from "node:fs";
import { capText, type ExtractedText } from "./extracted-text.js";
import type { ExtractionLimits } from "./limits.js";

/**
 * A csv/txt/md file's text as is. sniffFileType has already proved it UTF-8,
 * so this needs no parser and no isolation; it stops reading once it has more
 * than maxChars, so a 25 MB file is not decoded whole only to be cut.
 */
export async function readTextFile(path: string, limits: ExtractionLimits): Promise<ExtractedText> {
  const decoder = new TextDecoder("utf-8");
  let text = "";
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    text += decoder.decode(chunk, { stream: true });
    if (text.length > limits.maxChars) return capText(text, limits.maxChars);
  }
  return capText(text + decoder.decode(), limits.maxChars);
}
