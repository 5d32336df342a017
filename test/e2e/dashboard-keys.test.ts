import { describe, expect, it } from "vitest";
import { dashboardPlatform, errorCode } from "../support/dashboard.js";

// SPEC 4 and 11: owners manage their keys from the dashboard; the full key is
// shown once, the caps answer with codes, and no account reaches another's keys.

const started = dashboardPlatform();

const KEY_FIELDS = "id name displayPrefix displaySuffix createdAt lastUsedAt status allowedModels";
const CREATE = `mutation ($name: String!, $models: [String!]) { createKey(name: $name, allowedModels: $models) { key apiKey { ${KEY_FIELDS} } } }`;
const KEYS = `{ keys { ${KEY_FIELDS} } }`;

async function grant(accountId: string, amountCents: number) {
  const { db, ledger } = started.t.platform.services;
  await db.transaction((tx) => ledger.post(tx, { accountId, kind: "grant", amountCents, idempotencyKey: `grant-${accountId}`, memo: "test" }));
}

describe("keys", () => {
  it("returns the full key once, and the key calls the API", async () => {
    const owner = await started.api.owner();
    await grant(owner.accountId, 500);
    const created = await started.api.graphql(CREATE, { name: "laptop" }, owner.token);
    expect(created.errors).toBeUndefined();
    const { key, apiKey } = created.data!.createKey;
    expect(key).toMatch(/^sk-[0-9A-Za-z]{32,}$/);
    expect(apiKey).toMatchObject({ name: "laptop", status: "active", displayPrefix: key.slice(0, 7), displaySuffix: key.slice(-4), allowedModels: null });

    const listed = await started.api.graphql(KEYS, {}, owner.token);
    expect(listed.data!.keys).toEqual([apiKey]);
    expect(JSON.stringify(listed)).not.toContain(key);

    const completion = await started.t.openai(key).chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "Hello" }] });
    expect(completion.choices[0]!.message.content).toBeTruthy();
  });

  it("renames, restricts models and revokes a key", async () => {
    const owner = await started.api.owner();
    const { apiKey } = (await started.api.graphql(CREATE, { name: "ci", models: ["sentx-v1"] }, owner.token)).data!.createKey;
    expect(apiKey.allowedModels).toEqual(["sentx-v1"]);

    const renamed = await started.api.graphql(`mutation ($id: ID!) { renameKey(id: $id, name: "deploy") { name } }`, { id: apiKey.id }, owner.token);
    expect(renamed.data).toEqual({ renameKey: { name: "deploy" } });
    const opened = await started.api.graphql(`mutation ($id: ID!) { setKeyAllowedModels(id: $id, allowedModels: null) { allowedModels } }`, { id: apiKey.id }, owner.token);
    expect(opened.data).toEqual({ setKeyAllowedModels: { allowedModels: null } });
    const revoked = await started.api.graphql(`mutation ($id: ID!) { revokeKey(id: $id) { status } }`, { id: apiKey.id }, owner.token);
    expect(revoked.data).toEqual({ revokeKey: { status: "revoked" } });
  });

  it("refuses a name over 64 characters", async () => {
    const owner = await started.api.owner();
    const answer = await started.api.graphql(CREATE, { name: "n".repeat(65) }, owner.token);
    expect(errorCode(answer)).toBe("invalid_request_error");
    expect(answer.errors![0]!.extensions!.param).toBe("name");
  });

  it("limits creations per hour: 429 with Retry-After, and retryAfter in the error", async () => {
    const owner = await started.api.owner();
    for (let i = 0; i < 5; i++) expect((await started.api.graphql(CREATE, { name: `k${i}` }, owner.token)).errors).toBeUndefined();
    const { answer: refused, status, headers } = await started.api.post(CREATE, { name: "one too many" }, owner.token);
    expect(status).toBe(429);
    expect(errorCode(refused)).toBe("rate_limit_exceeded");
    expect(refused.errors![0]!.extensions!.retryAfter).toBeGreaterThan(3_500);
    expect(headers.get("retry-after")).toBe(String(refused.errors![0]!.extensions!.retryAfter));
  });

  it("caps active keys at the account's limit", async () => {
    const owner = await started.api.owner();
    await started.t.platform.services.accounts.setLimits(owner.accountId, { maxActiveKeys: 1 });
    await started.api.graphql(CREATE, { name: "only" }, owner.token);
    expect(errorCode(await started.api.graphql(CREATE, { name: "second" }, owner.token))).toBe("max_keys_reached");
  });

  it("needs a session", async () => {
    expect(errorCode(await started.api.graphql(KEYS))).toBe("unauthorized");
  });
});

describe("another account's keys", () => {
  it("cannot be listed, renamed, restricted or revoked: they are not found", async () => {
    const [owner, stranger] = await Promise.all([started.api.owner(), started.api.owner()]);
    const { apiKey } = (await started.api.graphql(CREATE, { name: "private" }, owner.token)).data!.createKey;

    expect((await started.api.graphql(KEYS, {}, stranger.token)).data).toEqual({ keys: [] });
    for (const mutation of [
      `mutation ($id: ID!) { renameKey(id: $id, name: "mine now") { id } }`,
      `mutation ($id: ID!) { setKeyAllowedModels(id: $id, allowedModels: ["x"]) { id } }`,
      `mutation ($id: ID!) { revokeKey(id: $id) { id } }`,
    ]) {
      expect(errorCode(await started.api.graphql(mutation, { id: apiKey.id }, stranger.token))).toBe("not_found");
    }
    expect((await started.api.graphql(KEYS, {}, owner.token)).data!.keys).toEqual([apiKey]);
  });
});
