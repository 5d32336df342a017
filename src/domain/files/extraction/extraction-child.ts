// Entry point of the extraction child process (started by run-in-child.ts):
// it parses one document, sends back one reply and exits. Untrusted bytes are
// only ever parsed here, never in the server process.
import type { SniffedFileType } from "../file-types.js";
import { isDomainError } from "../../errors.js";
import { unreadableDocument } from "../invalid-file-format.js";
import type { ExtractedText } from "./extracted-text.js";
import type { ExtractionLimits } from "./limits.js";

export type DocumentMime = Extract<SniffedFileType, { category: "document" }>["mime"];

export interface ExtractionRequest {
  path: string;
  mime: DocumentMime;
  limits: ExtractionLimits;
}

/** `message` is a DomainError message for the client; `detail` is the underlying error, for the log. */
export type ExtractionReply = { ok: true; extracted: ExtractedText } | { ok: false; message: string; detail?: string };

/** Loads only the parser the format needs: a PDF's child never loads exceljs. */
async function parseDocument({ path, mime, limits }: ExtractionRequest): Promise<ExtractedText> {
  switch (mime) {
    case "application/pdf":
      return (await import("./pdf.js")).extractPdfText(path, limits);
    case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
      return (await import("./docx.js")).extractDocxText(path, limits);
    case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
      return (await import("./xlsx.js")).extractXlsxText(path, limits);
  }
}

async function reply(request: ExtractionRequest): Promise<ExtractionReply> {
  try {
    return { ok: true, extracted: await parseDocument(request) };
  } catch (e) {
    if (isDomainError(e)) return { ok: false, message: e.message, ...(e.cause === undefined ? {} : { detail: String(e.cause) }) };
    // A parser that throws something of its own has choked on the bytes.
    return { ok: false, message: unreadableDocument("it could not be parsed").message, detail: String(e) };
  }
}

process.once("message", (request: ExtractionRequest) => {
  void reply(request).then((message) => process.send!(message, () => process.exit(0)));
});
// The server went away (or gave up on us): there is no one left to answer.
process.once("disconnect", () => process.exit(1));
