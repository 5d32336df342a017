import type { MeteredCall } from "../metering/metered-call.js";
import type { ReportedUsage, TokenUsage } from "../inference/provider.js";
import { countTextsTokensInSlices } from "../inference/tokens.js";
import { type Pricing, priceRequest } from "../pricing.js";

// Surfaces priced by their input (embeddings, rerank by tokens; speech and
// transcription by characters and seconds): the hold is
// sized from bytes (a token is at least one byte), the exact count is taken
// under the hold, and the upstream's own count is believed within the bound.

/** An upper bound of the tokens of `texts`, without tokenizing. */
export const tokensUpperBound = (texts: readonly string[]): number => texts.reduce((sum, text) => sum + Buffer.byteLength(text, "utf8"), 0);

/** Grows the hold to the price of `units` of input (402 when the balance cannot). */
export const coverInput = (metered: MeteredCall, pricing: Pricing, units: number): Promise<void> =>
  metered.cover(priceRequest(pricing, { inputTokens: units, outputTokens: 0 }));

/** Counts the tokens under the hold, and grows the hold to their price. */
export async function countUnderHold(metered: MeteredCall, pricing: Pricing, texts: readonly string[]): Promise<number> {
  const counted = await countTextsTokensInSlices(texts);
  await coverInput(metered, pricing, counted);
  return counted;
}

/**
 * SPEC 5: the upstream's count when it is believable (a whole number no larger
 * than the bytes read, since a token is at least a byte), else ours: an
 * upstream that overstates is not billed up to the bound, as it would be if
 * the bound were a cap.
 */
export function inputUsage(reported: ReportedUsage | undefined, counted: number, upperBound: number): TokenUsage {
  const claim = reported?.promptTokens;
  const believable = claim !== undefined && Number.isSafeInteger(claim) && claim >= 0 && claim <= upperBound;
  return { promptTokens: believable ? claim : counted, completionTokens: 0 };
}
