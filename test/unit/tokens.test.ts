import { monitorEventLoopDelay } from "node:perf_hooks";
import { encode } from "gpt-tokenizer/encoding/o200k_base";
import { describe, expect, it } from "vitest";
import type { ChatMessage } from "../../src/domain/inference/provider.js";
import {
  COUNTING_SLICE_MS,
  countCompletionTokens,
  countPromptTokens,
  countPromptTokensInSlices,
  countTextTokens,
  MAX_PIECE_CHARACTERS,
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

/** One exact pass of the encoder, as the pieces are compared against. */
const exactly = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

/** `length` letters from a fixed pseudo-random sequence: no spaces, and no two pieces alike. */
function letters(length: number, seed = 1): string {
  let state = seed;
  let out = "";
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 48271) + 11) >>> 0;
    out += String.fromCharCode(97 + (state % 26));
  }
  return out;
}

describe("counting in pieces (linear in the text, whatever it holds)", () => {
  it("is exact for text with a space at least every piece, however long", () => {
    const prose = [
      "The quick brown fox jumps over the lazy dog.  Twice-spaced, \t tabbed,\n\nnew paragraphs;",
      "contractions (it's, we'll, they'd), numbers 1234567 and 3.14159, CJK 日本語の文章です, emoji 🌍🚀,",
      'code `const x = {"a": [1, 2]};` and <|endoftext|> typed as text…',
    ].join(" ");
    const long = `${prose} `.repeat(60); // ~19 KB: dozens of pieces
    expect(long.length).toBeGreaterThan(50 * MAX_PIECE_CHARACTERS);
    expect(countTextTokens(long)).toBe(exactly(long));
  });

  it.each([
    ["one repeated letter", "a".repeat(5_000)],
    ["random letters", letters(5_000)],
    ["CJK without spaces", "日本語の文章には空白がありません。".repeat(300)],
    ["digits", "31415926535".repeat(450)],
    ["base64", Buffer.from(letters(3_750)).toString("base64")],
    ["emoji", "🌍🚀".repeat(1_250)],
  ])("differs from one exact pass over %s by at most a token per cut", (_, text) => {
    const cuts = Math.ceil(text.length / MAX_PIECE_CHARACTERS) - 1;
    expect(Math.abs(countTextTokens(text) - exactly(text))).toBeLessThanOrEqual(cuts);
  });

  it("counts 200 KB of one letter in milliseconds (one quadratic pass took most of a minute)", () => {
    const started = performance.now();
    expect(countTextTokens("a".repeat(200_000))).toBe(25_000); // 8 letters a token, and 256 is a multiple of 8: no cut moves a boundary
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it("grows linearly: four times the random letters take about four times as long", () => {
    countTextTokens(letters(20_000, 7)); // warm up
    const time = (text: string) => {
      const started = performance.now();
      countTextTokens(text);
      return performance.now() - started;
    };
    const small = time(letters(50_000, 2));
    const large = time(letters(200_000, 3));
    expect(large / small).toBeLessThan(8); // quadratic would be 16
  });
});

describe("countPromptTokensInSlices", () => {
  const conversation: ChatMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", name: "ada", content: [{ type: "text", text: `${"Lorem ipsum dolor sit amet. ".repeat(400)}` }, { type: "image_url", image_url: { url: "data:," } }] },
    { role: "assistant", content: null, tool_calls: [{ function: { name: "lookup", arguments: '{"q":"x"}' } }] },
    { role: "user", content: letters(3_000) },
  ];

  it("counts what countPromptTokens counts", async () => {
    expect(await countPromptTokensInSlices(conversation)).toBe(countPromptTokens(conversation));
  });

  it("stops once the count passes atMost, with a count above it", async () => {
    const whole = countPromptTokens(conversation);
    const stopped = await countPromptTokensInSlices(conversation, { atMost: 1_000 });
    expect(stopped).toBeGreaterThan(1_000);
    expect(stopped).toBeLessThan(whole);
    expect(await countPromptTokensInSlices(conversation, { atMost: whole })).toBe(whole);
  });

  it(`leaves the event loop to others at least every ${COUNTING_SLICE_MS} ms or so while it counts a megabyte`, async () => {
    const huge: ChatMessage[] = [{ role: "user", content: letters(1_000_000, 5) }];
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const started = performance.now();
    const tokens = await countPromptTokensInSlices(huge);
    const elapsed = performance.now() - started;
    histogram.disable();
    expect(tokens).toBeGreaterThan(400_000);
    expect(elapsed).toBeGreaterThan(10 * COUNTING_SLICE_MS); // long enough that one stall would show
    expect(histogram.max / 1e6).toBeLessThan(10 * COUNTING_SLICE_MS);
  });
});
