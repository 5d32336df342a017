import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeEicar } from "../support/documents.js";
import { type FakeUpstream, refusedBaseUrl, startFakeUpstream } from "../support/fake-upstream.js";
import { expectOpenAIShape } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

// Every kind of body the /v1 facade sends, validated against OpenAI's published
// schemas (test/fixtures/openai): fields the `openai` SDK does without are
// required by stricter typed clients in other languages.

const MAX_BODY_BYTES = 64 * 1024;
const WEATHER_CALL = { name: "get_weather", arguments: '{"city":"Paris"}' };

/**
 * An OpenAI-compatible upstream that answers every request with a call of
 * WEATHER_CALL, in the sparse form some compatible servers use: no `refusal`,
 * no `logprobs`. The demo provider never calls tools.
 */
async function startToolCallingUpstream(): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const header = { id: "chatcmpl-tools", created: 1_700_000_000, model: "tools-llm" };
  const usage = { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 };
  const toolCall = { id: "call_1", type: "function", function: WEATHER_CALL };
  const server: Server = createServer(async (req, res) => {
    let raw = "";
    for await (const piece of req) raw += piece;
    const streamed = JSON.parse(raw).stream === true;
    if (!streamed) {
      const message = { role: "assistant", content: null, tool_calls: [toolCall] };
      res.writeHead(200, { "content-type": "application/json" });
      const choices = [{ index: 0, message, finish_reason: "tool_calls" }];
      return void res.end(JSON.stringify({ ...header, object: "chat.completion", choices, usage }));
    }
    const chunk = (choices: unknown[], extra = {}) =>
      `data: ${JSON.stringify({ ...header, object: "chat.completion.chunk", choices, ...extra })}\n\n`;
    const [head, tail] = [WEATHER_CALL.arguments.slice(0, 8), WEATHER_CALL.arguments.slice(8)];
    const opening = { index: 0, ...toolCall, function: { ...WEATHER_CALL, arguments: head } };
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(chunk([{ index: 0, delta: { role: "assistant", tool_calls: [opening] }, finish_reason: null }]));
    res.write(chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: tail } }] }, finish_reason: null }]));
    res.write(chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]));
    res.write(chunk([], { usage }));
    res.end("data: [DONE]\n\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

let t: TestPlatform;
let toolsUpstream: Awaited<ReturnType<typeof startToolCallingUpstream>>;
let brokenUpstream: FakeUpstream;

beforeAll(async () => {
  toolsUpstream = await startToolCallingUpstream();
  // Breaks its stream with bad JSON after the first word, once output has reached the client.
  brokenUpstream = await startFakeUpstream({ malformed: "json", malformedAfterChunks: 1 });
  const upstream = (baseUrl: string) => ({ provider: "openai-compatible", baseUrl, model: "upstream-llm", timeoutMs: 5_000 }) as const;
  t = await startTestPlatform({
    models: {
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [{ provider: "demo" }] },
        { id: "tools-model", upstreams: [upstream(toolsUpstream.baseUrl)] },
        { id: "broken-model", upstreams: [upstream(brokenUpstream.baseUrl)] },
        { id: "down-model", upstreams: [upstream(await refusedBaseUrl())] },
      ],
    },
    env: { MAX_BODY_BYTES: String(MAX_BODY_BYTES) },
  });
});
afterAll(async () => {
  await t.close();
  await toolsUpstream.close();
  await brokenUpstream.close();
});

const hello = { model: "sentx-v1", messages: [{ role: "user" as const, content: "Hello there" }] };
const weatherTool = {
  type: "function" as const,
  function: { name: WEATHER_CALL.name, parameters: { type: "object", properties: { city: { type: "string" } } } },
};

const customerKey = async () => (await t.createCustomer({ limits: { requestsPerMinute: 1_000 } })).key;

const postChat = (key: string | undefined, body: unknown) =>
  fetch(`${t.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key && { authorization: `Bearer ${key}` }) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** The `data:` payloads of a server-sent event stream, parsed, up to its closing [DONE]. */
async function ssePayloads(response: Response): Promise<unknown[]> {
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const events = (await response.text()).split("\n\n").filter(Boolean);
  expect(events.at(-1)).toBe("data: [DONE]");
  return events.slice(0, -1).map((event) => JSON.parse(event.replace(/^data: /, "")));
}

/** The body exactly as the SDK received it, for calls whose result the SDK wraps (pages). */
const bodyOf = async (call: { asResponse(): Promise<Response> }) => (await call.asResponse()).json();

describe("chat completions", () => {
  it.each([
    ["without cost", {}],
    ["with X-Include-Cost: 1", { "X-Include-Cost": "1" }],
  ])("a non-streamed completion is a CreateChatCompletionResponse, %s", async (_case, defaultHeaders) => {
    const reply = await t.openai(await customerKey(), { defaultHeaders }).chat.completions.create(hello);
    expectOpenAIShape("CreateChatCompletionResponse", reply);
  });

  it("a non-streamed tool call from a sparse upstream is a CreateChatCompletionResponse", async () => {
    const reply = await t.openai(await customerKey()).chat.completions.create({ ...hello, model: "tools-model", tools: [weatherTool] });
    expect(reply.choices[0]).toMatchObject({ finish_reason: "tool_calls", message: { content: null, tool_calls: [{ function: WEATHER_CALL }] } });
    expectOpenAIShape("CreateChatCompletionResponse", reply);
  });

  it.each([
    ["the demo's words", hello],
    ["a tool call's pieces", { ...hello, model: "tools-model", tools: [weatherTool] }],
  ])("every stream chunk of %s, the usage chunk included, is a CreateChatCompletionStreamResponse", async (_case, request) => {
    const chunks = await ssePayloads(await postChat(await customerKey(), { ...request, stream: true }));
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
    for (const chunk of chunks) expectOpenAIShape("CreateChatCompletionStreamResponse", chunk);
  });

  it("the SDK's stream chunks, with usage.cost_cents, are CreateChatCompletionStreamResponses", async () => {
    const client = t.openai(await customerKey(), { defaultHeaders: { "X-Include-Cost": "1" } });
    const stream = await client.chat.completions.create({ ...hello, stream: true });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.at(-1)!.usage).toMatchObject({ cost_cents: 1 });
    for (const chunk of chunks) expectOpenAIShape("CreateChatCompletionStreamResponse", chunk);
  });

  it("a stream that fails after output began ends with an error event that is an ErrorResponse", async () => {
    const response = await postChat(await customerKey(), { ...hello, model: "broken-model", stream: true });
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const events = (await response.text()).split("\n\n").filter(Boolean);
    const payloads = events.map((event) => JSON.parse(event.replace(/^data: /, "")));
    const failure = payloads.at(-1);
    expect(payloads.length).toBeGreaterThan(1);
    expect(failure).toHaveProperty("error");
    expectOpenAIShape("ErrorResponse", failure);
    for (const chunk of payloads.slice(0, -1)) expectOpenAIShape("CreateChatCompletionStreamResponse", chunk);
  });
});

describe("files", () => {
  it("upload, retrieve, list, delete and the emptied list are OpenAI's file objects", async () => {
    const client = t.openai(await customerKey());
    const uploaded = await client.files.create({ file: await toFile(Buffer.from("conformance\n"), "notes.txt"), purpose: "user_data" });
    expectOpenAIShape("OpenAIFile", uploaded);
    expectOpenAIShape("OpenAIFile", await client.files.retrieve(uploaded.id));
    const listed = await bodyOf(client.files.list());
    expect(listed.data).toHaveLength(1);
    expectOpenAIShape("ListFilesResponse", listed);
    expectOpenAIShape("DeleteFileResponse", await client.files.delete(uploaded.id));
    const emptied = await bodyOf(client.files.list());
    expect(emptied.data).toEqual([]);
    expectOpenAIShape("ListFilesResponse", emptied);
  });

  it("a file uploaded for evals, a purpose OpenAI's upload accepts, is an OpenAIFile", async () => {
    const client = t.openai(await customerKey());
    const uploaded = await client.files.create({ file: await toFile(Buffer.from("a,b\n1,2\n"), "set.csv"), purpose: "evals" });
    expectOpenAIShape("OpenAIFile", uploaded);
  });
});

describe("models", () => {
  it("the list and each model are OpenAI's model objects", async () => {
    const client = t.openai(await customerKey());
    const list = await bodyOf(client.models.list());
    expect(list.data.length).toBeGreaterThan(1);
    expectOpenAIShape("ListModelsResponse", list);
    expectOpenAIShape("Model", await client.models.retrieve("sentx-v1"));
  });
});

describe("errors", () => {
  /** A refusal's body, checked to have `status`, `code`, and OpenAI's error shape. */
  async function expectRefusal(response: Response, status: number, code: string) {
    const body = await response.json();
    expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
    expectOpenAIShape("ErrorResponse", body);
  }

  const upload = (key: string, bytes: Buffer, purpose: string) => {
    const form = new FormData();
    form.set("purpose", purpose);
    form.set("file", new Blob([new Uint8Array(bytes)]), "upload.txt");
    return fetch(`${t.url}/v1/files`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form });
  };
  const get = (key: string, path: string) => fetch(`${t.url}/v1${path}`, { headers: { authorization: `Bearer ${key}` } });

  const tooLarge = { ...hello, messages: [{ role: "user", content: "x".repeat(MAX_BODY_BYTES) }] };

  it.each<[string, number, string, () => Promise<Response>]>([
    ["a temperature out of range", 400, "invalid_request_error", async () => postChat(await customerKey(), { ...hello, temperature: 3 })],
    ["malformed JSON", 400, "invalid_request_error", async () => postChat(await customerKey(), "{not json")],
    ["an unknown file purpose", 400, "invalid_request_error", async () => upload(await customerKey(), Buffer.from("x\n"), "no-such-purpose")],
    ["no API key", 401, "invalid_api_key", async () => postChat(undefined, hello)],
    ["an unknown API key", 401, "invalid_api_key", async () => get(`sk-${"A".repeat(48)}`, "/models")],
    ["an empty balance", 402, "insufficient_balance", async () => postChat((await t.createCustomer({ balanceCents: 0 })).key, hello)],
    [
      "a model outside the key's scope",
      403,
      "model_not_allowed",
      async () => {
        const { accountId } = await t.createCustomer();
        const scoped = await t.platform.services.keys.create({ accountId, name: "scoped", allowedModels: ["tools-model"] });
        return postChat(scoped.key, hello);
      },
    ],
    ["an unknown model", 404, "not_found", async () => get(await customerKey(), "/models/no-such-model")],
    ["an unknown path", 404, "not_found", async () => get(await customerKey(), "/no-such-path")],
    ["an unknown file", 404, "file_not_found", async () => get(await customerKey(), "/files/file-AAAAAAAAAAAAAAAAAAAAAAAA")],
    ["an oversized body", 413, "request_too_large", async () => postChat(await customerKey(), tooLarge)],
    ["an infected upload", 422, "av_hit", async () => upload(await customerKey(), makeEicar(), "user_data")],
    [
      "a second request in a one-request minute",
      429,
      "rate_limit_exceeded",
      async () => {
        const { key } = await t.createCustomer({ limits: { requestsPerMinute: 1 } });
        expect((await get(key, "/models")).status).toBe(200);
        return get(key, "/models");
      },
    ],
    ["an unreachable upstream", 503, "upstream_unavailable", async () => postChat(await customerKey(), { ...hello, model: "down-model" })],
  ])("%s: %i %s is an ErrorResponse", async (_case, status, code, request) => {
    await expectRefusal(await request(), status, code);
  });
});
