import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { Clock } from "../domain/clock.js";
import type { WindowState } from "../domain/limits/limit-store.js";
import { RateLimitExceededError, type RequestLimits } from "../domain/limits/request-limits.js";
import type { ApiCallerVariables } from "./api-key-auth.js";

/** OpenAI's duration style for x-ratelimit-reset-requests: "850ms", "12.5s", "1m0s". */
export function formatResetDuration(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1_000) return `${whole}ms`;
  const minutes = Math.floor(whole / 60_000);
  const seconds = `${Number(((whole % 60_000) / 1_000).toFixed(3))}s`;
  return minutes > 0 ? `${minutes}m${seconds}` : seconds;
}

/** SPEC 6: both header families, so any client library can pace itself. */
function setRateLimitHeaders(c: Context, window: WindowState, nowMs: number): void {
  c.header("X-RateLimit-Limit", String(window.limit));
  c.header("X-RateLimit-Remaining", String(window.remaining));
  c.header("X-RateLimit-Reset", String(Math.ceil(window.resetAtMs / 1_000)));
  c.header("x-ratelimit-limit-requests", String(window.limit));
  c.header("x-ratelimit-remaining-requests", String(window.remaining));
  c.header("x-ratelimit-reset-requests", formatResetDuration(window.resetAtMs - nowMs));
}

/** Counts every authenticated /v1 request against its key's minute; the headers go on whatever the answer is. */
export const rateLimit = (limits: RequestLimits, clock: Clock) =>
  createMiddleware<{ Variables: ApiCallerVariables }>(async (c, next) => {
    const nowMs = clock.now().getTime();
    try {
      setRateLimitHeaders(c, await limits.admitRequest(c.get("caller"), nowMs), nowMs);
    } catch (error) {
      if (error instanceof RateLimitExceededError) setRateLimitHeaders(c, error.window, nowMs);
      throw error;
    }
    await next();
  });
