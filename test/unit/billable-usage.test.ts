import { describe, expect, it } from "vitest";
import { billableUsage } from "../../src/domain/metering/billable-usage.js";
import { priceRequest } from "../../src/domain/pricing.js";

// SPEC 5: an upstream's usage report is believed only as far as it can be true.

const counted = { promptTokens: () => 40, completionTokens: () => 12 };
const bounds = { maxPromptTokens: 128_000, maxCompletionTokens: 20 };

describe("billableUsage", () => {
  it("takes a plausible report as it is", () => {
    expect(billableUsage({ promptTokens: 37, completionTokens: 15 }, counted, bounds)).toEqual({ promptTokens: 37, completionTokens: 15 });
  });

  it("counts itself when there is no report, or a field is missing", () => {
    expect(billableUsage(undefined, counted, bounds)).toEqual({ promptTokens: 40, completionTokens: 12 });
    expect(billableUsage({}, counted, bounds)).toEqual({ promptTokens: 40, completionTokens: 12 });
    expect(billableUsage({ completionTokens: 3 }, counted, bounds)).toEqual({ promptTokens: 40, completionTokens: 3 });
  });

  it.each([
    ["negative", -5],
    ["fractional", 1.5],
    ["beyond 2^53", 2 ** 60],
    ["not a number", Number.NaN],
    ["infinite", Number.POSITIVE_INFINITY],
  ])("replaces a %s count by its own", (_, value) => {
    expect(billableUsage({ promptTokens: value, completionTokens: value }, counted, bounds)).toEqual({ promptTokens: 40, completionTokens: 12 });
  });

  it("clamps what no request could have used: the context window and the granted output", () => {
    const usage = billableUsage({ promptTokens: 9_000_000_000, completionTokens: 2_000 }, counted, bounds);
    expect(usage).toEqual({ promptTokens: 128_000, completionTokens: 20 });
    // and the price of whatever it believed is a real price
    expect(priceRequest({ inputCentsPerMillion: 300, outputCentsPerMillion: 1_000 }, { inputTokens: usage.promptTokens, outputTokens: usage.completionTokens })).toBe(38);
  });

  it("clamps its own count too, so an upstream that ignored max_tokens is billed at most the budget", () => {
    expect(billableUsage(undefined, { promptTokens: () => 10, completionTokens: () => 500 }, bounds)).toEqual({ promptTokens: 10, completionTokens: 20 });
  });
});
