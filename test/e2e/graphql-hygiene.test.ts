import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

// SPEC 11: the dashboard API limits what one query may ask for (tokens,
// aliases, depth, cost) before doing the work, shows no internals in its
// errors, and answers browsers only from the configured dashboard origins.

const DASHBOARD = "https://dashboard.example.com";
const STAGING_DASHBOARD = "https://staging.dashboard.example.com";
const ELSEWHERE = "https://evil.example";

let t: TestPlatform;
let withDashboard: TestPlatform;

beforeAll(async () => {
  [t, withDashboard] = await Promise.all([
    startTestPlatform(),
    startTestPlatform({ env: { DASHBOARD_ORIGINS: `${DASHBOARD}, ${STAGING_DASHBOARD}` } }),
  ]);
});
afterAll(() => Promise.all([t?.close(), withDashboard?.close()]));

async function graphql(query: string, target = t) {
  const res = await fetch(`${target.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: Array<{ message: string; extensions?: object }> } };
}

const messages = (body: { errors?: Array<{ message: string }> }) => (body.errors ?? []).map((e) => e.message).join("\n");
const aliases = (count: number) => `{ ${Array.from({ length: count }, (_, i) => `a${i}: platform`).join(" ")} }`;

describe("query limits", () => {
  it("refuses 100,000 aliases within milliseconds: parsing stops at the token limit", async () => {
    const started = performance.now();
    const { status, body } = await graphql(aliases(100_000));
    expect(performance.now() - started).toBeLessThan(500);
    expect(status).toBe(400);
    expect(body.data).toBeUndefined();
    expect(messages(body)).toContain("Token limit of 1000 exceeded");
  });

  it("serves 15 aliases and refuses 16", async () => {
    expect(await graphql(aliases(15))).toMatchObject({ status: 200, body: { data: { a0: "SentX", a14: "SentX" } } });
    const refused = await graphql(aliases(16));
    expect(refused.status).toBe(400);
    expect(messages(refused.body)).toContain("Aliases limit of 15 exceeded, found 16.");
  });

  it("refuses a query nested deeper than 8", async () => {
    const nested = (depth: number): string => (depth === 1 ? "leaf" : `level { ${nested(depth - 1)} }`);
    const refused = await graphql(`{ ${nested(9)} }`);
    expect(refused.status).toBe(400);
    expect(messages(refused.body)).toContain("Query depth limit of 8 exceeded, found 9.");
  });

  it("refuses a query whose cost exceeds 5,000", async () => {
    const refused = await graphql("{ platform(first: 10000) { name } }");
    expect(refused.status).toBe(400);
    expect(messages(refused.body)).toContain("Query Cost limit of 5000 exceeded, found 35000.");
  });
});

describe("errors", () => {
  it("do not suggest field names the caller did not ask for", async () => {
    const refused = await graphql("{ platfrom }");
    expect(refused.status).toBe(400);
    expect(messages(refused.body)).toContain('Cannot query field "platfrom" on type "Query".');
    expect(messages(refused.body)).not.toMatch(/did you mean|"platform"/i);
  });
});

describe("CORS", () => {
  const fromOrigin = (target: TestPlatform, origin: string, method: "POST" | "OPTIONS") =>
    fetch(`${target.url}/graphql`, {
      method,
      headers:
        method === "POST"
          ? { origin, "content-type": "application/json" }
          : { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" },
      ...(method === "POST" && { body: JSON.stringify({ query: "{ platform }" }) }),
    });

  it("grants nothing to any origin when no dashboard origin is configured", async () => {
    for (const method of ["POST", "OPTIONS"] as const) {
      const res = await fromOrigin(t, ELSEWHERE, method);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });

  it("allows each configured dashboard origin, with credentials, and no other", async () => {
    for (const origin of [DASHBOARD, STAGING_DASHBOARD]) {
      const preflight = await fromOrigin(withDashboard, origin, "OPTIONS");
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-origin")).toBe(origin);
      expect(preflight.headers.get("access-control-allow-credentials")).toBe("true");
      expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");

      const res = await fromOrigin(withDashboard, origin, "POST");
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
      expect(res.headers.get("access-control-allow-credentials")).toBe("true");
      expect(res.headers.get("vary")).toMatch(/\borigin\b/i);
    }
    for (const method of ["POST", "OPTIONS"] as const) {
      const res = await fromOrigin(withDashboard, ELSEWHERE, method);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    }
  });
});
