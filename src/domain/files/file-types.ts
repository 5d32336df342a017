// SPEC 7: a file's type is decided from its bytes (magic numbers; UTF-8
// validity for the text types), never from its name alone. The name only
// picks between csv, md and txt, which have no magic of their own; what the
// client declared (Content-Type, extension) must not contradict the bytes.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname } from "node:path";
import { fileTypeFromBuffer, fileTypeFromFile, supportedExtensions, supportedMimeTypes } from "file-type";
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
 * MIME types whose content is text: text/*, JSON and XML (with their +json,
 * +xml kin such as image/svg+xml). file-type recognises a few of these (XML,
 * iCalendar, vCard, WebVTT) by a telltale first line; such bytes are still
 * text, not a binary type, so they go through the UTF-8 check like any other.
 */
const isTextualMime = (mime: string) => /^text\/|^application\/(json|xml)$|\+(json|xml)$/.test(mime);

function textTypeForName(filename: string): SniffedFileType {
  const ext = extname(filename).toLowerCase();
  const mime = ext === ".csv" ? "text/csv" : ext === ".md" || ext === ".markdown" ? "text/markdown" : "text/plain";
  return bySupportedMime(mime)!;
}

/**
 * The text rule (csv, txt and md have no magic number): bytes in which
 * file-type finds no binary format are text when the whole file, not just its
 * start, is valid UTF-8 (a BOM is fine, a character cut off at the end is
 * not) and holds no NUL byte; an empty file is not text. Latin-1 and UTF-16
 * are refused: what reaches a model as a file's text is UTF-8 as uploaded.
 * Streamed through one fatal decoder ({stream:true} carries a character split
 * across chunks), so a 25 MB upload is never held in memory.
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
 * picks csv/md/txt for text; a PNG named "report.pdf" is a PNG (and
 * assertDeclaredTypeMatches refuses that name).
 */
export async function sniffFileType(path: string, filename: string): Promise<SniffedFileType> {
  if ((await stat(path)).size === 0) throw invalidFormat("The file is empty");

  // file-type reads only what it needs; for zips it inflates at most 1 MB of
  // [Content_Types].xml to tell docx/xlsx from other zips, so bombs are safe here.
  const detected = await fileTypeFromFile(path);
  if (detected && !isTextualMime(detected.mime)) {
    const supported = bySupportedMime(detected.mime);
    if (!supported) throw invalidFormat(`Unsupported file type: the bytes are ${detected.mime} (.${detected.ext})`);
    return supported;
  }

  if (!(await isUtf8Text(path))) throw invalidFormat("Unsupported file format: the bytes match no supported type and are not UTF-8 text");
  return textTypeForName(filename);
}

/** What the client said an upload is: its multipart Content-Type (undefined when none was sent) and its name. */
export interface DeclaredFileType {
  contentType: string | undefined;
  filename: string;
}

/**
 * What one declaration says the bytes are: a supported binary type; "text",
 * for csv, md, txt and their kin alike (one UTF-8 check proves them all, and
 * the name then picks the subtype); or "unsupported", a format file-type would
 * have recognised in the bytes but SPEC 7 does not take.
 */
type Claim = SniffedFileType | "text" | "unsupported";

const MIME_ALIASES: Readonly<Record<string, string>> = { "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg" };
const EXTENSION_ALIASES: Readonly<Record<string, string>> = { jpeg: "jpg" };
/** SPEC 7's text extensions, their usual kin, and the text formats file-type knows (xml, ics, vcf, vtt): all text here. */
const TEXT_EXTENSIONS: ReadonlySet<string> = new Set(["txt", "md", "markdown", "csv", "json", "xml", "ics", "vcf", "vtt"]);
/** RFC 6838's type/subtype syntax. Anything else declares nothing we can read, and is never echoed back. */
const MIME_SHAPE = /^[a-z0-9][\w!#$&^.+-]{0,126}\/[a-z0-9][\w!#$&^.+-]{0,126}$/;

function claimOfMime(mime: string): Claim | undefined {
  // application/octet-stream is "some bytes": what clients send when they do not know the type.
  if (mime === "application/octet-stream" || !MIME_SHAPE.test(mime)) return undefined;
  if (isTextualMime(mime)) return "text";
  return bySupportedMime(MIME_ALIASES[mime] ?? mime) ?? (supportedMimeTypes.has(mime) ? "unsupported" : undefined);
}

function claimOfExtension(ext: string): Claim | undefined {
  if (TEXT_EXTENSIONS.has(ext)) return "text";
  const canonical = EXTENSION_ALIASES[ext] ?? ext;
  const supported = SUPPORTED_FILE_TYPES.find((t) => t.ext === canonical);
  // file-type names registry hives .dat, but a .dat file may hold any data at all: that name says nothing.
  return supported ?? (supportedExtensions.has(ext) && ext !== "dat" ? "unsupported" : undefined);
}

const agrees = (claim: Claim, bytes: SniffedFileType) => (bytes.category === "text" ? claim === "text" : claim === bytes);
const describeBytes = (type: SniffedFileType) => (type.category === "text" ? "UTF-8 text" : `${type.mime} (.${type.ext})`);

/**
 * SPEC 7: the bytes decide the type, and a Content-Type or an extension that
 * names another type is a mismatch, refused rather than overruled (the client
 * would believe it stored something it did not). Only what can be checked is
 * a claim: a supported type or its alias (image/jpg, .jpeg), text (text/*,
 * JSON, XML; .txt .md .csv .json …), or a format file-type recognises and
 * SPEC 7 does not take (.exe, application/zip). application/octet-stream, no
 * Content-Type, no extension or one naming no known format (.py, .bak) declare nothing.
 */
export function assertDeclaredTypeMatches(bytes: SniffedFileType, declared: DeclaredFileType): void {
  const mime = declared.contentType?.split(";")[0]!.trim().toLowerCase() ?? "";
  const ext = extname(declared.filename).slice(1).toLowerCase();
  const declarations = [
    [claimOfMime(mime), `The file's Content-Type says ${mime}`],
    [claimOfExtension(ext), `The file name says .${ext}`],
  ] as const;
  for (const [claim, declaration] of declarations) {
    if (claim && !agrees(claim, bytes)) {
      throw invalidFileFormat(
        `${declaration}, but the bytes are ${describeBytes(bytes)}. Send the file with a name and Content-Type that match its content.`,
      );
    }
  }
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
