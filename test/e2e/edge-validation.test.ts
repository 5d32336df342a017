import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { endUsersOf, moneyState } from "../support/queries.js";

// Identifiers and text are checked at the edge: a control character (C0 or DEL)
// or an unpaired surrogate in a path id, a query parameter or an identity field
// is the caller's 400, named by `param`, never a 500 from the database behind it.

let t: TestPlatform;
let key: string;
beforeAll(async () => {
  t = await startTestPlatform();
  ({ key } = await t.createCustomer());
});
afterAll(() => t.close());

const call = (method: string, path: string, init: { key?: string; body?: string; headers?: Record<string, string> } = {}) =>
  fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${init.key ?? key}`, "content-type": "application/json", ...init.headers },
    ...(init.body !== undefined && { body: init.body }),
  });

const badRequest = (param: string) => ({
  error: { message: expect.stringContaining(`'${param}'`), type: "invalid_request_error", code: "invalid_request_error", param },
});

describe("Files API path ids and query parameters", () => {
  it.each([
    ["GET", "/v1/files/%00"],
    ["GET", "/v1/files/file-%01abcdefghijklmnopqrstuvw"],
    ["GET", "/v1/files/%00/content"],
    ["GET", "/v1/files/a%1Fb/content"],
    ["DELETE", "/v1/files/%00"],
    ["DELETE", "/v1/files/%7F"],
  ])("%s %s is 400 naming file_id", async (method, path) => {
    const response = await call(method, path);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual(badRequest("file_id"));
  });

  it("refuses a control character in any list parameter with 400 naming it, without echoing it back", async () => {
    const refusals: Array<[query: string, param: string]> = [
      ["after=%00", "after"],
      ["after=file-%00bcdefghijklmnopqrstuvw", "after"],
      [`after=${"x".repeat(5_000)}`, "after"],
      ["purpose=%00", "purpose"],
      ["purpose=user%1Bdata", "purpose"],
      ["purpose=%7F", "purpose"],
      ["order=%00", "order"],
      ["limit=5%00", "limit"],
    ];
    for (const [query, param] of refusals) {
      const response = await call("GET", `/v1/files?${query}`);
      expect(response.status, query).toBe(400);
      const body = await response.json();
      expect(body, query).toMatchObject({ error: { type: "invalid_request_error", code: "invalid_request_error", param } });
      expect(JSON.stringify(body), query).not.toMatch(/\\u00(0|1|7f)|x{100}/i);
    }
    // A purpose in any script, without control characters, still filters.
    const response = await call("GET", `/v1/files?purpose=${encodeURIComponent("ünïcode ✓")}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ object: "list", data: [] });
  });
});

describe("model ids in the path", () => {
  it("GET /v1/models/{id} with a control character is 400 naming model; an unknown clean id is 404", async () => {
    for (const id of ["%00", "sentx%01v1", "%7F"]) {
      const response = await call("GET", `/v1/models/${id}`);
      expect(response.status, id).toBe(400);
      expect(await response.json(), id).toEqual(badRequest("model"));
    }
    const unknown = await call("GET", "/v1/models/no-such-model");
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatchObject({ code: "not_found", param: "model" });
  });
});

describe("end-user identity (SPEC 3)", () => {
  const hello = { model: "sentx-v1", messages: [{ role: "user", content: "Hello" }] };
  const chat = (customerKey: string, body: object, headers?: Record<string, string>) =>
    call("POST", "/v1/chat/completions", { key: customerKey, body: JSON.stringify(body), ...(headers && { headers }) });

  it.each<[string, object, Record<string, string> | undefined, string]>([
    ["X-User-Id with an escaped SOH", hello, { "X-User-Id": "u%01x" }, "user"],
    ["X-User-Name with a raw tab", hello, { "X-User-Name": "Ada\tLovelace" }, "user_name"],
    ["X-User-Name with an escaped ESC", hello, { "X-User-Name": "%1B[31mAda" }, "user_name"],
    ["X-Session-Id with an escaped DEL", hello, { "X-Session-Id": "conv%7F" }, "X-Session-Id"],
    ["X-Session-Id with an escaped newline", hello, { "X-Session-Id": "conv%0Aforged" }, "X-Session-Id"],
    ["body user with a unit separator", { ...hello, user: "u\u001fx" }, undefined, "user"],
    ["body user_name with a DEL", { ...hello, user_name: "Ada\u007f" }, undefined, "user_name"],
    ["body user under a clean X-User-Id", { ...hello, user: "u\u0000x" }, { "X-User-Id": "clean" }, "user"],
    // JSON carries a lone surrogate as \ud800; PostgreSQL's jsonb refuses it.
    ["body user with an unpaired surrogate", { ...hello, user: "u\ud800" }, undefined, "user"],
  ])("refuses %s with 400, before anything is held, billed or recorded", async (_case, body, headers, param) => {
    const { accountId, key: customerKey } = await t.createCustomer({ balanceCents: 10 });
    const response = await chat(customerKey, body, headers);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual(badRequest(param));
    expect(await moneyState(t.platform.services.db, accountId)).toMatchObject({ balanceCents: 10, heldCents: 0, usageEntries: [] });
    expect(await endUsersOf(t.platform.services.db, accountId)).toEqual([]);
  });

  it("keeps control characters in message text, which JSON allows, but not in the identity sent with it", async () => {
    const { accountId, key: customerKey } = await t.createCustomer();
    const body = { ...hello, messages: [{ role: "user", content: "tab\there\nnewline \u0001 and \u007f" }], user: "Jürgen 张 😀" };
    expect((await chat(customerKey, body, { "X-Session-Id": "conv%20%E2%9C%93" })).status).toBe(200);
    expect(await endUsersOf(t.platform.services.db, accountId)).toMatchObject([{ externalId: "Jürgen 张 😀", requestCount: 1 }]);
    const refused = await chat(customerKey, body, { "X-Session-Id": "conv%09%E2%9C%93" });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual(badRequest("X-Session-Id"));
  });
});
