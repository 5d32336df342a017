import { encode } from "gpt-tokenizer/encoding/o200k_base";
import { describe, expect, it } from "vitest";
import type { ChatMessage } from "../../src/domain/inference/provider.js";
import {
  countCompletionTokens,
  countPromptTokens,
  countTextTokens,
  NON_TEXT_PART_TOKENS,
  promptTokensUpperBound,
  truncateToTokens,
} from "../../src/domain/inference/tokens.js";

// Counts are o200k_base (gpt-4o family). Every number below was checked
// against the encoder itself, and the chat total against OpenAI's own API.

describe("countTextTokens", () => {
  it.each([
    ["", 0],
    ["hello world", 2],
    ["Hello there", 2],
    ["The quick brown fox jumps over the lazy dog.", 10],
    ["こんにちは世界", 2],
  ])("%j is %i tokens", (text, tokens) => {
    expect(countTextTokens(text)).toBe(tokens);
    expect(countTextTokens(text)).toBe(encode(text).length);
  });

  it("counts a special-token string a user typed as plain text instead of throwing", () => {
    // "<" "|" "end" "of" "text" "|" ">"
    expect(countTextTokens("<|endoftext|>")).toBe(7);
    expect(countTextTokens("say <|im_start|> please")).toBeGreaterThan(3);
  });
});

describe("countPromptTokens (OpenAI's chat accounting)", () => {
  it("matches the 124 prompt tokens OpenAI's API reports for the cookbook's gpt-4o example", () => {
    // openai-cookbook, "How to count tokens with tiktoken", section 6: gpt-4o → 124 by the API.
    const messages: ChatMessage[] = [
      { role: "system", content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English." },
      { role: "system", name: "example_user", content: "New synergies will help drive top-line growth." },
      { role: "system", name: "example_assistant", content: "Things working well together will increase revenue." },
      {
        role: "system",
        name: "example_user",
        content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
      },
      { role: "system", name: "example_assistant", content: "Let's talk later when we're less busy about how to do better." },
      { role: "user", content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
    ];
    expect(countPromptTokens(messages)).toBe(124);
  });

  it("is 3 per message + the role + the content + 3 to prime the reply", () => {
    // 3 + "user" (1) + "hello world" (2) + 3
    expect(countPromptTokens([{ role: "user", content: "hello world" }])).toBe(9);
    // + 3 + "assistant" (1) + "Hello there" (2)
    expect(
      countPromptTokens([
        { role: "user", content: "hello world" },
        { role: "assistant", content: "Hello there" },
      ]),
    ).toBe(15);
    expect(countPromptTokens([])).toBe(3);
  });

  it("adds 1 for a name, plus the name's own tokens", () => {
    expect(countPromptTokens([{ role: "user", name: "example_user", content: "hello world" }])).toBe(
      9 + 1 + countTextTokens("example_user"),
    );
  });

  it("counts the text parts of array content and a fixed 85 per image or other non-text part", () => {
    expect(NON_TEXT_PART_TOKENS).toBe(85);
    const messages: ChatMessage[] = [
      {
        role: "user",
        content: [
          { type: "text", text: "hello" }, // 1
          { type: "text", text: " world" }, // 1
          { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } }, // 85
          { type: "input_file", file_id: "file-abc" }, // 85
        ],
      },
    ];
    expect(countPromptTokens(messages)).toBe(3 + 1 + 1 + 1 + 85 + 85 + 3);
  });

  it("counts null content as nothing and an assistant's tool calls by function name and arguments", () => {
    const messages: ChatMessage[] = [
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      },
    ];
    // 3 + "assistant" (1) + "get_weather" (2) + '{"city":"Paris"}' (5) + 3
    expect(countPromptTokens(messages)).toBe(14);
  });
});

describe("countCompletionTokens", () => {
  it("counts the text and each tool call's arguments", () => {
    expect(countCompletionTokens("It is sunny.")).toBe(4);
    expect(countCompletionTokens("It is sunny.", ['{"city":"Paris"}'])).toBe(9);
    expect(countCompletionTokens("", ['{"city":"Paris"}', '{"city":"Paris"}'])).toBe(10);
  });
});

describe("truncateToTokens", () => {
  const text = "The quick brown fox jumps over the lazy dog."; // 10 tokens

  it.each([
    [0, ""],
    [1, "The"],
    [3, "The quick brown"],
    [9, "The quick brown fox jumps over the lazy dog"],
    [10, text],
    [50, text],
  ])("to %i tokens gives %j", (max, expected) => {
    expect(truncateToTokens(text, max)).toBe(expected);
  });

  it("never splits a character, and stays within the budget", () => {
    const egyptian = "𓀀𓀁𓀂 ꙮꙮ ᚠᛇᚻ";
    for (let max = 0; max <= countTextTokens(egyptian); max++) {
      const cut = truncateToTokens(egyptian, max);
      expect(egyptian.startsWith(cut)).toBe(true);
      expect(cut).not.toContain("\uFFFD");
      expect(countTextTokens(cut)).toBeLessThanOrEqual(max);
    }
  });
});

describe("promptTokensUpperBound", () => {
  const conversations: ChatMessage[][] = [
    [{ role: "user", content: "Hello there" }],
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "こんにちは世界 🌍 — naïve café" },
      { role: "assistant", content: null, tool_calls: [{ function: { name: "lookup", arguments: '{"q":"x"}' } }] },
      { role: "tool", content: "42", name: "lookup" },
    ],
    [{ role: "user", content: [{ type: "text", text: "a".repeat(5_000) }, { type: "image_url", image_url: { url: "data:," } }] }],
  ];

  it.each(conversations.map((c, i) => [i, c] as const))("never counts fewer tokens than the tokenizer (conversation %i)", (_, messages) => {
    expect(promptTokensUpperBound(messages)).toBeGreaterThanOrEqual(countPromptTokens(messages));
  });

  it("is linear in the bytes: a 5,000-letter run is bounded by its 5,000 bytes plus the framing", () => {
    const messages: ChatMessage[] = [{ role: "user", content: "a".repeat(5_000) }];
    expect(promptTokensUpperBound(messages)).toBe(5_000 + 4 + 3 + 3);
  });
});
