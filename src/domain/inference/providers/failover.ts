import { setTimeout as delay } from "node:timers/promises";
import { type Logger, silentLogger } from "../../logger.js";
import { type DomainMetrics, noMetrics, upstreamFailureReason } from "../../metrics.js";
import type { CallTrace } from "../../call-trace.js";
import { type ChatProvider, UpstreamError } from "../provider.js";
import type { SurfaceProvider } from "../surface-provider.js";

/** An upstream as the failover sees it: every surface it may be asked for. */
export type Provider = ChatProvider & SurfaceProvider;

/** What every request to a provider carries, for the failover's logs. */
interface Traced {
  model: string;
  trace?: CallTrace;
}

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
  /** Gets a warning for every failed attempt. */
  logger?: Logger;
  metrics?: Pick<DomainMetrics, "upstreamAnswered" | "upstreamFailed">;
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
export function withFailover(upstreams: readonly Provider[], options: FailoverOptions): Provider {
  if (upstreams.length === 0) throw new Error("withFailover needs at least one upstream");
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts));
  const baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const logger = options.logger ?? silentLogger;
  const metrics = options.metrics ?? noMetrics;
  const names = upstreams.map((upstream, i) => upstream.name ?? `upstream-${i + 1}`);

  /** Before round `round` (≥ 1) through the upstreams: base × 2^(round−1), between half and all of it. */
  const backoffMs = (round: number): number => {
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (round - 1));
    return Math.round(ceiling / 2 + (ceiling / 2) * random());
  };

  /** Reports an attempt that failed, saying what happens next: a failover, a retry after backoff, or nothing more. */
  function reportFailure(request: Traced, n: number, error: UpstreamError): void {
    const upstream = names[n % upstreams.length]!;
    const reason = upstreamFailureReason(error);
    metrics.upstreamFailed(upstream, reason);
    const retryable = isRetryable(error);
    const next = retryable && n + 1 < maxAttempts ? names[(n + 1) % upstreams.length]! : null;
    const message = !retryable
      ? "upstream call failed; not retryable"
      : next === null
        ? "upstream call failed; no attempts left"
        : (n + 1) % upstreams.length === 0
          ? "upstream call failed; retrying after a backoff"
          : "upstream call failed; failing over to the next upstream";
    const requestId = request.trace?.requestId;
    logger.warn({ requestId, model: request.model, upstream, attempt: n + 1, maxAttempts, reason, error: error.message, next }, message);
  }

  async function attempt<T>(call: (upstream: Provider) => Promise<T>, request: Traced, signal: AbortSignal): Promise<T> {
    const { trace } = request;
    let lastError: UpstreamError | undefined;
    for (let n = 0; n < maxAttempts; n++) {
      const round = Math.floor(n / upstreams.length);
      if (n > 0 && n % upstreams.length === 0) await sleep(backoffMs(round), signal);
      signal.throwIfAborted();
      const index = n % upstreams.length;
      if (trace) trace.attempts = n + 1;
      const startedAt = performance.now();
      try {
        const answer = await call(upstreams[index]!);
        metrics.upstreamAnswered(names[index]!, (performance.now() - startedAt) / 1000);
        if (trace) trace.upstream = names[index]!;
        return answer;
      } catch (error) {
        // A caller that went away is no failure of the upstream's.
        if (!(error instanceof UpstreamError) || signal.aborted) throw error;
        reportFailure(request, n, error);
        if (!isRetryable(error)) throw error;
        lastError = error;
      }
    }
    throw lastError!;
  }

  return {
    complete: (request, signal) => attempt((upstream) => upstream.complete(request, signal), request, signal),
    stream: (request, signal) => attempt((upstream) => upstream.stream(request, signal), request, signal),
    embeddings: (request, signal) => attempt((upstream) => upstream.embeddings(request, signal), request, signal),
    images: (request, signal) => attempt((upstream) => upstream.images(request, signal), request, signal),
    transcribe: (request, signal) => attempt((upstream) => upstream.transcribe(request, signal), request, signal),
    speech: (request, signal) => attempt((upstream) => upstream.speech(request, signal), request, signal),
    rerank: (request, signal) => attempt((upstream) => upstream.rerank(request, signal), request, signal),
  };
}
