// The model upstream every gateway in the benchmark talks to, as a process of
// its own so that it never competes with the gateway for the gateway's core.
// It answers POST /v1/chat/completions at once with a fixed short answer and
// its usage, streamed or not; under /slow/ a stream sends BENCH_SLOW_CHUNKS
// chunks BENCH_SLOW_CHUNK_MS apart, to hold many streams open at once. Prints
// the line `listening on <url>` once it accepts connections.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";

const slowChunks = Number(process.env.BENCH_SLOW_CHUNKS ?? 20);
const slowChunkMs = Number(process.env.BENCH_SLOW_CHUNK_MS ?? 250);

const words = ["Fast", " and", " short", " answer."];
const usage = { prompt_tokens: 12, completion_tokens: words.length, total_tokens: 12 + words.length };
const created = Math.floor(Date.now() / 1000);

// Built once: the upstream's own cost per request must be next to nothing.
const completion = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created,
  model: "bench",
  choices: [{ index: 0, message: { role: "assistant", content: words.join(""), refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage,
});
const event = (choices: unknown[], extra: object = {}) =>
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created, model: "bench", choices, ...extra })}\n\n`;
const contentEvents = words.map((content, i) =>
  event([{ index: 0, delta: i === 0 ? { role: "assistant", content } : { content }, logprobs: null, finish_reason: null }]),
);
// The usage chunk goes out whether or not the client asked for it (SentX always
// does), so a pass-through proxy carries the same bytes as SentX receives.
const closingEvents = event([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]) + event([], { usage }) + "data: [DONE]\n\n";

async function readJson(req: IncomingMessage): Promise<{ stream?: boolean }> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    return {};
  }
}

async function answer(req: IncomingMessage, res: ServerResponse) {
  const slow = req.url?.startsWith("/slow/") ?? false;
  const path = slow ? req.url!.slice("/slow".length) : req.url;
  if (req.method !== "POST" || path !== "/v1/chat/completions") {
    req.resume();
    res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"message":"Not found"}}');
    return;
  }
  const body = await readJson(req);
  if (!body.stream) {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(completion) }).end(completion);
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  if (!slow) {
    res.end(contentEvents.join("") + closingEvents);
    return;
  }
  let closed = false;
  res.once("close", () => (closed = true));
  for (let i = 0; i < slowChunks && !closed; i++) {
    res.write(contentEvents[i % contentEvents.length]);
    await delay(slowChunkMs);
  }
  res.end(closingEvents);
}

const server = createServer({ noDelay: true }, (req, res) => void answer(req, res).catch(() => res.destroy()));
// Longer than any client's keep-alive (SentX's undici agent keeps sockets 30 s),
// so the upstream never closes a socket a client is about to reuse.
server.keepAliveTimeout = 120_000;
server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`));
