import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { Busboy } from "@fastify/busboy";
import { makePng } from "./documents.js";
import type { JsonValue } from "./fake-upstream.js";

// A real HTTP server on 127.0.0.1 playing an upstream of the surfaces beside
// chat, in OpenAI's shapes (embeddings, image generation, transcription,
// speech) and Cohere's and Jina's (rerank). It records what it received, so a
// test can assert what was forwarded and that nothing was for a refused
// request, and it takes knobs for the usage it reports and for failures.

export interface SurfaceUpstreamKnobs {
  /**
   * The token count embeddings (usage.prompt_tokens and total_tokens) and
   * rerank (usage.total_tokens) report; null reports no usage at all. Any
   * JSON goes out as it is, to play an upstream whose numbers cannot be trusted.
   */
  reportedTokens: JsonValue | null;
  /** The seconds a JSON transcription reports in `usage`; null reports no usage. */
  reportedSeconds: JsonValue | null;
  /** What every transcription says. */
  transcript: string;
  /** Rerank scores by document index; null scores each document by the query words it shares. */
  rerankScores: number[] | null;
  /** Answer every document in the order sent, ignoring top_n, as some rerank servers do. */
  rerankUnsorted: boolean;
  /** The speech audio, sent as these chunks one after another, and its content type. */
  speechChunks: Buffer[];
  speechContentType: string;
  /** Wait this long, once the request is read, before answering it: a request under way, for a fault to land on. */
  answerDelayMs: number;
}

/** A multipart body as it arrived: its text fields and its file part. */
export interface ReceivedForm {
  fields: Record<string, string>;
  file?: { field: string; filename: string; contentType: string; bytes: Buffer };
}

export interface SurfaceRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; undefined for multipart or unparsable bodies. */
  body: any;
  /** The parsed multipart body (transcriptions). */
  form?: ReceivedForm;
  /** True when the client closed the connection before the answer was complete. */
  disconnected: boolean;
}

export interface SurfaceUpstream {
  /** The base URL a provider is configured with: http://127.0.0.1:PORT/v1. */
  readonly baseUrl: string;
  readonly requests: SurfaceRequest[];
  set(knobs: Partial<SurfaceUpstreamKnobs>): void;
  /** The next `times` requests, whatever their path, get HTTP `status` with an OpenAI-style error body. */
  failNext(status: number, times?: number): void;
  /**
   * Speech answers stop after their first chunk until the returned function
   * is called (or the client goes away): a test looks at the books mid-stream.
   */
  stallSpeech(): () => void;
  /** Resolves when request `index` (default: the latest) has seen its client disconnect. */
  waitForDisconnect(index?: number, timeoutMs?: number): Promise<void>;
  /** Default knobs, no pending failures, no recorded requests, no stall. */
  reset(): void;
  close(): Promise<void>;
}

export const SURFACE_TRANSCRIPT = "The fake upstream heard three seconds of silence.";
export const SURFACE_SPEECH_CHUNKS = [Buffer.from("ID3-fake-audio-part-1;"), Buffer.from("part-2;"), Buffer.from("part-3.")];
/** The image every generation answers with: a real 3×2 PNG. */
export const SURFACE_IMAGE = makePng(3, 2);

/**
 * The vector the upstream answers for the input at `index`: every value a
 * multiple of 1/8, so exact in float32 and equal after a base64 round trip.
 */
export const surfaceEmbedding = (index: number, dimensions = 8): number[] =>
  Array.from({ length: dimensions }, (_, j) => (index + 1) * 0.5 - j * 0.125);

/** A mono 16-bit PCM WAV of `seconds` of silence: audio whose length a test knows (written directly: megabytes of it in milliseconds). */
export function silentWav(seconds: number, sampleRate = 8000): Buffer {
  const dataBytes = Math.round(seconds * sampleRate) * 2;
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write("WAVEfmt ", 8, "latin1");
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28); // bytes per second
  header.writeUInt16LE(2, 32); // bytes per frame
  header.writeUInt16LE(16, 34); // bits per sample
  header.write("data", 36, "latin1");
  header.writeUInt32LE(dataBytes, 40);
  return Buffer.concat([header, Buffer.alloc(dataBytes)]);
}

const defaults = (): SurfaceUpstreamKnobs => ({
  reportedTokens: null,
  reportedSeconds: 3,
  transcript: SURFACE_TRANSCRIPT,
  rerankScores: null,
  rerankUnsorted: false,
  speechChunks: SURFACE_SPEECH_CHUNKS,
  speechContentType: "audio/mpeg",
  answerDelayMs: 0,
});

const sleep = (ms: number) => delay(ms, undefined, { ref: false });

/** Little-endian float32, as OpenAI encodes `encoding_format: "base64"`. */
function base64Floats(values: number[]): string {
  const bytes = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString("base64");
}

const words = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);

/** The share of the query's words the document contains. */
function overlap(query: string, document: string): number {
  const asked = words(query);
  if (asked.size === 0) return 0;
  const present = words(document);
  return [...asked].filter((w) => present.has(w)).length / asked.size;
}

const documentText = (document: unknown) =>
  typeof document === "string" ? document : String((document as { text?: unknown } | null)?.text ?? "");

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("error", reject);
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
      } catch {
        resolve(undefined);
      }
    });
  });
}

function readForm(req: IncomingMessage): Promise<ReceivedForm> {
  return new Promise((resolve, reject) => {
    const form: ReceivedForm = { fields: {} };
    const parser = Busboy({ headers: { "content-type": req.headers["content-type"] ?? "" } });
    parser.on("field", (name: string, value: string) => void (form.fields[name] = value));
    parser.on("file", (field: string, stream: NodeJS.ReadableStream, filename: string, _encoding: string, contentType: string) => {
      const parts: Buffer[] = [];
      stream.on("data", (part: Buffer) => parts.push(part));
      stream.on("end", () => void (form.file = { field, filename, contentType, bytes: Buffer.concat(parts) }));
    });
    parser.on("error", reject);
    parser.on("finish", () => resolve(form));
    req.pipe(parser);
  });
}

const sendJson = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

export async function startSurfaceUpstream(): Promise<SurfaceUpstream> {
  let knobs = defaults();
  let pendingFailures: { status: number; times: number } | null = null;
  let speechStall: Promise<void> | null = null;
  let releaseSpeech = () => {};
  const requests: SurfaceRequest[] = [];
  const disconnectWaiters = new Map<SurfaceRequest, Array<() => void>>();
  let baseUrl = "";

  const usageOf = (tokens: JsonValue | null, shape: (n: JsonValue) => JsonValue) => (tokens === null ? {} : { usage: shape(tokens) });

  async function embeddings(res: ServerResponse, body: any, k: SurfaceUpstreamKnobs) {
    const inputs: unknown[] = Array.isArray(body.input) && (body.input.length === 0 || typeof body.input[0] !== "number") ? body.input : [body.input];
    const dimensions = Number.isInteger(body.dimensions) ? body.dimensions : 8;
    sendJson(res, 200, {
      object: "list",
      data: inputs.map((_, index) => {
        const vector = surfaceEmbedding(index, dimensions);
        return { object: "embedding", index, embedding: body.encoding_format === "base64" ? base64Floats(vector) : vector };
      }),
      model: body.model,
      ...usageOf(k.reportedTokens, (n) => ({ prompt_tokens: n, total_tokens: n })),
    });
  }

  async function images(res: ServerResponse, body: any) {
    const n = Number.isInteger(body.n) ? body.n : 1;
    const image = (i: number) =>
      body.response_format === "url" ? { url: `${baseUrl}/generated/${i}.png` } : { b64_json: SURFACE_IMAGE.toString("base64") };
    sendJson(res, 200, {
      created: Math.floor(Date.now() / 1000),
      data: Array.from({ length: n }, (_, i) => ({ ...image(i), revised_prompt: `A picture of: ${body.prompt}` })),
    });
  }

  async function transcription(res: ServerResponse, form: ReceivedForm, k: SurfaceUpstreamKnobs) {
    const format = form.fields.response_format ?? "json";
    if (format === "json") {
      return sendJson(res, 200, { text: k.transcript, ...usageOf(k.reportedSeconds, (seconds) => ({ type: "duration", seconds })) });
    }
    if (format === "verbose_json") {
      return sendJson(res, 200, { task: "transcribe", language: "english", duration: k.reportedSeconds, text: k.transcript, segments: [] });
    }
    const text =
      format === "srt"
        ? `1\n00:00:00,000 --> 00:00:03,000\n${k.transcript}\n`
        : format === "vtt"
          ? `WEBVTT\n\n00:00:00.000 --> 00:00:03.000\n${k.transcript}\n`
          : k.transcript;
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
    res.end(text);
  }

  async function speech(res: ServerResponse, k: SurfaceUpstreamKnobs) {
    res.writeHead(200, { "content-type": k.speechContentType });
    res.flushHeaders();
    const gone = new Promise<void>((resolve) => res.on("close", resolve));
    for (const [i, chunk] of k.speechChunks.entries()) {
      res.write(chunk);
      await sleep(5);
      if (i === 0 && speechStall) await Promise.race([speechStall, gone]);
      if (res.destroyed) return;
    }
    res.end();
  }

  async function rerank(res: ServerResponse, body: any, k: SurfaceUpstreamKnobs) {
    const documents: unknown[] = Array.isArray(body.documents) ? body.documents : [];
    const query = String(body.query ?? "");
    const scored = documents.map((document, index) => ({
      index,
      relevance_score: k.rerankScores?.[index] ?? overlap(query, documentText(document)),
    }));
    if (!k.rerankUnsorted) scored.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
    const topN = Number.isInteger(body.top_n) && !k.rerankUnsorted ? body.top_n : scored.length;
    // Cohere's v2 answer carries no documents; the caller has them.
    sendJson(res, 200, {
      id: `rerank-fake-${requests.length}`,
      model: body.model,
      results: scored.slice(0, topN),
      ...usageOf(k.reportedTokens, (n) => ({ total_tokens: n })),
    });
  }

  const routes: Record<string, (res: ServerResponse, record: SurfaceRequest, k: SurfaceUpstreamKnobs) => Promise<void>> = {
    "/v1/embeddings": (res, r, k) => embeddings(res, r.body ?? {}, k),
    "/v1/images/generations": (res, r) => images(res, r.body ?? {}),
    "/v1/audio/transcriptions": (res, r, k) => transcription(res, r.form ?? { fields: {} }, k),
    "/v1/audio/speech": (res, _r, k) => speech(res, k),
    "/v1/rerank": (res, r, k) => rerank(res, r.body ?? {}, k),
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const k = knobs; // one request sees one set of knobs
    const record: SurfaceRequest = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: undefined, disconnected: false };
    res.on("close", () => {
      if (res.writableFinished) return;
      record.disconnected = true;
      for (const wake of disconnectWaiters.get(record) ?? []) wake();
      disconnectWaiters.delete(record);
    });
    if (/^multipart\/form-data/i.test(req.headers["content-type"] ?? "")) record.form = await readForm(req);
    else record.body = await readJson(req);
    requests.push(record);

    const route = req.method === "POST" ? routes[record.path] : undefined;
    if (!route) return sendJson(res, 404, { error: { message: "Not found", type: "invalid_request_error", code: null } });
    if (k.answerDelayMs > 0) await Promise.race([sleep(k.answerDelayMs), new Promise<void>((resolve) => res.once("close", resolve))]);
    if (record.disconnected) return;
    if (pendingFailures && pendingFailures.times > 0) {
      const { status } = pendingFailures;
      if (--pendingFailures.times === 0) pendingFailures = null;
      return sendJson(res, status, { error: { message: `The fake upstream failed with ${status}.`, type: "server_error", code: null } });
    }
    await route(res, record, k);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}/v1`;

  return {
    baseUrl,
    requests,
    set: (changes) => void (knobs = { ...knobs, ...changes }),
    failNext(status, times = 1) {
      pendingFailures = { status, times };
    },
    stallSpeech() {
      speechStall = new Promise<void>((resolve) => (releaseSpeech = resolve));
      return () => releaseSpeech();
    },
    waitForDisconnect(index = requests.length - 1, timeoutMs = 5_000) {
      const record = requests[index];
      if (!record) return Promise.reject(new Error(`no request ${index}`));
      if (record.disconnected) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`request ${index} (${record.path}) still connected after ${timeoutMs} ms`)), timeoutMs);
        const waiters = disconnectWaiters.get(record) ?? [];
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        disconnectWaiters.set(record, waiters);
      });
    },
    reset() {
      releaseSpeech();
      speechStall = null;
      knobs = defaults();
      pendingFailures = null;
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
