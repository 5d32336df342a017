import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serveStatic } from "@hono/node-server/serve-static";
import { type Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";

/** Where `npm run web:build` writes the web dashboard. */
export const DEFAULT_DASHBOARD_DIST = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "dist");

/**
 * The dashboard runs only its own bundled files and talks only to this server: no inline script, no other origin.
 * Stripe Checkout is a plain navigation to Stripe's page, so nothing of Stripe's loads here.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  // Stripe's return URL carries the checkout session id: it goes to no other site in a Referer.
  "referrer-policy": "same-origin",
};

// Vite names every built asset by its content's hash, so a name never changes meaning.
const IMMUTABLE = "public, max-age=31536000, immutable";
// index.html names the current assets: always asked for again, so a new build shows at the next load.
const REVALIDATE = "no-cache";

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Dashboard not built</title></head>
<body>
<h1>The dashboard has not been built</h1>
<p>This server has no web dashboard to show yet. Whoever runs it can build it with:</p>
<pre>npm run web:build</pre>
<p>and then reload this page (no restart needed). <code>npm start</code> builds it by itself when it is missing.</p>
<p>The dashboard API at <code>/graphql</code> and the OpenAI-compatible API at <code>/v1</code> work without it.</p>
</body>
</html>
`;

async function readIndex(root: string): Promise<Buffer | null> {
  try {
    return await readFile(join(root, "index.html"));
  } catch {
    return null;
  }
}

const HTML = "text/html; charset=utf-8";
/** A request for a file (a name with an extension) rather than for an app route such as /dashboard/usage. */
const namesFile = (path: string) => /\.[A-Za-z0-9]+$/.test(path);

/**
 * The web dashboard (a single-page app) at /dashboard: its built files (Hono's
 * serveStatic, which refuses paths that climb out of the build), and
 * index.html for every app route (/dashboard/usage, …) so a deep link or a
 * reload works. Read from disk on each request: a rebuild shows without a
 * restart, and the hashed assets are cached by browsers anyway.
 */
export function dashboardAppRoutes({ distDir = DEFAULT_DASHBOARD_DIST }: { distDir?: string } = {}) {
  const root = resolve(distDir);

  async function app(c: Context) {
    const index = await readIndex(root);
    if (!index) return c.body(NOT_BUILT_PAGE, 503, { "content-type": HTML, "cache-control": "no-store", "retry-after": "60" });
    return c.body(new Uint8Array(index), 200, { "content-type": HTML, "cache-control": REVALIDATE });
  }

  const files = serveStatic({ root, rewriteRequestPath: (path) => path.slice("/dashboard".length) });

  return new Hono()
    .use("/dashboard/*", secured)
    .get("/dashboard/*", (c, next) => (namesFile(c.req.path) ? next() : app(c)), files, (c) =>
      c.body("Not found.\n", 404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }),
    );
}

/** Every answer under /dashboard, files and app routes alike, carries the security headers, and says how long it keeps. */
const secured = createMiddleware(async (c, next) => {
  await next();
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
  if (!c.res.headers.has("cache-control")) c.header("cache-control", c.req.path.startsWith("/dashboard/assets/") ? IMMUTABLE : REVALIDATE);
});
