import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { type Context, Hono } from "hono";

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

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

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

async function readIfFile(path: string): Promise<Buffer | null> {
  try {
    return (await stat(path)).isFile() ? await readFile(path) : null;
  } catch {
    return null;
  }
}

/**
 * The web dashboard (a single-page app) at /dashboard: its built files, and index.html for every app route
 * (/dashboard/usage, …) so a deep link or a reload works. Read from disk on each request: a rebuild shows
 * without a restart, and the hashed assets are cached by browsers anyway.
 */
export function dashboardAppRoutes({ distDir = DEFAULT_DASHBOARD_DIST }: { distDir?: string } = {}) {
  const root = resolve(distDir);

  const answer = (c: Context, body: Buffer | string, status: 200 | 404 | 503, headers: Record<string, string>) =>
    c.body(typeof body === "string" ? body : new Uint8Array(body), status, { ...SECURITY_HEADERS, ...headers });

  async function app(c: Context) {
    const index = await readIfFile(join(root, "index.html"));
    if (!index) {
      return answer(c, NOT_BUILT_PAGE, 503, { "content-type": CONTENT_TYPES[".html"]!, "cache-control": "no-store", "retry-after": "60" });
    }
    return answer(c, index, 200, { "content-type": CONTENT_TYPES[".html"]!, "cache-control": REVALIDATE });
  }

  async function file(c: Context) {
    const relative = c.req.path.slice("/dashboard/".length);
    let name: string;
    try {
      name = decodeURIComponent(relative);
    } catch {
      return app(c);
    }
    const type = CONTENT_TYPES[extname(name).toLowerCase()];
    const path = resolve(root, name);
    // A name with a known file extension is a file or nothing; anything else is an app route. Never outside dist/.
    if (!type || name.includes("\0") || !path.startsWith(root + sep)) return app(c);
    const bytes = await readIfFile(path);
    if (!bytes) {
      return answer(c, "Not found.\n", 404, { "content-type": CONTENT_TYPES[".txt"]!, "cache-control": "no-store" });
    }
    const hashed = name.startsWith("assets/");
    return answer(c, bytes, 200, { "content-type": type, "cache-control": hashed ? IMMUTABLE : REVALIDATE });
  }

  return new Hono().get("/dashboard", app).get("/dashboard/*", file);
}
