import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { Redis } from "ioredis";
import postgres from "postgres";
import { expect } from "vitest";
import type { z } from "zod";
import type { modelTableSchema } from "../../../src/domain/inference/model-table.js";
import { createTestDatabase, type TestDatabase } from "../../support/db.js";
import { testEnv } from "../../support/env.js";
import { type FakeUpstream, type FakeUpstreamKnobs, startFakeUpstream } from "../../support/fake-upstream.js";
import { opsClient } from "../../support/ops-client.js";
import { TEST_OPS_TOKEN } from "../../support/platform.js";
import { type ServerProcess, startServerProcess } from "../../support/server-process.js";
import { type LedgerReport, ledgerReport } from "./ledger-invariants.js";

// What every fault test stands on: the real server process (src/main.ts) on a
// fresh PostgreSQL database and the machine's Redis (under a prefix of its
// own), in front of a local upstream that fails on command; and the probes a
// test reads the aftermath with, from outside the server as an operator would.

export interface FaultStack {
  database: TestDatabase;
  upstream: FakeUpstream;
  /** A direct connection to the test database, for invariant checks and injected faults. */
  sql: postgres.Sql;
  /** Starts one more server process (env added to the stack's). */
  startServer(env?: Record<string, string>): Promise<ServerProcess>;
  /** A funded account with one key, created through the ops API of `server`. */
  customer(server: ServerProcess, balanceCents?: number, limits?: { requestsPerMinute?: number; concurrentStreams?: number }): Promise<{ accountId: string; key: string; keyId: string }>;
  /** The ledger invariants now; fails the test on any discrepancy or active hold. */
  expectExactBooks(): Promise<LedgerReport>;
  /**
   * Prints the line RELIABILITY.md copies its figures from. Discrepancies are
   * the broken ledger invariants plus active holds, read now, before the test
   * asserts on them, so the line is printed even when the books are wrong.
   */
  printSummary(name: string, figures: { requests: number; faults: number } & Record<string, number>): Promise<void>;
  /** Stream slots still taken in Redis for these keys (the sorted sets `<prefix>streams:<apiKeyId>`). */
  streamSlotsTaken(keyIds: string[]): Promise<number>;
  close(): Promise<void>;
}

export interface FaultStackOptions {
  env?: Record<string, string>;
  upstream?: Partial<FakeUpstreamKnobs>;
  redisUrl?: string;
  /**
   * The model table (SENTX_MODELS), for models on stand-ins of their own (the
   * surfaces', a realtime upstream); by default sentx-v1 on the chat stand-in.
   * Given the chat stand-in's baseUrl, as it is started with the stack.
   */
  models?: (chatBaseUrl: string) => z.input<typeof modelTableSchema>;
}

export async function startFaultStack(options: FaultStackOptions = {}): Promise<FaultStack> {
  const database = await createTestDatabase();
  const upstream = await startFakeUpstream(options.upstream);
  const sql = postgres(database.url, { max: 2, onnotice: () => {} });
  const redisPrefix = `sentx-fault:${randomUUID()}:`;
  const redisUrl = options.redisUrl ?? testEnv.redisUrl;
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: redisPrefix,
    OPS_TOKEN: TEST_OPS_TOKEN,
    CLAMD_URL: testEnv.clamdUrl,
    SENTX_BOOTSTRAP: "off",
    SENTX_MODELS: JSON.stringify(
      options.models?.(upstream.baseUrl) ?? {
        models: [{ id: "sentx-v1", upstreams: [{ provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "llm", timeoutMs: 3_000 }] }],
      },
    ),
    ...options.env,
  };
  const servers: ServerProcess[] = [];
  return {
    database,
    upstream,
    sql,
    async startServer(extra = {}) {
      const server = await startServerProcess({ ...env, ...extra });
      servers.push(server);
      return server;
    },
    async customer(server, balanceCents = 5_000, limits) {
      const ops = opsClient(server.url);
      const account = await ops.accounts.create.mutate({
        email: `fault-${randomUUID()}@example.com`,
        initialCreditsCents: balanceCents,
        ...(limits && { limits }),
      });
      const { key, apiKey } = await ops.keys.create.mutate({ accountId: account.id, name: "fault" });
      return { accountId: account.id, key, keyId: apiKey.id };
    },
    async expectExactBooks() {
      const report = await ledgerReport(sql);
      expect(report.discrepancies).toEqual([]);
      expect(report.activeHolds).toBe(0);
      return report;
    },
    async printSummary(name, figures) {
      const report = await ledgerReport(sql);
      const discrepancies = report.discrepancies.length + report.activeHolds;
      const extra = Object.entries(figures)
        .filter(([k]) => k !== "requests" && k !== "faults")
        .map(([k, v]) => ` ${k}=${v}`)
        .join("");
      console.log(`faults: ${name}: requests=${figures.requests} faults=${figures.faults} discrepancies=${discrepancies}${extra}`);
      if (discrepancies > 0) console.log(`faults: ${name}: ${[...report.discrepancies, `${report.activeHolds} active holds`].join("; ")}`);
    },
    async streamSlotsTaken(keyIds) {
      const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        const counts = await Promise.all(keyIds.map((id) => redis.zcard(`${redisPrefix}streams:${id}`)));
        return counts.reduce((sum, n) => sum + n, 0);
      } finally {
        redis.disconnect();
      }
    },
    async close() {
      await Promise.all(servers.map((s) => s.kill().catch(() => {})));
      await sql.end({ timeout: 5 });
      await upstream.close();
      await database.drop();
    },
  };
}

// Probes of one server process.

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** /healthz's status; 0 when it did not answer within 2 s. */
export async function healthz(baseUrl: string): Promise<number> {
  try {
    const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

/** Opens a connection of its own (no pooled keep-alive socket) and says what happened: a status, or the connection error's code. */
export function freshConnectionAttempt(baseUrl: string, timeoutMs = 2_000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpRequest(`${baseUrl}/v1/models`, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
    req.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}
