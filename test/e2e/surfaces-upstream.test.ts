import { and, eq } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { usageRollups } from "../../src/domain/schema/index.js";
import { onlyRequest } from "../faults/support/account-books.js";
import { ledgerReport } from "../faults/support/ledger-invariants.js";
import { eventually } from "../support/eventually.js";
import { refusedBaseUrl } from "../support/fake-upstream.js";
import { expectOpenAIShape } from "../support/openai-schema.js";
import { opsClient } from "../support/ops-client.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";
import { type SurfaceBooks, surfaceBooks } from "../support/surface-books.js";
import {
  SURFACE_IMAGE,
  SURFACE_SPEECH_CHUNKS,
  SURFACE_TRANSCRIPT,
  silentWav,
  startSurfaceUpstream,
  surfaceEmbedding,
  type SurfaceUpstream,
} from "../support/surface-upstream.js";

// The real server in front of a real local HTTP server playing the upstream of
// the metered surfaces beside chat (SPEC 10), driven by the official SDK (and
// by fetch for rerank, which the SDK does not have). Prices are set high, so
// every bill shows its units: 1 cent per token, per second and per character.

let t: TestPlatform;
let upstream: SurfaceUpstream;
let books: SurfaceBooks;

beforeAll(async () => {
  upstream = await startSurfaceUpstream();
  const refused = await refusedBaseUrl();
  const fake = (model: string) => ({ provider: "openai-compatible", baseUrl: upstream.baseUrl, model, timeoutMs: 5000 }) as const;
  const dead = { provider: "openai-compatible", baseUrl: refused, model: "dead-model" } as const;
  const centPerUnit = {
    inputCentsPerMillion: 1_000_000,
    audioCentsPerMillionSeconds: 1_000_000,
    speechCentsPerMillionCharacters: 1_000_000,
  };
  t = await startTestPlatform({
    models: {
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [fake("upstream-chat")], capabilities: ["chat"] },
        {
          id: "embed-model",
          // Each upstream serves one of the model's capabilities: a request goes only where it is served.
          upstreams: [
            { ...fake("upstream-rerank"), capabilities: ["rerank"] },
            { ...fake("upstream-embed"), capabilities: ["embeddings"], apiKey: "upstream-secret" },
          ],
          capabilities: ["embeddings", "rerank"],
          pricing: centPerUnit,
        },
        { id: "image-model", upstreams: [fake("upstream-image")], capabilities: ["images"] },
        { id: "audio-model", upstreams: [fake("upstream-audio")], capabilities: ["transcription", "speech"], pricing: centPerUnit },
        { id: "failover-embed", upstreams: [dead, fake("upstream-embed")], capabilities: ["embeddings"], pricing: centPerUnit },
      ],
    },
  });
  books = surfaceBooks(t);
});
afterAll(async () => {
  await books?.close();
  await t?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

const db = () => t.platform.services.db;

const SURFACES = ["embeddings", "images", "transcription", "speech", "rerank"] as const;
type Surface = (typeof SURFACES)[number];

const ENDPOINT: Record<Surface, string> = {
  embeddings: "/v1/embeddings",
  images: "/v1/images/generations",
  transcription: "/v1/audio/transcriptions",
  speech: "/v1/audio/speech",
  rerank: "/v1/rerank",
};

/** The model of the table serving each surface. */
const MODEL_FOR: Record<Surface, string> = {
  embeddings: "embed-model",
  images: "image-model",
  transcription: "audio-model",
  speech: "audio-model",
  rerank: "embed-model",
};

const threeSeconds = silentWav(3);

/** Rerank through fetch: resolves with the body of a 200, rejects with `{ status, body }` otherwise. */
async function postRerank(key: string, body: unknown): Promise<any> {
  const response = await fetch(`${t.url}/v1/rerank`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const parsed = await response.json();
  if (response.status !== 200) throw { status: response.status, body: parsed };
  return parsed;
}

/** One small, valid request to each surface, with the model asked for. */
const call: Record<Surface, (key: string, model: string) => Promise<unknown>> = {
  embeddings: (key, model) => t.openai(key).embeddings.create({ model, input: "hello there" }),
  images: (key, model) => t.openai(key).images.generate({ model, prompt: "a red square" }),
  transcription: async (key, model) =>
    t.openai(key).audio.transcriptions.create({ model, file: await toFile(threeSeconds, "silence.wav", { type: "audio/wav" }) }),
  // Read to the end: the request is settled once its audio is delivered.
  speech: async (key, model) => (await t.openai(key).audio.speech.create({ model, input: "Hello there", voice: "alloy" })).arrayBuffer(),
  rerank: (key, model) => postRerank(key, { model, query: "capital of France", documents: ["Paris is the capital of France"] }),
};

/**
 * The refusal a request met, as SPEC 8 fixes it (the SDK's error or a fetch's);
 * fails the test if the request succeeded or the body is not exactly the error shape.
 */
async function refusalOf(attempt: Promise<unknown>) {
  const error: any = await attempt.then(
    () => {
      throw new Error("expected a refusal");
    },
    (e) => e,
  );
  const body = error instanceof OpenAI.APIError ? (error.error as Record<string, unknown>) : error.body?.error;
  expect(body, String(error)).toBeDefined();
  expect(Object.keys(body).sort()).toEqual(["code", "message", "param", "type"]);
  return { status: error.status, code: body.code, type: body.type, param: body.param };
}

/**
 * The refusal that `send` meets with a new customer's key, once it is known
 * that nothing reached the upstream and nothing was billed.
 */
async function refusedUnsent(send: (key: string, accountId: string) => Promise<unknown>, balanceCents = 100) {
  const { accountId, key } = await t.createCustomer({ balanceCents });
  const refused = await refusalOf(send(key, accountId));
  expect(upstream.requests).toEqual([]);
  await books.expectNothingBilled(accountId, balanceCents);
  return refused;
}

const scopedKey = async (accountId: string, allowedModels: string[]) =>
  (await opsClient(t.url).keys.create.mutate({ accountId, name: "scoped", allowedModels })).key;

describe("embeddings over an upstream", () => {
  const sentences = ["The quick brown fox jumps over the lazy dog", "Pack my box with five dozen liquor jugs"];

  it("forwards to the upstream serving embeddings, relays its vectors through the SDK's base64, and bills its usage", async () => {
    upstream.set({ reportedTokens: 12 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).embeddings.create({ model: "embed-model", input: sentences, user: "end-user-1" });

    expectOpenAIShape("CreateEmbeddingResponse", reply);
    expect(reply).toEqual({
      object: "list",
      model: "embed-model",
      data: [
        { object: "embedding", index: 0, embedding: surfaceEmbedding(0) },
        { object: "embedding", index: 1, embedding: surfaceEmbedding(1) },
      ],
      usage: { prompt_tokens: 12, total_tokens: 12 },
    });

    // The rerank-only upstream listed first is skipped; the SDK asks for base64 and the platform passes that on.
    expect(upstream.requests).toHaveLength(1);
    const sent = upstream.requests[0]!;
    expect(sent.path).toBe("/v1/embeddings");
    expect(sent.body).toMatchObject({ model: "upstream-embed", input: sentences, encoding_format: "base64" });
    expect(sent.headers.authorization).toBe("Bearer upstream-secret");

    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/embeddings", model: "embed-model", inputTokens: 12, outputTokens: 0, costCents: 12 });
  });

  it("passes encoding_format float and dimensions through and relays the data unchanged", async () => {
    upstream.set({ reportedTokens: 3 });
    const { key } = await t.createCustomer();
    const reply = await t.openai(key).embeddings.create({ model: "embed-model", input: "hello there", encoding_format: "float", dimensions: 4 });
    expectOpenAIShape("CreateEmbeddingResponse", reply);
    expect(reply.data).toEqual([{ object: "embedding", index: 0, embedding: surfaceEmbedding(0, 4) }]);
    expect(upstream.requests[0]!.body).toMatchObject({ model: "upstream-embed", encoding_format: "float", dimensions: 4 });

    // Asked for raw, base64 comes back exactly as the upstream wrote it: little-endian float32.
    const raw = await fetch(`${t.url}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "embed-model", input: "hello there", encoding_format: "base64" }),
    });
    expect(raw.status).toBe(200);
    const body = await raw.json();
    const bytes = Buffer.from(body.data[0].embedding, "base64");
    expect(Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))).toEqual(surfaceEmbedding(0));
  });

  it("forwards token arrays as they are and, with no usage reported, bills its own count of them", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const input = [
      [1, 2, 3, 4, 5],
      [6, 7, 8],
    ];
    const reply = await t.openai(key).embeddings.create({ model: "embed-model", input });
    expect(reply.usage).toEqual({ prompt_tokens: 8, total_tokens: 8 });
    expect(reply.data.map((d) => d.index)).toEqual([0, 1]);
    expect(upstream.requests[0]!.body.input).toEqual(input);
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/embeddings", model: "embed-model", inputTokens: 8, outputTokens: 0, costCents: 8 });
  });

  it.each<[string, unknown]>([
    ["negative", -5],
    ["fractional", 3.5],
    ["absurdly large", 1e15],
    ["a string", "7"],
    ["an object", { tokens: 4 }],
  ])("an upstream reporting %s usage is billed the platform's own count", async (_case, lie) => {
    upstream.set({ reportedTokens: lie as never });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).embeddings.create({ model: "embed-model", input: [Array.from({ length: 10 }, (_, i) => i + 1)] });
    expect(reply.usage).toEqual({ prompt_tokens: 10, total_tokens: 10 });
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/embeddings", model: "embed-model", inputTokens: 10, costCents: 10 });
  });

  it("a lying report on text input bills what an unreported one does", async () => {
    const texts = { model: "embed-model", input: sentences };
    const first = await t.createCustomer({ balanceCents: 100 });
    await t.openai(first.key).embeddings.create(texts);
    const counted = (await onlyRequest(books.sql, first.accountId)).record!;
    expect(counted.inputTokens).toBeGreaterThan(10);
    expect(counted.inputTokens).toBeLessThan(40);

    upstream.set({ reportedTokens: Number.MAX_SAFE_INTEGER });
    const second = await t.createCustomer({ balanceCents: 100 });
    await t.openai(second.key).embeddings.create(texts);
    await books.expectBilledOnce(second.accountId, 100, {
      endpoint: "/v1/embeddings",
      model: "embed-model",
      inputTokens: counted.inputTokens,
      costCents: counted.costCents,
    });
  });

  it("a report of zero tokens is believed, and the request costs the 1-cent minimum", async () => {
    upstream.set({ reportedTokens: 0 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    await t.openai(key).embeddings.create({ model: "embed-model", input: "hello there" });
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/embeddings", model: "embed-model", inputTokens: 0, costCents: 1 });
  });

  it("an unknown model name goes to the first model offering embeddings", async () => {
    upstream.set({ reportedTokens: 2 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    await t.openai(key).embeddings.create({ model: "text-embedding-3-small", input: "hello there" });
    expect(upstream.requests[0]!.body.model).toBe("upstream-embed");
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/embeddings", model: "embed-model", costCents: 2 });
  });

  it("falls over from a refused connection to the next upstream", async () => {
    upstream.set({ reportedTokens: 2 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).embeddings.create({ model: "failover-embed", input: "hello there" });
    expect(reply.data[0]!.embedding).toEqual(surfaceEmbedding(0));
    expect(upstream.requests).toHaveLength(1);
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/embeddings", model: "failover-embed", costCents: 2 });
  });

  it.each<[string, Record<string, unknown>]>([
    ["2049 inputs", { input: Array.from({ length: 2049 }, () => "a") }],
    ["an empty string", { input: "" }],
    ["an empty string among others", { input: ["fine", ""] }],
    ["no input", {}],
    ["no model", { model: undefined, input: "hello" }],
    ["an unknown encoding_format", { input: "hello", encoding_format: "hex" }],
  ])("%s is 400 and nothing is sent or billed", async (_case, fields) => {
    const refused = await refusedUnsent((key) => t.openai(key).embeddings.create({ model: "embed-model", ...fields } as never));
    expect(refused).toMatchObject({ status: 400, type: "invalid_request_error" });
  });

  it("2048 inputs are accepted", async () => {
    upstream.set({ reportedTokens: 2048 });
    const { key } = await t.createCustomer({ balanceCents: 5000 });
    const reply = await t.openai(key).embeddings.create({ model: "embed-model", input: Array.from({ length: 2048 }, () => "a") });
    expect(reply.data).toHaveLength(2048);
  });
});

describe("image generation over an upstream", () => {
  it("forwards the request and bills n images at the size's price; the record counts images as output", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).images.generate({
      model: "image-model",
      prompt: "a lighthouse at dusk",
      n: 3,
      size: "1024x1024",
      quality: "hd",
      style: "vivid",
      response_format: "b64_json",
    });
    expectOpenAIShape("ImagesResponse", reply);
    expect(reply.data).toHaveLength(3);
    for (const image of reply.data!) {
      expect(Buffer.from(image.b64_json!, "base64").equals(SURFACE_IMAGE)).toBe(true);
      expect(image.revised_prompt).toBe("A picture of: a lighthouse at dusk");
    }
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]!.path).toBe("/v1/images/generations");
    expect(upstream.requests[0]!.body).toMatchObject({
      model: "upstream-image",
      prompt: "a lighthouse at dusk",
      n: 3,
      size: "1024x1024",
      quality: "hd",
      style: "vivid",
      response_format: "b64_json",
    });
    // The default prices: 4 cents a 1024x1024 image.
    await books.expectBilledOnce(accountId, 100, {
      endpoint: "/v1/images/generations",
      model: "image-model",
      inputTokens: 0,
      outputTokens: 3,
      costCents: 12,
    });
  });

  it("defaults to one 1024x1024 image and relays URLs", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).images.generate({ model: "image-model", prompt: "a cat", response_format: "url" });
    expectOpenAIShape("ImagesResponse", reply);
    expect(reply.data).toEqual([{ url: `${upstream.baseUrl}/generated/0.png`, revised_prompt: "A picture of: a cat" }]);
    expect(upstream.requests[0]!.body).toMatchObject({ model: "upstream-image", response_format: "url" });
    expect([undefined, 1]).toContain(upstream.requests[0]!.body.n);
    expect([undefined, "1024x1024"]).toContain(upstream.requests[0]!.body.size);
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/images/generations", model: "image-model", outputTokens: 1, costCents: 4 });
  });

  it("prices each size from the model's table", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    await t.openai(key).images.generate({ model: "image-model", prompt: "a tall tower", n: 2, size: "1024x1792" });
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/images/generations", model: "image-model", outputTokens: 2, costCents: 16 });
  });

  it.each<[string, Record<string, unknown>, string | null]>([
    ["a size the model has no price for", { size: "640x480" }, "size"],
    ["n = 0", { n: 0 }, null],
    ["n = 11", { n: 11 }, null],
    ["n = 1.5", { n: 1.5 }, null],
    ["a prompt over 32000 characters", { prompt: "x".repeat(32_001) }, null],
    ["an empty prompt", { prompt: "" }, null],
    ["no prompt", { prompt: undefined }, null],
    ["an unknown response_format", { response_format: "gif" }, null],
  ])("%s is 400 and nothing is sent or billed", async (_case, fields, param) => {
    const refused = await refusedUnsent((key) => t.openai(key).images.generate({ model: "image-model", prompt: "a cat", ...fields } as never));
    expect(refused).toMatchObject({ status: 400, type: "invalid_request_error" });
    if (param) expect(refused.param).toBe(param);
  });

  it("a prompt of exactly 32000 characters is accepted", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).images.generate({ model: "image-model", prompt: "x".repeat(32_000) });
    expect(reply.data).toHaveLength(1);
  });

  it("402 when the balance cannot cover all n images: never fewer images, nothing sent", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 11 });
    const refused = await refusalOf(t.openai(key).images.generate({ model: "image-model", prompt: "a cat", n: 3 }));
    expect(refused).toEqual({ status: 402, code: "insufficient_balance", type: "insufficient_balance", param: null });
    expect(upstream.requests).toEqual([]);
    await books.expectNothingBilled(accountId, 11);

    // What the balance does cover goes through, to the cent.
    await t.openai(key).images.generate({ model: "image-model", prompt: "a cat", n: 2 });
    await books.expectBilledOnce(accountId, 11, { endpoint: "/v1/images/generations", model: "image-model", outputTokens: 2, costCents: 8 });
  });
});

describe("audio transcription over an upstream", () => {
  it("forwards the audio and fields as multipart and bills the file's own duration", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).audio.transcriptions.create({
      model: "audio-model",
      file: await toFile(threeSeconds, "three-seconds.wav", { type: "audio/wav" }),
      language: "en",
      prompt: "A quiet room.",
      temperature: 0.2,
    });
    expectOpenAIShape("CreateTranscriptionResponseJson", reply);
    expect(reply).toEqual({ text: SURFACE_TRANSCRIPT, usage: { type: "duration", seconds: 3 } });

    expect(upstream.requests).toHaveLength(1);
    const { path, form } = upstream.requests[0]!;
    expect(path).toBe("/v1/audio/transcriptions");
    expect(form!.fields).toMatchObject({ model: "upstream-audio", language: "en", prompt: "A quiet room.", temperature: "0.2" });
    expect(form!.file!.field).toBe("file");
    expect(form!.file!.filename).toMatch(/\.wav$/);
    expect(form!.file!.bytes.equals(threeSeconds)).toBe(true);

    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/audio/transcriptions", model: "audio-model", inputTokens: 3, costCents: 3 });
  });

  it("rounds a part second up, and bills the file's duration whatever the upstream reports", async () => {
    upstream.set({ reportedSeconds: 999 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    await t.openai(key).audio.transcriptions.create({ model: "audio-model", file: await toFile(silentWav(2.5), "short.wav") });
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/audio/transcriptions", model: "audio-model", inputTokens: 3, costCents: 3 });
  });

  it.each(["text", "srt", "vtt"] as const)("response_format %s comes back as the upstream's text", async (format) => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).audio.transcriptions.create({
      model: "audio-model",
      file: await toFile(threeSeconds, "silence.wav"),
      response_format: format,
    });
    expect(typeof reply).toBe("string");
    expect(reply).toContain(SURFACE_TRANSCRIPT);
    if (format === "vtt") expect(reply).toMatch(/^WEBVTT/);
    expect(upstream.requests[0]!.form!.fields.response_format).toBe(format);
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/audio/transcriptions", model: "audio-model", inputTokens: 3, costCents: 3 });
  });

  it("response_format verbose_json comes back as OpenAI's verbose transcription", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).audio.transcriptions.create({
      model: "audio-model",
      file: await toFile(threeSeconds, "silence.wav"),
      response_format: "verbose_json",
    });
    expectOpenAIShape("CreateTranscriptionResponseVerboseJson", reply);
    expect(reply).toMatchObject({ text: SURFACE_TRANSCRIPT, language: "english", duration: 3 });
    expect(upstream.requests[0]!.form!.fields.response_format).toBe("verbose_json");
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/audio/transcriptions", model: "audio-model", inputTokens: 3, costCents: 3 });
  });

  it("a file that is not readable audio is 400 invalid_file_format; nothing sent or billed", async () => {
    const file = await toFile(Buffer.from("these are not the samples you are looking for\n".repeat(50)), "notes.wav", { type: "audio/wav" });
    const refused = await refusedUnsent((key) => t.openai(key).audio.transcriptions.create({ model: "audio-model", file }));
    expect(refused).toMatchObject({ status: 400, code: "invalid_file_format", type: "invalid_request_error" });
  });

  it("a file over 25 MB is 413 file_too_large; nothing sent or billed", async () => {
    const big = silentWav((26 * 1024 * 1024) / 16_000); // 26 MiB of 8 kHz 16-bit silence
    expect(big.length).toBeGreaterThan(26 * 1024 * 1024);
    const file = await toFile(big, "long.wav");
    const refused = await refusedUnsent((key) => t.openai(key).audio.transcriptions.create({ model: "audio-model", file }));
    expect(refused).toMatchObject({ status: 413, code: "file_too_large", type: "invalid_request_error" });
  });

  it.each<[string, Record<string, unknown>]>([
    ["no file", { file: undefined }],
    ["an unknown response_format", { response_format: "docx" }],
    ["no model", { model: undefined }],
  ])("%s is 400 and nothing is sent or billed", async (_case, fields) => {
    const file = await toFile(threeSeconds, "silence.wav");
    const refused = await refusedUnsent((key) => t.openai(key).audio.transcriptions.create({ model: "audio-model", file, ...fields } as never));
    expect(refused).toMatchObject({ status: 400, type: "invalid_request_error" });
  });
});

describe("speech over an upstream", () => {
  it("streams the upstream's audio back with its content type and bills the characters", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const response = await t.openai(key).audio.speech.create({
      model: "audio-model",
      input: "Hello there",
      voice: "alloy",
      response_format: "mp3",
      speed: 1.5,
      instructions: "Speak warmly.",
    });
    expect(response.headers.get("content-type")).toBe("audio/mpeg");
    expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.concat(SURFACE_SPEECH_CHUNKS))).toBe(true);

    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]!.path).toBe("/v1/audio/speech");
    expect(upstream.requests[0]!.body).toMatchObject({
      model: "upstream-audio",
      input: "Hello there",
      voice: "alloy",
      response_format: "mp3",
      speed: 1.5,
      instructions: "Speak warmly.",
    });
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/audio/speech", model: "audio-model", inputTokens: 11, costCents: 11 });
  });

  it("relays whatever content type the upstream answers", async () => {
    upstream.set({ speechContentType: "audio/flac", speechChunks: [Buffer.from("fLaC"), Buffer.from("-frames")] });
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const response = await t.openai(key).audio.speech.create({ model: "audio-model", input: "Hi", voice: "alloy", response_format: "flac" });
    expect(response.headers.get("content-type")).toBe("audio/flac");
    expect(await response.text()).toBe("fLaC-frames");
  });

  it("is charged before its first byte reaches the client", async () => {
    const release = upstream.stallSpeech();
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const response = await t.openai(key).audio.speech.create({ model: "audio-model", input: "Hello there", voice: "alloy" });
    const reader = response.body!.getReader();
    const received = [Buffer.from((await reader.read()).value!)];
    expect(received[0]!.length).toBeGreaterThan(0);

    // The upstream is holding the rest back: the debit is already in the ledger.
    const midStream = await moneyState(db(), accountId);
    expect(midStream.usageEntries).toEqual([expect.objectContaining({ amountCents: -11 })]);
    expect(midStream).toMatchObject({ balanceCents: 89, ledgerSumCents: 89 });

    release();
    for (let part = await reader.read(); !part.done; part = await reader.read()) received.push(Buffer.from(part.value));
    expect(Buffer.concat(received).equals(Buffer.concat(SURFACE_SPEECH_CHUNKS))).toBe(true);
    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/audio/speech", model: "audio-model", inputTokens: 11, costCents: 11 });
  });

  it("a client leaving mid-audio is billed in full, once, and nothing stays held", async () => {
    upstream.stallSpeech();
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const response = await t.openai(key).audio.speech.create({ model: "audio-model", input: "Hello there", voice: "alloy" });
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    const money = await eventually(
      () => moneyState(db(), accountId),
      (m) => m.heldCents === 0,
    );
    expect(money).toMatchObject({ balanceCents: 89, heldCents: 0, ledgerSumCents: 89 });
    expect(money.usageEntries).toEqual([expect.objectContaining({ amountCents: -11 })]);
  });

  it("4096 characters are accepted; at a cent each the bill stops at SPEC 5's 500-cent maximum", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 5000 });
    const response = await t.openai(key).audio.speech.create({ model: "audio-model", input: "a".repeat(4096), voice: "alloy" });
    await response.arrayBuffer();
    await books.expectBilledOnce(accountId, 5000, { endpoint: "/v1/audio/speech", model: "audio-model", inputTokens: 4096, costCents: 500 });
  });

  it.each<[string, Record<string, unknown>]>([
    ["an empty input", { input: "" }],
    ["4097 characters", { input: "a".repeat(4097) }],
    ["no voice", { voice: undefined }],
    ["a speed of 0.2", { speed: 0.2 }],
    ["a speed of 4.5", { speed: 4.5 }],
    ["an unknown response_format", { response_format: "wma" }],
  ])("%s is 400 and nothing is sent or billed", async (_case, fields) => {
    const refused = await refusedUnsent((key) =>
      t.openai(key).audio.speech.create({ model: "audio-model", input: "Hello there", voice: "alloy", ...fields } as never),
    );
    expect(refused).toMatchObject({ status: 400, type: "invalid_request_error" });
  });
});

describe("rerank over an upstream", () => {
  const query = "What is the capital city of France?";
  const documents = [
    "Berlin is the capital and largest city of Germany.",
    "Paris is the capital and most populous city of France.",
    "France is famous for its wine, its cheese and its bread.",
  ];

  it("forwards to the upstream serving rerank and answers sorted results, top_n of them, with documents when asked", async () => {
    upstream.set({ rerankScores: [0.2, 0.9, 0.5], reportedTokens: 9 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await postRerank(key, { model: "embed-model", query, documents, top_n: 2, return_documents: true });
    expect(reply).toEqual({
      id: expect.any(String),
      model: "embed-model",
      results: [
        { index: 1, relevance_score: 0.9, document: { text: documents[1] } },
        { index: 2, relevance_score: 0.5, document: { text: documents[2] } },
      ],
      usage: { total_tokens: 9 },
    });

    expect(upstream.requests).toHaveLength(1);
    const sent = upstream.requests[0]!;
    expect(sent.path).toBe("/v1/rerank");
    expect(sent.body).toMatchObject({ model: "upstream-rerank", query, top_n: 2 });
    expect(sent.body.documents.map((d: unknown) => (typeof d === "string" ? d : (d as { text: string }).text))).toEqual(documents);
    expect(sent.headers.authorization).toBeUndefined(); // that upstream has no key; the client's never travels

    await books.expectBilledOnce(accountId, 100, { endpoint: "/v1/rerank", model: "embed-model", inputTokens: 9, outputTokens: 0, costCents: 9 });
  });

  it("takes {text} documents and leaves documents out unless asked", async () => {
    upstream.set({ rerankScores: [0.1, 0.7, 0.3], reportedTokens: 5 });
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await postRerank(key, { model: "embed-model", query, documents: documents.map((text) => ({ text })) });
    expect(reply.results).toEqual([
      { index: 1, relevance_score: 0.7 },
      { index: 2, relevance_score: 0.3 },
      { index: 0, relevance_score: 0.1 },
    ]);
  });

  it("sorts and cuts an upstream's answer that ignores top_n and order", async () => {
    upstream.set({ rerankScores: [0.2, 0.9, 0.5], rerankUnsorted: true, reportedTokens: 5 });
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await postRerank(key, { model: "embed-model", query, documents, top_n: 2 });
    expect(reply.results).toEqual([
      { index: 1, relevance_score: 0.9 },
      { index: 2, relevance_score: 0.5 },
    ]);
  });

  it.each<[string, unknown]>([
    ["negative", -3],
    ["fractional", 2.5],
    ["absurdly large", 1e12],
    ["a string", "9"],
  ])("an upstream reporting %s usage is billed the platform's own count of query and documents", async (_case, lie) => {
    const request = { model: "embed-model", query, documents };
    const honest = await t.createCustomer({ balanceCents: 100 });
    const counted = await postRerank(honest.key, request); // no usage reported: the platform counts
    const countedRecord = (await onlyRequest(books.sql, honest.accountId)).record!;
    expect(counted.usage).toEqual({ total_tokens: countedRecord.inputTokens });
    expect(countedRecord.inputTokens).toBeGreaterThan(20);
    expect(countedRecord.inputTokens).toBeLessThan(100);

    upstream.set({ reportedTokens: lie as never });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await postRerank(key, request);
    expect(reply.usage).toEqual({ total_tokens: countedRecord.inputTokens });
    await books.expectBilledOnce(accountId, 100, {
      endpoint: "/v1/rerank",
      model: "embed-model",
      inputTokens: countedRecord.inputTokens,
      outputTokens: 0,
      costCents: countedRecord.inputTokens,
    });
  });

  it.each<[string, Record<string, unknown>]>([
    ["no documents", { documents: [] }],
    ["1001 documents", { documents: Array.from({ length: 1001 }, (_, i) => `document ${i}`) }],
    ["no query", { query: undefined }],
    ["documents that are not text", { documents: [1, 2] }],
    ["no model", { model: undefined }],
    ["a negative top_n", { top_n: -1 }],
  ])("%s is 400 and nothing is sent or billed", async (_case, fields) => {
    const refused = await refusedUnsent((key) => postRerank(key, { model: "embed-model", query, documents, ...fields }));
    expect(refused).toMatchObject({ status: 400, type: "invalid_request_error" });
  });

  it("1000 documents are accepted", async () => {
    upstream.set({ reportedTokens: 3000 });
    const { key } = await t.createCustomer({ balanceCents: 5000 });
    const reply = await postRerank(key, { model: "embed-model", query, documents: Array.from({ length: 1000 }, (_, i) => `doc ${i}`), top_n: 3 });
    expect(reply.results).toHaveLength(3);
  });
});

describe("routing, scopes and refusals on every surface", () => {
  it.each(SURFACES)("%s: a model of the table without the capability is 400 param model; nothing sent or billed", async (surface) => {
    const refused = await refusedUnsent((key) => call[surface](key, "sentx-v1"));
    expect(refused).toEqual({ status: 400, code: expect.any(String), type: "invalid_request_error", param: "model" });
  });

  it.each(SURFACES)("%s: a key scoped to other models is 403 model_not_allowed; nothing sent or billed", async (surface) => {
    const refused = await refusedUnsent(async (_key, accountId) => call[surface](await scopedKey(accountId, ["sentx-v1"]), MODEL_FOR[surface]));
    expect(refused).toMatchObject({ status: 403, code: "model_not_allowed", type: "permission_error" });
  });

  it.each(SURFACES)("%s: a key scoped to the surface's model is served", async (surface) => {
    const { accountId } = await t.createCustomer({ balanceCents: 100 });
    const key = await scopedKey(accountId, [MODEL_FOR[surface]]);
    await call[surface](key, MODEL_FOR[surface]);
    expect(upstream.requests).toHaveLength(1);
    const trail = await onlyRequest(books.sql, accountId);
    expect(trail.chargedCents).toBeGreaterThan(0);
    expect(await requestRow(db(), trail.requestId)).toMatchObject({ endpoint: ENDPOINT[surface], model: MODEL_FOR[surface] });
  });

  it.each(SURFACES)("%s: a key with no balance is 402 insufficient_balance and nothing reaches the upstream", async (surface) => {
    const refused = await refusedUnsent((key) => call[surface](key, MODEL_FOR[surface]), 0);
    expect(refused).toEqual({ status: 402, code: "insufficient_balance", type: "insufficient_balance", param: null });
  });

  it.each(SURFACES)("%s: an upstream failing with 500 every time is 502/503 and nothing is billed", async (surface) => {
    upstream.failNext(500, 100);
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const refused = await refusalOf(call[surface](key, MODEL_FOR[surface]));
    expect([
      { status: 502, code: "upstream_error" },
      { status: 503, code: "upstream_unavailable" },
    ]).toContainEqual({ status: refused.status, code: refused.code });
    expect(refused.type).toBe("server_error");
    expect(upstream.requests.length).toBeGreaterThan(0);
    await books.expectNothingBilled(accountId, 100);
  });

  it.each(SURFACES)("%s: a 500 before the first byte is retried, and the request is billed once", async (surface) => {
    upstream.failNext(500, 1);
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    await call[surface](key, MODEL_FOR[surface]);
    expect(upstream.requests).toHaveLength(2);
    const trail = await onlyRequest(books.sql, accountId);
    expect(trail.chargeKeys).toHaveLength(1);
    expect(trail.chargedCents).toBeGreaterThan(0);
  });

  it("billed requests reach the usage rollups", async () => {
    upstream.set({ reportedTokens: 4 });
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    await t.openai(key).embeddings.create({ model: "embed-model", input: "hello there" });
    await t.openai(key).images.generate({ model: "image-model", prompt: "a cat", n: 2 });
    await (await t.openai(key).audio.speech.create({ model: "audio-model", input: "Hello", voice: "alloy" })).arrayBuffer();

    const rollups = await db()
      .select()
      .from(usageRollups)
      .where(and(eq(usageRollups.accountId, accountId), eq(usageRollups.grain, "key_model_hour")));
    const byModel = Object.fromEntries(rollups.map((r) => [r.model, { requests: r.requests, costCents: r.costCents }]));
    expect(byModel).toEqual({
      "embed-model": { requests: 1, costCents: 4 },
      "image-model": { requests: 1, costCents: 8 },
      "audio-model": { requests: 1, costCents: 5 },
    });
    expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 83, heldCents: 0, ledgerSumCents: 83 });
  });
});

describe("models", () => {
  it("lists every model with its capabilities, in OpenAI's shape", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const list = await client.models.list();
    expectOpenAIShape("ListModelsResponse", { object: "list", data: list.data });
    const capabilities = Object.fromEntries(list.data.map((m) => [m.id, (m as unknown as { capabilities: string[] }).capabilities]));
    expect(capabilities).toEqual({
      "sentx-v1": ["chat"],
      "embed-model": ["embeddings", "rerank"],
      "image-model": ["images"],
      "audio-model": ["transcription", "speech"],
      "failover-embed": ["embeddings"],
    });
    const audio = await client.models.retrieve("audio-model");
    expectOpenAIShape("Model", audio);
    expect(audio).toMatchObject({ id: "audio-model", object: "model", capabilities: ["transcription", "speech"] });
  });
});

describe("a table where no model offers the surfaces", () => {
  let chatOnly: TestPlatform;
  beforeAll(async () => {
    chatOnly = await startTestPlatform({
      models: { defaultModel: "sentx-v1", models: [{ id: "sentx-v1", upstreams: [{ provider: "demo" }], capabilities: ["chat"] }] },
    });
  });
  afterAll(() => chatOnly?.close());

  it.each(SURFACES)("%s: 404 model_not_found for any model name; nothing billed", async (surface) => {
    const { accountId, key } = await chatOnly.createCustomer({ balanceCents: 100 });
    const client = chatOnly.openai(key);
    const calls: Record<Surface, (model: string) => Promise<unknown>> = {
      embeddings: (model) => client.embeddings.create({ model, input: "hello" }),
      images: (model) => client.images.generate({ model, prompt: "a cat" }),
      transcription: async (model) => client.audio.transcriptions.create({ model, file: await toFile(threeSeconds, "silence.wav") }),
      speech: (model) => client.audio.speech.create({ model, input: "Hello", voice: "alloy" }),
      rerank: async (model) => {
        const response = await fetch(`${chatOnly.url}/v1/rerank`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ model, query: "q", documents: ["d"] }),
        });
        if (response.status !== 200) throw { status: response.status, body: await response.json() };
      },
    };
    for (const model of ["sentx-v1", "no-such-model"]) {
      expect(await refusalOf(calls[surface](model))).toMatchObject({ status: 404, code: "model_not_found", type: "not_found_error" });
    }
    expect(await moneyState(chatOnly.platform.services.db, accountId)).toMatchObject({ balanceCents: 100, heldCents: 0, usageEntries: [] });
  });
});

describe("the books", () => {
  it("after every request above: balance = Σ ledger on every account, one charge per billed request matching its record, no hold active", async () => {
    const report = await ledgerReport(books.sql);
    expect(report.discrepancies).toEqual([]);
    expect(report.activeHolds).toBe(0);
    expect(report.chargedRequests).toBeGreaterThan(20);
  });
});
