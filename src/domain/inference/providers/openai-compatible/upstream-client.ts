import { type Dispatcher, type FormData, request as httpRequest } from "undici";
import type { UpstreamConfig } from "../../model-table.js";
import { readErrorMessage } from "./chat-completions-wire.js";
import { createRedactor, malformedResponse, type Redact, statusFailure, transportFailure } from "./upstream-failures.js";

// One openai-compatible upstream over keep-alive HTTP: a POST that resolves
// with a 2xx response (anything else becomes an UpstreamError raised before
// output, so the failover may retry it), and reading a whole answer.

export type OpenAICompatibleUpstream = Extract<UpstreamConfig, { provider: "openai-compatible" }>;

export interface UpstreamClientDeps {
  /** Shared keep-alive connection pools (one per origin), from infra/upstream-http. */
  dispatcher: Dispatcher;
}

/** Enough of an error body for its message; the rest is not read. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

type ResponseBody = Dispatcher.ResponseData["body"];

const bytesOf = (body: ResponseBody) => body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;

/** The upstream's explanation of an error status, if it gave one in JSON or plain text. */
async function readErrorBody(body: ResponseBody, contentType: string): Promise<string | undefined> {
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const part of body as AsyncIterable<Uint8Array>) {
      parts.push(part);
      size += part.byteLength;
      // Leaving the loop destroys the body, which also frees the connection.
      if (size > MAX_ERROR_BODY_BYTES) break;
    }
  } catch {
    return undefined; // The status alone says enough.
  }
  const text = Buffer.concat(parts).toString("utf8");
  if (contentType.startsWith("text/plain")) return text.trim() || undefined;
  try {
    return readErrorMessage(JSON.parse(text));
  } catch {
    return undefined; // An HTML error page from a proxy, say: nothing worth passing on.
  }
}

export type UpstreamBody = { json: unknown } | { form: FormData };

export function createUpstreamClient(upstream: OpenAICompatibleUpstream, deps: UpstreamClientDeps) {
  const base = upstream.baseUrl.replace(/\/+$/, "");
  const redact: Redact = createRedactor(upstream);
  const { timeoutMs } = upstream;
  const authorization = upstream.apiKey ? { authorization: `Bearer ${upstream.apiKey}` } : {};

  /** Sends the request and resolves with a 2xx response whose headers have arrived. */
  async function post(path: string, body: UpstreamBody, accept: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    signal.throwIfAborted();
    let response: Dispatcher.ResponseData;
    try {
      response = await httpRequest(`${base}${path}`, {
        dispatcher: deps.dispatcher,
        method: "POST",
        // A form sets its own multipart content type, boundary included.
        headers: { ...("json" in body && { "content-type": "application/json" }), accept, ...authorization },
        body: "json" in body ? JSON.stringify(body.json) : body.form,
        // Aborting closes the connection, so the upstream stops generating (SPEC 2).
        signal,
        // A non-streamed answer's headers come when the whole answer is ready,
        // so this bounds the generation; a stream's total time is not bounded,
        // only each silence within it (bodyTimeout is idle time between bytes).
        // undici checks both on a clock that ticks once a second.
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      signal.throwIfAborted();
      throw transportFailure(error, true, timeoutMs);
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    const contentType = String(response.headers["content-type"] ?? "");
    const upstreamMessage = await readErrorBody(response.body, contentType);
    signal.throwIfAborted();
    throw statusFailure(response.statusCode, upstreamMessage, redact);
  }

  /** The whole answer's bytes; a connection lost before any of it arrived may still be retried. */
  async function readAll(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    const bytes = bytesOf(response.body);
    try {
      for (let next = await bytes.next(); !next.done; next = await bytes.next()) parts.push(next.value);
    } catch (error) {
      signal.throwIfAborted();
      // SPEC 9: retried only before the first byte of the answer.
      throw transportFailure(error, parts.length === 0, timeoutMs);
    }
    return Buffer.concat(parts);
  }

  /**
   * Waits for the answer's first bytes, so that a connection dying between
   * the headers and the answer is still retried; null when the body is empty.
   */
  async function firstBytes(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<{ first: Uint8Array; rest: AsyncIterator<Uint8Array> } | null> {
    const rest = bytesOf(response.body);
    let first: IteratorResult<Uint8Array>;
    try {
      first = await rest.next();
    } catch (error) {
      signal.throwIfAborted();
      throw transportFailure(error, true, timeoutMs);
    }
    return first.done ? null : { first: first.value, rest };
  }

  /** The whole answer as JSON, or a malformed-answer error. */
  async function readJson(response: Dispatcher.ResponseData, signal: AbortSignal): Promise<unknown> {
    const text = (await readAll(response, signal)).toString("utf8");
    try {
      return JSON.parse(text);
    } catch {
      throw malformedResponse("the body is not JSON", redact);
    }
  }

  return {
    // The host alone: the URL's path or user info may carry credentials.
    name: new URL(upstream.baseUrl).host,
    upstreamModel: upstream.model,
    redact,
    timeoutMs,
    post,
    firstBytes,
    readAll,
    readJson,
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;
