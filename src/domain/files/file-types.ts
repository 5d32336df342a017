// SPEC 7: a file's type is decided from its bytes (magic numbers; UTF-8
// validity for the text types), never from its name alone. The name only
// picks between csv, md and txt, which have no magic of their own.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { type FileTypeResult, fileTypeFromBuffer, fileTypeFromFile } from "file-type";
import { invalidFileFormat } from "./invalid-file-format.js";

export type FileCategory = "image" | "video" | "document" | "text";

/** SPEC 7's supported list, exactly: anything not here is `invalid_file_format`. */
export const SUPPORTED_FILE_TYPES = [
  { mime: "image/png", ext: "png", category: "image" },
  { mime: "image/jpeg", ext: "jpg", category: "image" },
  { mime: "image/webp", ext: "webp", category: "image" },
  { mime: "image/gif", ext: "gif", category: "image" },
  { mime: "video/mp4", ext: "mp4", category: "video" },
  { mime: "video/webm", ext: "webm", category: "video" },
  { mime: "video/quicktime", ext: "mov", category: "video" },
  { mime: "application/pdf", ext: "pdf", category: "document" },
  { mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ext: "docx", category: "document" },
  { mime: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ext: "xlsx", category: "document" },
  { mime: "text/csv", ext: "csv", category: "text" },
  { mime: "text/plain", ext: "txt", category: "text" },
  { mime: "text/markdown", ext: "md", category: "text" },
] as const satisfies readonly { mime: string; ext: string; category: FileCategory }[];

/** One row of the table: mime, ext and category always travel together. */
export type SniffedFileType = (typeof SUPPORTED_FILE_TYPES)[number];
export type SupportedMime = SniffedFileType["mime"];

const SUPPORTED_LIST = SUPPORTED_FILE_TYPES.map((t) => t.ext).join(", ");

function bySupportedMime(mime: string): SniffedFileType | undefined {
  return SUPPORTED_FILE_TYPES.find((t) => t.mime === mime);
}

/**
 * The table row of a MIME type sniffFileType produced earlier (a stored
 * file's mime_type). Any other MIME type is a bug or corrupt data, not a
 * client error, so it throws a plain Error.
 */
export function fileTypeByMime(mime: string): SniffedFileType {
  const type = bySupportedMime(mime);
  if (!type) throw new Error(`fileTypeByMime: ${mime} is not a supported file type`);
  return type;
}

const invalidFormat = (what: string) => invalidFileFormat(`${what}. Supported types: ${SUPPORTED_LIST}.`);

/**
 * file-type recognises a few formats that are themselves plain text (XML,
 * iCalendar, vCard, WebVTT). Such bytes are text with a telltale first line,
 * not a binary type, so they go through the UTF-8 check like any other text.
 */
function isTextualDetection(detected: FileTypeResult): boolean {
  return detected.mime.startsWith("text/") || detected.mime === "application/xml";
}

function textTypeForName(filename: string): SniffedFileType {
  const ext = extname(filename).toLowerCase();
  const mime = ext === ".csv" ? "text/csv" : ext === ".md" || ext === ".markdown" ? "text/markdown" : "text/plain";
  return bySupportedMime(mime)!;
}

/**
 * Whether the whole file is UTF-8 without NUL bytes. Streamed through one
 * fatal decoder ({stream:true} carries a character split across chunks), so a
 * 25 MB upload is never held in memory.
 */
async function isUtf8Text(path: string): Promise<boolean> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      if (chunk.includes(0)) return false; // valid UTF-8, but no text file has one and binary data nearly always does
      decoder.decode(chunk, { stream: true });
    }
    decoder.decode(); // a multi-byte character cut off at the end is invalid too
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_ENCODING_INVALID_ENCODED_DATA") return false;
    throw e; // an I/O error says nothing about the file's type
  }
}

/**
 * The supported type of the file at `path`, from its bytes. `filename` only
 * picks csv/md/txt for text; a PNG named "report.pdf" is a PNG.
 */
export async function sniffFileType(path: string, filename: string): Promise<SniffedFileType> {
  if ((await stat(path)).size === 0) throw invalidFormat("The file is empty");

  // file-type reads only what it needs; for zips it inflates at most 1 MB of
  // [Content_Types].xml to tell docx/xlsx from other zips, so bombs are safe here.
  const detected = await fileTypeFromFile(path);
  if (detected && !isTextualDetection(detected)) {
    const supported = bySupportedMime(detected.mime);
    if (!supported) throw invalidFormat(`Unsupported file type: the bytes are ${detected.mime} (.${detected.ext})`);
    return supported;
  }

  if (!(await isUtf8Text(path))) throw invalidFormat("Unsupported file format: the bytes match no supported type and are not UTF-8 text");
  return textTypeForName(filename);
}

/**
 * The image type of inline bytes (SPEC 2: base64 `data:` images), or null when
 * they are not png, jpeg, webp or gif. The caller compares it with the MIME
 * type the data URL claims.
 */
export async function sniffImageBytes(bytes: Uint8Array): Promise<SniffedFileType | null> {
  const detected = await fileTypeFromBuffer(bytes);
  const supported = detected && bySupportedMime(detected.mime);
  return supported?.category === "image" ? supported : null;
}
