import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOpenAIShape } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { type SurfaceBooks, surfaceBooks } from "../support/surface-books.js";
import { silentWav } from "../support/surface-upstream.js";

// The real server with the default model table: the built-in demo provider
// answers every surface beside chat, deterministically, and each answer is
// billed at the default prices (SPEC 5's 1-cent minimum for the small ones).

let t: TestPlatform;
let books: SurfaceBooks;
beforeAll(async () => {
  t = await startTestPlatform();
  books = surfaceBooks(t);
});
afterAll(async () => {
  await books?.close();
  await t?.close();
});

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const norm = (vector: number[]) => Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));

describe("embeddings from the demo model", () => {
  it("are 256-dimensional unit vectors, the same for the same input, and billed", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).embeddings.create({ model: "sentx-v1", input: ["a red apple", "a green pear", "a red apple"] });
    expectOpenAIShape("CreateEmbeddingResponse", reply);
    expect(reply.model).toBe("sentx-v1");
    const [apple, pear, appleAgain] = reply.data.map((d) => d.embedding);
    expect(reply.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const vector of [apple!, pear!]) {
      expect(vector).toHaveLength(256);
      expect(norm(vector)).toBeCloseTo(1, 5);
    }
    expect(appleAgain).toEqual(apple);
    expect(pear).not.toEqual(apple);
    expect(reply.usage.prompt_tokens).toBeGreaterThan(0);
    expect(reply.usage.total_tokens).toBe(reply.usage.prompt_tokens);

    await books.expectBilledOnce(accountId, 100, { model: "sentx-v1", costCents: 1, endpoint: "/v1/embeddings", inputTokens: reply.usage.prompt_tokens, outputTokens: 0 });
  });

  it("answer the same vector on every call, in float and in base64 alike", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const client = t.openai(key);
    const fromBase64 = (await client.embeddings.create({ model: "sentx-v1", input: "stable" })).data[0]!.embedding;
    const again = (await client.embeddings.create({ model: "sentx-v1", input: "stable" })).data[0]!.embedding;
    const asFloats = await client.embeddings.create({ model: "sentx-v1", input: "stable", encoding_format: "float" });
    expectOpenAIShape("CreateEmbeddingResponse", asFloats);
    expect(again).toEqual(fromBase64);
    expect(asFloats.data[0]!.embedding).toHaveLength(256);
    asFloats.data[0]!.embedding.forEach((value, i) => expect(fromBase64[i]).toBeCloseTo(value, 6));

    // base64 on the wire is little-endian float32.
    const raw = await fetch(`${t.url}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "sentx-v1", input: "stable", encoding_format: "base64" }),
    });
    const encoded = (await raw.json()).data[0].embedding;
    expect(typeof encoded).toBe("string");
    const bytes = Buffer.from(encoded, "base64");
    expect(bytes.length).toBe(256 * 4);
    expect(Array.from({ length: 256 }, (_, i) => bytes.readFloatLE(i * 4))).toEqual(fromBase64);
  });

  it("honour fewer dimensions, still unit length", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).embeddings.create({ model: "sentx-v1", input: "shorter", dimensions: 64 });
    expect(reply.data[0]!.embedding).toHaveLength(64);
    expect(norm(reply.data[0]!.embedding)).toBeCloseTo(1, 5);
  });

  it("an unknown model name is served by the default model, which offers embeddings", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).embeddings.create({ model: "text-embedding-3-small", input: "fallback" });
    expect(reply.data[0]!.embedding).toHaveLength(256);
    await books.expectBilledOnce(accountId, 100, { model: "sentx-v1", costCents: 1, endpoint: "/v1/embeddings" });
  });

  it("are the same from a freshly started server", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const here = (await t.openai(key).embeddings.create({ model: "sentx-v1", input: "across restarts" })).data[0]!.embedding;
    const other = await startTestPlatform();
    try {
      const otherKey = (await other.createCustomer({ balanceCents: 100 })).key;
      const there = (await other.openai(otherKey).embeddings.create({ model: "sentx-v1", input: "across restarts" })).data[0]!.embedding;
      expect(there).toEqual(here);
    } finally {
      await other.close();
    }
  });
});

describe("images from the demo model", () => {
  it("are PNGs, the same for the same prompt, billed per image at the size's price", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).images.generate({ model: "sentx-v1", prompt: "a lighthouse", n: 2, size: "512x512" });
    expectOpenAIShape("ImagesResponse", reply);
    expect(reply.data).toHaveLength(2);
    const images = reply.data!.map((image) => Buffer.from(image.b64_json!, "base64"));
    for (const image of images) expect(image.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
    // 2 images of 512x512 at 2 cents each.
    await books.expectBilledOnce(accountId, 100, { model: "sentx-v1", costCents: 4, endpoint: "/v1/images/generations", inputTokens: 0, outputTokens: 2 });

    const again = await t.openai(key).images.generate({ model: "sentx-v1", prompt: "a lighthouse", size: "512x512" });
    expect(Buffer.from(again.data![0]!.b64_json!, "base64").equals(images[0]!)).toBe(true);
    const other = await t.openai(key).images.generate({ model: "sentx-v1", prompt: "a windmill", size: "512x512" });
    expect(Buffer.from(other.data![0]!.b64_json!, "base64").equals(images[0]!)).toBe(false);
  });

  it("come as data: URLs when asked for URLs", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const reply = await t.openai(key).images.generate({ model: "sentx-v1", prompt: "a lighthouse", response_format: "url" });
    expectOpenAIShape("ImagesResponse", reply);
    const url = reply.data![0]!.url!;
    expect(url).toMatch(/^data:image\/png;base64,/);
    expect(Buffer.from(url.slice(url.indexOf(",") + 1), "base64").subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  });
});

describe("transcription by the demo model", () => {
  it("names the audio's duration, the same each time, and bills its seconds", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const client = t.openai(key);
    const file = () => toFile(silentWav(3), "silence.wav", { type: "audio/wav" });
    const reply = await client.audio.transcriptions.create({ model: "sentx-v1", file: await file() });
    expectOpenAIShape("CreateTranscriptionResponseJson", reply);
    expect(reply.text).toMatch(/\b3(\.0+)?\s*(s|sec|secs|seconds?)\b/i);
    expect(reply.usage).toEqual({ type: "duration", seconds: 3 });
    // 3 s at 10,000 cents per million seconds is under a cent: the minimum.
    await books.expectBilledOnce(accountId, 100, { model: "sentx-v1", costCents: 1, endpoint: "/v1/audio/transcriptions", inputTokens: 3 });

    const again = await client.audio.transcriptions.create({ model: "sentx-v1", file: await file() });
    expect(again.text).toBe(reply.text);
    const asText = await client.audio.transcriptions.create({ model: "sentx-v1", file: await file(), response_format: "text" });
    expect(typeof asText).toBe("string");
    expect(asText).toContain(reply.text.trim());
  });
});

describe("speech from the demo model", () => {
  it("is a WAV whatever the format asked, the same for the same input, and billed", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const client = t.openai(key);
    const response = await client.audio.speech.create({ model: "sentx-v1", input: "Hello there", voice: "alloy", response_format: "mp3" });
    expect(response.headers.get("content-type")).toBe("audio/wav");
    const audio = Buffer.from(await response.arrayBuffer());
    expect(audio.subarray(0, 4).toString("latin1")).toBe("RIFF");
    expect(audio.subarray(8, 12).toString("latin1")).toBe("WAVE");
    await books.expectBilledOnce(accountId, 100, { model: "sentx-v1", costCents: 1, endpoint: "/v1/audio/speech", inputTokens: 11 });

    const again = await client.audio.speech.create({ model: "sentx-v1", input: "Hello there", voice: "alloy", response_format: "wav" });
    expect(Buffer.from(await again.arrayBuffer()).equals(audio)).toBe(true);
  });

  it("is raw 16-bit samples for pcm", async () => {
    const { key } = await t.createCustomer({ balanceCents: 100 });
    const response = await t.openai(key).audio.speech.create({ model: "sentx-v1", input: "Hello there", voice: "alloy", response_format: "pcm" });
    expect(response.headers.get("content-type")).toBe("audio/pcm");
    const samples = Buffer.from(await response.arrayBuffer());
    expect(samples.length).toBeGreaterThan(0);
    expect(samples.length % 2).toBe(0);
    expect(samples.subarray(0, 4).toString("latin1")).not.toBe("RIFF");
  });
});

describe("rerank by the demo model", () => {
  const rerank = async (key: string, body: unknown) => {
    const response = await fetch(`${t.url}/v1/rerank`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(200);
    return response.json();
  };
  const documents = ["Bananas are yellow and sweet.", "Berlin is the capital of Germany.", "Paris is the capital of France."];

  it("ranks the document sharing the query's words first, deterministically, and bills the tokens read", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 100 });
    const request = { model: "sentx-v1", query: "capital of France", documents, return_documents: true };
    const reply = await rerank(key, request);
    expect(reply).toEqual({
      id: expect.any(String),
      model: "sentx-v1",
      results: expect.any(Array),
      usage: { total_tokens: expect.any(Number) },
    });
    expect(reply.results.map((r: { index: number }) => r.index)).toEqual([2, 1, 0]);
    for (const result of reply.results) {
      expect(Object.keys(result).sort()).toEqual(["document", "index", "relevance_score"]);
      expect(result.relevance_score).toBeGreaterThanOrEqual(0);
      expect(result.relevance_score).toBeLessThanOrEqual(1);
      expect(result.document).toEqual({ text: documents[result.index] });
    }
    const scores = reply.results.map((r: { relevance_score: number }) => r.relevance_score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(scores[0]).toBeGreaterThan(scores[2]);
    await books.expectBilledOnce(accountId, 100, { model: "sentx-v1", costCents: 1, endpoint: "/v1/rerank", inputTokens: reply.usage.total_tokens, outputTokens: 0 });

    const again = await rerank(key, request);
    expect(again.results).toEqual(reply.results);
    const top = await rerank(key, { ...request, top_n: 1, return_documents: false });
    expect(top.results).toEqual([{ index: 2, relevance_score: scores[0] }]);
  });
});

describe("models", () => {
  it("sentx-v1 lists every surface it serves", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const list = await client.models.list();
    expectOpenAIShape("ListModelsResponse", { object: "list", data: list.data });
    const model = await client.models.retrieve("sentx-v1");
    expectOpenAIShape("Model", model);
    const capabilities = (model as unknown as { capabilities: string[] }).capabilities;
    expect(capabilities).toEqual(expect.arrayContaining(["chat", "embeddings", "images", "transcription", "speech", "rerank", "realtime"]));
    expect(list.data.find((m) => m.id === "sentx-v1")).toMatchObject({ capabilities });
  });
});
