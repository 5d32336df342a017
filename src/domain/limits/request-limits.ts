import type { ApiCaller } from "../auth.js";
import type { Clock } from "../clock.js";
import { DomainError, RetryLaterError } from "../errors.js";
import { newId } from "../ids.js";
import type { Logger } from "../logger.js";
import { effectiveLimits } from "./defaults.js";
import { type LimitStore, LimitStoreUnavailableError, type WindowState } from "./limit-store.js";

const WINDOW_MS = 60_000;
// A refused stream cannot know when another ends; this is the SDKs' usual first backoff.
const STREAM_SLOT_RETRY_MS = 1_000;
const WARN_EVERY_MS = 10_000;

/** What to do when the limit store cannot be reached. */
export type LimitStoreDownPolicy = "fail-open" | "fail-closed";

export interface StreamSlot {
  release(): Promise<void>;
}

export interface RequestLimitsDeps {
  store: LimitStore;
  clock: Clock;
  logger: Logger;
  policy: LimitStoreDownPolicy;
  /** How long a slot outlives its holder's last renewal: the bound on a crashed process's slots. */
  streamSlotTtlMs: number;
}

const windowKey = (caller: ApiCaller) => `rpm:${caller.apiKey.id}`;
const slotsKey = (caller: ApiCaller) => `streams:${caller.apiKey.id}`;

export function createRequestLimits({ store, clock, logger, policy, streamSlotTtlMs }: RequestLimitsDeps) {
  let lastWarnedAt = 0;

  /** Runs a store call under the down policy: `whenOpen` stands in for its answer when failing open. */
  async function underPolicy<T>(run: () => Promise<T>, whenOpen: () => T): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof LimitStoreUnavailableError)) throw error;
      if (policy === "fail-closed") {
        throw new DomainError("service_unavailable", "Rate limiting is unavailable right now. Try again shortly.");
      }
      const now = clock.now().getTime();
      if (now - lastWarnedAt >= WARN_EVERY_MS) {
        lastWarnedAt = now;
        logger.warn({ err: error }, "limit store unreachable: admitting requests without rate limits (fail-open)");
      }
      return whenOpen();
    }
  }

  return {
    /**
     * SPEC 6: counts the request against its key's sliding minute; refuses it
     * over the limit. `nowMs` is the caller's when it reports times relative
     * to the same instant (the reset headers), so a millisecond passing
     * between two clock reads cannot skew them.
     */
    async admitRequest(caller: ApiCaller, nowMs = clock.now().getTime()): Promise<WindowState> {
      const limit = effectiveLimits(caller.account.limits).requestsPerMinute;
      const window = await underPolicy(
        () => store.hitWindow(windowKey(caller), { limit, windowMs: WINDOW_MS, nowMs }),
        () => ({ allowed: true, limit, remaining: limit, resetAtMs: nowMs + WINDOW_MS }),
      );
      if (!window.allowed) throw new RateLimitExceededError(window, nowMs);
      return window;
    },

    /** SPEC 6: a stream holds one of its key's slots until it ends; a holder that dies lets it lapse. */
    async acquireStreamSlot(caller: ApiCaller): Promise<StreamSlot> {
      const limit = effectiveLimits(caller.account.limits).concurrentStreams;
      const key = slotsKey(caller);
      const leaseId = newId.lease();
      const lease = () => ({ leaseId, ttlMs: streamSlotTtlMs, nowMs: clock.now().getTime() });
      const acquired = await underPolicy(() => store.acquireLease(key, { ...lease(), limit }), () => true);
      if (!acquired) {
        throw new RetryLaterError(
          "rate_limit_exceeded",
          `This API key already has ${limit} streams open, the most allowed at once. Wait for one to finish.`,
          STREAM_SLOT_RETRY_MS,
        );
      }
      const renewal = setInterval(() => {
        store.renewLease(key, lease()).catch((error) => logger.warn({ err: error }, "could not renew a stream slot"));
      }, streamSlotTtlMs / 3);
      renewal.unref();
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          clearInterval(renewal);
          // On failure the slot lapses by itself within the TTL.
          await store.releaseLease(key, leaseId).catch((error) => logger.warn({ err: error }, "could not release a stream slot"));
        },
      };
    },
  };
}

export type RequestLimits = ReturnType<typeof createRequestLimits>;

/** Over the requests-per-minute limit; carries the window so the surface can tell the caller when to retry. */
export class RateLimitExceededError extends RetryLaterError {
  constructor(
    readonly window: WindowState,
    nowMs: number,
  ) {
    super(
      "rate_limit_exceeded",
      `Rate limit reached: ${window.limit} requests per minute for this API key. Try again in ${Math.ceil((window.resetAtMs - nowMs) / 1000)} s.`,
      Math.max(0, window.resetAtMs - nowMs),
    );
  }
}
