import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { opsClient } from "../support/ops-client.js";
import type { ServerProcess } from "../support/server-process.js";
import { type SharedInstances, startSharedInstances } from "../support/shared-instances.js";

// SPEC 4 and 6 across instances: two real server processes behind no load
// balancer, sharing one PostgreSQL database and one Redis.

const SLOT_TTL_SECONDS = 3;

let upstream: FakeUpstream;
let instances: SharedInstances;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  instances = await startSharedInstances({
    STREAM_SLOT_TTL_SECONDS: String(SLOT_TTL_SECONDS),
    SENTX_MODELS: JSON.stringify({ models: [{ id: "sentx-v1", upstreams: [{ provider: "openai-compatible", baseUrl: upstream.baseUrl, model: "llm" }] }] }),
  });
  ({ a, b } = instances);
}, 90_000);

afterAll(async () => {
  await instances?.close();
  await upstream?.close();
});

async function customer(limits?: { requestsPerMinute?: number; concurrentStreams?: number }) {
  const ops = opsClient(a.url);
  const account = await ops.accounts.create.mutate({ email: `multi-${randomUUID()}@example.com`, initialCreditsCents: 5_000, ...(limits && { limits }) });
  const { key, apiKey } = await ops.keys.create.mutate({ accountId: account.id, name: "multi" });
  return { accountId: account.id, key, keyId: apiKey.id };
}

const chat = (server: ServerProcess, key: string, stream = false) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "sentx-v1", stream, messages: [{ role: "user", content: "Hi" }] }),
  });

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe("two instances, one Redis", () => {
  it("gives exactly one 429 for 61 concurrent requests spread over both", async () => {
    const { key } = await customer();
    const responses = await Promise.all(Array.from({ length: 61 }, (_, i) => chat(i % 2 ? a : b, key)));
    const statuses = responses.map((r) => r.status);
    await Promise.all(responses.map((r) => r.text()));
    expect(count(statuses, 200)).toBe(60);
    expect(count(statuses, 429)).toBe(1);
    // The window is shared, so either instance now refuses, and says how long to wait.
    const more = await chat(a, key);
    expect(more.status).toBe(429);
    expect(Number(more.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(more.headers.get("x-ratelimit-remaining")).toBe("0");
  });

  it("stops a key revoked through one instance on the other within 1 second, though the other had it cached", async () => {
    const { key, keyId } = await customer();
    expect((await chat(b, key)).status).toBe(200); // b now holds the key in its cache
    await opsClient(a.url).keys.revoke.mutate({ keyId });
    const revokedAt = performance.now();
    const status = await eventually(() => chat(b, key).then((r) => r.status), (s) => s === 401, 2_000);
    const elapsed = performance.now() - revokedAt;
    expect(status).toBe(401);
    expect(elapsed).toBeLessThan(1_000);
  });

  it("applies a limit override set through one instance on the other at once", async () => {
    const { key, accountId } = await customer();
    expect((await chat(b, key)).headers.get("x-ratelimit-limit")).toBe("60");
    await opsClient(a.url).accounts.setLimits.mutate({ accountId, limits: { requestsPerMinute: 5 } });
    const limit = await eventually(() => chat(b, key).then((r) => r.headers.get("x-ratelimit-limit")), (l) => l === "5", 2_000);
    expect(limit).toBe("5");
  });

  it("gives exactly one 429 for 6 concurrent streams spread over both", async () => {
    upstream.set({ replyText: "one two three four five six seven eight", chunkDelayMs: 100 });
    const { key } = await customer();
    const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => chat(i % 2 ? a : b, key, true)));
    const statuses = responses.map((r) => r.status);
    await Promise.all(responses.map((r) => r.text()));
    upstream.reset();
    expect(count(statuses, 200)).toBe(5);
    expect(count(statuses, 429)).toBe(1);
    // All slots are back once the streams ended.
    const after = await Promise.all(Array.from({ length: 5 }, (_, i) => chat(i % 2 ? a : b, key, true)));
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    await Promise.all(after.map((r) => r.text()));
  });

  it("lets the slot of a stream on a crashed instance lapse within the slot TTL", async () => {
    upstream.set({ replyText: Array.from({ length: 200 }, (_, i) => `w${i}`).join(" "), chunkDelayMs: 100 });
    // The probes below may run for seconds: room for them in the minute.
    const { key } = await customer({ concurrentStreams: 1, requestsPerMinute: 10_000 });
    const held = await chat(b, key, true);
    expect(held.status).toBe(200);
    await held.body!.getReader().read(); // the stream is flowing: b holds the slot
    expect((await chat(a, key, true)).status).toBe(429);

    await b.kill();
    const killedAt = performance.now();
    upstream.reset();
    const status = await eventually(
      () => chat(a, key, true).then(async (r) => (await r.text(), r.status)),
      (s) => s === 200,
      (SLOT_TTL_SECONDS + 2) * 1000,
    );
    const lapsedAfter = performance.now() - killedAt;
    expect(status).toBe(200);
    expect(lapsedAfter).toBeLessThanOrEqual(SLOT_TTL_SECONDS * 1000 + 500);
  });
});
