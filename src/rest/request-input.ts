import type { Context } from "hono";
import type { z } from "zod";
import { DomainError, type ErrorCode, errorTable } from "../domain/errors.js";

/** `messages[0].content` from zod's ["messages", 0, "content"]. */
export const paramPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)),
    "",
  );

/**
 * How deeply a JSON body may nest arrays and objects (the body itself is level
 * 1). Far beyond any real request (a tool's JSON schema included), and far
 * below what overflows the stack of anything that walks it recursively:
 * JSON.stringify on the way upstream overflowed at about 5,000.
 */
export const MAX_JSON_DEPTH = 64;

const isContainer = (value: unknown): value is object => typeof value === "object" && value !== null;

/** Whether `value` nests containers deeper than `maxDepth` (a container being level 1). Iterative, so it cannot overflow. */
function nestsDeeperThan(value: object, maxDepth: number): boolean {
  const containers: object[] = [value];
  const depths: number[] = [1];
  const visit = (child: unknown, depth: number) => {
    // Only containers are pushed: a body of millions of numbers costs one pass, not millions of allocations.
    if (!isContainer(child)) return;
    containers.push(child);
    depths.push(depth);
  };
  while (containers.length > 0) {
    const container = containers.pop() as Record<string, unknown>;
    const depth = depths.pop()!;
    if (depth > maxDepth) return true;
    if (Array.isArray(container)) for (const child of container) visit(child, depth + 1);
    else for (const key in container) visit(container[key], depth + 1);
  }
  return false;
}

/**
 * The top-level field whose value nests deeper than `maxDepth` counting the
 * body as level 1 ("" when the body is not an object), or null.
 */
export function fieldNestedTooDeep(body: unknown, maxDepth: number): string | null {
  if (!isContainer(body)) return null;
  if (Array.isArray(body)) return nestsDeeperThan(body, maxDepth) ? "" : null;
  for (const [field, value] of Object.entries(body)) {
    if (isContainer(value) && nestsDeeperThan(value, maxDepth - 1)) return field;
  }
  return null;
}

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
  if (tooDeep !== null) {
    throw new DomainError("invalid_request_error", `JSON may nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep.`, tooDeep || null);
  }
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
