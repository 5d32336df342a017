import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { testEnv } from "../support/env.js";
import { opsClient } from "../support/ops-client.js";
import { TEST_OPS_TOKEN } from "../support/platform.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

// Slow or idle clients cannot hold connections: the real server process, with
// its timeouts set short, cuts a request whose headers or body stop arriving,
// closes idle keep-alive connections, and accepts no more than its cap.

const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 1_500;
const KEEP_ALIVE_TIMEOUT_MS = 1_000;
// How late a cut may come: the server checks its timeouts on a tick, and the machine may be busy.
const SLACK_MS = 1_000;
const MAX_CONNECTIONS = 2;

let database: TestDatabase;
let server: ServerProcess;
let capped: ServerProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  const env = { DATABASE_URL: database.url, OPS_TOKEN: TEST_OPS_TOKEN, SENTX_BOOTSTRAP: "off", CLAMD_URL: testEnv.clamdUrl };
  [server, capped] = await Promise.all([
    startServerProcess({
      ...env,
      HTTP_HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_MS / 1000),
      HTTP_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_MS / 1000),
      HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: String(KEEP_ALIVE_TIMEOUT_MS / 1000),
    }),
    startServerProcess({ ...env, HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS) }),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all([server?.stop(), capped?.stop()]);
  await database?.drop();
});

interface RawConnection {
  socket: Socket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves with ms since `since` once the server closed the connection, or null if it was still open after `waitMs`. */
  closed(since: number, waitMs: number): Promise<number | null>;
}

/** A plain TCP connection, so the test controls exactly which bytes are sent, and when. */
async function rawConnection(baseUrl: string): Promise<RawConnection> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect(Number(port), hostname);
  let received = "";
  let closedAt: number | null = null;
  const closing = new Promise<void>((resolve) => socket.once("close", () => resolve(void (closedAt = performance.now()))));
  socket.on("data", (chunk) => (received += chunk.toString("latin1")));
  socket.on("error", () => {}); // a reset is one way of being closed
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  return {
    socket,
    received: () => received,
    async closed(since, waitMs) {
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, waitMs))]);
      socket.destroy();
      return closedAt === null ? null : closedAt - since;
    },
  };
}

const HEALTHZ = "GET /healthz HTTP/1.1\r\nHost: sentx.test\r\n\r\n";

describe("server timeouts", () => {
  it("answers 408 and closes when a request's body stops arriving (Content-Length 1000, 10 bytes sent)", async () => {
    const ops = opsClient(server.url);
    const account = await ops.accounts.create.mutate({ email: `stall-${Date.now()}@example.com`, initialCreditsCents: 100 });
    const { key } = await ops.keys.create.mutate({ accountId: account.id, name: "stall" });

    const connection = await rawConnection(server.url);
    const sentAt = performance.now();
    connection.socket.write(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: sentx.test\r\n" +
        `Authorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n` +
        '{"model":"',
    );
    const closedAfter = await connection.closed(sentAt, REQUEST_TIMEOUT_MS + 5_000);
    expect(closedAfter).not.toBeNull();
    expect(closedAfter!).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    expect(closedAfter!).toBeLessThan(REQUEST_TIMEOUT_MS + SLACK_MS);
    expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("answers 408 and closes when a request's headers stop arriving", async () => {
    const connection = await rawConnection(server.url);
    const sentAt = performance.now();
    connection.socket.write("GET /healthz HTTP/1.1\r\nHost: sentx.test\r\n");
    const closedAfter = await connection.closed(sentAt, HEADERS_TIMEOUT_MS + 5_000);
    expect(closedAfter).not.toBeNull();
    expect(closedAfter!).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
    expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("closes a keep-alive connection left idle after its response", async () => {
    const connection = await rawConnection(server.url);
    connection.socket.write(HEALTHZ);
    await new Promise<void>((resolve) => connection.socket.once("data", () => resolve()));
    const answeredAt = performance.now();
    expect(connection.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(connection.received()).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
    // Node closes a second after the advertised timeout, so that a client reusing the connection at the last moment is not cut.
    const closedAfter = await connection.closed(answeredAt, KEEP_ALIVE_TIMEOUT_MS + 5_000);
    expect(closedAfter).not.toBeNull();
    expect(closedAfter!).toBeGreaterThanOrEqual(KEEP_ALIVE_TIMEOUT_MS - 100);
    expect(closedAfter!).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS + 1_000 + SLACK_MS);
  });
});

describe("connection cap", () => {
  it("drops connections beyond HTTP_MAX_CONNECTIONS without an answer, and serves again once one closes", async () => {
    const held = await Promise.all(Array.from({ length: MAX_CONNECTIONS }, () => rawConnection(capped.url)));
    // Each held connection is served, so the server has certainly counted it.
    for (const connection of held) {
      connection.socket.write(HEALTHZ);
      await new Promise<void>((resolve) => connection.socket.once("data", () => resolve()));
    }

    const extra = await rawConnection(capped.url);
    const sentAt = performance.now();
    extra.socket.write(HEALTHZ);
    expect(await extra.closed(sentAt, 3_000)).not.toBeNull();
    expect(extra.received()).toBe("");

    held.pop()!.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100)); // for the server to see the close
    const next = await rawConnection(capped.url);
    next.socket.write(HEALTHZ);
    await new Promise<void>((resolve) => next.socket.once("data", () => resolve()));
    expect(next.received()).toMatch(/^HTTP\/1\.1 200 /);
    for (const connection of [...held, next]) connection.socket.destroy();
  });
});
