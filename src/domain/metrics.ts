import type { TokenUsage, UpstreamError } from "./inference/provider.js";

/** Why an upstream call failed, as a metric label: a small fixed set. */
export type UpstreamFailureReason = "http_429" | "http_5xx" | "http_4xx" | "http_other" | "transport" | "malformed";

export function upstreamFailureReason(error: UpstreamError): UpstreamFailureReason {
  const { status } = error;
  if (status === undefined) return error.kind === "unavailable" ? "transport" : "malformed";
  if (status === 429) return "http_429";
  if (status >= 500) return "http_5xx";
  return status >= 400 ? "http_4xx" : "http_other";
}

/**
 * What the domain counts for /metrics (infra/metrics implements it). Called on
 * the request path, so an implementation must not allocate; label values come
 * from the configuration (model ids, upstream names), never from a request.
 */
export interface DomainMetrics {
  /** An upstream answered: with the whole answer, or a stream's first bytes. */
  upstreamAnswered(upstream: string, seconds: number): void;
  upstreamFailed(upstream: string, reason: UpstreamFailureReason): void;
  /** A settle committed: the usage it recorded and the cents the ledger charged. */
  billed(model: string, usage: TokenUsage, chargedCents: number): void;
}

export const noMetrics: DomainMetrics = { upstreamAnswered() {}, upstreamFailed() {}, billed() {} };
