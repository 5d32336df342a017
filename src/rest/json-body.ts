import type { Context } from "hono";
import type { z } from "zod";
import { DomainError } from "../domain/errors.js";

/** `messages[0].content` from zod's ["messages", 0, "content"]. */
export const paramPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    "",
  );

/** Parses and validates a JSON body: malformed JSON and wrong types are 400 with `param`, never 500. */
export async function parseJsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text());
  } catch {
    throw new DomainError(
      "invalid_request_error",
      "We could not parse the JSON body of your request. Send valid JSON with Content-Type: application/json.",
    );
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = paramPath(issue.path) || null;
  throw new DomainError("invalid_request_error", param ? `Invalid '${param}': ${issue.message}` : issue.message, param);
}
