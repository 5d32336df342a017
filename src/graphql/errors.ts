import { GraphQLError } from "graphql";
import { maskError, type MaskError } from "graphql-yoga";
import { z } from "zod";
import { DomainError, RetryLaterError } from "../domain/errors.js";

// Duck-typed: the executor may build its errors with another copy of graphql, which instanceof would not recognise.
type Located = Partial<Pick<GraphQLError, "originalError" | "nodes" | "path">>;

const asGraphQLError = (error: Located, message: string, extensions: Record<string, unknown>) =>
  new GraphQLError(message, { nodes: error.nodes ?? null, path: error.path ?? null, extensions });

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
      ...(original instanceof RetryLaterError && { retryAfter: Math.ceil(original.retryAfterMs / 1000) }),
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
