import { setTimeout as delay } from "node:timers/promises";
import { type ChatProvider, UpstreamError } from "../provider.js";

// SPEC 9: connection errors and 5xx before the first byte are retried with
// backoff and may fall over to the model's next upstream; nothing is retried
// after output has reached the client. Streams are retried only until
// `stream()` resolves — after that its chunks are passed on untouched.

export interface FailoverOptions {
  /** Attempts in total, over all upstreams (config `upstreamMaxAttempts`). */
  maxAttempts: number;
  /** The first backoff; each later one doubles. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Waits `ms`, rejecting with the signal's reason on abort. Injected by tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** A number in [0, 1) for the jitter. Injected by tests. */
  random?: () => number;
}

export const DEFAULT_BASE_DELAY_MS = 100;
export const DEFAULT_MAX_DELAY_MS = 2_000;

const abortableSleep = async (ms: number, signal: AbortSignal): Promise<void> => {
  await delay(ms, undefined, { signal }).catch(() => signal.throwIfAborted());
};

/** Only an upstream that was down or overloaded, and had sent nothing yet, is worth another try. */
export const isRetryable = (error: unknown): error is UpstreamError =>
  error instanceof UpstreamError && error.beforeOutput && error.kind === "unavailable";

/**
 * One provider over a model's upstreams, tried in order and cycled through.
 * Moving on to an upstream not yet tried happens at once (it is not the one
 * that just failed); coming back round to one already tried waits first, with
 * exponential backoff and jitter so many requests retrying at once spread out.
 */
export function withFailover(upstreams: readonly ChatProvider[], options: FailoverOptions): ChatProvider {
  if (upstreams.length === 0) throw new Error("withFailover needs at least one upstream");
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts));
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;

  /** Before round `round` (≥ 1) through the upstreams: base × 2^(round−1), between half and all of it. */
  const backoffMs = (round: number): number => {
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (round - 1));
    return Math.round(ceiling / 2 + (ceiling / 2) * random());
  };

  async function attempt<T>(call: (upstream: ChatProvider) => Promise<T>, signal: AbortSignal): Promise<T> {
    let lastError: UpstreamError | undefined;
    for (let n = 0; n < maxAttempts; n++) {
      const round = Math.floor(n / upstreams.length);
      if (n > 0 && n % upstreams.length === 0) await sleep(backoffMs(round), signal);
      signal.throwIfAborted();
      try {
        return await call(upstreams[n % upstreams.length]!);
      } catch (error) {
        if (!isRetryable(error) || signal.aborted) throw error;
        lastError = error;
      }
    }
    throw lastError!;
  }

  return {
    complete: (request, signal) => attempt((upstream) => upstream.complete(request, signal), signal),
    stream: (request, signal) => attempt((upstream) => upstream.stream(request, signal), signal),
  };
}
