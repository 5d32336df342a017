import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countTextTokens } from "../../src/domain/inference/tokens.js";
import { eventually } from "../support/eventually.js";
import { accountBooks } from "./support/account-books.js";
import { chatOverFetch, chatRequest, contentChunks, streamedText } from "./support/chat-over-fetch.js";
import { type FaultStack, startFaultStack } from "./support/fault-stack.js";
import { ledgerReport } from "./support/ledger-invariants.js";

// SPEC 5: a running stream's delivered usage is checkpointed on its hold, so
// when its process dies (kill -9: no clean-up at all) the sweeper of another
// process charges what was checkpointed. At most one interval of output goes
// unbilled, nothing is billed twice, nothing is billed that was not delivered.

const STREAMS = 12;
const CHECKPOINT_SECONDS = 1;
const CHUNK_DELAY_MS = 100;
// One common English word per chunk, one token each; 400 of them take 40 s, so every stream is still running at the kill.
const WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and"];
const REPLY = Array.from({ length: 400 }, (_, i) => WORDS[i % WORDS.length]).join(" ");
// Past two checkpoints, so every hold carries delivered usage when the process dies.
const RUN_BEFORE_KILL_MS = 2_500;
// The brief allows one checkpoint interval lost; half an interval more absorbs the checkpoint write's own latency.
const LOSS_ALLOWANCE_INTERVALS = 1.5;

let stack: FaultStack;

beforeAll(async () => {
  stack = await startFaultStack({
    env: { HOLD_CHECKPOINT_SECONDS: String(CHECKPOINT_SECONDS), HOLD_TTL_SECONDS: "2", HOLD_SWEEP_SECONDS: "1" },
    // No usage from the upstream: the server counts the tokens it delivered itself.
    upstream: { replyText: REPLY, chunkDelayMs: CHUNK_DELAY_MS, usage: null },
  });
});

afterAll(async () => {
  await stack?.close();
});

describe("kill -9 during 12 streams, then a restart", () => {
  it("bills each interrupted stream once, for what the client received up to the last checkpoint", async () => {
    const server = await stack.startServer();
    const { accountId, key } = await stack.customer(server, 100_000, { concurrentStreams: STREAMS, requestsPerMinute: 1_000 });

    const chat = chatOverFetch(server.url);
    const chats = Array.from({ length: STREAMS }, () => chat.start(key, chatRequest(true), { timeoutMs: 60_000 }));
    await Promise.all(chats.map((c) => c.flowing));
    expect(chats.map((c) => c.exchange.status)).toEqual(Array(STREAMS).fill(200));
    await sleep(RUN_BEFORE_KILL_MS);
    await server.kill();
    const outcomes = await Promise.all(chats.map((c) => c.ended));
    // Every stream was cut by the crash, mid-answer.
    for (const o of outcomes) {
      expect(o.completed).toBe(false);
      expect(contentChunks(o)).toBeGreaterThan(0);
    }
    const ids = outcomes.map((o) => o.requestId!);

    const restarted = await stack.startServer();
    const { activeHolds: stillActive } = await eventually(() => ledgerReport(stack.sql), (r) => r.activeHolds === 0, 15_000);
    expect.soft(stillActive, "holds still active 15 s after the restart").toBe(0);

    // The account is this test's alone, so its requests are the streams'.
    const { requests } = await accountBooks(stack.sql, accountId);
    const trailOf = (id: string | null) => requests.find((t) => t.requestId === id);
    const records = requests.flatMap((t) => t.record ?? []);
    expect.soft(ids.map((id) => (trailOf(id)?.record ? 1 : 0)), "request records per request").toEqual(Array(STREAMS).fill(1));
    expect.soft(ids.map((id) => trailOf(id)?.chargeKeys.length ?? 0), "usage charges per request").toEqual(Array(STREAMS).fill(1));
    expect.soft(requests.flatMap((t) => t.chargeKeys).sort(), "the charges' idempotency keys").toEqual(ids.map((id) => `usage:${id}`).sort());
    expect.soft(records.filter((r) => r.status !== "interrupted" || r.costCents < 1), "records not interrupted, or unbilled").toEqual([]);

    // Billed output against what each client received, from the chunk rate it saw.
    const misbilled: string[] = [];
    const unbilled: number[] = [];
    for (const o of outcomes) {
      const billed = trailOf(o.requestId)?.record?.outputTokens;
      if (billed === undefined) continue;
      const received = countTextTokens(streamedText(o));
      const chunks = contentChunks(o);
      const tokensPerMs = (received / chunks) * ((chunks - 1) / (o.lastContentAt! - o.firstContentAt!));
      const allowance = Math.ceil(tokensPerMs * LOSS_ALLOWANCE_INTERVALS * CHECKPOINT_SECONDS * 1_000);
      unbilled.push(received - billed);
      if (billed > received || billed < received - allowance) {
        misbilled.push(`${o.requestId}: billed ${billed} output tokens, received ${received}, may lose at most ${allowance}`);
      }
    }
    expect.soft(misbilled, "billed output outside [received − 1.5 intervals, received]").toEqual([]);

    // The restarted process serves as if nothing happened.
    const after = await chatOverFetch(restarted.url).send(key, chatRequest(false));
    expect.soft(after.status, "a request on the restarted server").toBe(200);

    await stack.printSummary("kill -9 during streams", {
      requests: outcomes.length + 1,
      faults: 1,
      interruptedRecords: records.filter((r) => r.status === "interrupted").length,
      charged: requests.filter((t) => t.chargeKeys.length > 0).length,
      receivedTokens: outcomes.reduce((sum, o) => sum + countTextTokens(streamedText(o)), 0),
      ...(unbilled.length > 0 && { maxUnbilledTokens: Math.max(...unbilled) }),
    });
    await stack.expectExactBooks();
  }, 60_000);
});
