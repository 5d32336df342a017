import { watch } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MAX_AUDIO_BYTES } from "../../src/domain/surfaces/transcription.js";
import { eventually } from "../support/eventually.js";
import { opsClient } from "../support/ops-client.js";
import { openSession, type Session } from "../support/realtime-client.js";
import { type RealtimeUpstream, startRealtimeUpstream } from "../support/realtime-upstream.js";
import type { ServerProcess } from "../support/server-process.js";
import { SURFACE_SPEECH_CHUNKS, silentWav, startSurfaceUpstream, type SurfaceUpstream } from "../support/surface-upstream.js";
import { type AccountBooks, accountBooks, onlyRequest, type RequestTrail } from "./support/account-books.js";
import { type FaultStack, healthz, isRunning, startFaultStack } from "./support/fault-stack.js";
import { ledgerReport } from "./support/ledger-invariants.js";

// The money paths beside chat under faults: realtime sessions (one metered
// call each, every response.done priced on its own, the running sum
// checkpointed on the hold) and the five HTTP surfaces (settled before
// delivery), through the real server process in front of the surfaces' and
// the realtime stand-ins. Each case ends on the ledger: balance = Σ ledger, no
// hold left active, every request recorded at most once and charged at most once.
//
// Already covered elsewhere, and not repeated here: one lying report per
// request or per session (test/e2e/surfaces-upstream.test.ts "an upstream
// reporting … usage", test/e2e/realtime.test.ts "bills a lying upstream's
// usage"), an upstream dropping a session and a client leaving one
// (test/e2e/realtime.test.ts), a client leaving speech mid-audio
// (test/e2e/surfaces-upstream.test.ts).

const CHECKPOINT_SECONDS = 1;
/** The upstream of a request "waiting on a slow upstream": far longer than any case here runs. */
const SLOW_ANSWER_MS = 30_000;
/** "At once": a client abort has settled the books this soon. */
const SETTLED_WITHIN_MS = 1_000;
/** A crashed process's holds expire after HOLD_TTL_SECONDS and are swept every HOLD_SWEEP_SECONDS; this is ample. */
const SWEPT_WITHIN_MS = 15_000;

// Realtime: 1,000 tokens in and 1,000 out at sentx's 300/1,000 cents per million is 1.3 → 1 cent a response.
// Two of them, each priced on its own (SPEC 5), are 2 cents; priced as one 2,000/2,000 call they would be 3.
const RESPONSE_USAGE = { input_tokens: 1_000, output_tokens: 1_000, total_tokens: 2_000 };
const TWO_RESPONSES = { cents: 2, inputTokens: 2_000, outputTokens: 2_000 };

let stack: FaultStack;
let surfaces: SurfaceUpstream;
let realtime: RealtimeUpstream;
let dataDir: string;
/** Where transcription uploads are staged: FILES_DIR (DATA_DIR/files) /staging, see src/infra/local-blob-store.ts. */
let stagingDir: string;

beforeAll(async () => {
  surfaces = await startSurfaceUpstream();
  realtime = await startRealtimeUpstream();
  dataDir = await mkdtemp(join(tmpdir(), "sentx-surface-faults-"));
  stagingDir = join(dataDir, "files", "staging");
  await mkdir(stagingDir, { recursive: true, mode: 0o700 });
  const upstream = (baseUrl: string, model: string) => ({ provider: "openai-compatible", baseUrl, model, timeoutMs: SLOW_ANSWER_MS * 2 }) as const;
  // A cent per token, per second and per character: every bill shows its units.
  const centPerUnit = { inputCentsPerMillion: 1_000_000, audioCentsPerMillionSeconds: 1_000_000, speechCentsPerMillionCharacters: 1_000_000 };
  stack = await startFaultStack({
    env: { HOLD_CHECKPOINT_SECONDS: String(CHECKPOINT_SECONDS), HOLD_TTL_SECONDS: "2", HOLD_SWEEP_SECONDS: "1", DATA_DIR: dataDir },
    models: (chatBaseUrl) => ({
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [upstream(chatBaseUrl, "llm")], capabilities: ["chat"] },
        { id: "rt-model", upstreams: [upstream(realtime.baseUrl, "upstream-rt")], capabilities: ["realtime"] },
        { id: "embed-model", upstreams: [upstream(surfaces.baseUrl, "upstream-embed")], capabilities: ["embeddings", "rerank"], pricing: centPerUnit },
        { id: "image-model", upstreams: [upstream(surfaces.baseUrl, "upstream-image")], capabilities: ["images"] },
        { id: "audio-model", upstreams: [upstream(surfaces.baseUrl, "upstream-audio")], capabilities: ["transcription", "speech"], pricing: centPerUnit },
      ],
    }),
  });
});

afterAll(async () => {
  await stack?.close();
  await surfaces?.close();
  await realtime?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  surfaces.reset();
  realtime.reset();
});

// ---------------------------------------------------------------------------
// Clients

const wsUrl = (server: ServerProcess) => `${server.url.replace(/^http/, "ws")}/v1/realtime?model=rt-model`;
const bearer = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });

/** Asks for one response and waits for the response.done the server relays back. */
async function respond(session: Session): Promise<void> {
  session.send({ type: "response.create" });
  await session.next("response.done");
}

type Surface = "embeddings" | "images" | "transcription" | "speech" | "rerank";

const PATH: Record<Surface, string> = {
  embeddings: "/v1/embeddings",
  images: "/v1/images/generations",
  transcription: "/v1/audio/transcriptions",
  speech: "/v1/audio/speech",
  rerank: "/v1/rerank",
};

const threeSeconds = silentWav(3);
const SPEECH_AUDIO = Buffer.concat(SURFACE_SPEECH_CHUNKS);

/** One small valid request of each surface: a JSON body, or the multipart form of a transcription. */
function requestBody(surface: Surface): unknown {
  switch (surface) {
    case "embeddings":
      return { model: "embed-model", input: "hello there" };
    case "images":
      return { model: "image-model", prompt: "a red square" };
    case "speech":
      return { model: "audio-model", input: "Hello there", voice: "alloy" };
    case "rerank":
      return { model: "embed-model", query: "capital of France", documents: ["Paris is the capital of France", "Berlin"] };
    case "transcription":
      return transcriptionForm(threeSeconds, "silence.wav", "audio/wav");
  }
}

function transcriptionForm(bytes: Buffer, filename: string, type: string): FormData {
  const form = new FormData();
  form.set("model", "audio-model");
  form.set("file", new Blob([new Uint8Array(bytes)], { type }), filename);
  return form;
}

/** What a client of a surface got; a send never throws, so a fault is an outcome to count. */
interface SurfaceExchange {
  surface: Surface;
  /** 0 when no HTTP answer came. */
  status: number;
  requestId: string | null;
  /** The JSON body (an answer or a refusal); undefined for audio. */
  body: any;
  /** Speech's audio, read to its end. */
  audio?: Buffer;
  aborted: boolean;
  failure: string | null;
}

async function sendSurface(
  server: ServerProcess,
  key: string,
  surface: Surface,
  { body = requestBody(surface), signal, timeoutMs = 20_000 }: { body?: unknown; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<SurfaceExchange> {
  const exchange: SurfaceExchange = { surface, status: 0, requestId: null, body: undefined, aborted: false, failure: null };
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const multipart = body instanceof FormData;
    const response = await fetch(`${server.url}${PATH[surface]}`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "x-include-cost": "1", ...(!multipart && { "content-type": "application/json" }) },
      body: multipart ? body : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    exchange.status = response.status;
    exchange.requestId = response.headers.get("x-request-id");
    if (response.headers.get("content-type")?.startsWith("application/json")) exchange.body = await response.json();
    else exchange.audio = Buffer.from(await response.arrayBuffer());
  } catch (error) {
    const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (signal?.aborted) exchange.aborted = true;
    else exchange.failure = e.name === "TimeoutError" ? e.name : (e.cause?.code ?? e.cause?.message ?? e.message ?? String(error));
  }
  return exchange;
}

/** The trail of `requestId` in `books`, if it has one. */
const trailOf = (books: AccountBooks, requestId: string | null): RequestTrail | undefined => books.requests.find((t) => t.requestId === requestId);

const stagedFiles = () => readdir(stagingDir);

/** Polls the holds table until the session's hold carries `cents` of delivered cost: the checkpoint is written. */
const checkpointed = (requestId: string, cents: number) =>
  eventually(
    async () => (await stack.sql<{ cents: string }[]>`select delivered_cost_cents::text as cents from holds where request_id = ${requestId}`)[0]?.cents,
    (value) => value === String(cents),
    CHECKPOINT_SECONDS * 5_000,
  );

/**
 * A realtime session's books after a fault ended it past two responses: the
 * hold closed as `holdStatus`, their sum charged once, recorded interrupted.
 */
const interruptedAfterTwoResponses = (requestId: string, holdStatus: "expired" | "settled"): RequestTrail => ({
  requestId,
  hold: { status: holdStatus, amountCents: expect.any(Number) },
  record: {
    status: "interrupted",
    httpStatus: 200,
    errorCode: null,
    inputTokens: TWO_RESPONSES.inputTokens,
    outputTokens: TWO_RESPONSES.outputTokens,
    costCents: TWO_RESPONSES.cents,
  },
  chargedCents: TWO_RESPONSES.cents,
  chargeKeys: [`usage:${requestId}`],
});

// ---------------------------------------------------------------------------

describe("a realtime session when its process dies", () => {
  it("kill -9 after two responses: after a restart the sweeper charges their checkpointed sum, each priced on its own, once; recorded interrupted", async () => {
    const server = await stack.startServer();
    const { accountId, key } = await stack.customer(server, 1_000);
    realtime.set({ usage: RESPONSE_USAGE });
    const session = await openSession(wsUrl(server), bearer(key));
    await respond(session);
    await respond(session);
    // The kill must come after a checkpoint carried both responses, or there is nothing to sweep but a release.
    expect(await checkpointed(session.requestId, TWO_RESPONSES.cents), "the hold's checkpointed cost").toBe(String(TWO_RESPONSES.cents));

    await server.kill();
    expect((await session.closed).code, "the client's socket was cut, without a closing handshake").toBe(1006);

    const restarted = await stack.startServer();
    const trail = await eventually(() => onlyRequest(stack.sql, accountId), (t) => t.hold?.status !== "active", SWEPT_WITHIN_MS);
    expect(trail).toEqual(interruptedAfterTwoResponses(session.requestId, "expired"));
    expect((await accountBooks(stack.sql, accountId)).balanceCents).toBe(1_000 - TWO_RESPONSES.cents);

    // The restarted process opens and bills sessions as before.
    const after = await openSession(wsUrl(restarted), bearer(key));
    await respond(after);
    after.socket.close(1000);
    await after.closed;
    const books = await eventually(() => accountBooks(stack.sql, accountId), (b) => b.heldCents === 0 && b.requests.length === 2, 5_000);
    expect(trailOf(books, after.requestId)?.record).toMatchObject({ status: "succeeded", costCents: 1 });
    await stack.printSummary("kill -9 during a realtime session", { requests: 2, faults: 1, chargedCents: trail.chargedCents });
    await stack.expectExactBooks();
    await restarted.stop();
  }, 60_000);

  it("SIGTERM: the session closes 1012, its completed responses are billed, and the process exits 0", async () => {
    const server = await stack.startServer({ SHUTDOWN_GRACE_SECONDS: "1" });
    const { accountId, key, keyId } = await stack.customer(server, 1_000);
    realtime.set({ usage: RESPONSE_USAGE });
    const session = await openSession(wsUrl(server), bearer(key));
    await respond(session);
    await respond(session);

    const exited = server.stop();
    expect(await session.closed).toEqual({ code: 1012, reason: "server_restarting" });
    expect(await exited, "exit code").toBe(0);

    const trail = await onlyRequest(stack.sql, accountId);
    expect(trail).toEqual(interruptedAfterTwoResponses(session.requestId, "settled"));
    // The upstream session was closed too, and the stream slot given back.
    expect(realtime.connections[0]?.socket.readyState).toBeGreaterThanOrEqual(2);
    expect(await stack.streamSlotsTaken([keyId])).toBe(0);
    await stack.printSummary("SIGTERM during a realtime session", { requests: 1, faults: 1, chargedCents: trail.chargedCents });
    await stack.expectExactBooks();
  }, 45_000);
});

describe("kill -9 while surface requests wait on a slow upstream", () => {
  it("after a restart nothing is charged, the sweeper releases the holds, and each request is recorded interrupted (503)", async () => {
    const server = await stack.startServer();
    const cases = ["images", "embeddings"] as const;
    const customers = await Promise.all(cases.map(() => stack.customer(server, 1_000)));
    surfaces.set({ answerDelayMs: SLOW_ANSWER_MS });
    const sending = cases.map((surface, i) => sendSurface(server, customers[i]!.key, surface));
    await eventually(async () => surfaces.requests.length, (n) => n === cases.length, 5_000);
    // Both calls are under their holds when the process dies.
    for (const { accountId } of customers) expect((await onlyRequest(stack.sql, accountId)).hold?.status).toBe("active");

    await server.kill();
    const outcomes = await Promise.all(sending);
    expect(outcomes.map((o) => o.status), "no HTTP answer reached the clients").toEqual([0, 0]);

    const restarted = await stack.startServer();
    for (const [i, { accountId }] of customers.entries()) {
      const trail = await eventually(() => onlyRequest(stack.sql, accountId), (t) => t.hold?.status !== "active", SWEPT_WITHIN_MS);
      // docs/architecture.md "How a call ends": interrupted, nothing delivered, so 503 and unbilled.
      expect(trail, cases[i]).toMatchObject({
        hold: { status: "expired" },
        record: { status: "interrupted", httpStatus: 503, errorCode: "service_unavailable", inputTokens: 0, outputTokens: 0, costCents: 0 },
        chargedCents: 0,
        chargeKeys: [],
      });
      const books = await accountBooks(stack.sql, accountId);
      expect(books.balanceCents).toBe(1_000);
      expect(books.heldCents).toBe(0);
    }
    await stack.printSummary("kill -9 during slow surface requests", { requests: cases.length, faults: 1 });
    await stack.expectExactBooks();
    await restarted.stop();
  }, 60_000);
});

describe("a request whose hold the sweeper ends while its upstream answers", () => {
  /**
   * Lets the sweeper end the account's only hold while its upstream answers.
   * Checkpoints skip a hold locked by someone else, so holding its row lock
   * past HOLD_TTL_SECONDS stops its expiry from moving, as when the process's
   * checkpoints cannot reach the database; then the sweeper ends it.
   */
  async function sweepWhileAnswering(accountId: string): Promise<void> {
    const { requestId } = await onlyRequest(stack.sql, accountId);
    await stack.sql.begin(async (tx) => {
      await tx`select 1 from holds where request_id = ${requestId} for update`;
      await sleep(3_000);
    });
    const swept = await eventually(() => onlyRequest(stack.sql, accountId), (t) => t.hold?.status !== "active", 5_000);
    expect(swept.hold?.status, "the sweeper ended the hold while the upstream answered").toBe("expired");
  }

  const interruptedUnbilled = {
    record: { status: "interrupted", httpStatus: 503, errorCode: "service_unavailable", costCents: 0 },
    chargedCents: 0,
    chargeKeys: [],
  };

  it("a surface's answer is not delivered: 503, unbilled, recorded once as interrupted", async () => {
    const server = await stack.startServer();
    const { accountId, key } = await stack.customer(server, 1_000);
    surfaces.set({ answerDelayMs: 6_000 });
    const sending = sendSurface(server, key, "embeddings");
    await eventually(async () => surfaces.requests.length, (n) => n === 1, 5_000);
    await sweepWhileAnswering(accountId);

    const outcome = await sending;
    expect({ status: outcome.status, code: outcome.body?.error?.code }).toEqual({ status: 503, code: "service_unavailable" });
    expect(await onlyRequest(stack.sql, accountId)).toMatchObject(interruptedUnbilled);
    await stack.expectExactBooks();
    await server.stop();
  }, 30_000);

  it("a chat the plan covers is not delivered either: 503, and the week gets its chat back", async () => {
    const server = await stack.startServer();
    const { accountId, key } = await stack.customer(server, 1_000);
    const ops = opsClient(server.url);
    await ops.accounts.setPlan.mutate({ accountId, plan: "free" });
    stack.upstream.set({ headersDelayMs: 6_000 });
    try {
      const sending = fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "sentx-v1", messages: [{ role: "user", content: "Hi" }] }),
      });
      await eventually(async () => stack.upstream.requests.length, (n) => n === 1, 5_000);
      expect(await ops.plans.weeklyQuota.query({ accountId }), "the chat holds its place in the week").toMatchObject({ used: 1, remaining: 49 });
      await sweepWhileAnswering(accountId);

      const outcome = await sending;
      expect({ status: outcome.status, code: ((await outcome.json()) as any).error?.code }).toEqual({ status: 503, code: "service_unavailable" });
      expect(await onlyRequest(stack.sql, accountId)).toMatchObject(interruptedUnbilled);
      expect(await ops.plans.weeklyQuota.query({ accountId }), "no chat of the week used").toMatchObject({ used: 0, remaining: 50 });
      expect((await accountBooks(stack.sql, accountId)).balanceCents).toBe(1_000);
      await stack.expectExactBooks();
    } finally {
      stack.upstream.reset();
      await server.stop();
    }
  }, 30_000);
});

describe("a client that aborts while a surface request waits on a slow upstream", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await stack.startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it.each(["embeddings", "rerank", "transcription"] as const)(
    "%s: nothing charged, the hold released at once, the upstream request aborted, nothing left staged",
    async (surface) => {
      const { accountId, key } = await stack.customer(server, 1_000);
      surfaces.set({ answerDelayMs: SLOW_ANSWER_MS });
      const abort = new AbortController();
      const sending = sendSurface(server, key, surface, { signal: abort.signal });
      await eventually(async () => surfaces.requests.length, (n) => n === 1, 5_000);
      expect((await onlyRequest(stack.sql, accountId)).hold?.status, "the call is under its hold").toBe("active");
      // Not vacuous: the upload is on disk while its upstream answers.
      if (surface === "transcription") expect(await stagedFiles()).toHaveLength(1);

      abort.abort();
      expect((await sending).aborted).toBe(true);
      await surfaces.waitForDisconnect(0, SETTLED_WITHIN_MS);
      const books = await eventually(
        () => accountBooks(stack.sql, accountId),
        (b) => b.heldCents === 0 && b.requests.every((r) => r.record),
        SETTLED_WITHIN_MS,
      );
      expect(books.heldCents).toBe(0);
      expect(books.balanceCents).toBe(1_000);
      expect(books.requests).toEqual([
        expect.objectContaining({
          hold: expect.objectContaining({ status: "released" }),
          record: expect.objectContaining({ status: "cancelled", httpStatus: 499, costCents: 0 }),
          chargedCents: 0,
          chargeKeys: [],
        }),
      ]);
      expect(await eventually(stagedFiles, (names) => names.length === 0, SETTLED_WITHIN_MS), "staged uploads left").toEqual([]);
      await stack.expectExactBooks();
    },
  );
});

describe("PostgreSQL drops the server's connections around the surfaces' settles", () => {
  const LOOPS = 10;
  const LOAD_MS = 4_000;
  const BEFORE_FAULTS_MS = 500;
  const TERMINATIONS = 10;
  const TERMINATE_EVERY_MS = 200;
  const ORDER: Surface[] = ["embeddings", "images", "transcription", "speech", "rerank"];

  it("answers each request 200 and charges it once, or 503 and charges nothing: never delivered unbilled, never charged twice", async () => {
    const server = await stack.startServer();
    const { accountId, key } = await stack.customer(server, 100_000, { requestsPerMinute: 100_000, concurrentStreams: LOOPS });
    // A cold process answers its first requests slowly; warm, the faults land on a steady flow.
    const warmUp = await Promise.all(ORDER.map((surface) => sendSurface(server, key, surface)));
    expect(warmUp.map((o) => o.status)).toEqual(ORDER.map(() => 200));
    // Each answer waits a moment under its hold, so terminations land between hold and settle as well as on them.
    surfaces.set({ answerDelayMs: 30 });

    const outcomes: SurfaceExchange[] = [];
    const deadline = performance.now() + LOAD_MS;
    const load = Promise.all(
      Array.from({ length: LOOPS }, async (_, loop) => {
        for (let iteration = 0; iteration < 300 && performance.now() < deadline; iteration++) {
          outcomes.push(await sendSurface(server, key, ORDER[(loop + iteration) % ORDER.length]!, { timeoutMs: 15_000 }));
        }
      }),
    );
    let terminated = 0;
    await sleep(BEFORE_FAULTS_MS);
    for (let i = 0; i < TERMINATIONS; i++) {
      if (i > 0) await sleep(TERMINATE_EVERY_MS);
      terminated += (await stack.sql`
        select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`).length;
    }
    await load;

    const alive = isRunning(server.pid);
    const health = await healthz(server.url);
    surfaces.set({ answerDelayMs: 0 });
    const after = await Promise.all(ORDER.map((surface) => sendSurface(server, key, surface)));
    // A settle that lost its connection may still be retrying in the background: give it time.
    await eventually(() => ledgerReport(stack.sql), (r) => r.discrepancies.length === 0 && r.activeHolds === 0, 10_000);
    const books = await accountBooks(stack.sql, accountId);

    const label = (o: SurfaceExchange) => `${o.surface} ${o.status === 0 ? `no answer (${o.failure})` : o.status} ${o.requestId ?? ""}`;
    const answered = outcomes.filter((o) => o.status === 200);
    const unavailable = outcomes.filter((o) => o.status === 503);
    await stack.printSummary("pg_terminate_backend under surface requests", {
      requests: outcomes.length,
      faults: TERMINATIONS,
      connectionsTerminated: terminated,
      answered200: answered.length,
      answered503: unavailable.length,
    });

    expect.soft(alive, "the server process is alive").toBe(true);
    expect.soft(health, "/healthz").toBe(200);
    expect.soft(after.map((o) => o.status), "a request of each surface after the faults").toEqual(ORDER.map(() => 200));
    expect.soft(outcomes.filter((o) => o.status !== 200 && o.status !== 503).map(label), "answers other than 200 and 503").toEqual([]);
    expect.soft(unavailable.filter((o) => o.body?.error?.code !== "service_unavailable").map(label), "503s not service_unavailable").toEqual([]);
    // Delivered means charged, once; the speech audio arrived whole.
    expect
      .soft(
        answered
          .filter((o) => {
            const trail = trailOf(books, o.requestId);
            return trail?.record?.status !== "succeeded" || trail.chargeKeys.length !== 1 || trail.chargedCents < 1 || trail.chargedCents !== trail.record.costCents;
          })
          .map((o) => `${label(o)}: ${JSON.stringify(trailOf(books, o.requestId) ?? "no hold, no record")}`),
        "200s not charged exactly once",
      )
      .toEqual([]);
    expect.soft(answered.filter((o) => o.surface === "speech" && !o.audio?.equals(SPEECH_AUDIO)).map(label), "speech answers cut short").toEqual([]);
    // Refused means not charged.
    expect.soft(unavailable.filter((o) => (trailOf(books, o.requestId)?.chargedCents ?? 0) !== 0).map(label), "503s that were charged").toEqual([]);
    expect.soft(books.requests.filter((t) => t.chargeKeys.length > 1).map((t) => t.requestId), "requests charged twice").toEqual([]);
    expect.soft(books.heldCents).toBe(0);
    expect.soft(await stagedFiles(), "staged uploads left").toEqual([]);
    await stack.expectExactBooks();
    await server.stop();
  }, 60_000);
});

describe("an upstream that lies about usage, under concurrency", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await stack.startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("realtime: 6 sessions at once, each response's lie billed within its bounds, each session charged its exact sum once", async () => {
    const SESSIONS = 6;
    // Per response, at 300/1,000 cents per million (rt-model's context window 128,000, maximum output 4,096):
    const LIES = [
      // absurd: clamped to 128,000 in and 4,096 out → 38.4 + 4.096 → 42 cents
      { usage: { input_tokens: 1e15, output_tokens: 1e15 }, input: 128_000, output: 4_096, cents: 42 },
      // negative input counts as 0; 2,000 out → 2 cents
      { usage: { input_tokens: -5, output_tokens: 2_000 }, input: 0, output: 2_000, cents: 2 },
      // fractional and not a number: nothing believable, so the response is not billed
      { usage: { input_tokens: 1.5, output_tokens: "lots" }, input: 0, output: 0, cents: 0 },
      // honest and tiny: the 1-cent minimum, for this response alone
      { usage: { input_tokens: 10, output_tokens: 10 }, input: 10, output: 10, cents: 1 },
      // beyond a safe integer: not a count at all, so 0, and the response is not billed
      { usage: { input_tokens: 0, output_tokens: 2 ** 60 }, input: 0, output: 0, cents: 0 },
    ];
    const expected = LIES.reduce((sum, l) => ({ input: sum.input + l.input, output: sum.output + l.output, cents: sum.cents + l.cents }), { input: 0, output: 0, cents: 0 });
    const { accountId, key } = await stack.customer(server, 10_000, { concurrentStreams: SESSIONS, requestsPerMinute: 1_000 });
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => openSession(wsUrl(server), bearer(key))));
    for (const lie of LIES) {
      realtime.set({ usage: lie.usage });
      await Promise.all(sessions.map(respond));
    }
    for (const session of sessions) session.socket.close(1000);
    await Promise.all(sessions.map((s) => s.closed));

    const books = await eventually(
      () => accountBooks(stack.sql, accountId),
      (b) => b.heldCents === 0 && b.requests.length === SESSIONS && b.requests.every((r) => r.record),
      5_000,
    );
    expect(books.requests.map((t) => [t.record?.status, t.record?.inputTokens, t.record?.outputTokens, t.record?.costCents, t.chargedCents, t.chargeKeys.length])).toEqual(
      sessions.map(() => ["succeeded", expected.input, expected.output, expected.cents, expected.cents, 1]),
    );
    expect(books.balanceCents).toBe(10_000 - SESSIONS * expected.cents);
    await stack.expectExactBooks();
  }, 30_000);

  it("realtime: absurd usage on a small balance never takes it below zero; the sessions it cannot cover close 4402, each charged once", async () => {
    const SESSIONS = 4;
    const BALANCE = 60;
    const { accountId, key } = await stack.customer(server, BALANCE, { concurrentStreams: SESSIONS, requestsPerMinute: 1_000 });
    // 42 cents a response (see above): after one each, the four sessions' next worst cases cannot all be held.
    realtime.set({ usage: { input_tokens: 1e15, output_tokens: 1e15 } });
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => openSession(wsUrl(server), bearer(key))));
    for (const session of sessions) session.send({ type: "response.create" });
    const closes = await Promise.all(
      sessions.map(async (session) => {
        const closedFirst = await Promise.race([session.closed.then(() => true), sleep(2_000, false)]);
        if (!closedFirst) session.socket.close(1000);
        return (await session.closed).code;
      }),
    );

    const books = await eventually(
      () => accountBooks(stack.sql, accountId),
      (b) => b.heldCents === 0 && b.requests.length === SESSIONS && b.requests.every((r) => r.record),
      5_000,
    );
    const charged = books.requests.reduce((sum, t) => sum + t.chargedCents, 0);
    await stack.printSummary("realtime: absurd usage on a small balance", { requests: SESSIONS, faults: SESSIONS, chargedCents: charged, closed4402: closes.filter((c) => c === 4402).length });
    expect(closes.filter((c) => c !== 4402 && c !== 1000), "close codes other than 4402 and 1000").toEqual([]);
    expect(closes.filter((c) => c === 4402).length, "sessions closed for the balance").toBeGreaterThan(0);
    expect(books.balanceCents).toBeGreaterThanOrEqual(0);
    expect(books.balanceCents).toBe(BALANCE - charged);
    for (const t of books.requests) {
      expect(t.chargeKeys.length, t.requestId).toBeLessThanOrEqual(1);
      expect(t.chargedCents, t.requestId).toBeLessThanOrEqual(42);
      expect(t.chargedCents, t.requestId).toBe(t.record?.costCents);
    }
    await stack.expectExactBooks();
  }, 30_000);

  it("embeddings and rerank: 10 concurrent requests per lie, each billed the platform's own count, once", async () => {
    const PER_LIE = 10;
    const LIES = [-5, 3.5, 1e15, 2 ** 60, "many", { tokens: 3 }, [7]];
    const { accountId, key } = await stack.customer(server, 100_000, { requestsPerMinute: 10_000 });
    // The platform's own counts, from answers with no usage reported.
    const own = {
      embeddings: (await sendSurface(server, key, "embeddings")).body?.usage?.total_tokens,
      rerank: (await sendSurface(server, key, "rerank")).body?.usage?.total_tokens,
    };
    expect(own.embeddings).toBeGreaterThan(0);
    expect(own.rerank).toBeGreaterThan(0);

    const outcomes: SurfaceExchange[] = [];
    for (const lie of LIES) {
      surfaces.set({ reportedTokens: lie as never });
      outcomes.push(
        ...(await Promise.all(Array.from({ length: PER_LIE }, (_, i) => sendSurface(server, key, i % 2 === 0 ? "embeddings" : "rerank")))),
      );
    }
    expect(outcomes.filter((o) => o.status !== 200).map((o) => `${o.surface} ${o.status} ${JSON.stringify(o.body)}`)).toEqual([]);
    // A cent a token: each answer's usage, its cost and its record agree with the platform's count.
    expect(outcomes.map((o) => [o.body.usage.total_tokens, o.body.usage.cost_cents])).toEqual(
      outcomes.map((o) => [own[o.surface as "embeddings" | "rerank"], own[o.surface as "embeddings" | "rerank"]]),
    );
    const books = await accountBooks(stack.sql, accountId);
    const billed = outcomes.map((o) => trailOf(books, o.requestId));
    expect(billed.map((t) => [t?.record?.status, t?.record?.inputTokens, t?.chargedCents, t?.chargeKeys.length])).toEqual(
      outcomes.map((o) => ["succeeded", own[o.surface as "embeddings" | "rerank"], own[o.surface as "embeddings" | "rerank"], 1]),
    );
    const total = billed.reduce((sum, t) => sum + (t?.chargedCents ?? 0), 0) + own.embeddings + own.rerank;
    expect(books.balanceCents).toBe(100_000 - total);
    expect(books.heldCents).toBe(0);
    await stack.expectExactBooks();
  }, 30_000);
});

describe("transcription uploads leave nothing staged", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await stack.startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** Records every file the staging folder sees appear while `during` runs. */
  async function watchStaging<T>(during: () => Promise<T>): Promise<{ result: T; seen: string[] }> {
    const seen: string[] = [];
    const watcher = watch(stagingDir, (_event, name) => void (name && seen.push(name)));
    try {
      const result = await during();
      // inotify reports asynchronously: let anything pending arrive.
      await sleep(100);
      return { result, seen };
    } finally {
      watcher.close();
    }
  }

  const nothingStaged = () => eventually(stagedFiles, (names) => names.length === 0, 2_000);

  it("success: 200, billed its seconds, the staged file removed", async () => {
    const { accountId, key } = await stack.customer(server, 1_000);
    const { result, seen } = await watchStaging(() => sendSurface(server, key, "transcription"));
    expect(result.status).toBe(200);
    expect(seen.length, "the upload was staged").toBeGreaterThan(0);
    expect(await nothingStaged()).toEqual([]);
    expect((await onlyRequest(stack.sql, accountId)).record).toMatchObject({ status: "succeeded", costCents: 3 });
  });

  it("400 invalid_file_format: nothing billed, the staged file removed", async () => {
    const { accountId, key } = await stack.customer(server, 1_000);
    const notAudio = transcriptionForm(Buffer.from("These are meeting notes, not audio.\n".repeat(100)), "notes.wav", "audio/wav");
    const { result, seen } = await watchStaging(() => sendSurface(server, key, "transcription", { body: notAudio }));
    expect(result.status).toBe(400);
    expect(result.body.error).toMatchObject({ code: "invalid_file_format", param: "file" });
    expect(seen.length, "the upload was staged").toBeGreaterThan(0);
    expect(await nothingStaged()).toEqual([]);
    const books = await accountBooks(stack.sql, accountId);
    expect([books.balanceCents, books.heldCents, books.requests.filter((t) => t.chargedCents > 0 || t.hold?.status === "active")]).toEqual([1_000, 0, []]);
    expect(surfaces.requests).toHaveLength(0);
  });

  it("413 file_too_large: refused while streaming, the partial file removed", async () => {
    const { accountId, key } = await stack.customer(server, 1_000);
    const tooLarge = transcriptionForm(Buffer.alloc(MAX_AUDIO_BYTES + 64 * 1024), "long.wav", "audio/wav");
    const { result, seen } = await watchStaging(() => sendSurface(server, key, "transcription", { body: tooLarge }));
    expect(result.status).toBe(413);
    expect(result.body.error).toMatchObject({ code: "file_too_large" });
    expect(seen.length, "the upload was staged").toBeGreaterThan(0);
    expect(await nothingStaged()).toEqual([]);
    const books = await accountBooks(stack.sql, accountId);
    expect([books.balanceCents, books.heldCents, books.requests.filter((t) => t.chargedCents > 0 || t.hold?.status === "active")]).toEqual([1_000, 0, []]);
    expect(surfaces.requests).toHaveLength(0);
  });

  it("402 before the body is read: the answer comes while the upload is still unsent, and the staging folder never sees a byte", async () => {
    const { accountId, key } = await stack.customer(server, 0);
    const { result, seen } = await watchStaging(() => partialUpload(server, key, { sendBytes: 64 * 1024, totalBytes: 5 * 1024 * 1024 }));
    expect(result.status).toBe(402);
    expect(JSON.parse(result.body).error).toMatchObject({ code: "insufficient_balance" });
    expect(seen, "files the staging folder saw").toEqual([]);
    expect(await stagedFiles()).toEqual([]);
    const books = await accountBooks(stack.sql, accountId);
    expect([books.balanceCents, books.heldCents, books.requests.filter((t) => t.hold)]).toEqual([0, 0, []]);
  });

  it("a client that disconnects mid-upload: the partial file removed, nothing held or billed", async () => {
    const { accountId, key } = await stack.customer(server, 1_000);
    const { result, seen } = await watchStaging(() =>
      partialUpload(server, key, { sendBytes: 1024 * 1024, totalBytes: 4 * 1024 * 1024, disconnectOnceStaged: true }),
    );
    expect(result.status, "no answer before the client left").toBe(0);
    expect(seen.length, "the upload was staged").toBeGreaterThan(0);
    expect(await nothingStaged()).toEqual([]);
    const books = await eventually(() => accountBooks(stack.sql, accountId), (b) => b.heldCents === 0, 2_000);
    expect([books.balanceCents, books.heldCents, books.requests.filter((t) => t.hold)]).toEqual([1_000, 0, []]);
    expect(surfaces.requests).toHaveLength(0);
    // The server is unharmed: the next upload goes through.
    expect((await sendSurface(server, key, "transcription")).status).toBe(200);
    await stack.expectExactBooks();
  });
});

/**
 * A transcription upload whose body is sent only in part: the form's head and
 * `sendBytes` of a `totalBytes` file, over a connection of its own. Resolves
 * with the answer that came while the rest was unsent; or, with
 * `disconnectOnceStaged`, cuts the connection once the staging folder holds
 * the partial file, and resolves with status 0.
 */
function partialUpload(
  server: ServerProcess,
  key: string,
  { sendBytes, totalBytes, disconnectOnceStaged = false }: { sendBytes: number; totalBytes: number; disconnectOnceStaged?: boolean },
): Promise<{ status: number; body: string }> {
  const boundary = "----sentx-fault-boundary";
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\naudio-model\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\nContent-Type: audio/wav\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const wav = silentWav(totalBytes / 16_000);
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}/v1/audio/transcriptions`, {
      method: "POST",
      agent: false,
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": `multipart/form-data; boundary=${boundary}`,
        "content-length": String(head.length + wav.length + tail.length),
      },
    });
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on("error", (error) => (answered ? undefined : disconnectOnceStaged ? undefined : reject(error)));
    req.write(Buffer.concat([head, wav.subarray(0, sendBytes)]));
    if (!disconnectOnceStaged) return;
    void (async () => {
      // Cut only once the server has part of the file on disk.
      const staged = await eventually(
        async () => {
          for (const name of await stagedFiles()) if ((await stat(join(stagingDir, name)).catch(() => null))?.size) return true;
          return false;
        },
        (present) => present,
        5_000,
      );
      if (!staged) return reject(new Error("the partial upload never reached the staging folder"));
      req.destroy();
      resolve({ status: 0, body: "" });
    })();
  });
}
