import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refusal } from "../support/api-errors.js";
import { eventually } from "../support/eventually.js";
import { domainCode, opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState } from "../support/queries.js";
import type { ServerProcess } from "../support/server-process.js";
import { type SharedInstances, startSharedInstances } from "../support/shared-instances.js";

// SPEC 10 key scopes, set and changed through ops (SPEC 12): a key that lists
// allowed models may use only those, on /v1 and /api/v1 alike; a change applies
// on the key's next request, on every instance, as a revocation does.

const MODELS = {
  defaultModel: "sentx-v1",
  models: [
    { id: "sentx-v1", upstreams: [{ provider: "demo" as const }] },
    { id: "sentx-large", upstreams: [{ provider: "demo" as const }] },
  ],
};
const BALANCE_CENTS = 1_000;

const hello = (model: string) => ({ model, messages: [{ role: "user" as const, content: "Hello there" }] });
const notAllowed = (model: string) => ({
  error: { message: `This API key may not use the model ${model}.`, type: "permission_error", code: "model_not_allowed", param: "model" },
});

/** An account with credit and a key created through ops, scoped to `allowedModels`. */
async function scopedCustomer(baseUrl: string, allowedModels: string[]) {
  const ops = opsClient(baseUrl);
  const account = await ops.accounts.create.mutate({ email: `scopes-${randomUUID()}@example.com`, initialCreditsCents: BALANCE_CENTS });
  const { key, apiKey } = await ops.keys.create.mutate({ accountId: account.id, name: "scoped", allowedModels });
  expect(apiKey.allowedModels).toEqual(allowedModels);
  return { accountId: account.id, key, keyId: apiKey.id };
}

const plainChat = (baseUrl: string, key: string, model: string) =>
  fetch(`${baseUrl}/api/v1/chat`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ ...hello(model), stream: false }),
  });

describe("key scopes through ops, on one instance", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform({ models: MODELS });
  });
  afterAll(() => t?.close());

  const ops = () => opsClient(t.url);
  const db = () => t.platform.services.db;
  const chat = (key: string, model: string) => t.openai(key).chat.completions.create(hello(model));

  it("lets a scoped key use its model and refuses any other with 403 model_not_allowed, billing nothing for the refusals", async () => {
    const { accountId, key } = await scopedCustomer(t.url, ["sentx-large"]);
    const reply = await chat(key, "sentx-large");
    expect(reply.model).toBe("sentx-large");
    const afterAllowed = await moneyState(db(), accountId);
    expect(afterAllowed.usageEntries).toHaveLength(1);

    // Through the official SDK: the APIError of a 403, with SPEC 8's code, type and param.
    const error = await chat(key, "sentx-v1").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(error).toMatchObject({ status: 403, code: "model_not_allowed", type: "permission_error", param: "model" });
    expect((error as Error).message).toContain("This API key may not use the model sentx-v1.");
    // Streamed, the refusal comes before the stream: the same error.
    const streamed = await refusal(t.openai(key).chat.completions.create({ ...hello("sentx-v1"), stream: true }));
    expect(streamed).toEqual({ status: 403, code: "model_not_allowed", type: "permission_error", param: "model" });
    // An unknown name goes to the default model, which the scope does not name either.
    expect(await refusal(chat(key, "gpt-4o"))).toMatchObject({ status: 403, code: "model_not_allowed" });

    // The error body exactly, on both surfaces.
    const raw = await fetch(`${t.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(hello("sentx-v1")),
    });
    expect(raw.status).toBe(403);
    expect(await raw.json()).toEqual(notAllowed("sentx-v1"));
    const plain = await plainChat(t.url, key, "sentx-v1");
    expect(plain.status).toBe(403);
    expect(await plain.json()).toEqual(notAllowed("sentx-v1"));

    expect(await moneyState(db(), accountId)).toEqual(afterAllowed);
    expect(afterAllowed.heldCents).toBe(0);
  });

  it("applies keys.setAllowedModels on the key's next request, though its caller was cached, and clears it with null or []", async () => {
    const { accountId, key, keyId } = await scopedCustomer(t.url, ["sentx-large"]);
    await chat(key, "sentx-large"); // the key's caller is now cached on this instance

    const changed = await ops().keys.setAllowedModels.mutate({ keyId, allowedModels: ["sentx-v1"] });
    expect(changed).toMatchObject({ id: keyId, accountId, allowedModels: ["sentx-v1"] });
    expect((await chat(key, "sentx-v1")).model).toBe("sentx-v1");
    expect(await refusal(chat(key, "sentx-large"))).toEqual({ status: 403, code: "model_not_allowed", type: "permission_error", param: "model" });
    expect((await plainChat(t.url, key, "sentx-large")).status).toBe(403);
    expect((await plainChat(t.url, key, "sentx-v1")).status).toBe(200);

    // null: any model again.
    expect(await ops().keys.setAllowedModels.mutate({ keyId, accountId, allowedModels: null })).toMatchObject({ allowedModels: null });
    expect((await chat(key, "sentx-large")).model).toBe("sentx-large");
    expect((await chat(key, "sentx-v1")).model).toBe("sentx-v1");

    // [] means the same, and is kept as null.
    await ops().keys.setAllowedModels.mutate({ keyId, allowedModels: ["sentx-large"] });
    expect(await refusal(chat(key, "sentx-v1"))).toMatchObject({ status: 403, code: "model_not_allowed" });
    expect(await ops().keys.setAllowedModels.mutate({ keyId, allowedModels: [] })).toMatchObject({ allowedModels: null });
    expect((await chat(key, "sentx-v1")).model).toBe("sentx-v1");
    expect((await ops().keys.list.query({ accountId })).map((k) => k.allowedModels)).toEqual([null]);
  });

  it("writes an audit row for each change, with the actor, the input and the result", async () => {
    const { accountId, keyId } = await scopedCustomer(t.url, ["sentx-large"]);
    await ops().keys.setAllowedModels.mutate({ keyId, accountId, allowedModels: ["sentx-v1", "sentx-large"] });
    await ops().keys.setAllowedModels.mutate({ keyId, accountId, allowedModels: null });

    const { data } = await ops().audit.list.query({ procedure: "keys.setAllowedModels", accountId });
    expect(data).toHaveLength(2);
    expect(data.map((row) => row.input)).toEqual([
      { keyId, accountId, allowedModels: null },
      { keyId, accountId, allowedModels: ["sentx-v1", "sentx-large"] },
    ]);
    expect(data[0]).toMatchObject({ actor: expect.any(String), result: expect.objectContaining({ id: keyId, allowedModels: null }) });
    // The audit row names the key, never its secret or hash.
    expect(JSON.stringify(data)).not.toMatch(/"hash"|sk-[0-9A-Za-z]{32,}/);
  });

  it("refuses a key of another account, an unknown key and bad input, changing nothing and auditing nothing", async () => {
    const { accountId, key, keyId } = await scopedCustomer(t.url, ["sentx-large"]);
    const other = await scopedCustomer(t.url, ["sentx-large"]);
    const attempts: Array<[input: unknown, code: string, domain: string | null]> = [
      [{ keyId, accountId: other.accountId, allowedModels: null }, "NOT_FOUND", "not_found"],
      [{ keyId: "key_doesnotexist", allowedModels: null }, "NOT_FOUND", "not_found"],
      [{ keyId, allowedModels: "sentx-v1" }, "BAD_REQUEST", null],
      [{ keyId, allowedModels: [""] }, "BAD_REQUEST", null],
      [{ keyId, allowedModels: [42] }, "BAD_REQUEST", null],
      [{ keyId }, "BAD_REQUEST", null],
      [{ keyId: "not-a-key", allowedModels: null }, "BAD_REQUEST", null],
      [{ keyId, allowedModels: Array.from({ length: 101 }, (_, i) => `m${i}`) }, "BAD_REQUEST", null],
    ];
    for (const [input, code, domain] of attempts) {
      const error = await ops()
        .keys.setAllowedModels.mutate(input as never)
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(error, JSON.stringify(input)).toMatchObject({ data: { code } });
      if (domain) expect(domainCode(error)).toBe(domain);
    }
    expect(await refusal(t.openai(key).chat.completions.create(hello("sentx-v1")))).toMatchObject({ status: 403 });
    expect((await ops().audit.list.query({ procedure: "keys.setAllowedModels", accountId })).data).toEqual([]);
  });

  it("wants the ops token", async () => {
    const { keyId } = await scopedCustomer(t.url, ["sentx-large"]);
    const error = await opsClient(t.url, "wrong-token")
      .keys.setAllowedModels.mutate({ keyId, allowedModels: null })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ data: { code: "UNAUTHORIZED" } });
  });
});

describe("key scopes across instances sharing one database and Redis", () => {
  let instances: SharedInstances;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    instances = await startSharedInstances({ SENTX_MODELS: JSON.stringify(MODELS) });
    ({ a, b } = instances);
  }, 90_000);

  afterAll(() => instances?.close());

  it("a change made through one instance applies on the other, which had the key cached, as fast as a revocation", async () => {
    const { key, keyId } = await scopedCustomer(a.url, ["sentx-large"]);
    expect((await plainChat(b.url, key, "sentx-large")).status).toBe(200); // b now holds the key in its cache
    expect((await plainChat(b.url, key, "sentx-v1")).status).toBe(403);

    await opsClient(a.url).keys.setAllowedModels.mutate({ keyId, allowedModels: ["sentx-v1"] });
    // SPEC 4's bound for a revocation reaching every instance: within 1 second.
    const status = await eventually(() => plainChat(b.url, key, "sentx-v1").then((r) => r.status), (s) => s === 200, 1_000);
    expect(status).toBe(200);
    const refused = await plainChat(b.url, key, "sentx-large");
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual(notAllowed("sentx-large"));

    await opsClient(b.url).keys.setAllowedModels.mutate({ keyId, allowedModels: null });
    const cleared = await eventually(() => plainChat(a.url, key, "sentx-large").then((r) => r.status), (s) => s === 200, 1_000);
    expect(cleared).toBe(200);
  });
});
