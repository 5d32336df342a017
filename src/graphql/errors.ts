import type { GraphQLError } from "graphql";
import { createGraphQLError, maskError, type MaskError } from "graphql-yoga";
import { z } from "zod";
import { DomainError, RetryLaterError } from "../domain/errors.js";

// Duck-typed: the executor may build its errors with another copy of graphql, which instanceof would not recognise.
type Located = Partial<Pick<GraphQLError, "originalError" | "nodes" | "path">>;

// Made by graphql-yoga's copy of graphql, so yoga recognises it (and keeps `http` out of the body).
const asGraphQLError = (error: Located, message: string, extensions: Record<string, unknown>) =>
  createGraphQLError(message, { nodes: error.nodes ?? null, path: error.path ?? null, extensions });

/**
 * A refusal that asks the caller to wait (SPEC 6) answers as on /v1: its HTTP
 * status (429) and Retry-After, which graphql-yoga takes from `http` and does
 * not show in the body; `retryAfter` (seconds) is for GraphQL clients.
 */
function retryLater(error: RetryLaterError) {
  const seconds = Math.ceil(error.retryAfterMs / 1000);
  return { retryAfter: seconds, http: { status: error.status, headers: { "retry-after": String(seconds) } } };
}

/**
 * A DomainError keeps its message and its SPEC 8 code (with retryAfter, in
 * seconds, on a 429); a failed input check reads as invalid_request_error
 * naming the argument. Anything else is masked as "Unexpected error.".
 */
export const maskDashboardError: MaskError = (error, message, isDev) => {
  const located = (error ?? {}) as Located;
  const original = located.originalError ?? error;
  if (original instanceof DomainError) {
    return asGraphQLError(located, original.message, {
      code: original.code,
      ...(original.param !== null && { param: original.param }),
      ...(original instanceof RetryLaterError && retryLater(original)),
    });
  }
  if (original instanceof z.ZodError) {
    const [issue] = original.issues;
    const param = issue?.path.join(".") ?? "";
    return asGraphQLError(located, `${param ? `${param}: ` : ""}${issue?.message ?? "Invalid input."}`, {
      code: "invalid_request_error",
      ...(param && { param }),
    });
  }
  return maskError(error, message, isDev);
};
