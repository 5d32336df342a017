import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { loadConfig } from "../../src/config.js";
import type { Clock } from "../../src/domain/clock.js";
import type { AccountLimits } from "../../src/domain/schema/index.js";
import type { modelTableSchema } from "../../src/domain/inference/model-table.js";
import { type Logger, silentLogger } from "../../src/domain/logger.js";
import { listen } from "../../src/infra/http-server.js";
import { createPlatform, type Platform } from "../../src/platform.js";
import type { z } from "zod";
import { createTestDatabase, type TestDatabase } from "./db.js";
import { testEnv } from "./env.js";

export const TEST_OPS_TOKEN = "ops_test_token_0123456789abcdef";

export interface TestPlatform {
  url: string;
  platform: Platform;
  database: TestDatabase;
  /** An account with `balanceCents` of credit and one API key. */
  createCustomer(options?: {
    balanceCents?: number;
    email?: string;
    limits?: AccountLimits;
  }): Promise<{ accountId: string; key: string; keyId: string }>;
  /** The official SDK pointed at this server, without retries unless asked. */
  openai(apiKey: string, options?: { maxRetries?: number; defaultHeaders?: Record<string, string> }): OpenAI;
  close(): Promise<void>;
}

let customers = 0;

/** The real server on a free port, over its own fresh PostgreSQL database. */
export async function startTestPlatform(
  options: { models?: z.input<typeof modelTableSchema>; env?: Record<string, string>; clock?: Clock; logger?: Logger } = {},
): Promise<TestPlatform> {
  const database = await createTestDatabase({ maxConnections: 20 });
  const dataDir = mkdtempSync(join(tmpdir(), "sentx-test-"));
  const config = loadConfig({
    DATABASE_URL: database.url,
    DATA_DIR: dataDir,
    OPS_TOKEN: TEST_OPS_TOKEN,
    CLAMD_URL: testEnv.clamdUrl,
    LOG_LEVEL: "silent",
    ...(options.models && { SENTX_MODELS: JSON.stringify(options.models) }),
    ...options.env,
  });
  const platform = await createPlatform(config, {
    database,
    logger: options.logger ?? silentLogger,
    ...(options.clock && { clock: options.clock }),
  });
  const server = await listen(platform.fetch, "127.0.0.1", 0, undefined, platform.upgrade);
  return {
    url: server.url,
    platform,
    database,
    async createCustomer({ balanceCents = 500, email, limits } = {}) {
      const account = await platform.services.accounts.create({
        email: email ?? `customer-${process.pid}-${++customers}-${Date.now()}@example.com`,
        initialCreditsCents: balanceCents,
        ...(limits && { limits }),
      });
      const { key, apiKey } = await platform.services.keys.create({ accountId: account.id, name: "test" });
      return { accountId: account.id, key, keyId: apiKey.id };
    },
    openai: (apiKey, { maxRetries = 0, defaultHeaders } = {}) =>
      new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries, ...(defaultHeaders && { defaultHeaders }) }),
    async close() {
      await server.close();
      await platform.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
