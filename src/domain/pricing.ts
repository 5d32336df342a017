// SPEC 5: what a request costs, in integer cents. Pure functions, no floats.
//
// Arithmetic is in BigInt. tokens × price is small for any sane request
// (2M tokens × 60,000 ¢/M = 1.2e11), but neither factor is bounded by type:
// token counts come from the upstream's own usage report, prices from config.
// Past 2^53 (≈ 9.0e15, e.g. 1e10 tokens × 1e6 ¢/M) a double no longer holds
// every integer. The 500-cent cap happens to hide that in priceRequest, but
// only by an argument about rounding error that would have to be re-made
// whenever the cap or the formula changes, and maxAffordableOutputTokens
// subtracts such products. BigInt is exact for every input, at a cost that
// does not matter next to a network round trip.

export interface Pricing {
  inputCentsPerMillion: number;
  outputCentsPerMillion: number;
}

export interface BillableTokens {
  inputTokens: number;
  outputTokens: number;
}

/** SPEC 5: every billable request costs at least 1 cent… */
export const MIN_CHARGE_CENTS = 1;
/** …and at most 500 cents ($5.00). */
export const MAX_CHARGE_CENTS = 500;

const TOKENS_PER_PRICE_UNIT = 1_000_000n;
const HALF_UNIT = TOKENS_PER_PRICE_UNIT / 2n;

/** Rejects what would silently produce a wrong price: negative, fractional or imprecise numbers. */
function whole(value: number, name: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
  return BigInt(value);
}

/** Σ tokens × price, in millionths of a cent. */
function rawCost(pricing: Pricing, inputTokens: number, outputTokens: number): bigint {
  return (
    whole(inputTokens, "inputTokens") * whole(pricing.inputCentsPerMillion, "inputCentsPerMillion") +
    whole(outputTokens, "outputTokens") * whole(pricing.outputCentsPerMillion, "outputCentsPerMillion")
  );
}

/**
 * SPEC 5: round-half-up of (in × inPrice + out × outPrice) / 1,000,000 cents,
 * then at least MIN_CHARGE_CENTS and at most MAX_CHARGE_CENTS.
 */
export function priceRequest(pricing: Pricing, usage: BillableTokens): number {
  // The raw cost is never negative, so truncating division after adding half
  // a unit is exactly round-half-up.
  const rounded = (rawCost(pricing, usage.inputTokens, usage.outputTokens) + HALF_UNIT) / TOKENS_PER_PRICE_UNIT;
  if (rounded < BigInt(MIN_CHARGE_CENTS)) return MIN_CHARGE_CENTS;
  if (rounded > BigInt(MAX_CHARGE_CENTS)) return MAX_CHARGE_CENTS;
  return Number(rounded);
}

/**
 * The largest N ≥ 0 with priceRequest(inputTokens, N) ≤ budgetCents, in closed form.
 *
 * - 0 when even N = 0 does not fit (and also when only N = 0 fits: callers
 *   treat anything below 1 as "cannot afford an answer").
 * - Number.MAX_SAFE_INTEGER when every N fits: a budget of MAX_CHARGE_CENTS or
 *   more (the cap makes every request affordable), or a free output price.
 */
export function maxAffordableOutputTokens(pricing: Pricing, inputTokens: number, budgetCents: number): number {
  if (!Number.isSafeInteger(budgetCents)) throw new RangeError(`budgetCents must be a safe integer, got ${budgetCents}`);
  const inputCost = rawCost(pricing, inputTokens, 0);
  const outputPrice = whole(pricing.outputCentsPerMillion, "outputCentsPerMillion");
  if (budgetCents >= MAX_CHARGE_CENTS) return Number.MAX_SAFE_INTEGER;
  // Every request costs at least 1 cent, whatever the tokens.
  if (budgetCents < MIN_CHARGE_CENTS) return 0;

  // For 1 ≤ B < 500 the clamps drop out: price ≤ B ⟺ round-half-up(x / M) ≤ B
  // ⟺ x + M/2 < (B + 1)·M ⟺ N·outPrice < B·M + M/2 − inputCost =: room.
  const room = BigInt(budgetCents) * TOKENS_PER_PRICE_UNIT + HALF_UNIT - inputCost;
  if (room <= 0n) return 0;
  if (outputPrice === 0n) return Number.MAX_SAFE_INTEGER;
  // The largest N with N·outPrice ≤ room − 1 (strict inequality, integers).
  const n = (room - 1n) / outputPrice;
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** The most output tokens `budgetCents` covers beside the input, capped at what was asked (0: not even one). */
export const outputWithin = (pricing: Pricing, inputTokens: number, requestedMaxTokens: number, budgetCents: number): number =>
  Math.min(requestedMaxTokens, maxAffordableOutputTokens(pricing, inputTokens, budgetCents));
