import { setImmediate as nextTurn, setTimeout as delay } from "node:timers/promises";
import type { TokenUsage, UpstreamChatRequest, UpstreamChunk, UpstreamCompletion } from "../../provider.js";
import { countPromptTokens, countTextTokens, truncateToTokens } from "../../tokens.js";
import type { Provider } from "../failover.js";
import { demoReply } from "./demo-reply.js";
import { createDemoSurfaces } from "./demo-surfaces.js";

export interface DemoProviderOptions {
  /**
   * Pause before each streamed word. A few milliseconds make the stream look
   * like one and give a client's disconnect time to land mid-stream.
   */
  wordDelayMs?: number;
}

export const DEFAULT_WORD_DELAY_MS = 2;

interface DemoAnswer {
  text: string;
  finishReason: "stop" | "length";
  usage: TokenUsage;
}

/** The reply cut to the request's token budget, with exact usage of what is returned. */
function answer(request: UpstreamChatRequest): DemoAnswer {
  const full = demoReply(request.messages);
  const text = truncateToTokens(full, request.maxTokens);
  return {
    text,
    finishReason: text === full ? "stop" : "length",
    usage: { promptTokens: countPromptTokens(request.messages), completionTokens: countTextTokens(text) },
  };
}

/** Each word with the whitespace before it, so the pieces join back to the exact text. */
export const words = (text: string): string[] => text.match(/\s*\S+|\s+/g) ?? [];

export function createDemoProvider(options: DemoProviderOptions = {}): Provider {
  const wordDelayMs = options.wordDelayMs ?? DEFAULT_WORD_DELAY_MS;

  // Always yields to the event loop, even with no delay, so an abort can arrive between words.
  const pause = (signal: AbortSignal): Promise<unknown> =>
    (wordDelayMs > 0 ? delay(wordDelayMs, undefined, { signal }) : nextTurn(undefined, { signal })).catch(() =>
      signal.throwIfAborted(),
    );

  return {
    name: "demo",
    ...createDemoSurfaces(),
    async complete(request, signal): Promise<UpstreamCompletion> {
      signal.throwIfAborted();
      const { text, finishReason, usage } = answer(request);
      return {
        choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finishReason }],
        usage,
      };
    },

    async stream(request, signal): Promise<AsyncIterable<UpstreamChunk>> {
      signal.throwIfAborted();
      const { text, finishReason, usage } = answer(request);
      async function* chunks(): AsyncGenerator<UpstreamChunk> {
        let first = true;
        for (const word of words(text)) {
          await pause(signal);
          signal.throwIfAborted();
          yield { choices: [{ index: 0, delta: first ? { role: "assistant", content: word } : { content: word }, finish_reason: null }] };
          first = false;
        }
        signal.throwIfAborted();
        yield { choices: [{ index: 0, delta: first ? { role: "assistant" } : {}, finish_reason: finishReason }] };
        // OpenAI's include_usage form: a last chunk with no choices carries the usage.
        yield { choices: [], usage };
      }
      return chunks();
    },
  };
}
