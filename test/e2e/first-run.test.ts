import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { testEnv } from "../support/env.js";
import { expectRefusedStart, firstRunKey, runServerProcessToExit, startServerProcess } from "../support/server-process.js";

// SPEC 13's first run, through the real process: the key is never lost, the
// banner says what runs (on stderr, stdout is the JSON log), and a mistake in
// the configuration is one line naming it.

const folders: string[] = [];
const freshFolder = () => {
  const folder = mkdtempSync(join(tmpdir(), "sentx-first-run-"));
  folders.push(folder);
  return folder;
};
afterAll(() => folders.forEach((folder) => rmSync(folder, { recursive: true, force: true })));

async function occupiedPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, server };
}

describe("the first start's key", () => {
  it("is not lost to a busy port: that start creates nothing, and the next one shows the key, which works", async () => {
    const dataDir = freshFolder();
    const busy = await occupiedPort();
    try {
      const refused = await runServerProcessToExit({ DATA_DIR: dataDir, PORT: String(busy.port) });
      expectRefusedStart(refused, new RegExp(`PORT ${busy.port} is already in use`));
      expect(firstRunKey(refused.stderr)).toBeUndefined();
      expect(refused.stdout + refused.stderr).not.toContain("sk-");
    } finally {
      busy.server.close();
    }

    const second = await startServerProcess({ DATA_DIR: dataDir });
    try {
      const banner = second.stderr();
      expect(banner).toContain("First start: created account acct_");
      const key = firstRunKey(banner);
      expect(key).toMatch(/^sk-/);
      const client = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: key!, maxRetries: 0 });
      const reply = await client.chat.completions.create({ model: "sentx-v1", messages: [{ role: "user", content: "first words" }] });
      expect(reply.choices[0]?.message.content).toContain("first words");
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 120_000);
});

describe("the banner", () => {
  it("goes to stderr with the account id, models and providers, database, Redis and scanner; stdout is only JSON", async () => {
    const dataDir = freshFolder();
    const modelsFile = join(dataDir, "models.json");
    writeFileSync(
      modelsFile,
      JSON.stringify({
        defaultModel: "house-llm",
        models: [
          {
            id: "house-llm",
            upstreams: [
              { provider: "openai-compatible", baseUrl: "http://vllm.internal:8000/v1", model: "qwen", apiKey: "upstream-secret" },
              { provider: "demo" },
            ],
          },
          { id: "sentx-v1", upstreams: [{ provider: "demo" }] },
        ],
      }),
    );
    const server = await startServerProcess({
      DATA_DIR: dataDir,
      SENTX_MODELS_FILE: modelsFile,
      LOG_LEVEL: "info",
    });
    let banner: string;
    try {
      banner = server.stderr();
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(banner).toMatch(/First start: created account acct_\w+ \(owner@sentx\.local\)/);
    expect(banner).toMatch(/dashboard API \(GraphQL\): http:\/\/127\.0\.0\.1:\d+\/graphql \(open it in a browser for GraphiQL\)/);
    expect(banner).toMatch(/npm run ops -- accounts\.issueClaimToken '\{"accountId":"acct_\w+"\}'/);
    expect(banner).toMatch(/web dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard\n/);
    // Started with a DATA_DIR of its own, the ops command must name it to find the server and the ops token.
    expect(banner).toContain(`DATA_DIR=${JSON.stringify(dataDir)} npm run ops -- accounts.issueClaimToken`);
    expect(banner).toContain(`Ops CLI: DATA_DIR=${JSON.stringify(dataDir)} npm run ops -- accounts.create`);
    expect(banner).toMatch(/then open http:\/\/127\.0\.0\.1:\d+\/dashboard\/claim, paste the claimToken/);
    expect(banner).toContain(`models, from SENTX_MODELS_FILE ${modelsFile}:`);
    expect(banner).toMatch(/house-llm \(default\) → openai-compatible vllm\.internal:8000 \(model qwen\), then DEMO provider/);
    expect(banner).toMatch(/sentx-v1 → DEMO provider/);
    // A real table is loaded: no advice to configure one, and no upstream secret.
    expect(banner).not.toContain("set SENTX_MODELS_FILE");
    expect(banner).not.toContain("upstream-secret");
    expect(banner).toContain(`database: embedded PGlite in ${join(dataDir, "pglite")}`);
    expect(banner).toContain("redis: none; rate limits and jobs run in this process (one instance only)");
    expect(banner).toContain(`virus scanner: clamd at ${testEnv.clamdUrl}`);

    const stdout = server.stdout();
    expect(stdout).not.toContain("SentX is running");
    expect(stdout).not.toContain(firstRunKey(banner));
    const lines = stdout.split("\n").filter(Boolean);
    // LOG_LEVEL=info: at least the shutdown is logged.
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
  }, 120_000);
});

describe("a configuration mistake", () => {
  const dataDir = freshFolder();
  const malformed = join(dataDir, "malformed.json");
  writeFileSync(malformed, '{"models": [');
  const invalid = join(dataDir, "invalid.json");
  writeFileSync(invalid, JSON.stringify({ models: [{ id: "x", upstreams: [{ provider: "openai-compatible", baseUrl: "not a url" }] }] }));
  const missing = join(dataDir, "missing.json");
  const unserved = join(dataDir, "unserved.json");
  const chatOnly = { provider: "openai-compatible", baseUrl: "http://127.0.0.1:9/v1", model: "m", capabilities: ["chat"] };
  writeFileSync(unserved, JSON.stringify({ models: [{ id: "x", upstreams: [chatOnly], capabilities: ["chat", "embeddings"] }] }));

  it.each([
    ["a bad env value", { PORT: "eighty" }, /Invalid configuration: PORT: /],
    ["a value out of its set", { FILE_SCANNING: "sometimes" }, /FILE_SCANNING: /],
    ["a clamd URL without a port", { CLAMD_URL: "tcp://127.0.0.1" }, /CLAMD_URL: /],
    ["a missing SENTX_MODELS_FILE", { SENTX_MODELS_FILE: missing }, new RegExp(`SENTX_MODELS_FILE ${missing} cannot be read: no such file`)],
    ["a SENTX_MODELS_FILE that is not JSON", { SENTX_MODELS_FILE: malformed }, new RegExp(`SENTX_MODELS_FILE ${malformed} is not valid JSON`)],
    [
      "a SENTX_MODELS_FILE that is not a model table",
      { SENTX_MODELS_FILE: invalid },
      new RegExp(`SENTX_MODELS_FILE ${invalid} is not a valid model table: models\\.0\\.upstreams\\.0\\.baseUrl`),
    ],
    [
      "a model offering a surface none of its upstreams serves",
      { SENTX_MODELS_FILE: unserved },
      /models\.0\.capabilities: embeddings is offered but none of the model's upstreams serves it/,
    ],
    ["a HOST that is not this machine's", { HOST: "203.0.113.7" }, /HOST 203\.0\.113\.7 is not an address/],
  ])("%s stops the start with one line naming it, and no stack", async (_name, env, names) => {
    const exited = await runServerProcessToExit({ DATA_DIR: join(dataDir, randomUUID()), ...env });
    expectRefusedStart(exited, names);
    expect(exited.stdout).toBe("");
  });
});
