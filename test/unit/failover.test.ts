import { describe, expect, it } from "vitest";
import {
  type UpstreamChatRequest,
  type UpstreamChunk,
  type UpstreamCompletion,
  UpstreamError,
} from "../../src/domain/inference/provider.js";
import { type Provider, withFailover } from "../../src/domain/inference/providers/failover.js";

// Small in-test upstreams that answer from a script: each call takes the next
// outcome. They are real providers, so failover runs its real code path.

type Outcome = UpstreamError | Error | "ok";

const request: UpstreamChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }], maxTokens: 10, params: {} };
const live = () => new AbortController().signal;

const completion = (name: string): UpstreamCompletion => ({
  choices: [{ index: 0, message: { role: "assistant", content: `from ${name}` }, finish_reason: "stop" }],
});

const chunk = (content: string): UpstreamChunk => ({ choices: [{ index: 0, delta: { content }, finish_reason: null }] });

function scriptedUpstream(name: string, script: Outcome[], calls: string[]): Provider {
  const next = () => {
    calls.push(name);
    const outcome = script.shift() ?? "ok";
    if (outcome !== "ok") throw outcome;
  };
  const answer = async <T>(value: T) => {
    next();
    return value;
  };
  return {
    embeddings: () => answer({ data: [{ index: 0, embedding: [name.length] }] }),
    images: () => answer({ data: [{ url: `https://${name}.example/image.png` }] }),
    transcribe: () => answer({ contentType: "text/plain", body: `from ${name}` }),
    speech: () => answer({ contentType: "audio/wav", body: (async function* () {})() }),
    rerank: () => answer({ results: [{ index: 0, relevance_score: 1 }] }),
    async complete() {
      next();
      return completion(name);
    },
    async stream() {
      next();
      return (async function* () {
        yield chunk(`from ${name}`);
      })();
    },
  };
}

const unavailable = (status?: number) => new UpstreamError(`HTTP ${status ?? "connect"}`, "unavailable", true, status);
const badRequest = () => new UpstreamError("HTTP 400: bad model", "bad_response", true, 400);

/** A sleep that returns at once and remembers how long it was asked to wait. */
function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe("withFailover (SPEC 9)", () => {
  it("answers from the first upstream without waiting when it succeeds", async () => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const provider = withFailover([scriptedUpstream("a", [], calls)], { maxAttempts: 3, sleep });
    expect(await provider.complete(request, live())).toEqual(completion("a"));
    expect(calls).toEqual(["a"]);
    expect(waits).toEqual([]);
  });

  it("retries a 5xx on the same upstream after a backoff with jitter", async () => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const provider = withFailover([scriptedUpstream("a", [unavailable(503)], calls)], {
      maxAttempts: 3,
      sleep,
      random: () => 0.5,
    });
    expect(await provider.complete(request, live())).toEqual(completion("a"));
    expect(calls).toEqual(["a", "a"]);
    // base 100 ms: between 50 and 100, here 50 + 50 × 0.5
    expect(waits).toEqual([75]);
  });

  it("falls over to the next upstream at once when the first refuses the connection", async () => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const provider = withFailover([scriptedUpstream("a", [unavailable()], calls), scriptedUpstream("b", [], calls)], {
      maxAttempts: 3,
      sleep,
    });
    expect(await provider.complete(request, live())).toEqual(completion("b"));
    expect(calls).toEqual(["a", "b"]);
    expect(waits).toEqual([]);
  });

  it("fails over every surface's call alike, not only chat's", async () => {
    const calls: string[] = [];
    const { sleep } = recordingSleep();
    const provider = withFailover([scriptedUpstream("a", Array(5).fill(unavailable(503)), calls), scriptedUpstream("b", [], calls)], {
      maxAttempts: 2,
      sleep,
    });
    const surface = { model: "m", params: {} };
    expect(await provider.embeddings({ ...surface, input: ["x"], encodingFormat: "float" }, live())).toEqual({ data: [{ index: 0, embedding: [1] }] });
    expect(await provider.rerank({ ...surface, query: "q", documents: ["d"], topN: 1 }, live())).toEqual({ results: [{ index: 0, relevance_score: 1 }] });
    expect(calls).toEqual(["a", "b", "a", "b"]);
  });

  it("cycles through the upstreams, backing off exponentially each time it comes round again", async () => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const down = () => [unavailable(502), unavailable(502), unavailable(502)];
    const provider = withFailover([scriptedUpstream("a", down(), calls), scriptedUpstream("b", down(), calls)], {
      maxAttempts: 5,
      sleep,
      random: () => 0.999,
    });
    await expect(provider.complete(request, live())).rejects.toBeInstanceOf(UpstreamError);
    expect(calls).toEqual(["a", "b", "a", "b", "a"]);
    expect(waits).toEqual([100, 200]);
  });

  it("throws the last error when every attempt fails, after exactly maxAttempts attempts", async () => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const errors = [unavailable(500), unavailable(429), unavailable(503), unavailable(500)];
    const provider = withFailover([scriptedUpstream("a", [...errors], calls)], { maxAttempts: 3, sleep, random: () => 0 });
    await expect(provider.complete(request, live())).rejects.toBe(errors[2]);
    expect(calls).toEqual(["a", "a", "a"]);
    expect(waits).toEqual([50, 100]);
  });

  it("caps the backoff at maxDelayMs", async () => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const provider = withFailover([scriptedUpstream("a", Array.from({ length: 6 }, () => unavailable(503)), calls)], {
      maxAttempts: 6,
      baseDelayMs: 100,
      maxDelayMs: 300,
      sleep,
      random: () => 0.999,
    });
    await expect(provider.complete(request, live())).rejects.toBeInstanceOf(UpstreamError);
    expect(waits).toEqual([100, 200, 300, 300, 300]);
  });

  it.each([
    ["a 4xx (bad_response)", badRequest()],
    ["a failure after output began", new UpstreamError("reset mid-answer", "unavailable", false)],
    ["an error that is not the upstream's", new TypeError("a bug")],
  ])("does not retry %s", async (_case, error) => {
    const calls: string[] = [];
    const { waits, sleep } = recordingSleep();
    const provider = withFailover([scriptedUpstream("a", [error], calls), scriptedUpstream("b", [], calls)], {
      maxAttempts: 3,
      sleep,
    });
    await expect(provider.complete(request, live())).rejects.toBe(error);
    expect(calls).toEqual(["a"]);
    expect(waits).toEqual([]);
  });

  it("makes one attempt only when maxAttempts is 1", async () => {
    const calls: string[] = [];
    const error = unavailable(503);
    const provider = withFailover([scriptedUpstream("a", [error], calls), scriptedUpstream("b", [], calls)], { maxAttempts: 1 });
    await expect(provider.complete(request, live())).rejects.toBe(error);
    expect(calls).toEqual(["a"]);
  });

  it("retries a stream that failed before it started", async () => {
    const calls: string[] = [];
    const provider = withFailover([scriptedUpstream("a", [unavailable(503)], calls), scriptedUpstream("b", [], calls)], {
      maxAttempts: 3,
      sleep: async () => {},
    });
    const chunks: UpstreamChunk[] = [];
    for await (const c of await provider.stream(request, live())) chunks.push(c);
    expect(chunks).toEqual([chunk("from b")]);
    expect(calls).toEqual(["a", "b"]);
  });

  it("never retries once a stream has yielded: the error reaches the consumer after the chunks", async () => {
    const calls: string[] = [];
    const midStream = new UpstreamError("The connection to the upstream broke mid-answer (ECONNRESET).", "unavailable", false);
    const breaking: Provider = {
      ...scriptedUpstream("unused", [], []),
      complete: () => Promise.reject(new Error("unused")),
      async stream() {
        calls.push("a");
        return (async function* () {
          yield chunk("Hello");
          throw midStream;
        })();
      },
    };
    const provider = withFailover([breaking, scriptedUpstream("b", [], calls)], { maxAttempts: 3, sleep: async () => {} });
    const received: UpstreamChunk[] = [];
    const consume = async () => {
      for await (const c of await provider.stream(request, live())) received.push(c);
    };
    await expect(consume()).rejects.toBe(midStream);
    expect(received).toEqual([chunk("Hello")]);
    expect(calls).toEqual(["a"]);
  });

  it("gives up at once when the request is aborted during a backoff", async () => {
    const calls: string[] = [];
    const controller = new AbortController();
    const provider = withFailover([scriptedUpstream("a", [unavailable(503), unavailable(503)], calls)], {
      maxAttempts: 3,
      baseDelayMs: 10_000, // the real, abortable sleep
    });
    const started = performance.now();
    setTimeout(() => controller.abort(), 20);
    await expect(provider.complete(request, controller.signal)).rejects.toMatchObject({ name: "AbortError" });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(calls).toEqual(["a"]);
  });
});
