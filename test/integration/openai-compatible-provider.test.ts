import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type ModelConfig, modelSchema } from "../../src/domain/inference/model-table.js";
import { type UpstreamChatRequest, type UpstreamChunk, UpstreamError } from "../../src/domain/inference/provider.js";
import { createModelProvider } from "../../src/domain/inference/providers/index.js";
import {
  createOpenAICompatibleProvider,
  type OpenAICompatibleUpstream,
} from "../../src/domain/inference/providers/openai-compatible/openai-compatible-provider.js";
import { createUpstreamHttp, type UpstreamHttp } from "../../src/infra/upstream-http.js";
import { FAKE_REPLY, FAKE_USAGE, type FakeUpstream, refusedBaseUrl, startFakeUpstream } from "../support/fake-upstream.js";

// The openai-compatible provider against a real local HTTP server playing the
// upstream: real sockets, real keep-alive, real disconnects.

const API_KEY = "sk-test-secret-key-1234567890";

let upstream: FakeUpstream;
let http: UpstreamHttp;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  http = createUpstreamHttp();
});
afterAll(async () => {
  await http.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const provider = (overrides: Partial<OpenAICompatibleUpstream> = {}) =>
  createOpenAICompatibleProvider(
    { provider: "openai-compatible", baseUrl: upstream.baseUrl, apiKey: API_KEY, model: "upstream-model", timeoutMs: 5_000, ...overrides },
    { dispatcher: http.dispatcher },
  );

const request: UpstreamChatRequest = {
  model: "sentx-v1",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hello there" },
  ],
  maxTokens: 64,
  params: { temperature: 0.2, stop: ["\n\n"], max_completion_tokens: 999, stream_options: { include_usage: false } },
};

const live = () => new AbortController().signal;

async function collect(chunks: AsyncIterable<UpstreamChunk>): Promise<UpstreamChunk[]> {
  const all: UpstreamChunk[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return all;
}

/** Collects what a stream yields before it fails, and the failure. */
async function collectUntilError(chunks: AsyncIterable<UpstreamChunk>) {
  const received: UpstreamChunk[] = [];
  try {
    for await (const chunk of chunks) received.push(chunk);
  } catch (error) {
    return { received, error };
  }
  throw new Error(`the stream ended without an error after ${received.length} chunks`);
}

const contentOf = (chunks: UpstreamChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");

const upstreamError = (fields: Partial<Pick<UpstreamError, "kind" | "beforeOutput" | "status">>) =>
  expect.objectContaining({ name: "UpstreamError", ...fields });

describe("non-streamed completions", () => {
  it("sends the OpenAI request and maps the answer and usage", async () => {
    const completion = await provider().complete(request, live());
    expect(completion.choices).toEqual([
      expect.objectContaining({ index: 0, message: expect.objectContaining({ role: "assistant", content: FAKE_REPLY }), finish_reason: "stop" }),
    ]);
    expect(completion.usage).toEqual({ promptTokens: FAKE_USAGE.prompt_tokens, completionTokens: FAKE_USAGE.completion_tokens });

    const [received] = upstream.requests;
    expect(received).toMatchObject({ method: "POST", path: "/v1/chat/completions" });
    expect(received!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(received!.headers["content-type"]).toBe("application/json");
    expect(received!.body).toEqual({
      temperature: 0.2,
      stop: ["\n\n"],
      model: "upstream-model", // the upstream's own name, not the public one
      messages: request.messages,
      max_tokens: 64, // the balance-reduced budget wins over the caller's max_completion_tokens
    });
  });

  it("sends no Authorization header when the upstream has no API key", async () => {
    await provider({ apiKey: undefined }).complete(request, live());
    expect(upstream.requests[0]!.headers).not.toHaveProperty("authorization");
  });

  it("leaves usage absent when the upstream reports none", async () => {
    upstream.set({ usage: null });
    const completion = await provider().complete(request, live());
    expect(completion.usage).toBeUndefined();
    expect(completion.choices[0]!.message.content).toBe(FAKE_REPLY);
  });

  it("reuses keep-alive connections instead of opening one per request", async () => {
    const p = provider();
    for (let i = 0; i < 3; i++) await p.complete(request, live());
    await collect(await p.stream(request, live()));
    await p.complete(request, live());
    const ports = upstream.requests.map((r) => r.clientPort);
    // undici may open a second connection while the first is being released; it does not open five.
    expect(new Set(ports).size).toBeLessThan(ports.length);
    expect(new Set(ports).size).toBeLessThanOrEqual(2);
  });
});

describe("streamed completions", () => {
  it("yields the upstream's chunks, asks for usage whatever the caller said, and maps it", async () => {
    const chunks = await collect(await provider().stream(request, live()));
    expect(contentOf(chunks)).toBe(FAKE_REPLY);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    // OpenAI's `usage: null` on ordinary chunks is no usage.
    expect(chunks.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("stop");
    expect(chunks.at(-1)).toEqual({
      choices: [],
      usage: { promptTokens: FAKE_USAGE.prompt_tokens, completionTokens: FAKE_USAGE.completion_tokens },
    });

    const body = upstream.requests[0]!.body;
    expect(body).toMatchObject({ model: "upstream-model", max_tokens: 64, stream: true, stream_options: { include_usage: true } });
    expect(body).not.toHaveProperty("max_completion_tokens");
    expect(upstream.requests[0]!.headers.accept).toBe("text/event-stream");
  });

  it("ends without usage when the upstream reports none", async () => {
    upstream.set({ usage: null });
    const chunks = await collect(await provider().stream(request, live()));
    expect(contentOf(chunks)).toBe(FAKE_REPLY);
    expect(chunks.some((c) => c.usage)).toBe(false);
  });
});

describe("failures before output (retryable when unavailable)", () => {
  it.each([500, 502, 503, 429])("HTTP %i is unavailable, before output, with the status", async (status) => {
    upstream.failNext(status);
    await expect(provider().complete(request, live())).rejects.toEqual(upstreamError({ kind: "unavailable", beforeOutput: true, status }));
    upstream.failNext(status);
    await expect(provider().stream(request, live())).rejects.toEqual(upstreamError({ kind: "unavailable", beforeOutput: true, status }));
  });

  it("HTTP 4xx is a bad response carrying the upstream's message", async () => {
    upstream.failNext(400, 1, "The model `upstream-model` does not support stop sequences.");
    const error = await provider().complete(request, live()).catch((e) => e);
    expect(error).toEqual(upstreamError({ kind: "bad_response", beforeOutput: true, status: 400 }));
    expect(error.message).toBe("HTTP 400: The model `upstream-model` does not support stop sequences.");
  });

  it("never passes on the upstream's address or API key in a message", async () => {
    upstream.failNext(401, 2, `Incorrect API key provided: ${API_KEY}. See https://platform.openai.com/account/api-keys or ${upstream.baseUrl}.`);
    for (const attempt of [() => provider().complete(request, live()), () => provider().stream(request, live())]) {
      const error = await attempt().catch((e) => e);
      expect(error).toEqual(upstreamError({ kind: "bad_response", beforeOutput: true, status: 401 }));
      expect(error.message).toContain("Incorrect API key provided");
      expect(error.message).not.toContain(API_KEY.slice(3));
      expect(error.message).not.toContain("platform.openai.com");
      expect(error.message).not.toContain("127.0.0.1");
      expect(error.message).not.toContain(new URL(upstream.baseUrl).port);
    }
  });

  it("a refused connection is unavailable, before output, and names no address", async () => {
    const baseUrl = await refusedBaseUrl();
    const error = await provider({ baseUrl }).complete(request, live()).catch((e) => e);
    expect(error).toEqual(upstreamError({ kind: "unavailable", beforeOutput: true }));
    expect(error.message).toBe("Could not connect to the upstream (ECONNREFUSED).");
    await expect(provider({ baseUrl }).stream(request, live())).rejects.toEqual(upstreamError({ kind: "unavailable", beforeOutput: true }));
  });

  it("headers later than timeoutMs are unavailable, before output, and the request is dropped", async () => {
    upstream.set({ headersDelayMs: 10_000 });
    const started = performance.now();
    const error = await provider({ timeoutMs: 150 }).stream(request, live()).catch((e) => e);
    expect(error).toEqual(upstreamError({ kind: "unavailable", beforeOutput: true }));
    expect(error.message).toBe("The upstream did not answer within 150 ms.");
    // undici checks this timeout on a clock that ticks once a second.
    expect(performance.now() - started).toBeLessThan(3_000);
    await upstream.waitForDisconnect(0);
  });

  it("a stream whose connection dies after the headers but before any byte is still retryable", async () => {
    upstream.set({ dieAfterChunks: 0 });
    await expect(provider().stream(request, live())).rejects.toEqual(upstreamError({ kind: "unavailable", beforeOutput: true }));
  });

  it("a completion whose connection dies after the headers but before any byte is still retryable", async () => {
    upstream.set({ dieAfterChunks: 0 });
    await expect(provider().complete(request, live())).rejects.toEqual(upstreamError({ kind: "unavailable", beforeOutput: true }));
  });
});

describe("failures after output began (never retried)", () => {
  it("a stream dying after two chunks yields them, then fails with beforeOutput false", async () => {
    upstream.set({ dieAfterChunks: 2 });
    const { received, error } = await collectUntilError(await provider().stream(request, live()));
    expect(contentOf(received)).toBe(FAKE_REPLY.match(/\s*\S+/g)!.slice(0, 2).join(""));
    expect(error).toEqual(upstreamError({ kind: "unavailable", beforeOutput: false }));
  });

  it("a completion body cut in half fails with beforeOutput false", async () => {
    upstream.set({ dieAfterChunks: 1 });
    await expect(provider().complete(request, live())).rejects.toEqual(upstreamError({ kind: "unavailable", beforeOutput: false }));
  });

  it("malformed JSON in a completion is a bad response", async () => {
    upstream.set({ malformed: "json" });
    const error = await provider().complete(request, live()).catch((e) => e);
    expect(error).toEqual(upstreamError({ kind: "bad_response", beforeOutput: false }));
    expect(error.message).toBe("The upstream's answer was malformed: the body is not JSON.");
  });

  it.each(["json", "sse"] as const)("malformed %s mid-stream is raised by the iterator after the good chunk", async (malformed) => {
    upstream.set({ malformed });
    const { received, error } = await collectUntilError(await provider().stream(request, live()));
    expect(received).toHaveLength(1);
    expect(error).toEqual(upstreamError({ kind: "bad_response", beforeOutput: false }));
    expect((error as Error).message).toMatch(/^The upstream's answer was malformed: /);
  });
});

describe("aborting", () => {
  it("an abort mid-stream stops the iterator and closes the upstream connection", async () => {
    upstream.set({ chunkDelayMs: 30 });
    const controller = new AbortController();
    const received: UpstreamChunk[] = [];
    const consume = (async () => {
      for await (const chunk of await provider().stream(request, controller.signal)) {
        received.push(chunk);
        if (received.length === 2) controller.abort();
      }
    })();
    await expect(consume).rejects.toMatchObject({ name: "AbortError" });
    expect(received).toHaveLength(2);
    await upstream.waitForDisconnect(0);
    expect(upstream.requests[0]!.disconnected).toBe(true);
  });

  it("a consumer that stops reading closes the upstream connection too", async () => {
    upstream.set({ chunkDelayMs: 30 });
    for await (const _ of await provider().stream(request, live())) break;
    await upstream.waitForDisconnect(0);
  });

  it("an abort while waiting for the headers drops the request", async () => {
    upstream.set({ headersDelayMs: 1_000 });
    const controller = new AbortController();
    const pending = provider().complete(request, controller.signal);
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    await upstream.waitForDisconnect(0);
  });

  it("a completed stream leaves no disconnect behind", async () => {
    await collect(await provider().stream(request, live()));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(upstream.requests[0]!.disconnected).toBe(false);
  });
});

describe("a model's upstreams behind failover (createModelProvider)", () => {
  const model = (...baseUrls: string[]): ModelConfig =>
    modelSchema.parse({
      id: "sentx-v1",
      upstreams: baseUrls.map((baseUrl) => ({ provider: "openai-compatible", baseUrl, model: "upstream-model", timeoutMs: 5_000 })),
    });
  const chatProvider = (m: ModelConfig) => createModelProvider(m, "chat", { http, maxAttempts: 3 });

  it("retries a 5xx and then answers", async () => {
    upstream.failNext(503, 1);
    const completion = await chatProvider(model(upstream.baseUrl)).complete(request, live());
    expect(completion.choices[0]!.message.content).toBe(FAKE_REPLY);
    expect(upstream.requests).toHaveLength(2);
  });

  it("falls over from a refused connection to the next upstream", async () => {
    const chunks = await collect(await chatProvider(model(await refusedBaseUrl(), upstream.baseUrl)).stream(request, live()));
    expect(contentOf(chunks)).toBe(FAKE_REPLY);
    expect(upstream.requests).toHaveLength(1);
  });

  it("gives up after maxAttempts with the last error", async () => {
    upstream.failNext(502, 5);
    await expect(chatProvider(model(upstream.baseUrl)).complete(request, live())).rejects.toEqual(
      upstreamError({ kind: "unavailable", beforeOutput: true, status: 502 }),
    );
    expect(upstream.requests).toHaveLength(3);
  });

  it("does not retry a 4xx", async () => {
    upstream.failNext(404, 5);
    await expect(chatProvider(model(upstream.baseUrl)).complete(request, live())).rejects.toEqual(
      upstreamError({ kind: "bad_response", status: 404 }),
    );
    expect(upstream.requests).toHaveLength(1);
  });

  it("does not retry a stream that failed mid-answer", async () => {
    upstream.set({ dieAfterChunks: 3 });
    const { received, error } = await collectUntilError(
      await chatProvider(model(upstream.baseUrl, upstream.baseUrl)).stream(request, live()),
    );
    expect(received).toHaveLength(3);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toEqual(upstreamError({ beforeOutput: false }));
    expect(upstream.requests).toHaveLength(1);
  });
});
