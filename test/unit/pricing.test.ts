import { describe, expect, it } from "vitest";
import {
  MAX_CHARGE_CENTS,
  MIN_CHARGE_CENTS,
  maxAffordableOutputTokens,
  type Pricing,
  priceRequest,
} from "../../src/domain/pricing.js";

// SPEC 5's default price for sentx-v1: 300 ¢ per 1M input tokens, 1,000 ¢ per 1M output tokens.
const DEFAULT: Pricing = { inputCentsPerMillion: 300, outputCentsPerMillion: 1000 };
const ONE_CENT_PER_MILLION: Pricing = { inputCentsPerMillion: 1, outputCentsPerMillion: 1 };

describe("priceRequest (SPEC 5)", () => {
  // Each row: the raw cost in millionths of a cent, worked out by hand, then the expected cents.
  it.each([
    // in × 300 + out × 1,000 = raw → cents
    ["1,000 in + 1,000 out = 1,300,000 → 1.3", DEFAULT, 1_000, 1_000, 1],
    ["1,500 out = 1,500,000 → exactly 1.5 rounds up", DEFAULT, 0, 1_500, 2],
    ["1,499 out = 1,499,000 → 1.499 rounds down", DEFAULT, 0, 1_499, 1],
    ["5,000 in = 1,500,000 → exactly 1.5 rounds up", DEFAULT, 5_000, 0, 2],
    ["4,999 in = 1,499,700 → 1.4997 rounds down", DEFAULT, 4_999, 0, 1],
    ["2,500 out = 2,500,000 → 2.5 rounds up (not to even)", DEFAULT, 0, 2_500, 3],
    ["1,000 in + 3,000 out = 3,300,000 → 3.3", DEFAULT, 1_000, 3_000, 3],
    ["10,000 in + 4,096 out = 3,000,000 + 4,096,000 → 7.096", DEFAULT, 10_000, 4_096, 7],
    ["2,499,999 × 1 ¢/M → 2.499999 rounds down", ONE_CENT_PER_MILLION, 2_499_999, 0, 2],
    ["2,500,000 × 1 ¢/M → 2.5 rounds up", ONE_CENT_PER_MILLION, 1_250_000, 1_250_000, 3],
    ["1M in + 199,499 out = 300 + 199.499 → 499.499", DEFAULT, 1_000_000, 199_499, 499],
    ["1M in + 199,500 out = 300 + 199.5 → 499.5 rounds up to 500", DEFAULT, 1_000_000, 199_500, 500],
    ["1M in + 200,000 out = 500 exactly", DEFAULT, 1_000_000, 200_000, 500],
  ])("%s", (_case, pricing, inputTokens, outputTokens, cents) => {
    expect(priceRequest(pricing, { inputTokens, outputTokens })).toBe(cents);
  });

  it("charges at least 1 cent, even for 0 tokens or a free model", () => {
    expect(MIN_CHARGE_CENTS).toBe(1);
    expect(priceRequest(DEFAULT, { inputTokens: 0, outputTokens: 0 })).toBe(1);
    expect(priceRequest(DEFAULT, { inputTokens: 1, outputTokens: 1 })).toBe(1); // 1,300 millionths
    expect(priceRequest(DEFAULT, { inputTokens: 0, outputTokens: 499 })).toBe(1); // 0.499 → 0 → 1
    expect(priceRequest({ inputCentsPerMillion: 0, outputCentsPerMillion: 0 }, { inputTokens: 10 ** 9, outputTokens: 10 ** 9 })).toBe(1);
  });

  it("charges at most 500 cents, however large the counts", () => {
    expect(MAX_CHARGE_CENTS).toBe(500);
    expect(priceRequest(DEFAULT, { inputTokens: 1_000_000, outputTokens: 201_000 })).toBe(500); // 501 → 500
    expect(priceRequest(DEFAULT, { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(500); // 1,300 → 500
    // Products far past 2^53: still exact integers, still capped.
    const huge = Number.MAX_SAFE_INTEGER;
    const expensive = { inputCentsPerMillion: 10 ** 6, outputCentsPerMillion: 10 ** 6 };
    expect(priceRequest(expensive, { inputTokens: huge, outputTokens: huge })).toBe(500);
    expect(priceRequest(expensive, { inputTokens: 10 ** 10, outputTokens: 0 })).toBe(500); // 1e16 > 2^53
  });

  it("refuses counts and prices that are negative, fractional or beyond safe integers", () => {
    expect(() => priceRequest(DEFAULT, { inputTokens: -1, outputTokens: 0 })).toThrow(RangeError);
    expect(() => priceRequest(DEFAULT, { inputTokens: 1.5, outputTokens: 0 })).toThrow(RangeError);
    expect(() => priceRequest(DEFAULT, { inputTokens: 0, outputTokens: Number.NaN })).toThrow(RangeError);
    expect(() => priceRequest(DEFAULT, { inputTokens: 2 ** 53, outputTokens: 0 })).toThrow(RangeError);
    expect(() => priceRequest({ inputCentsPerMillion: -300, outputCentsPerMillion: 1000 }, { inputTokens: 1, outputTokens: 1 })).toThrow(
      RangeError,
    );
  });
});

describe("maxAffordableOutputTokens", () => {
  it.each([
    // budget B: the largest N with in × 300 + N × 1,000 + 500,000 < (B + 1) × 1,000,000
    ["0 in, 1 ¢: N × 1,000 < 1,500,000 → 1,499", 0, 1, 1_499],
    ["1,000 in, 2 ¢: 300,000 + N × 1,000 < 2,500,000 → 2,199", 1_000, 2, 2_199],
    ["0 in, 499 ¢: N × 1,000 < 499,500,000 → 499,499", 0, 499, 499_499],
    ["8,333 in, 2 ¢: input alone is 2.4999 ¢; one output token makes 2.5009 → 3", 8_333, 2, 0],
    ["10,000 in, 2 ¢: the input alone costs 3 ¢", 10_000, 2, 0],
    ["0 in, 0 ¢: nothing is free (1 cent minimum)", 0, 0, 0],
    ["0 in, a negative budget", 0, -3, 0],
  ])("%s", (_case, inputTokens, budget, expected) => {
    expect(maxAffordableOutputTokens(DEFAULT, inputTokens, budget)).toBe(expected);
  });

  it("agrees with priceRequest at the boundary of the hand-worked cases", () => {
    expect(priceRequest(DEFAULT, { inputTokens: 1_000, outputTokens: 2_199 })).toBe(2); // 2.499
    expect(priceRequest(DEFAULT, { inputTokens: 1_000, outputTokens: 2_200 })).toBe(3); // 2.5
    expect(priceRequest(DEFAULT, { inputTokens: 0, outputTokens: 499_499 })).toBe(499);
    expect(priceRequest(DEFAULT, { inputTokens: 0, outputTokens: 499_500 })).toBe(500);
  });

  it("lets everything fit from 500 cents up, or when output is free", () => {
    expect(maxAffordableOutputTokens(DEFAULT, 0, 500)).toBe(Number.MAX_SAFE_INTEGER);
    expect(maxAffordableOutputTokens(DEFAULT, 10 ** 9, 10_000)).toBe(Number.MAX_SAFE_INTEGER);
    expect(maxAffordableOutputTokens({ inputCentsPerMillion: 300, outputCentsPerMillion: 0 }, 1_000, 1)).toBe(Number.MAX_SAFE_INTEGER);
    expect(maxAffordableOutputTokens({ inputCentsPerMillion: 300, outputCentsPerMillion: 0 }, 10_000, 1)).toBe(0); // input: 3 ¢
  });

  it("is the largest N with priceRequest(N) ≤ budget, for many generated cases", () => {
    // A seeded generator (mulberry32), so a failure reproduces.
    let seed = 0x5e47;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
    const int = (max: number) => Math.floor(random() * (max + 1));
    const pick = <T>(...options: T[]) => options[int(options.length - 1)]!;

    for (let i = 0; i < 20_000; i++) {
      const pricing: Pricing = {
        inputCentsPerMillion: pick(0, 1, 300, 999, int(100_000)),
        outputCentsPerMillion: pick(0, 1, 1000, 7, int(100_000)),
      };
      const inputTokens = pick(0, 1, int(10_000), int(2_000_000), int(10 ** 9));
      const budget = pick(-1, 0, 1, 2, 499, 500, int(520));
      const n = maxAffordableOutputTokens(pricing, inputTokens, budget);
      const price = (outputTokens: number) => priceRequest(pricing, { inputTokens, outputTokens });
      const context = { pricing, inputTokens, budget, n };

      if (n === Number.MAX_SAFE_INTEGER) {
        expect(price(n), JSON.stringify(context)).toBeLessThanOrEqual(budget);
        continue;
      }
      expect(n, JSON.stringify(context)).toBeGreaterThanOrEqual(0);
      // N fits (or N is 0 because nothing fits)…
      if (n > 0) expect(price(n), JSON.stringify(context)).toBeLessThanOrEqual(budget);
      else expect(price(0) > budget || price(1) > budget, JSON.stringify(context)).toBe(true);
      // …and N + 1 does not.
      expect(price(n + 1), JSON.stringify(context)).toBeGreaterThan(budget);
    }
  });
});
