import type { ChunkChoice, CompletionChoice } from "./provider.js";
import { countTextTokens, truncateToTokens } from "./tokens.js";

// SPEC 5: the hold covers the output budget the upstream was granted. An
// upstream that ignores max_tokens is cut to it, as OpenAI would have stopped
// (finish_reason "length"), so nothing beyond the hold is delivered or billed.

/** A whole answer, cut to `maxTokens` of content. */
export function limitOutput(choices: CompletionChoice[], maxTokens: number): CompletionChoice[] {
  return choices.map((choice) => {
    const { content } = choice.message;
    // A token is at least one byte, so a short answer needs no counting.
    if (typeof content !== "string" || Buffer.byteLength(content, "utf8") <= maxTokens) return choice;
    if (countTextTokens(content) <= maxTokens) return choice;
    return { ...choice, message: { ...choice.message, content: truncateToTokens(content, maxTokens) }, finish_reason: "length" };
  });
}

/**
 * A streamed answer's running token count, cutting the chunk that crosses
 * `maxTokens`. Counting is deferred: a token is at least one byte, so while
 * the bytes so far fit the budget nothing needs counting, and each chunk is
 * counted at most once, when the budget comes near or the count is read.
 */
export function createOutputTally(maxTokens: number) {
  let counted = 0;
  let uncounted: string[] = [];
  let uncountedBytes = 0;
  const countUncounted = () => {
    for (const text of uncounted) counted += countTextTokens(text);
    uncounted = [];
    uncountedBytes = 0;
  };
  const textsOf = (delta: ChunkChoice["delta"]): string[] => [
    ...(typeof delta.content === "string" ? [delta.content] : []),
    ...(delta.tool_calls ?? []).flatMap((call) => {
      const args = (call as { function?: { arguments?: unknown } } | null)?.function?.arguments;
      return typeof args === "string" ? [args] : [];
    }),
  ];
  return {
    /** Output tokens so far, chunk by chunk (the exact count of the whole text may differ by a boundary or two). */
    get tokens() {
      countUncounted();
      return counted;
    },
    take(choices: ChunkChoice[]): { choices: ChunkChoice[]; exhausted: boolean } {
      let exhausted = false;
      const taken = choices.map((choice) => {
        const texts = textsOf(choice.delta);
        const bytes = texts.reduce((sum, text) => sum + Buffer.byteLength(text, "utf8"), 0);
        if (counted + uncountedBytes + bytes <= maxTokens) {
          uncounted.push(...texts);
          uncountedBytes += bytes;
          return choice;
        }
        countUncounted();
        const chunkTokens = texts.reduce((sum, text) => sum + countTextTokens(text), 0);
        if (counted + chunkTokens <= maxTokens) {
          counted += chunkTokens;
          return choice;
        }
        exhausted = true;
        const room = maxTokens - counted;
        counted = maxTokens;
        const { content } = choice.delta;
        const cut = typeof content === "string" ? truncateToTokens(content, room) : content;
        return { ...choice, delta: { ...choice.delta, content: cut }, finish_reason: "length" };
      });
      return { choices: taken, exhausted };
    },
  };
}
