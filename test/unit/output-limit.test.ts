import { describe, expect, it } from "vitest";
import { createOutputTally, limitOutput } from "../../src/domain/inference/output-limit.js";
import type { ChunkChoice, CompletionChoice } from "../../src/domain/inference/provider.js";
import { countTextTokens } from "../../src/domain/inference/tokens.js";

// SPEC 5: nothing beyond the output budget the hold covers is delivered.

const answer = (content: string): CompletionChoice => ({ index: 0, message: { role: "assistant", content }, finish_reason: "stop" });
const chunk = (content: string): ChunkChoice => ({ index: 0, delta: { content }, finish_reason: null });

describe("limitOutput (a whole answer)", () => {
  it("leaves an answer within the budget alone", () => {
    const choices = [answer("word ".repeat(19) + "word")];
    expect(limitOutput(choices, 20)[0]).toBe(choices[0]);
  });

  it("cuts an answer that ignored max_tokens to the budget, with finish_reason length", () => {
    const [cut] = limitOutput([answer("word ".repeat(2_000))], 20);
    expect(countTextTokens(cut!.message.content!)).toBe(20);
    expect(cut!.finish_reason).toBe("length");
  });
});

describe("createOutputTally (a stream)", () => {
  it("passes chunks until the budget, cuts the one that crosses it, and says it is exhausted", () => {
    const tally = createOutputTally(5);
    expect(tally.take([chunk("one two")])).toEqual({ choices: [chunk("one two")], exhausted: false });
    expect(tally.tokens).toBe(2);
    const crossing = tally.take([chunk(" three four five six seven")]);
    expect(crossing.exhausted).toBe(true);
    expect(crossing.choices[0]).toMatchObject({ delta: { content: " three four five" }, finish_reason: "length" });
    expect(tally.tokens).toBe(5);
  });

  it("counts tool-call arguments as output", () => {
    const tally = createOutputTally(100);
    tally.take([{ index: 0, delta: { tool_calls: [{ function: { arguments: '{"city":"Paris"}' } }] }, finish_reason: null }]);
    expect(tally.tokens).toBe(countTextTokens('{"city":"Paris"}'));
  });
});
