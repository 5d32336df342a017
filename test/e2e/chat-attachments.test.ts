import { inArray } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NON_TEXT_PART_TOKENS, countTextTokens } from "../../src/domain/inference/tokens.js";
import { files } from "../../src/domain/schema/index.js";
import { refusal } from "../support/api-errors.js";
import { offsetClock } from "../support/clock.js";
import { makeDocx, makeGif, makeMp4Header, makePdf, makePng, makeXlsx } from "../support/documents.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";

// SPEC 2 "Attachments" through the SDK: Files API references and inline images
// reach the model as text, images or video; anything wrong is refused with
// SPEC 8's error shape before a cent is held.

const clock = offsetClock();
let t: TestPlatform;
let upstream: FakeUpstream;

beforeAll(async () => {
  upstream = await startFakeUpstream();
  const fake = (model: string) => [{ provider: "openai-compatible" as const, baseUrl: upstream.baseUrl, model }];
  t = await startTestPlatform({
    clock,
    models: {
      models: [
        { id: "sentx-v1", upstreams: [{ provider: "demo" }] }, // as out of the box
        { id: "upstream-llm", upstreams: fake("llm") }, // the default capabilities: no video
        { id: "video-llm", upstreams: fake("video"), capabilities: ["vision", "files", "video"] },
        { id: "long-llm", upstreams: fake("long"), contextWindow: 1_000_000 },
      ],
    },
  });
});
afterAll(async () => {
  await t?.close();
  await upstream?.close();
});
beforeEach(() => upstream.reset());

const db = () => t.platform.services.db;

const upload = async (client: OpenAI, bytes: Buffer, name: string) =>
  client.files.create({ file: await toFile(bytes, name), purpose: "user_data" });

const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;

type Part = OpenAI.Chat.Completions.ChatCompletionContentPart;
/** One user message of `parts`, which may be SentX's own `input_file` parts the SDK's types do not know. */
const ask = (client: OpenAI, model: string, parts: unknown[]) =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: parts as Part[] }] });

/** The last message's parts as the upstream received them. */
const partsUpstreamSaw = () => (upstream.requests.at(-1)!.body.messages as Array<{ content: any[] }>).at(-1)!.content;

/** A new customer's 500 cents, nothing held, nothing charged. */
const expectUntouched = async (accountId: string) =>
  expect(await moneyState(db(), accountId)).toMatchObject({ balanceCents: 500, heldCents: 0, usageEntries: [] });

/** SPEC 8's fields of a 4xx the SDK raised, with `type` following from the status. */
const refused = (status: 400 | 404, code: string, param: string) => ({
  status,
  code,
  type: status === 404 ? "not_found_error" : "invalid_request_error",
  param,
});

describe("what the model receives", () => {
  it("the demo says exactly what arrived: the image, and the documents with their extracted length", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const pdf = await upload(client, await makePdf(["Invoice 42 for Ada", "Total due: 310 EUR"]), "invoice.pdf");
    const docx = await upload(client, await makeDocx(["Minutes of the board meeting", "Motion carried"]), "minutes.docx");
    const xlsx = await upload(client, await makeXlsx({ Stock: [["item", "qty"], ["bolt", 3]] }), "stock.xlsx");

    // N comes from what the platform extracted and kept at upload, not from a number written here.
    const kept = await db().select().from(files).where(inArray(files.id, [pdf.id, docx.id, xlsx.id]));
    const extracted = new Map(kept.map((f) => [f.id, f.extractedText ?? ""]));
    expect(extracted.get(pdf.id)).toMatch(/Invoice 42 for Ada[\s\S]*Total due: 310 EUR/); // both pages
    expect(extracted.get(docx.id)).toMatch(/Minutes of the board meeting[\s\S]*Motion carried/);
    expect(extracted.get(xlsx.id)).toContain("bolt");
    const characters = [...extracted.values()].reduce((n, text) => n + Array.from(text).length, 0);

    const reply = await ask(client, "sentx-v1", [
      { type: "text", text: "Summarise these" },
      { type: "input_file", file_id: pdf.id },
      { type: "file", file: { file_id: docx.id } },
      { type: "input_file", file_id: xlsx.id },
      { type: "image_url", image_url: { url: dataUrl("image/png", makePng()) } },
    ]);
    // Two messages: the platform's safety prompt comes first (SPEC 2).
    expect(reply.choices[0]!.message.content).toBe(
      "Demo reply from SentX (no model connected). " +
        `I received 2 messages (1 image, 3 documents with ${characters} characters of text). You said: "Summarise these"`,
    );
  });

  it("an upstream gets a document as its delimited text, an uploaded image as its exact bytes, an inline image unchanged; the text is billed", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    const pdf = await upload(client, await makePdf(["The secret word is marmalade"]), "word.pdf");
    const png = makePng(4, 4);
    const uploadedImage = await upload(client, png, "pixel.png");
    const inline = { type: "image_url", image_url: { url: dataUrl("image/png", makePng(2, 2)), detail: "low" } };
    upstream.set({ usage: null }); // the platform then counts the tokens itself, so what it sent is what it bills

    const plain = await client.chat.completions.create({ model: "upstream-llm", messages: [{ role: "user", content: "Read it" }] });
    const { data: withFiles, response } = await client.chat.completions
      .create({
        model: "upstream-llm",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Read it" },
              { type: "input_file", file_id: pdf.id },
              { type: "file", file: { file_id: uploadedImage.id } },
              inline,
            ] as unknown as Part[],
          },
        ],
      })
      .withResponse();

    const [ownText, document, image, inlineSeen] = partsUpstreamSaw();
    expect(ownText).toEqual({ type: "text", text: "Read it" });
    expect(document.type).toBe("text");
    expect(document.text).toMatch(/^<<<file "word\.pdf" \(application\/pdf\)>>>\n[\s\S]*The secret word is marmalade[\s\S]*\n<<<end of file>>>$/);
    expect(image.type).toBe("image_url");
    const [prefix, base64] = image.image_url.url.split(",");
    expect(prefix).toBe("data:image/png;base64");
    expect(Buffer.from(base64, "base64").equals(png)).toBe(true);
    expect(inlineSeen).toEqual(inline);

    // Against the same text alone: the document block's tokens, plus two images at the flat rate.
    expect(withFiles.usage!.prompt_tokens - plain.usage!.prompt_tokens).toBe(countTextTokens(document.text) + 2 * NON_TEXT_PART_TOKENS);
    expect(await requestRow(db(), response.headers.get("x-request-id")!)).toMatchObject({
      status: "succeeded",
      inputTokens: withFiles.usage!.prompt_tokens,
    });
    expect(await moneyState(db(), accountId)).toMatchObject({ heldCents: 0 });
  });

  it("streams with an attachment exactly as it answers without streaming, ending with the usage chunk", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const notes = await upload(client, Buffer.from("alpha beta gamma\n"), "notes.md");
    const request = {
      model: "sentx-v1",
      messages: [{ role: "user" as const, content: [{ type: "text", text: "Go" }, { type: "input_file", file_id: notes.id }] as unknown as Part[] }],
    };
    const whole = await client.chat.completions.create(request);

    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) chunks.push(chunk);
    const streamed = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(streamed).toBe(whole.choices[0]!.message.content);
    expect(streamed).toContain("(0 images, 1 document with 17 characters of text)");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    expect(chunks.slice(0, -1).every((c) => c.usage == null)).toBe(true);
  });

  it("keeps the first million characters of a longer document and says so to the model", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const long = await upload(client, Buffer.from(`${"lorem ipsum ".repeat(100_000)}the end\n`), "long.txt");
    upstream.set({ usage: { prompt_tokens: 1, completion_tokens: 1 } });
    // A million characters do not fit an ordinary window: a refusal that says so, not a crash.
    expect(await refusal(ask(client, "upstream-llm", [{ type: "input_file", file_id: long.id }]))).toMatchObject({
      status: 400,
      code: "context_length_exceeded",
    });
    await ask(client, "long-llm", [{ type: "text", text: "Skim it" }, { type: "input_file", file_id: long.id }]);
    const block = partsUpstreamSaw()[1].text as string;
    expect(block.split("\n")[0]).toBe('<<<file "long.txt" (text/plain; only the beginning of its text)>>>');
    expect(block).not.toContain("the end");
    expect(block.length).toBeLessThan(1_000_200);
  });

  it("sends video only to a model with the video capability; otherwise refuses it unbilled", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    const clip = makeMp4Header();
    const video = await upload(client, clip, "clip.mp4");
    const before = await moneyState(db(), accountId);

    expect(await refusal(ask(client, "upstream-llm", [{ type: "text", text: "Watch" }, { type: "input_file", file_id: video.id }]))).toEqual(
      refused(400, "unsupported_attachment", "messages[0].content[1]"),
    );
    expect(await moneyState(db(), accountId)).toEqual(before);
    expect(before).toMatchObject({ balanceCents: 500, heldCents: 0 });
    expect(upstream.requests).toHaveLength(0);

    await ask(client, "video-llm", [{ type: "text", text: "Watch" }, { type: "file", file: { file_id: video.id } }]);
    expect(partsUpstreamSaw()[1]).toEqual({ type: "video_url", video_url: { url: dataUrl("video/mp4", clip) } });
  });
});

describe("refused before anything is held or billed", () => {
  it("404s a file id that is unknown, another account's, deleted or expired, naming the part", async () => {
    const mine = await t.createCustomer();
    const theirs = await t.createCustomer();
    const client = t.openai(mine.key);
    const other = await upload(t.openai(theirs.key), Buffer.from("their notes\n"), "theirs.txt");
    const deleted = await upload(client, Buffer.from("deleted notes\n"), "deleted.txt");
    await client.files.delete(deleted.id);
    const expiring = await upload(client, Buffer.from("expiring notes\n"), "expiring.txt");
    const withFile = (fileId: string, form: "input_file" | "file") => [
      { type: "text", text: "hi" },
      form === "input_file" ? { type: "input_file", file_id: fileId } : { type: "file", file: { file_id: fileId } },
    ];
    const expectNotFound = async (fileId: string) => {
      for (const form of ["input_file", "file"] as const) {
        expect(await refusal(ask(client, "sentx-v1", withFile(fileId, form))), `${fileId} as ${form}`).toEqual(
          refused(404, "file_not_found", "messages[0].content[1]"),
        );
      }
    };

    await ask(client, "sentx-v1", withFile(expiring.id, "input_file")); // live until the clock moves
    const before = await moneyState(db(), mine.accountId);
    for (const fileId of ["file-doesnotexist", other.id, deleted.id]) await expectNotFound(fileId);

    // With a bad inline image after it, the unknown id (looked up in the database) is still the one named.
    const twoBadParts = [{ type: "input_file", file_id: "file-doesnotexist" }, { type: "image_url", image_url: { url: "data:image/png;base64,@@" } }];
    expect(await refusal(ask(client, "sentx-v1", twoBadParts))).toEqual(refused(404, "file_not_found", "messages[0].content[0]"));

    clock.advance(30 * 86_400_000 + 1_000); // SPEC 7: retention is 30 days from the upload
    await expectNotFound(expiring.id);
    expect(await moneyState(db(), mine.accountId)).toEqual(before);
    await expectUntouched(theirs.accountId);
  });

  it("refuses URLs of every scheme, in image parts and file parts", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    for (const url of ["http://example.com/cat.png", "https://example.com/cat.png", "ftp://example.com/cat.png", "file:///etc/passwd"]) {
      const parts = [{ type: "text", text: "look" }, { type: "image_url", image_url: { url } }];
      expect(await refusal(ask(client, "sentx-v1", parts)), url).toEqual(
        refused(400, "unsupported_url_scheme", "messages[0].content[1].image_url.url"),
      );
    }
    expect(await refusal(ask(client, "sentx-v1", [{ type: "file", file: { file_url: "https://example.com/a.pdf" } }]))).toEqual(
      refused(400, "unsupported_url_scheme", "messages[0].content[0]"),
    );
    await expectUntouched(accountId);
  });

  it("refuses inline images with bad base64, bytes that contradict the type, or over 10 MB", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    const look = (url: string) => [{ type: "text", text: "look" }, { type: "image_url", image_url: { url } }];
    const param = "messages[0].content[1].image_url.url";
    for (const url of ["data:image/png;base64,@@not-base64@@", dataUrl("image/png", makeGif()), dataUrl("image/png", Buffer.from("just text"))]) {
      expect(await refusal(ask(client, "sentx-v1", look(url))), url.slice(0, 40)).toEqual(refused(400, "invalid_file_format", param));
    }
    // 11 MB decoded is about 15 MB of base64: under the 20 MB body limit, so the image rule is what refuses it.
    const huge = Buffer.concat([makePng(), Buffer.alloc(11 * 1024 * 1024)]);
    expect(await refusal(ask(client, "sentx-v1", look(dataUrl("image/png", huge))))).toEqual(refused(400, "image_too_large", param));
    await expectUntouched(accountId);
  });

  it("refuses a streamed request the same way, before the stream starts", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    const attempt = client.chat.completions.create({
      model: "sentx-v1",
      stream: true,
      messages: [{ role: "user", content: [{ type: "text", text: "hi" }, { type: "input_file", file_id: "file-doesnotexist" }] as unknown as Part[] }],
    });
    expect(await refusal(attempt)).toEqual(refused(404, "file_not_found", "messages[0].content[1]"));
    await expectUntouched(accountId);
  });
});
