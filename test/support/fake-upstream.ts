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

export interface FakeUpstreamKnobs {
  /** The answer; streamed one word per chunk. */
  replyText: string;
  /** The usage the upstream reports; null reports none (streams then send no usage chunk). */
  usage: FakeUsage | null;
  /** Wait before sending the response headers. */
  headersDelayMs: number;
  /** Wait before each streamed chunk. */
  chunkDelayMs: number;
  /**
   * Destroy the socket after this many content chunks (streams), or — for a
   * non-streamed answer — after the headers (0) or half the body (> 0).
   */
  dieAfterChunks: number | null;
  /** After one good chunk (streams) or instead of the body (non-streamed): bad JSON, or lines that are not SSE. */
  malformed: "json" | "sse" | null;
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

    const body = record.body ?? {};
    const id = `chatcmpl-fake${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const model = String(body.model ?? "fake-model");
    const usage = k.usage && { ...k.usage, total_tokens: k.usage.prompt_tokens + k.usage.completion_tokens };

    if (!body.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      const answer = JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: k.replyText, refusal: null }, logprobs: null, finish_reason: "stop" }],
        ...(usage && { usage }),
      });
      if (k.malformed) return void res.end(answer.slice(0, Math.floor(answer.length / 2)));
      if (k.dieAfterChunks !== null) {
        res.flushHeaders();
        if (k.dieAfterChunks > 0) res.write(answer.slice(0, Math.floor(answer.length / 2)));
        return destroyAfterFlush(res);
      }
      return void res.end(answer);
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
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
    const words = k.replyText.match(/\s*\S+/g) ?? [];
    for (const [i, word] of words.entries()) {
      if (k.chunkDelayMs > 0) await sleep(k.chunkDelayMs);
      if (record.disconnected) return;
      if (k.dieAfterChunks !== null && i === k.dieAfterChunks) return destroyAfterFlush(res);
      const delta = i === 0 ? { role: "assistant", content: word } : { content: word };
      res.write(sse(chunk([{ index: 0, delta, logprobs: null, finish_reason: null }])));
      if (k.malformed && i === 0) {
        res.write(k.malformed === "json" ? sse("{not json") : "this line is not server-sent events\n\n");
        await sleep(10);
        return void res.end();
      }
    }
    if (k.dieAfterChunks !== null && words.length <= k.dieAfterChunks) return destroyAfterFlush(res);
    res.write(sse(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }])));
    if (includeUsage && usage) res.write(sse(chunk([], { usage })));
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
