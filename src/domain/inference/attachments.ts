// SPEC 2 "Attachments": inline base64 images are checked from their bytes;
// Files API references become what the model can read — documents their
// extracted text, images and videos inline data — before the upstream call.
import { DomainError } from "../errors.js";
import { type FileCategory, fileTypeByMime, sniffImageBytes } from "../files/file-types.js";
import type { FileRecord } from "../schema/index.js";
import type { ModelConfig } from "./model-table.js";
import type { ChatMessage, ContentPart } from "./provider.js";

export const MAX_INLINE_IMAGE_BYTES = 10 * 1024 * 1024;

// What Files API references may add to one request's prompt, summed over the
// references (a file named twice is sent twice), and checked from the files'
// records before any of their bytes are read. One file of SPEC 7's largest
// (25 MB) fits; a dozen references to it do not.
/** Bytes of images and video. */
export const MAX_ATTACHED_MEDIA_BYTES = 32 * 1024 * 1024;
/** Characters (UTF-16 code units) of documents' extracted text: two documents at extraction's 1M-character cap. */
export const MAX_ATTACHED_DOCUMENT_CHARACTERS = 2_000_000;

/** What attachments need of the Files API: an account's live file, and its bytes. */
export interface AttachmentFiles {
  get(accountId: string, fileId: string): Promise<FileRecord>;
  readBytes(file: FileRecord): Promise<Buffer>;
}

// Upstreams see a document as a delimited block of text; the demo recognises it by its delimiters.
const BLOCK_START = '<<<file "';
const BLOCK_END = "\n<<<end of file>>>";
const HEADER_END = ")>>>";

/**
 * The extracted text inside a document block; null for any other part. The
 * block is `<<<file "NAME" (ABOUT)>>>\nTEXT\n<<<end of file>>>`, NAME and
 * ABOUT without newlines. Parsed with indexOf, not a regular expression: the
 * caller's own text is tested too, and a backtracking pattern was quadratic
 * on a long first line full of `" (`.
 */
export function documentTextOf(part: ContentPart): string | null {
  if (part.type !== "text" || typeof part.text !== "string") return null;
  const text = part.text;
  if (!text.startsWith(BLOCK_START) || !text.endsWith(BLOCK_END)) return null;
  const headerLength = text.indexOf("\n");
  const bodyEnd = text.length - BLOCK_END.length;
  if (headerLength + 1 > bodyEnd || !text.startsWith(HEADER_END, headerLength - HEADER_END.length)) return null;
  const nameEnd = text.indexOf('" (', BLOCK_START.length);
  if (nameEnd === -1 || nameEnd + 3 > headerLength - HEADER_END.length) return null;
  return text.slice(headerLength + 1, bodyEnd);
}

const documentText = (file: FileRecord): ContentPart => {
  const about = file.extractedTextTruncated ? `${file.mimeType}; only the beginning of its text` : file.mimeType;
  return {
    type: "text",
    text: `${BLOCK_START}${file.filename.replace(/\n/g, " ")}" (${about})>>>\n${file.extractedText ?? ""}${BLOCK_END}`,
  };
};

const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// Browsers and SDKs say image/jpg as often as image/jpeg.
const MIME_ALIASES: Record<string, string> = { "image/jpg": "image/jpeg" };

/**
 * Checks an inline image: a `data:` URL (the surface refused any other URL,
 * SPEC 2), real base64, within 10 MB, and bytes that are the type it claims.
 */
async function assertInlineImage(url: unknown, param: string): Promise<void> {
  const inline = typeof url === "string" && /^data:/i.test(url) ? url : "data:";
  const comma = inline.indexOf(",");
  // Media type and parameters are case-insensitive (RFC 2397): ;BASE64 is ;base64.
  const header = inline.slice(5, comma === -1 ? undefined : comma).toLowerCase().split(";");
  const payload = comma === -1 ? "" : inline.slice(comma + 1);
  const declared = header[0] ?? "";
  if (!header.includes("base64") || payload.length % 4 !== 0 || !BASE64.test(payload)) {
    throw new DomainError("invalid_file_format", "Inline images must be data:<type>;base64,<data> with valid base64.", param);
  }
  const padding = payload.endsWith("==") ? 2 : payload.endsWith("=") ? 1 : 0;
  const size = (payload.length / 4) * 3 - padding;
  if (size > MAX_INLINE_IMAGE_BYTES) {
    throw new DomainError(
      "image_too_large",
      `Inline images may be at most 10 MB; this one is ${(size / 1024 / 1024).toFixed(1)} MB. Use the Files API for larger files.`,
      param,
    );
  }
  const sniffed = await sniffImageBytes(Buffer.from(payload, "base64"));
  if (!sniffed) throw new DomainError("invalid_file_format", "The inline image is not a png, jpeg, webp or gif image.", param);
  if ((MIME_ALIASES[declared] ?? declared) !== sniffed.mime) {
    throw new DomainError("invalid_file_format", `The inline image says ${declared || "no type"} but its bytes are ${sniffed.mime}.`, param);
  }
}

const isFileReference = (part: ContentPart) => part.type === "input_file" || part.type === "file";

/** The file_id of an `input_file` (SentX) or `file` (OpenAI) part, as sent. */
const fileIdOf = (part: ContentPart): unknown =>
  ((part.type === "file" ? part.file : part) as { file_id?: unknown } | undefined)?.file_id;

const isUsableFileId = (fileId: unknown): fileId is string => typeof fileId === "string" && fileId.length > 0;

/** The file id a part references; null for parts that are no file reference. */
function referencedFileId(part: ContentPart, param: string): string | null {
  if (!isFileReference(part)) return null;
  const fileId = fileIdOf(part);
  if (!isUsableFileId(fileId)) {
    throw new DomainError("unsupported_attachment", "Attach files by their Files API id: upload with POST /v1/files, then send file_id.", param);
  }
  return fileId;
}

/** Each referenced file id's lookup, started at once; awaited in the order of the parts, named by the part awaiting it. */
function lookUpEach(fileIds: Iterable<string>, accountId: string, files: AttachmentFiles) {
  const lookups = new Map<string, Promise<{ file: FileRecord } | { error: unknown }>>();
  for (const fileId of fileIds) {
    // Settled into a value, so a lookup nobody awaits (an earlier part failed) is no unhandled rejection.
    lookups.set(fileId, files.get(accountId, fileId).then((file) => ({ file }), (error: unknown) => ({ error })));
  }
  return async (fileId: string, param: string): Promise<FileRecord> => {
    const result = await lookups.get(fileId)!;
    if ("file" in result) return result.file;
    const { error } = result;
    throw error instanceof DomainError && error.code === "file_not_found" ? new DomainError("file_not_found", error.message, param) : error;
  };
}

/** The running total of what references add to the prompt (MAX_ATTACHED_*), refused at the part that passes a limit. */
function attachmentBudget() {
  let mediaBytes = 0;
  let documentCharacters = 0;
  const refuse = (what: string, limit: string, total: string, param: string) =>
    new DomainError("invalid_request_error", `Files attached to one request may add at most ${limit} of ${what}; with ${param} they would add ${total}.`, param);
  return {
    add(file: FileRecord, category: FileCategory, param: string): void {
      if (category === "document" || category === "text") {
        documentCharacters += file.extractedText?.length ?? 0;
        if (documentCharacters > MAX_ATTACHED_DOCUMENT_CHARACTERS) {
          throw refuse("document text", `${MAX_ATTACHED_DOCUMENT_CHARACTERS} characters`, `${documentCharacters}`, param);
        }
        return;
      }
      mediaBytes += file.bytes;
      if (mediaBytes > MAX_ATTACHED_MEDIA_BYTES) {
        const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
        throw refuse("images and video", mib(MAX_ATTACHED_MEDIA_BYTES), mib(mediaBytes), param);
      }
    },
  };
}

/** What the model gets for a file: documents their text, images and video their bytes (read here, once per file). */
async function fileAsPart(file: FileRecord, category: FileCategory, files: AttachmentFiles): Promise<ContentPart> {
  switch (category) {
    case "document":
    case "text":
      return documentText(file);
    case "image":
      return { type: "image_url", image_url: { url: dataUrl(file.mimeType, await files.readBytes(file)) } };
    case "video":
      return { type: "video_url", video_url: { url: dataUrl(file.mimeType, await files.readBytes(file)) } };
  }
}

/**
 * The messages as the upstream should see them, after every attachment was
 * checked and resolved. Parts are checked in order, so when several are bad
 * the first is named, whichever failed first in time (a file lookup is slower
 * than a bad inline image). Each distinct file is looked up and read once
 * however often it is referenced, and only once every reference passed the
 * budgets: nothing is read for a request that is refused.
 */
export async function resolveAttachments(
  messages: ChatMessage[],
  { accountId, model, files }: { accountId: string; model: ModelConfig; files: AttachmentFiles },
): Promise<ChatMessage[]> {
  const partsOf = (message: ChatMessage) => (Array.isArray(message.content) ? message.content : []);
  const fileIds = messages.flatMap(partsOf).filter(isFileReference).map(fileIdOf).filter(isUsableFileId);
  const lookUp = lookUpEach(new Set(fileIds), accountId, files);
  const budget = attachmentBudget();
  const referenced = new Map<ContentPart, FileRecord>();
  for (const [i, message] of messages.entries()) {
    for (const [j, part] of partsOf(message).entries()) {
      const param = `messages[${i}].content[${j}]`;
      if (part.type === "image_url") await assertInlineImage((part.image_url as { url?: unknown } | undefined)?.url, `${param}.image_url.url`);
      const fileId = referencedFileId(part, param);
      if (fileId === null) continue;
      const file = await lookUp(fileId, param);
      const { category } = fileTypeByMime(file.mimeType);
      if (category === "video" && !model.capabilities.includes("video")) {
        throw new DomainError("unsupported_attachment", `The model ${model.id} does not accept video; ${file.filename} is a video.`, param);
      }
      budget.add(file, category, param);
      referenced.set(part, file);
    }
  }
  if (referenced.size === 0) return messages;

  // One lookup per id gave one record per file, so each distinct file is read and encoded once, and its part reused.
  const distinct = [...new Set(referenced.values())];
  const asParts = await Promise.all(distinct.map((file) => fileAsPart(file, fileTypeByMime(file.mimeType).category, files)));
  const partFor = new Map(distinct.map((file, k) => [file, asParts[k]!]));
  const resolve = (part: ContentPart): ContentPart => {
    const file = referenced.get(part);
    return file ? partFor.get(file)! : part;
  };
  return messages.map((message) =>
    partsOf(message).some((part) => referenced.has(part)) ? { ...message, content: partsOf(message).map(resolve) } : message,
  );
}
