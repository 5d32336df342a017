import { UpstreamError } from "../../provider.js";

// How the ways an upstream call can fail become UpstreamErrors. The messages
// reach clients (as 502/503 bodies), so they name what went wrong but never
// the upstream's address or credentials.

/** Upstream error messages are passed on, shortened: they explain a 4xx, but are not ours to relay at length. */
export const MAX_UPSTREAM_MESSAGE_CHARACTERS = 300;

export type Redact = (text: string) => string;

/** Removes the upstream's URL, host and API key, and anything shaped like a URL or an API key, from a message. */
export function createRedactor(upstream: { baseUrl: string; apiKey?: string | undefined }): Redact {
  const url = new URL(upstream.baseUrl);
  const secrets = [upstream.apiKey, upstream.baseUrl, url.origin, url.host, url.hostname]
    .filter((s): s is string => typeof s === "string" && s.length >= 4)
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let redacted = text;
    for (const secret of secrets) redacted = redacted.split(secret).join("[redacted]");
    return redacted
      .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "[url]")
      .replace(/\bsk-[\w*.-]+/g, "sk-[redacted]")
      .replace(/\bBearer\s+\S+/gi, "Bearer [redacted]");
  };
}

function shorten(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  const codePoints = Array.from(oneLine);
  return codePoints.length <= MAX_UPSTREAM_MESSAGE_CHARACTERS
    ? oneLine
    : `${codePoints.slice(0, MAX_UPSTREAM_MESSAGE_CHARACTERS).join("")}…`;
}

/** An HTTP error status, always before any output (the status comes first). */
export function statusFailure(status: number, upstreamMessage: string | undefined, redact: Redact): UpstreamError {
  const message = `HTTP ${status}${upstreamMessage ? `: ${shorten(redact(upstreamMessage))}` : ""}`;
  // 429 and 5xx are the upstream's own trouble (overloaded, restarting, down):
  // another try, or another upstream, may well succeed. Other statuses are
  // about the request and would fail again (SPEC 9 retries only the former).
  const retryable = status === 429 || status >= 500;
  return new UpstreamError(message, retryable ? "unavailable" : "bad_response", true, status);
}

/** The error code of a Node or undici error (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, …), never its message, which holds addresses. */
function errorCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[A-Z][A-Z0-9_]*$/.test(code)) return code;
  }
  return undefined;
}

const CONNECT_FAILURES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** A connection refused, reset or timed out; `beforeOutput` says whether any of the answer had arrived. */
export function transportFailure(error: unknown, beforeOutput: boolean, timeoutMs: number): UpstreamError {
  const code = errorCode(error);
  const message =
    code === "UND_ERR_HEADERS_TIMEOUT"
      ? `The upstream did not answer within ${timeoutMs} ms.`
      : code === "UND_ERR_BODY_TIMEOUT"
        ? `The upstream sent nothing for ${timeoutMs} ms.`
        : code && CONNECT_FAILURES.has(code)
          ? `Could not connect to the upstream (${code}).`
          : beforeOutput
            ? `The connection to the upstream failed (${code ?? "no error code"}).`
            : `The connection to the upstream broke mid-answer (${code ?? "no error code"}).`;
  return new UpstreamError(message, "unavailable", beforeOutput);
}

/** The upstream answered 2xx with something that is not the OpenAI format. Never retried: it would answer the same. */
export function malformedResponse(detail: string, redact: Redact): UpstreamError {
  return new UpstreamError(`The upstream's answer was malformed: ${shorten(redact(detail))}.`, "bad_response", false);
}
