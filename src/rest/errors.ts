import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { WeeklyQuotaExceededError } from "../domain/billing.js";
import { isConnectionLoss } from "../domain/db.js";
import { DomainError, isDomainError, RetryLaterError } from "../domain/errors.js";
import type { Logger } from "../domain/logger.js";
import { setWeeklyChatHeaders } from "./weekly-chat-headers.js";

/** SPEC 8: the one error body of every /v1 and /api/v1 path. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

export const errorBody = (error: DomainError): OpenAIErrorBody => ({
  error: { message: error.message, type: error.type, code: error.code, param: error.param },
});

/** A retryable refusal's wait, as [name, value] header pairs; none for any other error. */
export function retryAfterHeaders(error: DomainError): [string, string][] {
  if (!(error instanceof RetryLaterError)) return [];
  // OpenAI's SDKs prefer retry-after-ms; Retry-After is the standard, in whole seconds.
  return [
    ["Retry-After", String(Math.max(1, Math.ceil(error.retryAfterMs / 1_000)))],
    ["retry-after-ms", String(Math.max(0, Math.ceil(error.retryAfterMs)))],
  ];
}

export function renderError(c: Context, error: DomainError) {
  for (const [name, value] of retryAfterHeaders(error)) c.header(name, value);
  if (error instanceof WeeklyQuotaExceededError) setWeeklyChatHeaders(c, error.weeklyChats);
  return c.json(errorBody(error), error.status as ContentfulStatusCode);
}

/**
 * Installed once as Hono's onError: domain errors render as themselves, anything
 * else as a generic internal error; the original is logged, never sent.
 */
export function createErrorHandler(logger: Logger) {
  return (error: Error, c: Context) => {
    if (isDomainError(error)) return renderError(c, error);
    if (error instanceof HTTPException && error.status < 500) {
      return renderError(c, new DomainError("invalid_request_error", error.message || "Bad request."));
    }
    if (isConnectionLoss(error)) {
      // The database went away under this request; a retry will find a new connection (SPEC 8: never a 500).
      logger.warn({ err: error, requestId: c.get("requestId" as never), path: c.req.path }, "database connection lost");
      return renderError(c, new DomainError("service_unavailable", "The service is briefly unavailable. Try again shortly."));
    }
    logger.error({ err: error, requestId: c.get("requestId" as never), path: c.req.path }, "unhandled error");
    return renderError(c, new DomainError("internal_error", "The server had an error while processing your request."));
  };
}
