import { describe, expect, it } from "vitest";
import { paramPath } from "../../src/rest/request-input.js";
import { chatCompletionRequest, passThroughParams } from "../../src/rest/openai/chat-schema.js";

const base = { model: "sentx-v1", messages: [{ role: "user", content: "hi" }] };

const firstIssue = (body: unknown) => {
  const parsed = chatCompletionRequest.safeParse(body);
  if (parsed.success) return null;
  return { param: paramPath(parsed.error.issues[0]!.path), message: parsed.error.issues[0]!.message };
};

describe("chat completion request validation (SPEC 2 ranges)", () => {
  it.each([
    ["temperature", -0.01],
    ["temperature", 2.01],
    ["top_p", -0.1],
    ["top_p", 1.01],
    ["presence_penalty", -2.1],
    ["presence_penalty", 2.1],
    ["frequency_penalty", -2.5],
    ["frequency_penalty", 2.0001],
    ["max_tokens", 0],
    ["max_tokens", 1.5],
    ["max_completion_tokens", 0],
    ["n", 2],
    ["n", 0],
    ["temperature", "hot"],
  ])("rejects %s = %s naming the field", (field, value) => {
    expect(firstIssue({ ...base, [field]: value })?.param).toBe(field);
  });

  it.each([
    ["temperature", 0],
    ["temperature", 2],
    ["top_p", 0],
    ["top_p", 1],
    ["presence_penalty", -2],
    ["frequency_penalty", 2],
    ["max_tokens", 1],
    ["n", 1],
  ])("accepts the edge %s = %s", (field, value) => {
    expect(firstIssue({ ...base, [field]: value })).toBeNull();
  });

  it("rejects empty messages and unknown roles", () => {
    expect(firstIssue({ ...base, messages: [] })?.param).toBe("messages");
    expect(firstIssue({ ...base, messages: [{ role: "wizard", content: "x" }] })?.param).toBe("messages[0].role");
    expect(firstIssue({ model: "m" })?.param).toBe("messages");
    expect(firstIssue({ messages: base.messages })?.param).toBe("model");
  });

  it("accepts every OpenAI role, and assistant tool calls without content", () => {
    const messages = [
      { role: "system", content: "s" },
      { role: "developer", content: "d" },
      { role: "user", content: [{ type: "text", text: "u" }] },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
      { role: "tool", content: "42", tool_call_id: "c1" },
    ];
    expect(firstIssue({ ...base, messages })).toBeNull();
    expect(firstIssue({ ...base, messages: [{ role: "user" }] })?.param).toBe("messages[0].content");
  });

  it("ignores unknown fields and passes through tools, stop, seed and sampling", () => {
    const parsed = chatCompletionRequest.parse({
      ...base,
      surprise: true,
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: "auto",
      response_format: { type: "json_object" },
      stop: ["\n"],
      seed: 7,
      temperature: 0.5,
      user: "u1",
    });
    expect(parsed).not.toHaveProperty("surprise");
    expect(passThroughParams(parsed)).toEqual({
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: "auto",
      response_format: { type: "json_object" },
      stop: ["\n"],
      seed: 7,
      temperature: 0.5,
    });
  });
});
