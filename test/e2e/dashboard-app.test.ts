import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DASHBOARD_CSP, DEFAULT_DASHBOARD_DIST, dashboardAppRoutes } from "../../src/rest/dashboard-app.js";
import { dashboard } from "../support/dashboard.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

const INDEX = `<!doctype html><html><head><script type="module" crossorigin src="/dashboard/assets/index-abc123.js"></script></head><body><div id="app"></div></body></html>`;

/** A build as `npm run web:build` lays it out, beside a file that must never be served. */
function fakeBuild() {
  const folder = mkdtempSync(join(tmpdir(), "sentx-dashboard-"));
  const dist = join(folder, "dist");
  mkdirSync(join(dist, "assets"), { recursive: true });
  writeFileSync(join(dist, "index.html"), INDEX);
  writeFileSync(join(dist, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
  writeFileSync(join(dist, "assets", "index-abc123.js"), "console.log('dashboard');");
  writeFileSync(join(dist, "assets", "index-abc123.css"), "body{}");
  writeFileSync(join(folder, "secret.txt"), "not for browsers");
  return { folder, dist };
}

describe("the web dashboard's files (src/rest/dashboard-app.ts)", () => {
  const { folder, dist } = fakeBuild();
  const app = dashboardAppRoutes({ distDir: dist });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it.each(["/dashboard", "/dashboard/", "/dashboard/usage", "/dashboard/keys", "/dashboard/credits/success?session_id=cs_test_1", "/dashboard/credits/cancel", "/dashboard/no/such/page"])(
    "answers the app's index.html at %s, revalidated on every load, with the dashboard's CSP",
    async (path) => {
      const res = await app.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
      expect(await res.text()).toBe(INDEX);
    },
  );

  it("allows no inline script, and connects only to its own origin", () => {
    expect(DASHBOARD_CSP).toContain("script-src 'self'");
    expect(DASHBOARD_CSP).not.toContain("unsafe-inline");
    expect(DASHBOARD_CSP).not.toContain("unsafe-eval");
    expect(DASHBOARD_CSP).toContain("connect-src 'self'");
    expect(DASHBOARD_CSP).toContain("frame-ancestors 'none'");
  });

  it("serves hashed assets with their type, cached for a year as immutable", async () => {
    const script = await app.request("/dashboard/assets/index-abc123.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(script.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await script.text()).toBe("console.log('dashboard');");
    const style = await app.request("/dashboard/assets/index-abc123.css");
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
  });

  it("serves unhashed files of the build (the icon) revalidated, as their name may keep changing content", async () => {
    const icon = await app.request("/dashboard/favicon.svg");
    expect(icon.status).toBe(200);
    expect(icon.headers.get("content-type")).toMatch(/^image\/svg\+xml\b/);
    expect(icon.headers.get("cache-control")).toBe("no-cache");
  });

  it("answers 404 for a missing asset rather than index.html (a stale page must not run HTML as a script)", async () => {
    const res = await app.request("/dashboard/assets/index-gone.js");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it.each([
    "/dashboard/../secret.txt",
    "/dashboard/%2e%2e/secret.txt",
    "/dashboard/..%2fsecret.txt",
    "/dashboard/assets/..%2f..%2fsecret.txt",
    "/dashboard/%2e%2e%2fsecret.txt",
    "/dashboard/assets%2f..%2f..%2fsecret.txt",
  ])("never serves a file outside the build: %s", async (path) => {
    const res = await app.request(path);
    expect(await res.text()).not.toContain("not for browsers");
  });

  it("treats a malformed percent-encoding as an app route, not an error", async () => {
    const res = await app.request("/dashboard/%E0%A4%A");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(INDEX);
  });

  it("without a build answers 503 in plain words naming the command, and serves the build once it exists, without a restart", async () => {
    const empty = mkdtempSync(join(tmpdir(), "sentx-dashboard-unbuilt-"));
    try {
      const unbuilt = dashboardAppRoutes({ distDir: join(empty, "dist") });
      for (const path of ["/dashboard", "/dashboard/usage"]) {
        const res = await unbuilt.request(path);
        expect(res.status).toBe(503);
        expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
        expect(res.headers.get("cache-control")).toBe("no-store");
        expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
        const page = await res.text();
        expect(page).toContain("The dashboard has not been built");
        expect(page).toContain("npm run web:build");
      }
      mkdirSync(join(empty, "dist"));
      writeFileSync(join(empty, "dist", "index.html"), INDEX);
      const built = await unbuilt.request("/dashboard/usage");
      expect(built.status).toBe(200);
      expect(await built.text()).toBe(INDEX);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("answers GET and HEAD only", async () => {
    expect((await app.request("/dashboard/usage", { method: "HEAD" })).status).toBe(200);
    expect((await app.request("/dashboard/usage", { method: "POST" })).status).toBe(404);
  });
});

describe("the platform serves the dashboard beside its API", () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("at /dashboard and its deep links (200 with web/dist built, else the 503 page), with the CSP", async () => {
    const built = existsSync(join(DEFAULT_DASHBOARD_DIST, "index.html"));
    for (const path of ["/dashboard", "/dashboard/usage", "/dashboard/credits/success?session_id=cs_1", "/dashboard/credits/cancel"]) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(built ? 200 : 503);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
      expect(res.headers.get("x-request-id")).toBeTruthy();
      await res.arrayBuffer();
    }
  });

  it("other methods at /dashboard get the API's 404 in the SPEC 8 shape, and /graphql still answers", async () => {
    const res = await fetch(`${t.url}/dashboard/usage`, { method: "POST" });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("not_found");
    const api = dashboard(t);
    expect((await api.graphql("{ platform }")).data).toEqual({ platform: "SentX" });
  });
});
