// SPEC 2 "Attachments": inline base64 images are checked from their bytes;
// Files API references become what the model can read — documents their
// extracted text, images and videos inline data — before the upstream call.
import { DomainError } from "../errors.js";
import { type FileCategory, fileTypeByMime, sniffImageBytes } from "../files/file-types.js";
import type { FileRecord } from "../schema/index.js";
import type { ModelConfig } from "./model-table.js";
import type { ChatMessage, ContentPart } from "./provider.js";

export const MAX_INLINE_IMAGE_BYTES = 10 * 1024 * 1024;

/** What attachments need of the Files API: an account's live file, and its bytes. */
export interface AttachmentFiles {
  get(accountId: string, fileId: string): Promise<FileRecord>;
  readBytes(file: FileRecord): Promise<Buffer>;
}

// Upstreams see a document as a delimited block of text; the demo recognises it by its delimiters.
const DOCUMENT_BLOCK = /^<<<file "[^\n]*" \([^\n]*\)>>>\n([\s\S]*)\n<<<end of file>>>$/;

/** The extracted text inside a document block; null for any other part. */
export const documentTextOf = (part: ContentPart): string | null =>
  part.type === "text" && typeof part.text === "string" ? (DOCUMENT_BLOCK.exec(part.text)?.[1] ?? null) : null;

const documentText = (file: FileRecord): ContentPart => {
  const about = file.extractedTextTruncated ? `${file.mimeType}; only the beginning of its text` : file.mimeType;
  return {
    type: "text",
    text: `<<<file "${file.filename.replace(/\n/g, " ")}" (${about})>>>\n${file.extractedText ?? ""}\n<<<end of file>>>`,
  };
};

const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// Browsers and SDKs say image/jpg as often as image/jpeg.
const MIME_ALIASES: Record<string, string> = { "image/jpg": "image/jpeg" };

/**
 * Checks an inline image: a `data:` URL (the platform never fetches a URL for a
 * caller), real base64, within 10 MB, and bytes that are the type it claims.
 */
async function assertInlineImage(url: unknown, param: string): Promise<void> {
  if (typeof url !== "string" || !/^data:/i.test(url)) {
    throw new DomainError("unsupported_url_scheme", "Only data: URLs are accepted for images. Use data: or Files API.", param);
  }
  const comma = url.indexOf(",");
  // Media type and parameters are case-insensitive (RFC 2397): ;BASE64 is ;base64.
  const header = url.slice(5, comma === -1 ? undefined : comma).toLowerCase().split(";");
  const payload = comma === -1 ? "" : url.slice(comma + 1);
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

/** The file id of an `input_file` (SentX) or `file` (OpenAI) part; null for other parts. */
function referencedFileId(part: ContentPart, param: string): string | null {
  if (part.type !== "input_file" && part.type !== "file") return null;
  const holder = (part.type === "file" ? part.file : part) as Record<string, unknown> | undefined;
  if (typeof holder?.file_url === "string") {
    throw new DomainError("unsupported_url_scheme", "Files are not fetched from URLs. Use data: or Files API.", param);
  }
  const fileId = holder?.file_id;
  if (typeof fileId !== "string" || fileId.length === 0) {
    throw new DomainError("unsupported_attachment", "Attach files by their Files API id: upload with POST /v1/files, then send file_id.", param);
  }
  return fileId;
}

async function fileAsPart(file: FileRecord, category: FileCategory, files: AttachmentFiles, model: ModelConfig, param: string) {
  switch (category) {
    case "document":
    case "text":
      return documentText(file);
    case "image":
      return { type: "image_url", image_url: { url: dataUrl(file.mimeType, await files.readBytes(file)) } };
    case "video":
      if (!model.capabilities.includes("video")) {
        throw new DomainError("unsupported_attachment", `The model ${model.id} does not accept video; ${file.filename} is a video.`, param);
      }
      return { type: "video_url", video_url: { url: dataUrl(file.mimeType, await files.readBytes(file)) } };
  }
}

/**
 * Promise.all, except that when several fail the first in order wins, not the
 * first in time: a request with two bad parts is refused for the earlier one,
 * however long the later one's lookup took (Promise.all named whichever failed
 * first, so a bad inline image beat an unknown file id before it).
 */
async function allInOrder<T>(work: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** The messages as the upstream should see them, after every attachment was checked and resolved. */
export async function resolveAttachments(
  messages: ChatMessage[],
  { accountId, model, files }: { accountId: string; model: ModelConfig; files: AttachmentFiles },
): Promise<ChatMessage[]> {
  return allInOrder(
    messages.map(async (message, i) => {
      if (!Array.isArray(message.content)) return message;
      const content = await allInOrder(
        message.content.map(async (part, j): Promise<ContentPart> => {
          const param = `messages[${i}].content[${j}]`;
          if (part.type === "image_url") {
            await assertInlineImage((part.image_url as { url?: unknown } | undefined)?.url, `${param}.image_url.url`);
            return part;
          }
          const fileId = referencedFileId(part, param);
          if (fileId === null) return part;
          const file = await files.get(accountId, fileId).catch((error: unknown) => {
            throw error instanceof DomainError && error.code === "file_not_found"
              ? new DomainError("file_not_found", `No such file: ${fileId}.`, param)
              : error;
          });
          return fileAsPart(file, fileTypeByMime(file.mimeType).category, files, model, param);
        }),
      );
      return { ...message, content };
    }),
  );
}
