import { Readable } from "node:stream";
import type { Context } from "hono";
import { z } from "zod";
import { DomainError } from "../../domain/errors.js";
import { isFileId } from "../../domain/files/file-id.js";
import { FILE_RULES, type Files } from "../../domain/files/files.js";
import type { FileRecord } from "../../domain/schema/index.js";
import { refuseForbiddenCharacters, textWithoutForbiddenCharacters } from "../../domain/text-rules.js";
import type { ApiCallerVariables } from "../api-key-auth.js";
import { readMultipartUpload } from "../multipart-upload.js";
import { parseQuery } from "../request-input.js";

type Env = { Variables: ApiCallerVariables };

// OpenAI's purposes; SentX keeps every file the same way whatever its purpose.
const PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"] as const;

const unixSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** OpenAI's file object (SPEC 7). */
const fileObject = (file: FileRecord) => ({
  id: file.id,
  object: "file" as const,
  bytes: file.bytes,
  created_at: unixSeconds(file.createdAt),
  expires_at: unixSeconds(file.expiresAt),
  filename: file.filename,
  purpose: file.purpose,
  status: "processed" as const,
  status_details: null,
  // SentX's addition: "unscanned" when the file was stored without a virus scan (SPEC 7).
  scan_status: file.scanStatus,
});

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  // Only an id in the issued form is looked up: anything else names no file to list after.
  after: z.string().refine(isFileId, { error: "Expected a file id from an earlier page." }).optional(),
  order: z.enum(["asc", "desc"]).default("desc"),
  purpose: textWithoutForbiddenCharacters().min(1).optional(),
});

/** The file id in the path; an id holding control characters or unpaired surrogates is malformed input (400), not a missing file. */
const fileIdParam = (c: Context) => refuseForbiddenCharacters("file_id", c.req.param("id")!);

/** A name to show, never a path: folders, control characters and excess length removed. */
function displayName(raw: string): string {
  const name = (raw.split(/[\\/]/).pop() ?? "").replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return name.slice(0, 255) || "upload";
}

/** RFC 6266: an ASCII fallback plus the exact UTF-8 name. */
const contentDisposition = (filename: string) =>
  `attachment; filename="${filename.replace(/[^\x20-\x7e]|["\\]/g, "_")}"; filename*=UTF-8''${encodeURIComponent(filename)}`;

export function filesHandlers(files: Files) {
  const accountOf = (c: Context<Env>) => c.get("caller").account.id;

  return {
    async upload(c: Context<Env>) {
      const { staged, filename, contentType, fields } = await readMultipartUpload(
        c.req.raw,
        (bytes) => files.receive(bytes, c.req.raw.signal),
        FILE_RULES.maxFileBytes,
      );
      const purpose = fields.purpose;
      if (!purpose || !(PURPOSES as readonly string[]).includes(purpose)) {
        await staged.discard();
        throw new DomainError(
          "invalid_request_error",
          purpose ? `Invalid 'purpose': ${purpose}. Use one of: ${PURPOSES.join(", ")}.` : "Missing required field 'purpose'.",
          "purpose",
        );
      }
      const file = await files.create({ accountId: accountOf(c), filename: displayName(filename), contentType, purpose }, staged);
      return c.json(fileObject(file));
    },

    async list(c: Context<Env>) {
      const query = parseQuery(c, listQuery);
      const { data, hasMore } = await files.list(accountOf(c), query);
      return c.json({
        object: "list",
        data: data.map(fileObject),
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: hasMore,
      });
    },

    async retrieve(c: Context<Env>) {
      return c.json(fileObject(await files.get(accountOf(c), fileIdParam(c))));
    },

    async content(c: Context<Env>) {
      const file = await files.get(accountOf(c), fileIdParam(c));
      return c.body(Readable.toWeb(files.open(file)) as ReadableStream, 200, {
        "content-type": file.mimeType,
        "content-length": String(file.bytes),
        "content-disposition": contentDisposition(file.filename),
      });
    },

    async remove(c: Context<Env>) {
      const file = await files.delete(accountOf(c), fileIdParam(c));
      return c.json({ id: file.id, object: "file", deleted: true });
    },
  };
}
