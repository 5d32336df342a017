import type { TokenUsage } from "../inference/provider.js";
import type { ModelConfig } from "../inference/model-table.js";

// A realtime session is billed per response, from the usage the upstream
// reports in each `response.done` event. That report is untrusted, as in
// metering/billable-usage.ts: a count that is not a non-negative safe integer
// counts as 0, and one beyond what a response could use (the model's context
// window read, its maximum output written) is clamped to that bound.

/** Cheap test before parsing (on the raw frame, undecoded): audio deltas are large, and only `response.done` carries usage. */
export const mayBeResponseDone = (text: string | Buffer): boolean => text.includes('"response.done"');

const tokenCount = (value: unknown, bound: number): number =>
  typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? Math.min(value, bound) : 0;

/**
 * The billable usage of one upstream event: null unless it is a
 * `response.done` whose response used any tokens (a response cancelled before
 * it read or wrote anything is not billed).
 */
export function responseUsage(text: string, model: Pick<ModelConfig, "contextWindow" | "maxOutputTokens">): TokenUsage | null {
  if (!mayBeResponseDone(text)) return null;
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof event !== "object" || event === null || (event as { type?: unknown }).type !== "response.done") return null;
  const usage = (event as { response?: { usage?: unknown } }).response?.usage;
  if (typeof usage !== "object" || usage === null) return null;
  const { input_tokens: input, output_tokens: output } = usage as Record<string, unknown>;
  const promptTokens = tokenCount(input, model.contextWindow);
  const completionTokens = tokenCount(output, model.maxOutputTokens);
  return promptTokens + completionTokens > 0 ? { promptTokens, completionTokens } : null;
}
