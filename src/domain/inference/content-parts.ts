import { z } from "zod";
import type { ErrorCode } from "../errors.js";
import type { ChatRole } from "./provider.js";

// Message content as OpenAI's Chat Completions accepts it
// (ChatCompletionRequest*MessageContentPart): which part types each role may
// send, each with its required fields, plus SentX's input_file (SPEC 2). These
// schemas are the input boundary every surface parses chat messages with.
// Unknown fields of a known part are dropped, as unknown request fields are.

/** Parts in one message's content array. */
export const MAX_CONTENT_PARTS_PER_MESSAGE = 100;
/** Parts over all the messages of one request. */
export const MAX_CONTENT_PARTS_PER_REQUEST = 500;
/** Image, audio and file parts over all the messages of one request: each is decoded, read or looked up. */
export const MAX_ATTACHMENT_PARTS_PER_REQUEST = 20;

const fileReference = { file_id: z.string().optional(), file_data: z.string().optional(), filename: z.string().optional() };

const PARTS = {
  text: z.object({ type: z.literal("text"), text: z.string() }),
  refusal: z.object({ type: z.literal("refusal"), refusal: z.string() }),
  image_url: z.object({
    type: z.literal("image_url"),
    image_url: z.object({ url: z.string(), detail: z.enum(["auto", "low", "high"]).optional() }),
  }),
  input_audio: z.object({ type: z.literal("input_audio"), input_audio: z.object({ data: z.string(), format: z.enum(["wav", "mp3"]) }) }),
  file: z.object({ type: z.literal("file"), file: z.object(fileReference) }),
  // SentX's form of a Files API reference (SPEC 2).
  input_file: z.object({ type: z.literal("input_file"), ...fileReference }),
};

const PART_TYPES_BY_ROLE = {
  system: ["text"],
  developer: ["text"],
  tool: ["text"],
  user: ["text", "image_url", "input_audio", "file", "input_file"],
  assistant: ["text", "refusal"],
} as const satisfies Record<ChatRole, ReadonlyArray<keyof typeof PARTS>>;

/** Every part a user may send but text. */
const ATTACHMENT_PART_TYPES: ReadonlySet<unknown> = new Set(PART_TYPES_BY_ROLE.user.filter((type) => type !== "text"));

// SPEC 2: the platform never fetches a URL for a caller, so a URL anywhere in
// content is refused, whatever its part. Fields that name a URL must hold a
// data: URL (whether the part may carry data at all is its type's rule);
// fields of base64 data must not hold a URL of another scheme.
const URL_FIELDS: ReadonlySet<string> = new Set(["url", "image_url", "video_url", "audio_url", "file_url"]);
const DATA_FIELDS: ReadonlySet<string> = new Set(["data", "file_data"]);
const SCHEME = /^\s*([a-z][a-z0-9+.-]*):/i;
const FILE_PARTS: ReadonlySet<unknown> = new Set(["file", "input_file"]);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isRefusedUrl = (field: string, value: string): boolean => {
  const scheme = SCHEME.exec(value)?.[1]?.toLowerCase();
  if (URL_FIELDS.has(field)) return scheme !== "data";
  return DATA_FIELDS.has(field) && scheme !== undefined && scheme !== "data";
};

/** The path (within the part) of a URL the part references, looking at the part and the objects it holds; null if none. */
function urlReferenceIn(part: Record<string, unknown>): string[] | null {
  const holders: Array<[string[], Record<string, unknown>]> = [[[], part]];
  for (const [key, value] of Object.entries(part)) if (isRecord(value)) holders.push([[key], value]);
  for (const [at, holder] of holders) {
    for (const [field, value] of Object.entries(holder)) {
      if (typeof value === "string" && isRefusedUrl(field, value)) return [...at, field];
    }
  }
  return null;
}

/**
 * One content part of a `role` message: a URL anywhere in it is
 * unsupported_url_scheme, named at the field that holds it (a file reference
 * is named as the whole part, as its other refusals are); any other problem,
 * an unknown type included, is invalid_request_error naming the part.
 */
function contentPart(role: ChatRole) {
  const types: ReadonlyArray<keyof typeof PARTS> = PART_TYPES_BY_ROLE[role];
  const [first, ...rest] = types.map((type) => PARTS[type]);
  const known = z.discriminatedUnion("type", [first!, ...rest]);
  return z.unknown().transform((raw, ctx) => {
    const url = isRecord(raw) ? urlReferenceIn(raw) : null;
    if (url) {
      ctx.issues.push({
        code: "custom",
        input: raw,
        path: isRecord(raw) && FILE_PARTS.has(raw.type) ? [] : url,
        message: "Content may not reference URLs: the platform does not fetch them. Use data: or Files API.",
        // The surface answers with this SPEC 8 code instead of invalid_request_error.
        params: { errorCode: "unsupported_url_scheme" satisfies ErrorCode },
      });
      return z.NEVER;
    }
    const parsed = known.safeParse(raw);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    const typeKnown = isRecord(raw) && types.some((type) => type === raw.type);
    ctx.issues.push({
      code: "custom",
      input: raw,
      message: typeKnown
        ? `This ${String(raw.type)} part is invalid at '${issue.path.join(".")}': ${issue.message}`
        : `A ${role} message's content parts must be objects of type ${types.join(", ")}.`,
    });
    return z.NEVER;
  });
}

/** A message's content: a string, or 1 to MAX_CONTENT_PARTS_PER_MESSAGE parts of its role's types (counted before any is parsed). */
export const messageContent = (role: ChatRole) =>
  z.union(
    [
      z.string(),
      z
        .array(z.unknown())
        .min(1, { error: "content must have at least one part." })
        .max(MAX_CONTENT_PARTS_PER_MESSAGE, { error: `content may have at most ${MAX_CONTENT_PARTS_PER_MESSAGE} parts.` })
        .pipe(z.array(contentPart(role))),
    ],
    { error: (issue) => (issue.input === undefined ? "content is required." : "content must be a string or an array of content parts.") },
  );

/**
 * The request-wide part limits, checked on the raw messages before any part is
 * parsed: the first part beyond a limit is the one named.
 */
export function checkContentPartLimits(messages: unknown[], ctx: z.RefinementCtx): void {
  let parts = 0;
  let attachments = 0;
  for (const [i, message] of messages.entries()) {
    const content = isRecord(message) ? message.content : undefined;
    if (!Array.isArray(content)) continue;
    for (const [j, part] of content.entries()) {
      const path = [i, "content", j];
      if (++parts > MAX_CONTENT_PARTS_PER_REQUEST) {
        ctx.addIssue({ code: "custom", path, message: `A request may have at most ${MAX_CONTENT_PARTS_PER_REQUEST} content parts in all.` });
        return;
      }
      if (isRecord(part) && ATTACHMENT_PART_TYPES.has(part.type) && ++attachments > MAX_ATTACHMENT_PARTS_PER_REQUEST) {
        ctx.addIssue({
          code: "custom",
          path,
          message: `A request may have at most ${MAX_ATTACHMENT_PARTS_PER_REQUEST} image, audio and file parts in all.`,
        });
        return;
      }
    }
  }
}
