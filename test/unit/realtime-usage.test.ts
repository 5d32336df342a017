import { describe, expect, it } from "vitest";
import { modelSchema } from "../../src/domain/inference/model-table.js";
import { realtimeTargets } from "../../src/domain/realtime/realtime-targets.js";
import { responseUsage } from "../../src/domain/realtime/realtime-usage.js";

const bounds = { contextWindow: 128_000, maxOutputTokens: 4_096 };
const done = (usage: unknown) => JSON.stringify({ type: "response.done", response: { id: "resp_1", usage } });

describe("responseUsage", () => {
  it("reads a response.done's input and output tokens", () => {
    expect(responseUsage(done({ total_tokens: 30, input_tokens: 10, output_tokens: 20 }), bounds)).toEqual({ promptTokens: 10, completionTokens: 20 });
  });

  it("ignores every other event, malformed JSON, and a response.done without usage", () => {
    expect(responseUsage(JSON.stringify({ type: "response.output_text.delta", delta: '"response.done"' }), bounds)).toBeNull();
    expect(responseUsage('{"type":"response.done", broken', bounds)).toBeNull();
    expect(responseUsage(JSON.stringify({ type: "response.done", response: { id: "resp_1" } }), bounds)).toBeNull();
    expect(responseUsage(done(null), bounds)).toBeNull();
    expect(responseUsage('"response.done"', bounds)).toBeNull();
  });

  it("counts what is not a non-negative safe integer as 0", () => {
    expect(responseUsage(done({ input_tokens: -5, output_tokens: 7 }), bounds)).toEqual({ promptTokens: 0, completionTokens: 7 });
    expect(responseUsage(done({ input_tokens: 1.5, output_tokens: "9" }), bounds)).toBeNull();
    expect(responseUsage(done({ input_tokens: 3, output_tokens: Number.MAX_SAFE_INTEGER + 2 }), bounds)).toEqual({ promptTokens: 3, completionTokens: 0 });
  });

  it("clamps counts beyond what one response can use to the model's context window and maximum output", () => {
    expect(responseUsage(done({ input_tokens: 1e12, output_tokens: 1e9 }), bounds)).toEqual({ promptTokens: 128_000, completionTokens: 4_096 });
  });

  it("bills nothing for a response that used no tokens", () => {
    expect(responseUsage(done({ input_tokens: 0, output_tokens: 0 }), bounds)).toBeNull();
  });
});

describe("realtimeTargets", () => {
  const model = (upstreams: unknown[]) => modelSchema.parse({ id: "m", upstreams, capabilities: ["realtime"] });

  it("turns an openai-compatible baseUrl into its realtime socket, http → ws and https → wss, with the upstream's key", () => {
    const targets = realtimeTargets(
      model([
        { provider: "openai-compatible", baseUrl: "http://localhost:8000/v1", model: "local-rt" },
        { provider: "openai-compatible", baseUrl: "https://api.example.com/v1/", model: "gpt-realtime", apiKey: "sk-up" },
      ]),
    );
    expect(targets).toEqual([
      { url: "ws://localhost:8000/v1/realtime?model=local-rt", headers: {}, label: "localhost:8000" },
      { url: "wss://api.example.com/v1/realtime?model=gpt-realtime", headers: { Authorization: "Bearer sk-up" }, label: "api.example.com" },
    ]);
  });

  it("leaves out the demo provider and upstreams whose capabilities do not list realtime", () => {
    const targets = realtimeTargets(
      model([
        { provider: "demo" },
        { provider: "openai-compatible", baseUrl: "http://a/v1", model: "chat-only", capabilities: ["chat"] },
        { provider: "openai-compatible", baseUrl: "http://b/v1", model: "rt", capabilities: ["chat", "realtime"] },
      ]),
    );
    expect(targets.map((t) => t.url)).toEqual(["ws://b/v1/realtime?model=rt"]);
  });
});
