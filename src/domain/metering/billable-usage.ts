import type { ReportedUsage, TokenUsage } from "../inference/provider.js";

// SPEC 5: token counts come from the upstream's report when it has one, else
// from our own count. The report is untrusted: a number that is not a
// non-negative safe integer is replaced by our count, and one beyond what the
// request could possibly have used is clamped to that bound, so no upstream
// can make pricing throw or bill more than the model could have read or
// been allowed to write.

export interface UsageBounds {
  /** The model's context window: no prompt is longer. */
  maxPromptTokens: number;
  /** The output budget granted to the upstream. */
  maxCompletionTokens: number;
}

function believable(reported: number | undefined, counted: () => number, bound: number): number {
  const value = reported !== undefined && Number.isSafeInteger(reported) && reported >= 0 ? reported : counted();
  return Math.min(value, bound);
}

export function billableUsage(
  reported: ReportedUsage | undefined,
  counted: { promptTokens: () => number; completionTokens: () => number },
  bounds: UsageBounds,
): TokenUsage {
  return {
    promptTokens: believable(reported?.promptTokens, counted.promptTokens, bounds.maxPromptTokens),
    completionTokens: believable(reported?.completionTokens, counted.completionTokens, bounds.maxCompletionTokens),
  };
}
