// SentX as the benchmark runs it: the real server process (src/main.ts) with
// every per-request duty on (auth, rate limits, holds, settlement, request
// records, identity), in front of the fast upstream, with funded accounts
// whose limits are checked on every request but never refuse one.
import { randomUUID } from "node:crypto";
import { testEnv } from "../test/support/env.js";
import { opsClient } from "../test/support/ops-client.js";
import { TEST_OPS_TOKEN } from "../test/support/platform.js";
import { type ServerProcess, startServerProcess } from "../test/support/server-process.js";

export const FAST_MODEL = "sentx-v1";
export const SLOW_MODEL = "sentx-slow";

/** Starts the server with `env` added (the database and Redis settings), the model table pointing at `upstreamUrl`. */
export function startSentx(upstreamUrl: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<ServerProcess> {
  const model = (id: string, baseUrl: string) => ({ id, upstreams: [{ provider: "openai-compatible", baseUrl, model: "bench" }] });
  return startServerProcess({
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    OPS_TOKEN: TEST_OPS_TOKEN,
    CLAMD_URL: testEnv.clamdUrl,
    SENTX_BOOTSTRAP: "off",
    SENTX_MODELS: JSON.stringify({
      defaultModel: FAST_MODEL,
      models: [model(FAST_MODEL, `${upstreamUrl}/v1`), model(SLOW_MODEL, `${upstreamUrl}/slow/v1`)],
    }),
    ...env,
  }, { nodeArgs });
}

/** `count` accounts through the ops API, each funded and with one key; returns the keys. */
export async function createBenchAccounts(server: ServerProcess, count: number): Promise<string[]> {
  const ops = opsClient(server.url);
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const account = await ops.accounts.create.mutate({
      email: `bench-${i}-${randomUUID()}@example.com`,
      initialCreditsCents: 10_000_000,
      limits: { requestsPerMinute: 100_000_000, concurrentStreams: 100_000 },
    });
    keys.push((await ops.keys.create.mutate({ accountId: account.id, name: "bench" })).key);
  }
  return keys;
}

/** Whether every account's balance equals the sum of its ledger entries after the load. */
export async function ledgerBalanced(server: ServerProcess): Promise<boolean> {
  return (await opsClient(server.url).ledger.verify.query()).ok;
}
