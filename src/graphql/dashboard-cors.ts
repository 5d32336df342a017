import type { CORSOptions, Plugin } from "graphql-yoga";

/**
 * CORS for the dashboard: only the configured origins get CORS headers (with
 * credentials, as the dashboard signs in); any other origin gets none.
 * graphql-yoga's default would echo every origin with credentials.
 */
export function dashboardCors(origins: readonly string[]) {
  const allowed = new Set(origins);
  return {
    cors: (request: Request): CORSOptions => {
      const origin = request.headers.get("origin");
      return origin !== null && allowed.has(origin) ? { origin, credentials: true, methods: ["GET", "POST"] } : false;
    },
    // Answers differ by Origin, so a cache must not hand one origin's answer to another.
    varyByOrigin: { onResponse: ({ response }) => response.headers.append("Vary", "Origin") } satisfies Plugin,
  };
}
