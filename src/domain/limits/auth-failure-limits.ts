import { LRUCache } from "lru-cache";
import type { Clock } from "../clock.js";
import { RetryLaterError } from "../errors.js";
import type { Logger } from "../logger.js";
import { type LimitStore, LimitStoreUnavailableError, type WindowState } from "./limit-store.js";

const WINDOW_MS = 60_000;
// Enough for a wide attack; an entry is a few dozen bytes.
const MAX_REFUSED_ADDRESSES = 10_000;
const WARN_EVERY_MS = 10_000;

export interface AuthFailureLimitsDeps {
  store: LimitStore;
  clock: Clock;
  logger: Logger;
  failuresPerMinute: number;
  /** What is counted, when not client addresses: a key namespace and how a refusal names it. */
  subject?: { keyPrefix: string; described: string };
}

const CLIENT_ADDRESSES = { keyPrefix: "auth-failures", described: "this address" };

/**
 * Failed authentication per client address, whatever the secret (API keys,
 * the ops token). Failures are counted in the shared limit store; past the
 * limit the address is refused (429) until its oldest failure leaves the
 * minute, before its credentials are even looked at: a flood of bad keys
 * then costs no database query, and a lucky guess is refused like the rest.
 */
export function createAuthFailureLimits({ store, clock, logger, failuresPerMinute, subject = CLIENT_ADDRESSES }: AuthFailureLimitsDeps) {
  // Addresses this instance saw reach the limit, and until when: checked without a round trip,
  // so callers that authenticate pay nothing for the limit.
  const refusedUntil = new LRUCache<string, number>({ max: MAX_REFUSED_ADDRESSES });
  let lastWarnedAt = 0;

  const refusal = (waitMs: number) =>
    new RetryLaterError(
      "rate_limit_exceeded",
      `Too many failed authentication attempts for ${subject.described}. Try again in ${Math.ceil(waitMs / 1000)} s.`,
      waitMs,
    );

  return {
    /** Throws 429 while the address is over its limit. */
    refuseIfOverLimit(address: string): void {
      const until = refusedUntil.get(address);
      if (until === undefined) return;
      const waitMs = until - clock.now().getTime();
      if (waitMs > 0) throw refusal(waitMs);
      refusedUntil.delete(address);
    },

    /** Counts one failure; throws 429 instead when the address has had its fill. */
    async countFailure(address: string): Promise<void> {
      const nowMs = clock.now().getTime();
      let window: WindowState;
      try {
        window = await store.hitWindow(`${subject.keyPrefix}:${address}`, { limit: failuresPerMinute, windowMs: WINDOW_MS, nowMs });
      } catch (error) {
        if (!(error instanceof LimitStoreUnavailableError)) throw error;
        // The caller is refused anyway (401); only this failure goes uncounted.
        if (nowMs - lastWarnedAt >= WARN_EVERY_MS) {
          lastWarnedAt = nowMs;
          logger.warn({ err: error }, "limit store unreachable: failed authentications are not being counted");
        }
        return;
      }
      // From the failure that used up the budget on, the address's next attempt is refused without a lookup.
      if (window.remaining === 0) refusedUntil.set(address, window.resetAtMs);
      if (!window.allowed) throw refusal(window.resetAtMs - nowMs);
    },
  };
}

export type AuthFailureLimits = ReturnType<typeof createAuthFailureLimits>;
