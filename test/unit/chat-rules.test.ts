import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import {
  assertSystemMessagesWithinLimit,
  MAX_SYSTEM_CHARACTERS,
  withSafetyPrompt,
} from "../../src/domain/inference/chat-rules.js";
import type { ChatMessage } from "../../src/domain/inference/provider.js";

const thrown = (fn: () => void): DomainError => {
  try {
    fn();
  } catch (e) {
    return e as DomainError;
  }
  throw new Error("expected a DomainError");
};

describe("system message limit (SPEC 2)", () => {
  it("accepts exactly 2,000 characters across system and developer messages", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "a".repeat(1500) },
      { role: "developer", content: [{ type: "text", text: "b".repeat(500) }] },
      { role: "user", content: "u".repeat(10_000) },
    ];
    expect(() => assertSystemMessagesWithinLimit(messages)).not.toThrow();
  });

  it("rejects 2,001 with system_message_too_long", () => {
    const error = thrown(() =>
      assertSystemMessagesWithinLimit([
        { role: "system", content: "a".repeat(1000) },
        { role: "system", content: "a".repeat(1001) },
      ]),
    );
    expect(error.code).toBe("system_message_too_long");
    expect(error.status).toBe(400);
    expect(error.message).toContain(String(MAX_SYSTEM_CHARACTERS));
  });

  it("counts characters, not UTF-16 units: 2,000 emoji fit", () => {
    expect(() => assertSystemMessagesWithinLimit([{ role: "system", content: "😀".repeat(2000) }])).not.toThrow();
    expect(() => assertSystemMessagesWithinLimit([{ role: "system", content: "😀".repeat(2001) }])).toThrow(DomainError);
  });

  it("refuses megabytes of system text without walking them", () => {
    const huge = "a".repeat(19 * 1024 * 1024);
    const started = performance.now();
    expect(thrown(() => assertSystemMessagesWithinLimit([{ role: "system", content: huge }])).code).toBe("system_message_too_long");
    expect(thrown(() => assertSystemMessagesWithinLimit([{ role: "developer", content: [{ type: "text", text: huge }] }])).code).toBe(
      "system_message_too_long",
    );
    // Counting 19M characters one by one took about 150 ms, on the event loop, before the hold.
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe("safety prompt", () => {
  it("comes first, before the caller's own system message", () => {
    const out = withSafetyPrompt("PLATFORM RULES", [
      { role: "system", content: "caller system" },
      { role: "user", content: "hi" },
    ]);
    expect(out.map((m) => m.content)).toEqual(["PLATFORM RULES", "caller system", "hi"]);
    expect(out[0]!.role).toBe("system");
  });
});
