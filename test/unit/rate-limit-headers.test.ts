import { describe, expect, it } from "vitest";
import { formatResetDuration } from "../../src/rest/rate-limit.js";

describe("x-ratelimit-reset-requests duration (OpenAI's style)", () => {
  it.each([
    [0, "0ms"],
    [-5, "0ms"],
    [17, "17ms"],
    [999.2, "1s"],
    [1_000, "1s"],
    [1_500, "1.5s"],
    [12_345, "12.345s"],
    [59_999, "59.999s"],
    [60_000, "1m0s"],
    [61_250, "1m1.25s"],
    [360_000, "6m0s"],
  ])("%d ms → %s", (ms, expected) => {
    expect(formatResetDuration(ms)).toBe(expected);
  });
});
