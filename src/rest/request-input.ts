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
  return parseInput(schema, raw);
}

/** Parses and validates the query string, with the same errors as a body. */
export const parseQuery = <T extends z.ZodType>(c: Context, schema: T): z.output<T> => parseInput(schema, c.req.query());

/** The first problem zod found, as OpenAI reports one: 400 with `param` naming the field. */
function parseInput<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = paramPath(issue.path) || null;
  throw new DomainError("invalid_request_error", param ? `Invalid '${param}': ${issue.message}` : issue.message, param);
}
