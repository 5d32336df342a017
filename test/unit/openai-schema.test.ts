import { describe, expect, it } from "vitest";
import { openAISchemaViolations } from "../support/openai-schema.js";

// The validator the conformance tests rely on: it must reject what OpenAI's
// schemas reject, or those tests pass whatever the server sends.

const header = { id: "chatcmpl-1", created: 1_700_000_000, model: "m" };
const completion = {
  ...header,
  object: "chat.completion",
  choices: [{ index: 0, message: { role: "assistant", content: "Hi", refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
};
const chunk = (finishReason: unknown) => ({
  ...header,
  object: "chat.completion.chunk",
  choices: [{ index: 0, delta: {}, finish_reason: finishReason }],
});
const file = { id: "file-1", object: "file", bytes: 3, created_at: 1, filename: "a.txt", purpose: "user_data", status: "processed" };

describe("openAISchemaViolations", () => {
  it("accepts a complete chat completion, SentX's usage.cost_cents included", () => {
    expect(openAISchemaViolations("CreateChatCompletionResponse", { ...completion, usage: { ...completion.usage, cost_cents: 1 } })).toEqual([]);
  });

  it("names each required field a chat completion lacks", () => {
    const { logprobs: _, ...choice } = completion.choices[0]!;
    const { refusal: __, ...message } = choice.message;
    expect(openAISchemaViolations("CreateChatCompletionResponse", { ...completion, choices: [{ ...choice, message }] })).toEqual([
      expect.stringMatching(/^\/choices\/0 must have required property 'logprobs'/),
      expect.stringMatching(/^\/choices\/0\/message must have required property 'refusal'/),
    ]);
  });

  it("reads OpenAPI 3.0's nullable: a chunk's finish_reason may be null, not any string", () => {
    expect(openAISchemaViolations("CreateChatCompletionStreamResponse", chunk(null))).toEqual([]);
    expect(openAISchemaViolations("CreateChatCompletionStreamResponse", chunk("bored"))).not.toEqual([]);
  });

  it("checks formats: created is whole Unix seconds", () => {
    expect(openAISchemaViolations("CreateChatCompletionResponse", { ...completion, created: 1.5 })).not.toEqual([]);
  });

  it("widens only where OpenAI's own API departs from the document", () => {
    expect(openAISchemaViolations("OpenAIFile", { ...file, status_details: null, purpose: "evals" })).toEqual([]);
    expect(openAISchemaViolations("OpenAIFile", { ...file, status: null })).not.toEqual([]);
    expect(openAISchemaViolations("ListFilesResponse", { object: "list", data: [], first_id: null, last_id: null, has_more: false })).toEqual([]);
  });

  it("refuses a schema name the document does not have", () => {
    expect(() => openAISchemaViolations("NoSuchSchema", {})).toThrow(/no component schema 'NoSuchSchema'/);
  });
});
