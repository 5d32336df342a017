import type { ChunkChoice, CompletionChoice } from "./provider.js";
import { countTextTokens, truncateToTokens } from "./tokens.js";

// SPEC 5: the hold covers the output budget the upstream was granted. An
// upstream that ignores max_tokens is cut to it, as OpenAI would have stopped
// (finish_reason "length"), so nothing beyond the hold is delivered or billed.

const toolArgumentTokens = (toolCalls: unknown[] | undefined): number =>
  (toolCalls ?? []).reduce<number>((sum, call) => {
    const args = (call as { function?: { arguments?: unknown } } | null)?.function?.arguments;
    return sum + (typeof args === "string" ? countTextTokens(args) : 0);
  }, 0);

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

/** A streamed answer's running token count, cutting the chunk that crosses `maxTokens`. */
export function createOutputTally(maxTokens: number) {
  let tokens = 0;
  return {
    /** Output tokens so far, chunk by chunk (the exact count of the whole text may differ by a boundary or two). */
    get tokens() {
      return tokens;
    },
    take(choices: ChunkChoice[]): { choices: ChunkChoice[]; exhausted: boolean } {
      let exhausted = false;
      const taken = choices.map((choice) => {
        const { content } = choice.delta;
        const text = typeof content === "string" ? countTextTokens(content) : 0;
        const chunkTokens = text + toolArgumentTokens(choice.delta.tool_calls);
        if (tokens + chunkTokens <= maxTokens) {
          tokens += chunkTokens;
          return choice;
        }
        exhausted = true;
        const room = maxTokens - tokens;
        tokens = maxTokens;
        const cut = typeof content === "string" ? truncateToTokens(content, room) : content;
        return { ...choice, delta: { ...choice.delta, content: cut }, finish_reason: "length" };
      });
      return { choices: taken, exhausted };
    },
  };
}
