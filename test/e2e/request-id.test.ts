import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestPlatform, TEST_OPS_TOKEN, type TestPlatform } from "../support/platform.js";

// Every response carries x-request-id, whichever part of the platform answered it.

let t: TestPlatform;
beforeAll(async () => {
  t = await startTestPlatform();
});
afterAll(() => t.close());

it("is on answers from the REST API, GraphQL, the ops API, health and unknown paths", async () => {
  const { key } = await t.createCustomer();
  const answers = await Promise.all([
    fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }),
    fetch(`${t.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"{ platform }"}' }),
    fetch(`${t.url}/trpc/ledger.verify`, { headers: { authorization: `Bearer ${TEST_OPS_TOKEN}` } }),
    fetch(`${t.url}/healthz`),
    fetch(`${t.url}/nothing-here`),
  ]);
  const ids = answers.map((answer) => answer.headers.get("x-request-id"));
  for (const id of ids) expect(id).toMatch(/^req_[0-9A-Za-z]{24}$/);
  expect(new Set(ids).size).toBe(ids.length);
});
