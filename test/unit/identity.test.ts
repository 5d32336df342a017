import { describe, expect, it } from "vitest";
import { DomainError } from "../../src/domain/errors.js";
import { decodeIdentityHeader, mergeIdentity } from "../../src/domain/identity.js";

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
    const error = (() => {
      try {
        decodeIdentityHeader("X-Session-Id", raw);
      } catch (e) {
        return e;
      }
    })() as DomainError;
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
});
