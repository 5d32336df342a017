import { type Dispatcher, request as httpRequest } from "undici";
import type { UpstreamConfig } from "../../model-table.js";
import {
  type ChatProvider,
  type UpstreamChatRequest,
  type UpstreamChunk,
  type UpstreamCompletion,
  UpstreamError,
} from "../../provider.js";
import { chatCompletionsBody, readCompletion, readErrorMessage, WireFormatError } from "./chat-completions-wire.js";
import { sseChunks } from "./sse-chunks.js";
import { createRedactor, malformedResponse, type Redact, statusFailure, transportFailure } from "./upstream-failures.js";

// SPEC 9: any server speaking the OpenAI API (vLLM, llama.cpp server, Ollama,
// OpenAI itself), over keep-alive HTTP. Failures before the first byte are
// raised with beforeOutput = true so the failover around this may retry them.

export type OpenAICompatibleUpstream = Extract<UpstreamConfig, { provider: "openai-compatible" }>;

export interface OpenAICompatibleDeps {
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

export function createOpenAICompatibleProvider(upstream: OpenAICompatibleUpstream, deps: OpenAICompatibleDeps): ChatProvider {
  const endpoint = `${upstream.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  const redact: Redact = createRedactor(upstream);
  const { timeoutMs } = upstream;
  const authorization = upstream.apiKey ? { authorization: `Bearer ${upstream.apiKey}` } : {};

  /** Sends the request and resolves with a 2xx response whose headers have arrived. */
  async function send(request: UpstreamChatRequest, stream: boolean, signal: AbortSignal) {
    signal.throwIfAborted();
    let response: Dispatcher.ResponseData;
    try {
      response = await httpRequest(endpoint, {
        dispatcher: deps.dispatcher,
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: stream ? "text/event-stream" : "application/json",
          ...authorization,
        },
        body: JSON.stringify(chatCompletionsBody(request, upstream.model, stream)),
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

  return {
    // The host alone: the URL's path or user info may carry credentials.
    name: new URL(upstream.baseUrl).host,
    async complete(request, signal): Promise<UpstreamCompletion> {
      const response = await send(request, false, signal);
      const parts: Uint8Array[] = [];
      const bytes = bytesOf(response.body);
      try {
        for (let next = await bytes.next(); !next.done; next = await bytes.next()) parts.push(next.value);
      } catch (error) {
        signal.throwIfAborted();
        // SPEC 9: retried only before the first byte of the answer.
        throw transportFailure(error, parts.length === 0, timeoutMs);
      }
      let json: unknown;
      try {
        json = JSON.parse(Buffer.concat(parts).toString("utf8"));
      } catch {
        throw malformedResponse("the body is not JSON", redact);
      }
      try {
        return readCompletion(json);
      } catch (error) {
        if (error instanceof WireFormatError) throw malformedResponse(error.message, redact);
        throw error;
      }
    },

    async stream(request, signal): Promise<AsyncIterable<UpstreamChunk>> {
      const response = await send(request, true, signal);
      const bytes = bytesOf(response.body);
      // The port's contract: resolve once the first bytes are in, so that a
      // connection dying between the headers and the answer is still retried.
      let first: IteratorResult<Uint8Array>;
      try {
        first = await bytes.next();
      } catch (error) {
        signal.throwIfAborted();
        throw transportFailure(error, true, timeoutMs);
      }
      if (first.done) throw new UpstreamError("The upstream ended the stream without sending anything.", "bad_response", true);
      return sseChunks(first.value, bytes, { signal, redact, timeoutMs });
    },
  };
}
