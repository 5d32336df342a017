import type { Context } from "hono";
import type { z } from "zod";
import { DomainError, type ErrorCode, errorTable } from "../domain/errors.js";
import { fieldNestedTooDeep, MAX_JSON_DEPTH, nestingRefusal } from "../domain/json-depth.js";

/** `messages[0].content` from zod's ["messages", 0, "content"]. */
export const paramPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    "",
  );

/**
 * Parses and validates a JSON body: malformed JSON and wrong types are 400 with
 * `param`, never 500, and nesting beyond MAX_JSON_DEPTH is refused before
 * anything (zod, the upstream's serializer) walks it.
 */
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
  const tooDeep = fieldNestedTooDeep(raw, MAX_JSON_DEPTH);
  if (tooDeep !== null) throw nestingRefusal(tooDeep);
  return parseInput(schema, raw);
}

/** Parses and validates the query string, with the same errors as a body. */
export const parseQuery = <T extends z.ZodType>(c: Context, schema: T): z.output<T> => parseInput(schema, c.req.query());

type Issue = z.core.$ZodIssue;

/**
 * A union's failure as the problem inside the alternative the value took: the
 * one whose first issue is not "this is not my type". With none or several,
 * the union's own message stands.
 */
function innermost(issue: Issue): Issue {
  if (issue.code !== "invalid_union") return issue;
  const taken = issue.errors.map((errors) => errors[0]).filter((first) => first && !(first.code === "invalid_type" && first.path.length === 0));
  if (taken.length !== 1) return issue;
  const inner = innermost(taken[0]!);
  return { ...inner, path: [...issue.path, ...inner.path] };
}

/** The SPEC 8 code a schema asked for with `params: { errorCode }` on a custom issue; else invalid_request_error. */
function codeOf(issue: Issue): ErrorCode {
  const asked: unknown = issue.code === "custom" ? issue.params?.errorCode : undefined;
  return typeof asked === "string" && asked in errorTable ? (asked as ErrorCode) : "invalid_request_error";
}

/** The first problem zod found, as OpenAI reports one: 400 with `param` naming the field. */
export function parseInput<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = innermost(parsed.error.issues[0]!);
  const param = paramPath(issue.path) || null;
  throw new DomainError(codeOf(issue), param ? `Invalid '${param}': ${issue.message}` : issue.message, param);
}
