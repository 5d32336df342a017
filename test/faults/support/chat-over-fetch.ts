import { setTimeout as sleep } from "node:timers/promises";
import { createParser } from "eventsource-parser";

// Chat completions sent with plain fetch, so a fault test sees exactly what a
// client got: the status, the request id, every streamed event (an `error`
// event included, which the SDK would turn into an exception), whether the
// stream closed properly, when its content arrived, and how the exchange
// failed when it did. A send never throws: under a fault, a refused, broken or
// hung connection is an outcome to count and assert on, not an exception that
// ends the test at the first one.

export interface ChatExchange {
  /** The request asked for a stream. */
  stream: boolean;
  /** 0 when no HTTP answer came (refused, reset, timed out or aborted before the headers). */
  status: number;
  /** x-request-id; null when no HTTP answer came. */
  requestId: string | null;
  /** performance.now() when the request was sent. */
  startedAt: number;
  /** From sending the request to the end of the answer, or to the failure or abort. */
  elapsedMs: number;
  /** The parsed JSON body of a non-streamed answer or of a refusal. */
  body: any;
  /** A stream's events, each `data:` parsed, without the closing [DONE]. */
  events: any[];
  /** performance.now() of a stream's first and last content chunk. */
  firstContentAt: number | null;
  lastContentAt: number | null;
  /** The stream ended with `data: [DONE]`. */
  completed: boolean;
  /** The client aborted (through `signal`) before the answer ended. */
  aborted: boolean;
  /**
   * Why the exchange failed, when the client did not abort it: the connection's
   * error (ECONNREFUSED, "terminated" when it broke mid-body…), TimeoutError
   * when `timeoutMs` ran out, or the SyntaxError of a body or event that is not
   * JSON. null when the answer ended normally.
   */
  failure: string | null;
}

export interface ChatOptions {
  headers?: Record<string, string>;
  /** The client giving up: ends the exchange as `aborted`, not as a failure. */
  signal?: AbortSignal;
  /** The whole exchange, headers and body, must end within this, so a hang is a TimeoutError failure rather than a test timeout. */
  timeoutMs?: number;
  /** Called as each streamed event arrives, with the exchange so far. */
  onEvent?(soFar: ChatExchange): void;
}

/** A chat request under way. */
export interface LiveChat {
  /** Filled in as the answer arrives; `ended` resolves with this same object. */
  readonly exchange: ChatExchange;
  /** Resolves at a stream's first content chunk, or when the exchange ended, whichever is first. */
  readonly flowing: Promise<void>;
  readonly ended: Promise<ChatExchange>;
}

/** A sentx-v1 request; its answer is as long as the upstream's reply, whatever the prompt. */
export const chatRequest = (stream: boolean, extra: Record<string, unknown> = {}) => ({
  model: "sentx-v1",
  stream,
  messages: [{ role: "user", content: "Tell me a long story." }],
  ...extra,
});

const contentOf = (event: any): string => event?.choices?.[0]?.delta?.content ?? "";

/** The stream's chunks that carried content. */
export const contentChunks = (exchange: ChatExchange): number => exchange.events.filter((e) => contentOf(e) !== "").length;

/** The stream's content, every delta joined. */
export const streamedText = (exchange: ChatExchange): string => exchange.events.map(contentOf).join("");

/** The `error` of an error event in the stream, if it ended with one. */
export const streamedError = (exchange: ChatExchange): any => exchange.events.find((e) => e?.error)?.error;

/** Why the answer ended: the choice's finish_reason, or the one a stream's chunks carried. */
export const finishReasonOf = (exchange: ChatExchange): string | undefined =>
  exchange.body?.choices?.[0]?.finish_reason ?? exchange.events.find((e) => e?.choices?.[0]?.finish_reason)?.choices[0].finish_reason;

/** The usage of a non-streamed answer, or of a stream's final chunk. */
export const usageOf = (exchange: ChatExchange): any =>
  exchange.body?.usage ?? exchange.events.findLast((e) => e?.usage)?.usage;

const failureOf = (error: unknown): string => {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError") return e.name;
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
};

/** Reads a stream into `exchange`; an event that is not JSON throws, as a broken connection does. */
async function readEvents(body: ReadableStream<Uint8Array>, exchange: ChatExchange, onEvent: (event: any) => void): Promise<void> {
  const parser = createParser({
    onEvent({ data }) {
      if (data === "[DONE]") exchange.completed = true;
      else onEvent(JSON.parse(data));
    },
  });
  const text = new TextDecoder();
  const reader = body.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) parser.feed(text.decode(next.value, { stream: true }));
}

/** A client of one server's chat completions that counts the requests it sent. */
export function chatOverFetch(serverUrl: string) {
  let sent = 0;

  function start(key: string, body: Record<string, unknown>, { headers, signal, timeoutMs = 30_000, onEvent }: ChatOptions = {}): LiveChat {
    sent++;
    const exchange: ChatExchange = {
      stream: body.stream === true,
      status: 0,
      requestId: null,
      startedAt: performance.now(),
      elapsedMs: 0,
      body: undefined,
      events: [],
      firstContentAt: null,
      lastContentAt: null,
      completed: false,
      aborted: false,
      failure: null,
    };
    let markFlowing!: () => void;
    const flowing = new Promise<void>((resolve) => (markFlowing = resolve));
    const received = (event: any) => {
      exchange.events.push(event);
      if (contentOf(event) !== "") {
        const now = performance.now();
        exchange.firstContentAt ??= now;
        exchange.lastContentAt = now;
        markFlowing();
      }
      onEvent?.(exchange);
    };
    const timeout = AbortSignal.timeout(timeoutMs);
    const ended = (async () => {
      try {
        const response = await fetch(`${serverUrl}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        exchange.status = response.status;
        exchange.requestId = response.headers.get("x-request-id");
        if (response.headers.get("content-type")?.startsWith("text/event-stream")) await readEvents(response.body!, exchange, received);
        else exchange.body = JSON.parse(await response.text());
      } catch (error) {
        if (signal?.aborted) exchange.aborted = true;
        else exchange.failure = failureOf(error);
      }
      exchange.elapsedMs = performance.now() - exchange.startedAt;
      markFlowing();
      return exchange;
    })();
    return { exchange, flowing, ended };
  }

  return {
    get sent() {
      return sent;
    },
    start,
    send: (...args: Parameters<typeof start>): Promise<ChatExchange> => start(...args).ended,
  };
}

export type ChatOverFetch = ReturnType<typeof chatOverFetch>;

/**
 * Runs `loops` request loops side by side until `until()` says stop or each
 * has made `maxIterations` requests, whichever is first; returns every exchange.
 */
export async function runLoops(
  loops: number,
  { until, maxIterations }: { until: () => boolean; maxIterations: number },
  send: (loop: number, iteration: number) => Promise<ChatExchange>,
): Promise<ChatExchange[]> {
  const exchanges: ChatExchange[] = [];
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      for (let iteration = 0; iteration < maxIterations && !until(); iteration++) {
        const exchange = await send(loop, iteration);
        exchanges.push(exchange);
        // A dead server refuses in microseconds; without a pause the loop would only spin.
        if (exchange.status === 0) await sleep(20);
      }
    }),
  );
  return exchanges;
}
