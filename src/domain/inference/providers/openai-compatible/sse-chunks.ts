import { createParser, type EventSourceMessage, type ParseError } from "eventsource-parser";
import { type UpstreamChunk, UpstreamError } from "../../provider.js";
import { readChunk, WireFormatError } from "./chat-completions-wire.js";
import { malformedResponse, type Redact, transportFailure } from "./upstream-failures.js";

// An OpenAI chat.completion.chunk event stream, from the response body's bytes
// to UpstreamChunks. Everything raised here comes after output may have
// reached the client, so nothing here is retried (SPEC 9).

/** One event is one chunk of a few hundred bytes; this only stops an endless line from eating memory. */
const MAX_EVENT_CHARACTERS = 8 * 1024 * 1024;

/** After [DONE], the rest of the body is read (keeping the connection reusable) up to this much, then dropped. */
const MAX_BYTES_AFTER_DONE = 64 * 1024;

export interface SseChunksContext {
  signal: AbortSignal;
  redact: Redact;
  timeoutMs: number;
}

/**
 * Yields the chunks of an SSE body whose first bytes have already been read
 * (`first`), pulling the rest from `rest`. Stops at `data: [DONE]`. When the
 * consumer stops early or anything fails, the body is destroyed, which closes
 * the connection so the upstream stops generating.
 */
export async function* sseChunks(
  first: Uint8Array,
  rest: AsyncIterator<Uint8Array>,
  { signal, redact, timeoutMs }: SseChunksContext,
): AsyncGenerator<UpstreamChunk> {
  const ready: UpstreamChunk[] = [];
  let failure: Error | undefined;
  let done = false;
  let finished = false;

  const parser = createParser({
    maxBufferSize: MAX_EVENT_CHARACTERS,
    onEvent(event: EventSourceMessage) {
      if (done || failure) return;
      if (event.data.trim() === "[DONE]") {
        done = true;
        return;
      }
      try {
        const chunk = readChunk(JSON.parse(event.data));
        finished ||= chunk.choices.some((c) => c.finish_reason !== null);
        ready.push(chunk);
      } catch (error) {
        const detail = error instanceof WireFormatError ? error.message : "an event's data is not JSON";
        failure = malformedResponse(detail, redact);
      }
    },
    onError(error: ParseError) {
      // A bad `retry:` value is harmless to us; an unknown field means the body is not an event stream.
      if (error.type !== "invalid-retry") failure ??= malformedResponse(`not an event stream (${error.type})`, redact);
    },
  });
  const text = new TextDecoder();

  let completed = false;
  try {
    let next: IteratorResult<Uint8Array> = { done: false, value: first };
    while (!next.done) {
      parser.feed(text.decode(next.value, { stream: true }));
      while (ready.length > 0) yield ready.shift()!;
      if (failure) throw failure;
      if (done) break;
      try {
        next = await rest.next();
      } catch (error) {
        signal.throwIfAborted();
        throw transportFailure(error, false, timeoutMs);
      }
    }
    if (done) {
      completed = await drainAfterDone(rest);
      return;
    }
    // The body ended without [DONE]: take a last event that lacked its blank line.
    parser.feed(text.decode());
    parser.reset({ consume: true });
    while (ready.length > 0) yield ready.shift()!;
    if (failure) throw failure;
    // Some servers omit [DONE]; an answer that reached its finish_reason is complete all the same.
    if (!finished) throw new UpstreamError("The upstream ended the stream before the answer finished.", "unavailable", false);
    completed = true;
  } finally {
    // Also reached by a consumer's `break`: destroying the body aborts the request.
    if (!completed) await rest.return?.().catch(() => {});
  }
}

/**
 * Reads what follows [DONE] (normally nothing) so the keep-alive connection
 * can serve the next request; false when that was too much or failed.
 */
async function drainAfterDone(rest: AsyncIterator<Uint8Array>): Promise<boolean> {
  let trailing = 0;
  try {
    for (let after = await rest.next(); !after.done; after = await rest.next()) {
      trailing += after.value.byteLength;
      if (trailing > MAX_BYTES_AFTER_DONE) return false;
    }
    return true;
  } catch {
    // The answer is complete; a connection that breaks after it is no failure of this request.
    return false;
  }
}
