import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import { firstRunKey, startServerProcess } from "../support/server-process.js";

describe("embedded first run (SPEC 13)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "sentx-embedded-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("creates an account and key once, serves a billed stream, and reuses the data folder", async () => {
    const first = await startServerProcess({ DATA_DIR: dataDir });
    let key: string;
    try {
      const banner = first.stderr();
      expect(banner).toContain("DEMO provider");
      expect(banner).toContain("embedded PGlite");
      key = firstRunKey(banner) ?? "";
      expect(key).toMatch(/^sk-[0-9A-Za-z]{32,}$/);
      expect(banner).toContain(`curl ${first.url}/v1/chat/completions`);

      const client = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: key, maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: "sentx-v1",
        messages: [{ role: "user", content: "Hello from the first run" }],
        stream: true,
      });
      let text = "";
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toContain("Hello from the first run");
      expect(usage?.prompt_tokens).toBeGreaterThan(0);
      expect(usage?.completion_tokens).toBeGreaterThan(0);
    } finally {
      expect(await first.stop()).toBe(0);
    }

    const second = await startServerProcess({ DATA_DIR: dataDir });
    try {
      expect(firstRunKey(second.stderr())).toBeUndefined();
      expect(second.stderr()).not.toContain("First start");
      const client = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: key, maxRetries: 0 });
      const reply = await client.chat.completions.create({
        model: "sentx-v1",
        messages: [{ role: "user", content: "Hello again" }],
      });
      expect(reply.choices[0]?.message.content).toContain("Hello again");
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 120_000);
});
