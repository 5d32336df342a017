import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { decodeIdentityHeader, mergeIdentity } from "../../src/domain/identity.js";

/** The DomainError `attempt` threw; fails the test if it threw none. */
function refusal(attempt: () => unknown): DomainError {
  try {
    attempt();
  } catch (error) {
    return error as DomainError;
  }
  throw new Error("expected a refusal");
}

describe("decodeIdentityHeader (SPEC 3)", () => {
  it.each([
    ["Al%C3%A9x", "Aléx"],
    ["%E2%9C%93", "✓"],
    ["%E5%BC%A0%E4%BC%9F", "张伟"],
    ["%F0%9F%98%80", "😀"],
    ["plain-ascii_42", "plain-ascii_42"],
    ["a%20b", "a b"],
  ])("decodes %s as %s", (raw, decoded) => {
    expect(decodeIdentityHeader("X-User-Name", raw)).toBe(decoded);
  });

  it("treats absent and empty headers as unset", () => {
    expect(decodeIdentityHeader("X-User-Id", undefined)).toBeUndefined();
    expect(decodeIdentityHeader("X-User-Id", "")).toBeUndefined();
  });

  it.each(["%", "%E2%9C", "%ZZ", "abc%C3"])("rejects the malformed escape %s with a 400 naming the header", (raw) => {
    const error = refusal(() => decodeIdentityHeader("X-Session-Id", raw));
    expect(error).toBeInstanceOf(DomainError);
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid_request_error");
    expect(error.param).toBe("X-Session-Id");
  });
});

describe("mergeIdentity", () => {
  it("lets headers win over body fields", () => {
    expect(mergeIdentity({ userId: "h-user", userName: "Header" }, { user: "b-user", user_name: "Body" })).toEqual({
      userId: "h-user",
      userName: "Header",
    });
  });

  it("uses body fields when no header is sent", () => {
    expect(mergeIdentity({ sessionId: "s1" }, { user: "b-user", user_name: "Bödy" })).toEqual({
      userId: "b-user",
      userName: "Bödy",
      sessionId: "s1",
    });
  });

  it("is empty for a stateless call", () => {
    expect(mergeIdentity({}, {})).toEqual({});
  });

  it("rejects identities longer than 256 characters", () => {
    expect(() => mergeIdentity({}, { user: "x".repeat(257) })).toThrow(/at most 256/);
  });

  it.each<[string, Parameters<typeof mergeIdentity>, string]>([
    ["NUL in the body's user", [{}, { user: "a\u0000b" }], "user"],
    ["a tab in X-User-Id", [{ userId: "a\tb" }, {}], "user"],
    ["US (U+001F), the last C0 control, in the body's user_name", [{}, { user_name: "Ada\u001f" }], "user_name"],
    ["ESC in X-User-Name", [{ userName: "\u001b[2J" }, {}], "user_name"],
    ["DEL in X-Session-Id", [{ sessionId: "s\u007f" }, {}], "X-Session-Id"],
    ["a newline in a body user that X-User-Id overrides", [{ userId: "clean" }, { user: "forged\nline" }], "user"],
    ["an unpaired high surrogate in the body's user", [{}, { user: "u\ud800" }], "user"],
    ["an unpaired low surrogate in the body's user_name", [{}, { user_name: "\udc00Ada" }], "user_name"],
  ])("refuses %s with a 400 naming the field", (_case, [headers, body], param) => {
    const error = refusal(() => mergeIdentity(headers, body));
    expect(error).toBeInstanceOf(DomainError);
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid_request_error");
    expect(error.param).toBe(param);
    expect(error.message).toBe(`Invalid '${param}': control characters (U+0000 to U+001F, U+007F) and unpaired surrogates are not allowed.`);
  });
});
