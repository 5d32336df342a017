import { request } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { toFile } from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_ATTACHED_DOCUMENT_CHARACTERS, MAX_ATTACHED_MEDIA_BYTES } from "../../src/domain/inference/attachments.js";
import {
  MAX_ATTACHMENT_PARTS_PER_REQUEST,
  MAX_CONTENT_PARTS_PER_MESSAGE,
  MAX_CONTENT_PARTS_PER_REQUEST,
} from "../../src/domain/inference/content-parts.js";
import { MAX_IDENTIFIER_LENGTH, MAX_MESSAGES_PER_REQUEST } from "../../src/rest/openai/chat-schema.js";
import { MAX_JSON_DEPTH } from "../../src/domain/json-depth.js";
import { makePng } from "../support/documents.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState } from "../support/queries.js";

// Hostile chat requests, as an outside tester sent them, against the real
// server in this process: each must be a cheap 4xx (or an honest answer),
// refused before anything large is read, decoded or tokenized, and none may
// hold the event loop more than STALL_LIMIT_MS. The server runs in this
// process (test/support/platform.ts), so monitorEventLoopDelay sees its loop.

// Decoding and JSON-parsing a 19 MB body is one synchronous step the server cannot slice: on this
// 2-core machine it alone holds the loop 180–220 ms. The bound is twice that, so it fails on what it
// is for (a tokenizer or a check that holds the loop for the length of the input: seconds) and not on
// the parse's ordinary spread.
const STALL_LIMIT_MS = 400;
const MiB = 1024 * 1024;

let t: TestPlatform;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  t = await startTestPlatform({
    models: {
      models: [
        { id: "sentx-v1", upstreams: [{ provider: "demo" }] },
        { id: "upstream-llm", upstreams: [{ provider: "openai-compatible" as const, baseUrl: upstream.baseUrl, model: "llm" }] },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());
afterEach(() => vi.restoreAllMocks());

const db = () => t.platform.services.db;

/** The longest the event loop of this process (the server's) was held while `work` ran. */
async function stallDuring<T>(work: () => Promise<T>): Promise<{ result: T; stallMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  try {
    const result = await work();
    return { result, stallMs: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}

interface Answer {
  status: number;
  error?: { code: string; type: string; param: string | null; message: string };
  usage?: { prompt_tokens: number };
}

/**
 * POSTs a body serialized beforehand, with node:http: this process's own
 * work as the client (serializing, fetch copying a body of megabytes) must
 * not count as the server's stall.
 */
function post(key: string, body: string | Buffer): Promise<Answer> {
  const bytes = typeof body === "string" ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const headers = { "content-type": "application/json", "content-length": bytes.length, authorization: `Bearer ${key}` };
    const req = request(`${t.url}/v1/chat/completions`, { method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, ...JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(bytes);
  });
}

/** Sends `body`, expecting the refusal; asserts the stall bound on the way. */
async function expectRefused(key: string, body: string, expected: { status: number; code: string; param: string | null }) {
  const { result, stallMs } = await stallDuring(() => post(key, body));
  expect({ status: result.status, code: result.error?.code, param: result.error?.param }).toEqual(expected);
  expect(stallMs).toBeLessThan(STALL_LIMIT_MS);
  return result.error!;
}

const ask = (model: string, content: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model, messages: [{ role: "user", content }], ...extra });

const invalid = (param: string | null) => ({ status: 400, code: "invalid_request_error", param });

/** A new customer's 500 cents, nothing held, nothing charged. */
const expectUntouched = async (accountId: string) =>
  expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 500, heldCents: 0, usageEntries: [] });

/** `length` letters from a fixed pseudo-random sequence: no spaces, no piece like another. */
function letters(length: number, seed = 1): string {
  let state = seed;
  const codes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 48271) + 11) >>> 0;
    codes[i] = 97 + (state % 26);
  }
  return Buffer.from(codes).toString("latin1");
}

describe("JSON nested beyond MAX_JSON_DEPTH", () => {
  // Written out, not serialized: JSON.stringify itself overflows at this depth.
  const nested = (levels: number) => `${"[".repeat(levels)}"x"${"]".repeat(levels)}`;
  const hello = '"messages":[{"role":"user","content":"hi"}]';

  it.each([
    ["tool_choice", `{"model":"upstream-llm",${hello},"tool_choice":${nested(5_000)}}`],
    ["response_format", `{"model":"upstream-llm",${hello},"response_format":{"type":"json_schema","json_schema":${nested(5_000)}}}`],
    ["messages", `{"model":"upstream-llm","messages":[{"role":"assistant","tool_calls":[${nested(5_000)}]},{"role":"user","content":"hi"}]}`],
  ])("in %s is 400 before the upstream (it was 503 upstream_unavailable after 3 retries)", async (param, body) => {
    const { key, accountId } = await t.createCustomer();
    const error = await expectRefused(key, body, invalid(param));
    expect(error.message).toContain(String(MAX_JSON_DEPTH));
    expect(upstream.requests).toHaveLength(0);
    await expectUntouched(accountId);
  });

  it("is accepted up to the limit and passed through whole", async () => {
    const { key } = await t.createCustomer();
    const { status } = await post(key, `{"model":"upstream-llm",${hello},"tool_choice":${nested(MAX_JSON_DEPTH - 1)}}`);
    expect(status).toBe(200);
    expect(JSON.stringify(upstream.requests[0]!.body.tool_choice)).toBe(nested(MAX_JSON_DEPTH - 1));
  });
});

describe("URLs in any part (SPEC 2: 400 unsupported_url_scheme, never forwarded)", () => {
  const METADATA = "http://169.254.169.254/latest/meta-data/";
  it.each([
    ["video_url", { type: "video_url", video_url: { url: METADATA } }, "messages[0].content[1].video_url.url"],
    ["input_image", { type: "input_image", image_url: METADATA }, "messages[0].content[1].image_url"],
    ["input_audio", { type: "input_audio", input_audio: { data: METADATA, format: "wav" } }, "messages[0].content[1].input_audio.data"],
    ["image_url", { type: "image_url", image_url: { url: "https://example.com/cat.png" } }, "messages[0].content[1].image_url.url"],
    ["file data", { type: "file", file: { file_data: "https://example.com/a.pdf", filename: "a.pdf" } }, "messages[0].content[1]"],
  ])("in %s", async (_, part, param) => {
    const { key, accountId } = await t.createCustomer();
    await expectRefused(key, ask("upstream-llm", [{ type: "text", text: "look" }, part]), { status: 400, code: "unsupported_url_scheme", param });
    expect(upstream.requests).toHaveLength(0);
    await expectUntouched(accountId);
  });
});

describe("content parts outside OpenAI's schema (they were accepted and billed)", () => {
  it.each([
    ["an unknown type", { type: "bogus_part" }],
    ["a text part without text", { type: "text" }],
    ["a text part with numeric text", { type: "text", text: 42 }],
    ["a refusal part from the user", { type: "refusal", refusal: "no" }],
  ])("refuses %s, naming the part", async (_, part) => {
    const { key, accountId } = await t.createCustomer();
    await expectRefused(key, ask("upstream-llm", [{ type: "text", text: "hi" }, part]), invalid("messages[0].content[1]"));
    expect(upstream.requests).toHaveLength(0);
    await expectUntouched(accountId);
  });
});

describe("counts and lengths beyond the limits", () => {
  const text = (i: number) => ({ type: "text", text: `part ${i}` });
  const texts = (n: number) => Array.from({ length: n }, (_, i) => text(i));
  const tinyPng = { type: "image_url", image_url: { url: `data:image/png;base64,${makePng().toString("base64")}` } };
  const over = MAX_CONTENT_PARTS_PER_REQUEST / MAX_CONTENT_PARTS_PER_MESSAGE;

  it.each([
    ["content parts per message", ask("sentx-v1", texts(MAX_CONTENT_PARTS_PER_MESSAGE + 1)), "messages[0].content"],
    [
      "content parts per request",
      JSON.stringify({
        model: "sentx-v1",
        messages: Array.from({ length: over + 1 }, () => ({ role: "user", content: texts(MAX_CONTENT_PARTS_PER_MESSAGE) })),
      }),
      `messages[${over}].content[0]`,
    ],
    [
      "image, audio and file parts per request",
      ask("sentx-v1", Array.from({ length: MAX_ATTACHMENT_PARTS_PER_REQUEST + 1 }, () => tinyPng)),
      `messages[0].content[${MAX_ATTACHMENT_PARTS_PER_REQUEST}]`,
    ],
    [
      "messages per request",
      JSON.stringify({ model: "sentx-v1", messages: Array.from({ length: MAX_MESSAGES_PER_REQUEST + 1 }, () => ({ role: "user", content: "hi" })) }),
      "messages",
    ],
    [
      "a message's name",
      JSON.stringify({ model: "sentx-v1", messages: [{ role: "user", name: "n".repeat(MAX_IDENTIFIER_LENGTH + 1), content: "hi" }] }),
      "messages[0].name",
    ],
    [
      "a tool message's tool_call_id",
      JSON.stringify({
        model: "sentx-v1",
        messages: [
          { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
          { role: "tool", content: "42", tool_call_id: "c".repeat(MAX_IDENTIFIER_LENGTH + 1) },
        ],
      }),
      "messages[1].tool_call_id",
    ],
  ])("refuses %s", async (_, body, param) => {
    const { key, accountId } = await t.createCustomer();
    await expectRefused(key, body, invalid(param));
    await expectUntouched(accountId);
  });
});

describe("tokenizing never holds the event loop", () => {
  it("counts 200 KB of one letter and bills it (one pass was quadratic: 50 KB held the loop 2.7 s)", async () => {
    const { key } = await t.createCustomer();
    const body = ask("sentx-v1", "a".repeat(200_000));
    const { result, stallMs } = await stallDuring(() => post(key, body));
    expect(result.status).toBe(200);
    expect(result.usage!.prompt_tokens).toBeGreaterThan(25_000); // the letters, 8 a token, and the safety prompt
    expect(stallMs).toBeLessThan(STALL_LIMIT_MS);
  });

  // Refused once the count passes the window: of megabytes, only the first few hundred KB are tokenized.
  const expectTooLong = ({ status, error }: Answer) =>
    expect({ status, code: error?.code, param: error?.param }).toEqual({ status: 400, code: "context_length_exceeded", param: "messages" });
  const block = letters(MiB);
  /** `mib` MiB of letters without a space, different for each `variant`. */
  const noSpaces = (mib: number, variant = 0) => Buffer.from(ask("sentx-v1", (block.slice(variant * 97) + block.slice(0, variant * 97)).repeat(mib)));

  it("refuses a 19 MB prompt without spaces as too long for the window, stalling nothing", async () => {
    const { key, accountId } = await t.createCustomer();
    const body = noSpaces(19);
    const { result, stallMs } = await stallDuring(() => post(key, body));
    expectTooLong(result);
    expect(stallMs).toBeLessThan(STALL_LIMIT_MS);
    await expectUntouched(accountId);
  });

  it("refuses four such prompts at once, counting them in turns", async () => {
    const customers = await Promise.all([1, 2, 3, 4].map(() => t.createCustomer()));
    // 5 MB each: four 19 MB bodies arriving together spend about the whole budget decoding and
    // parsing their JSON (JSON.parse is synchronous) before any rule of the chat runs.
    const bodies = customers.map((_, i) => noSpaces(5, i + 1));
    const { result, stallMs } = await stallDuring(() => Promise.all(customers.map(({ key }, i) => post(key, bodies[i]!))));
    result.forEach(expectTooLong);
    expect(stallMs).toBeLessThan(STALL_LIMIT_MS);
    for (const { accountId } of customers) await expectUntouched(accountId);
  });
});

describe("Files API references are bounded before any file is read", () => {
  let key: string;
  let accountId: string;
  let documentId: string;
  let imageId: string;

  beforeAll(async () => {
    ({ key, accountId } = await t.createCustomer());
    const client = t.openai(key);
    // 1.5 MB of text: the platform keeps its first million characters.
    const document = await client.files.create({ file: await toFile(Buffer.from("lorem ipsum ".repeat(125_000)), "big.txt"), purpose: "user_data" });
    const image = await client.files.create({ file: await toFile(Buffer.concat([makePng(), Buffer.alloc(19 * MiB)]), "big.png"), purpose: "user_data" });
    documentId = document.id;
    imageId = image.id;
  }, 60_000);

  const references = (fileId: string, n: number) => Array.from({ length: n }, () => ({ type: "input_file", file_id: fileId }));
  const spyOnFiles = () => ({
    get: vi.spyOn(t.platform.services.files, "get"),
    readBytes: vi.spyOn(t.platform.services.files, "readBytes"),
  });

  it("refuses 60 references to one document at the attachment-part limit, looking nothing up (it stalled 1.6 s)", async () => {
    const files = spyOnFiles();
    await expectRefused(key, ask("sentx-v1", references(documentId, 60)), invalid(`messages[0].content[${MAX_ATTACHMENT_PARTS_PER_REQUEST}]`));
    expect(files.get).not.toHaveBeenCalled();
    await expectUntouched(accountId);
  });

  it("refuses the reference that takes the documents' text past its budget, having looked the file up once", async () => {
    const files = spyOnFiles();
    const perReference = 1_000_000;
    const fitting = MAX_ATTACHED_DOCUMENT_CHARACTERS / perReference;
    const error = await expectRefused(key, ask("sentx-v1", references(documentId, fitting + 1)), invalid(`messages[0].content[${fitting}]`));
    expect(error.message).toContain(String(MAX_ATTACHED_DOCUMENT_CHARACTERS));
    expect(files.get).toHaveBeenCalledTimes(1);
    await expectUntouched(accountId);
  });

  it("refuses 12 references to a 19 MB image at the byte budget without reading it (it grew memory by 500 MB)", async () => {
    const files = spyOnFiles();
    expect(2 * 19 * MiB).toBeGreaterThan(MAX_ATTACHED_MEDIA_BYTES);
    await expectRefused(key, ask("sentx-v1", references(imageId, 12)), invalid("messages[0].content[1]"));
    expect(files.get).toHaveBeenCalledTimes(1);
    expect(files.readBytes).not.toHaveBeenCalled();
    await expectUntouched(accountId);
  });

  it("reads a 19 MB image named once, once, and answers", async () => {
    const files = spyOnFiles();
    const { result, stallMs } = await stallDuring(() => post(key, ask("sentx-v1", [{ type: "text", text: "look" }, ...references(imageId, 1)])));
    expect(result.status).toBe(200);
    expect(files.readBytes).toHaveBeenCalledTimes(1);
    expect(stallMs).toBeLessThan(STALL_LIMIT_MS);
  });

  it("refuses a $0 account with 402 before it looks up or reads any file", async () => {
    const broke = await t.createCustomer({ balanceCents: 0 });
    const files = spyOnFiles();
    await expectRefused(broke.key, ask("sentx-v1", references(`file-${"0".repeat(24)}`, 12)), {
      status: 402,
      code: "insufficient_balance",
      param: null,
    });
    expect(files.get).not.toHaveBeenCalled();
    expect(files.readBytes).not.toHaveBeenCalled();
  });
});
