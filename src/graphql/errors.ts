import { GraphQLError } from "graphql";
import { maskError, type MaskError, type Plugin } from "graphql-yoga";
import { z } from "zod";
import { DomainError, RetryLaterError } from "../domain/errors.js";
import type { DashboardContext } from "./context.js";

// Duck-typed: the executor may build its errors with another copy of graphql, which instanceof would not recognise.
type Located = Partial<Pick<GraphQLError, "originalError" | "nodes" | "path" | "extensions">>;

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

/** Seconds a refusal asks the caller to wait, whether the error was masked yet or not. */
function retryAfterSeconds(error: Located): number | null {
  if (error.originalError instanceof RetryLaterError) return Math.ceil(error.originalError.retryAfterMs / 1000);
  const masked = error.extensions?.retryAfter;
  return typeof masked === "number" ? masked : null;
}

/** A 429-like refusal (SPEC 6) also sets Retry-After on the HTTP answer, as on /v1, for clients that honour the header. */
export const retryAfterHeader: Plugin<DashboardContext> = {
  onExecute: () => ({
    onExecuteDone({ args, result }) {
      const errors = "errors" in result ? (result.errors ?? []) : [];
      const waits = errors.map((error) => retryAfterSeconds(error as Located)).filter((wait) => wait !== null);
      if (waits.length > 0) (args.contextValue as DashboardContext).responseHeaders.set("retry-after", String(Math.max(...waits)));
    },
  }),
};
