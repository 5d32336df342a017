import { describe, expect, it } from "vitest";
import { dashboardPlatform, errorCode } from "../support/dashboard.js";

// SPEC 11: account owners sign up and in with a password; sessions are opaque
// tokens that sign-out ends; guessing passwords is limited.

const started = dashboardPlatform();

const ME = "{ me { id email displayName plan balanceCents heldCents availableCents limits { maxActiveKeys keyCreationsPerHour } } }";

describe("sign-up and sign-in", () => {
  it("signs up with no credit, signs in and shows the account", async () => {
    const { email, accountId, token } = await started.api.owner();
    const me = await started.api.graphql(ME, {}, token);
    expect(me.errors).toBeUndefined();
    expect(me.data!.me).toEqual({
      id: accountId,
      email,
      displayName: email,
      plan: "payg",
      balanceCents: 0,
      heldCents: 0,
      availableCents: 0,
      limits: { maxActiveKeys: 25, keyCreationsPerHour: 5 },
    });
  });

  it("issues an opaque session token with a 30-day expiry", async () => {
    const { email, password } = await started.api.owner();
    const { data } = await started.api.signIn(email, password);
    expect(data!.signIn.token).toMatch(/^sess_[0-9A-Za-z]{40}$/);
    const days = (Date.parse(data!.signIn.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it("refuses a taken email as a conflict, whatever its case", async () => {
    const { email } = await started.api.owner();
    const again = await started.api.graphql(`mutation ($email: String!) { signUp(email: $email, password: "another password 1") { id } }`, { email: email.toUpperCase() });
    expect(errorCode(again)).toBe("conflict");
  });

  it("refuses passwords shorter than 10 or longer than 256 characters", async () => {
    for (const password of ["short", "x".repeat(257)]) {
      const answer = await started.api.graphql(`mutation ($password: String!) { signUp(email: "rules@example.com", password: $password) { id } }`, { password });
      expect(errorCode(answer)).toBe("invalid_request_error");
      expect(answer.errors![0]!.extensions!.param).toBe("password");
    }
  });

  it("answers an unknown email exactly as a wrong password", async () => {
    const { email } = await started.api.owner();
    const wrong = await started.api.signIn(email, "not the password");
    const unknown = await started.api.signIn(`nobody-${Date.now()}@example.com`, "not the password");
    expect(wrong).toEqual(unknown);
    expect(errorCode(wrong)).toBe("unauthorized");
  });

  it("refuses further attempts on an account after repeated failures, with a retryAfter", async () => {
    const { email, password } = await started.api.owner();
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await started.api.signIn(email, "not the password"));
    expect(answers.slice(0, 5).map(errorCode)).toEqual(Array(5).fill("unauthorized"));
    const refused = answers[5]!;
    expect(errorCode(refused)).toBe("rate_limit_exceeded");
    expect(refused.errors![0]!.extensions!.retryAfter).toBeGreaterThan(0);
    // Even the right password is refused until the minute passes, with the HTTP status and header of a 429.
    const { status, headers, answer } = await started.api.post(
      `mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { token } }`,
      { email, password },
    );
    expect(errorCode(answer)).toBe("rate_limit_exceeded");
    expect(status).toBe(429);
    expect(Number(headers.get("retry-after"))).toBe(answer.errors![0]!.extensions!.retryAfter);
    expect(answer.errors![0]!.extensions).not.toHaveProperty("http");
  });

  it("needs a session for the account", async () => {
    expect(errorCode(await started.api.graphql(ME))).toBe("unauthorized");
    expect(errorCode(await started.api.graphql(ME, {}, "sess_made_up"))).toBe("unauthorized");
  });
});

describe("sessions", () => {
  it("sign-out ends only that session", async () => {
    const { email, password, token } = await started.api.owner();
    const other = (await started.api.signIn(email, password)).data!.signIn.token as string;
    expect((await started.api.graphql("mutation { signOut }", {}, token)).data).toEqual({ signOut: true });
    expect(errorCode(await started.api.graphql(ME, {}, token))).toBe("unauthorized");
    expect((await started.api.graphql(ME, {}, other)).errors).toBeUndefined();
  });

  it("sign-out everywhere ends every session", async () => {
    const { email, password, token } = await started.api.owner();
    const other = (await started.api.signIn(email, password)).data!.signIn.token as string;
    await started.api.graphql("mutation { signOutEverywhere }", {}, token);
    expect(errorCode(await started.api.graphql(ME, {}, token))).toBe("unauthorized");
    expect(errorCode(await started.api.graphql(ME, {}, other))).toBe("unauthorized");
  });

  it("changing the password keeps this session, ends the others and retires the old password", async () => {
    const { email, password, token } = await started.api.owner();
    const other = (await started.api.signIn(email, password)).data!.signIn.token as string;
    const change = `mutation ($current: String!, $next: String!) { changePassword(currentPassword: $current, newPassword: $next) }`;

    expect(errorCode(await started.api.graphql(change, { current: "not the password", next: "a brand new password" }, token))).toBe("unauthorized");
    expect((await started.api.graphql(change, { current: password, next: "a brand new password" }, token)).data).toEqual({ changePassword: true });

    expect((await started.api.graphql(ME, {}, token)).errors).toBeUndefined();
    expect(errorCode(await started.api.graphql(ME, {}, other))).toBe("unauthorized");
    expect(errorCode(await started.api.signIn(email, password))).toBe("unauthorized");
    expect((await started.api.signIn(email, "a brand new password")).data!.signIn.account.email).toBe(email);
  });
});
