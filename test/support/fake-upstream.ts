import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { freePort } from "./ports.js";

// Unref'd, so a long knob (a 5 s header delay) never keeps a test process alive.
const sleep = (ms: number) => delay(ms, undefined, { ref: false });

// A real HTTP server on 127.0.0.1 playing an OpenAI-compatible upstream
// (POST /v1/chat/completions, streamed or not), with knobs a test sets for
// delays, failures and malformed output. It records what it received and
// whether the client went away before the answer was finished.

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Where a hanging upstream stops sending (and waits, until its client goes away). */
export type HangPoint = "before-headers" | "after-headers" | "mid-stream";

/** A stream that hangs "mid-stream" does so after this many content chunks. */
export const HANG_MID_STREAM_AFTER_CHUNKS = 2;

export interface FakeUpstreamKnobs {
  /** The answer; streamed one word per chunk. */
  replyText: string;
  /**
   * The usage the upstream reports; null reports none (streams then send no
   * usage chunk). Besides a FakeUsage (which gets its total_tokens added), any
   * JSON is sent as it is, to play an upstream whose numbers cannot be trusted.
   */
  usage: FakeUsage | Exclude<JsonValue, null> | null;
  /** Wait before sending the response headers. */
  headersDelayMs: number;
  /** Wait before each streamed chunk. */
  chunkDelayMs: number;
  /**
   * Destroy the socket after this many content chunks (streams), or — for a
   * non-streamed answer — after the headers (0) or half the body (> 0).
   */
  dieAfterChunks: number | null;
  /** After `malformedAfterChunks` good chunks (streams) or instead of the body (non-streamed): bad JSON, or lines that are not SSE. */
  malformed: "json" | "sse" | null;
  /** How many good content chunks a stream sends before the malformed data (0: none, so it is malformed before any output). */
  malformedAfterChunks: number;
  /**
   * Accept the request, then send nothing more until the client goes away:
   * before the headers, after them, or mid-answer (streams: after
   * HANG_MID_STREAM_AFTER_CHUNKS content chunks; non-streamed: after half the body).
   */
  hang: HangPoint | null;
  /**
   * Cut the answer to the request's max_tokens words, with finish_reason
   * "length", as a real model does. Off, the whole replyText is sent whatever
   * max_tokens says, playing an upstream that ignores it. The usage knob is
   * reported as set either way.
   */
  honourMaxTokens: boolean;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when it was not JSON). */
  body: any;
  /** The client's source port: the same port on two requests means a reused keep-alive connection. */
  clientPort: number;
  /** True when the client closed the connection before the answer was complete. */
  disconnected: boolean;
}

export interface FakeUpstream {
  /** The base URL a provider is configured with, e.g. http://127.0.0.1:PORT/v1. */
  readonly baseUrl: string;
  readonly requests: ReceivedRequest[];
  set(knobs: Partial<FakeUpstreamKnobs>): void;
  /** The next `times` requests get HTTP `status` with an OpenAI-style error body. */
  failNext(status: number, times?: number, message?: string): void;
  /** Default knobs, no pending failures, no recorded requests. */
  reset(): void;
  /** Resolves when request `index` (default: the latest) has seen its client disconnect. */
  waitForDisconnect(index?: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const FAKE_REPLY = "Hello from the fake upstream, one word at a time.";
export const FAKE_USAGE: FakeUsage = { prompt_tokens: 17, completion_tokens: 11 };

const defaults = (): FakeUpstreamKnobs => ({
  replyText: FAKE_REPLY,
  usage: { ...FAKE_USAGE },
  headersDelayMs: 0,
  chunkDelayMs: 0,
  dieAfterChunks: null,
  malformed: null,
  malformedAfterChunks: 1,
  hang: null,
  honourMaxTokens: false,
});

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Cuts the connection once what was written has left, so the client sees the bytes, then the break. */
async function destroyAfterFlush(res: ServerResponse): Promise<void> {
  await sleep(10);
  res.socket?.destroy();
}

const isFakeUsage = (usage: FakeUpstreamKnobs["usage"]): usage is FakeUsage =>
  typeof usage === "object" &&
  usage !== null &&
  !Array.isArray(usage) &&
  typeof usage.prompt_tokens === "number" &&
  typeof usage.completion_tokens === "number";

/** The usage block as sent: a well-formed one gets its total, anything else goes out untouched. */
const usageBlock = (usage: FakeUpstreamKnobs["usage"]) =>
  isFakeUsage(usage) ? { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } : usage;

/** The answer's words (each with its leading space) and why it ended: max_tokens words at most when honoured. */
function answerFor(k: FakeUpstreamKnobs, body: any): { words: string[]; content: string; finishReason: "stop" | "length" } {
  const words = k.replyText.match(/\s*\S+/g) ?? [];
  const limit = body.max_tokens ?? body.max_completion_tokens;
  if (k.honourMaxTokens && Number.isInteger(limit) && limit >= 0 && words.length > limit) {
    const cut = words.slice(0, limit);
    return { words: cut, content: cut.join(""), finishReason: "length" };
  }
  return { words, content: k.replyText, finishReason: "stop" };
}

const sse = (payload: unknown) => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;

export async function startFakeUpstream(initial: Partial<FakeUpstreamKnobs> = {}): Promise<FakeUpstream> {
  let knobs: FakeUpstreamKnobs = { ...defaults(), ...initial };
  let pendingFailures: { status: number; times: number; message: string } | null = null;
  const requests: ReceivedRequest[] = [];
  const disconnectWaiters = new Map<ReceivedRequest, Array<() => void>>();

  async function handle(req: IncomingMessage, res: ServerResponse, record: ReceivedRequest) {
    const k = knobs; // one request sees one set of knobs
    if (req.method !== "POST" || record.path !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "Not found", type: "invalid_request_error", code: null } }));
      return;
    }
    if (k.headersDelayMs > 0) await sleep(k.headersDelayMs);
    if (record.disconnected) return;

    if (pendingFailures && pendingFailures.times > 0) {
      const { status, message } = pendingFailures;
      if (--pendingFailures.times === 0) pendingFailures = null;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message, type: status >= 500 ? "server_error" : "invalid_request_error", code: null } }));
      return;
    }
    // A hang leaves the response open; the client's timeout or abort closes it.
    if (k.hang === "before-headers") return;

    const body = record.body ?? {};
    const id = `chatcmpl-fake${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const model = String(body.model ?? "fake-model");
    const usage = usageBlock(k.usage);
    const { words, content, finishReason } = answerFor(k, body);

    if (!body.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      const answer = JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: finishReason }],
        ...(usage !== null && { usage }),
      });
      const half = answer.slice(0, Math.floor(answer.length / 2));
      if (k.malformed) return void res.end(half);
      if (k.hang) {
        res.flushHeaders();
        if (k.hang === "mid-stream") res.write(half);
        return;
      }
      if (k.dieAfterChunks !== null) {
        res.flushHeaders();
        if (k.dieAfterChunks > 0) res.write(half);
        return destroyAfterFlush(res);
      }
      return void res.end(answer);
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    if (k.hang === "after-headers") return;
    const includeUsage = body.stream_options?.include_usage === true;
    // Like OpenAI: with include_usage, every chunk carries `usage: null` except the last one.
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices,
      ...(includeUsage && { usage: null }),
      ...extra,
    });
    // Whether the stream breaks off once `sent` content chunks are out; a
    // count past the answer's length breaks it off after the last one.
    const breaksAfter = (sent: number, count: number | null) => count !== null && sent === Math.min(count, words.length);
    async function interrupted(sent: number): Promise<boolean> {
      if (breaksAfter(sent, k.dieAfterChunks)) {
        await destroyAfterFlush(res);
        return true;
      }
      if (k.malformed && breaksAfter(sent, k.malformedAfterChunks)) {
        res.write(k.malformed === "json" ? sse("{not json") : "this line is not server-sent events\n\n");
        await sleep(10);
        res.end();
        return true;
      }
      return k.hang === "mid-stream" && breaksAfter(sent, HANG_MID_STREAM_AFTER_CHUNKS);
    }
    for (const [i, word] of words.entries()) {
      if (k.chunkDelayMs > 0) await sleep(k.chunkDelayMs);
      if (record.disconnected || (await interrupted(i))) return;
      const delta = i === 0 ? { role: "assistant", content: word } : { content: word };
      res.write(sse(chunk([{ index: 0, delta, logprobs: null, finish_reason: null }])));
    }
    if (await interrupted(words.length)) return;
    res.write(sse(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }])));
    if (includeUsage && usage !== null) res.write(sse(chunk([], { usage })));
    res.end(sse("[DONE]"));
  }

  const server = createServer((req, res) => {
    const record: ReceivedRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body: undefined,
      clientPort: req.socket.remotePort ?? 0,
      disconnected: false,
    };
    res.on("close", () => {
      if (res.writableFinished) return;
      record.disconnected = true;
      for (const wake of disconnectWaiters.get(record) ?? []) wake();
      disconnectWaiters.delete(record);
    });
    void readBody(req).then(async (body) => {
      record.body = body;
      requests.push(record);
      try {
        await handle(req, res, record);
      } catch {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    set: (changes) => void (knobs = { ...knobs, ...changes }),
    failNext(status, times = 1, message = `The fake upstream failed with ${status}.`) {
      pendingFailures = { status, times, message };
    },
    reset() {
      knobs = defaults();
      pendingFailures = null;
      requests.length = 0;
    },
    async waitForDisconnect(index = requests.length - 1, timeoutMs = 2_000) {
      const record = requests[index];
      if (!record) throw new Error(`the fake upstream has no request #${index}`);
      if (record.disconnected) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`request #${index} was not disconnected within ${timeoutMs} ms`)), timeoutMs);
        const waiters = disconnectWaiters.get(record) ?? [];
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        disconnectWaiters.set(record, waiters);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A base URL on 127.0.0.1 where nothing listens, so connecting is refused. */
export async function refusedBaseUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/v1`;
}
