import { DomainError } from "./errors.js";
import { hasForbiddenCharacter } from "./text-rules.js";

/**
 * How deeply a JSON body (a REST body, an ops input) may nest arrays and
 * objects (the body itself is level 1). Far beyond any real request (a tool's
 * JSON schema included), and far below what overflows the stack of anything
 * that walks it recursively: JSON.stringify on the way upstream overflowed
 * at about 5,000.
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

/** The 400 for input nested too deeply; names the field only when it is one a caller could have meant to send. */
export function nestingRefusal(field: string): DomainError {
  const named = field !== "" && field.length <= 64 && !hasForbiddenCharacter(field);
  return new DomainError("invalid_request_error", `JSON may nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep.`, named ? field : null);
}
