import { eq, inArray } from "drizzle-orm";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { files } from "../../src/domain/schema/index.js";
import { offsetClock } from "../support/clock.js";
import { makeDocx, makeGif, makeMp4Header, makePdf, makePng, makeXlsx } from "../support/documents.js";
import { type FakeUpstream, startFakeUpstream } from "../support/fake-upstream.js";
import { refusal } from "../support/api-errors.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState } from "../support/queries.js";

// SPEC 2 "Attachments" through the SDK: Files API references and inline images
// reach the model as text, images or video; everything else is refused first.

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
        { id: "sentx-v1", upstreams: [{ provider: "demo" }] },
        { id: "upstream-llm", upstreams: fake("llm") },
        { id: "video-llm", upstreams: fake("video"), capabilities: ["vision", "files", "video"] },
      ],
    },
  });
});
afterAll(async () => {
  await t.close();
  await upstream.close();
});
beforeEach(() => upstream.reset());

const upload = async (client: OpenAI, bytes: Buffer, name: string) =>
  client.files.create({ file: await toFile(bytes, name), purpose: "user_data" });

const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;

type Part = OpenAI.Chat.Completions.ChatCompletionContentPart;
const ask = (client: OpenAI, model: string, parts: unknown[]) =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: parts as Part[] }] });

/** The user message's parts as the upstream received them. */
const partsUpstreamSaw = () => (upstream.requests.at(-1)!.body.messages as Array<{ role: string; content: any }>).at(-1)!.content as any[];

describe("documents, images and videos from the Files API", () => {
  it("tells (demo) exactly what arrived: images, and documents with their extracted text length", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const pdf = await upload(client, await makePdf(["Invoice 42 for Ada", "Total due: 310 EUR"]), "invoice.pdf");
    const docx = await upload(client, await makeDocx(["Minutes of the board meeting"]), "minutes.docx");
    const xlsx = await upload(client, await makeXlsx({ Stock: [["item", "qty"], ["bolt", 3]] }), "stock.xlsx");
    const stored = await t.platform.services.db.select().from(files).where(inArray(files.id, [pdf.id, docx.id, xlsx.id]));
    const characters = stored.reduce((n, f) => n + Array.from(f.extractedText ?? "").length, 0);
    expect(characters).toBeGreaterThan(40);

    const reply = await ask(client, "sentx-v1", [
      { type: "text", text: "Summarise these" },
      { type: "input_file", file_id: pdf.id },
      { type: "file", file: { file_id: docx.id } },
      { type: "input_file", file_id: xlsx.id },
      { type: "image_url", image_url: { url: dataUrl("image/png", makePng()) } },
    ]);
    expect(reply.choices[0]!.message.content).toContain(
      `I received 2 messages (1 image, 3 documents with ${characters} characters of text). You said: "Summarise these"`,
    );
  });

  it("sends the upstream a document as its text, an uploaded image as inline data, and bills the text's tokens", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    const pdf = await upload(client, await makePdf(["The secret word is marmalade"]), "word.pdf");
    const png = makePng(4, 4);
    const image = await upload(client, png, "pixel.png");
    const inline = dataUrl("image/png", makePng(2, 2));
    upstream.set({ usage: null }); // the platform counts tokens itself, so the document's text shows in the bill

    const plain = await client.chat.completions.create({ model: "upstream-llm", messages: [{ role: "user", content: "Read it" }] });
    const withDocument = await ask(client, "upstream-llm", [
      { type: "text", text: "Read it" },
      { type: "input_file", file_id: pdf.id },
      { type: "file", file: { file_id: image.id } },
      { type: "image_url", image_url: { url: inline } },
    ]);
    const parts = partsUpstreamSaw();
    expect(parts[0]).toEqual({ type: "text", text: "Read it" });
    expect(parts[1].type).toBe("text");
    expect(parts[1].text).toMatch(/^<<<file "word\.pdf" \(application\/pdf\)>>>\n[\s\S]*The secret word is marmalade[\s\S]*\n<<<end of file>>>$/);
    expect(parts[2].type).toBe("image_url");
    expect(Buffer.from(parts[2].image_url.url.replace(/^data:image\/png;base64,/, ""), "base64").equals(png)).toBe(true);
    expect(parts[3]).toEqual({ type: "image_url", image_url: { url: inline } });

    // The document's words are counted (and billed) as prompt tokens.
    expect(withDocument.usage!.prompt_tokens).toBeGreaterThan(plain.usage!.prompt_tokens + 10);
    expect(await moneyState(t.platform.services.db, accountId)).toMatchObject({ heldCents: 0 });
  });

  it("streams with attachments the same way, ending with usage", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const doc = await upload(client, Buffer.from("alpha beta gamma\n"), "notes.md");
    const stream = await client.chat.completions.create({
      model: "sentx-v1",
      stream: true,
      messages: [{ role: "user", content: [{ type: "text", text: "Go" }, { type: "input_file", file_id: doc.id }] as unknown as Part[] }],
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(text).toContain("1 document with 17 characters of text");
    expect(usage!.prompt_tokens).toBeGreaterThan(0);
  });

  it("sends video only to a model with the video capability", async () => {
    const { key, accountId } = await t.createCustomer();
    const client = t.openai(key);
    const video = await upload(client, makeMp4Header(), "clip.mp4");
    const before = await moneyState(t.platform.services.db, accountId);
    expect(await refusal(ask(client, "upstream-llm", [{ type: "input_file", file_id: video.id }]))).toEqual({
      status: 400,
      code: "unsupported_attachment",
      type: "invalid_request_error",
      param: "messages[0].content[0]",
    });
    expect(await moneyState(t.platform.services.db, accountId)).toEqual(before);
    expect(upstream.requests).toHaveLength(0);

    await ask(client, "video-llm", [{ type: "input_file", file_id: video.id }]);
    expect(partsUpstreamSaw()[0]).toEqual({ type: "video_url", video_url: { url: dataUrl("video/mp4", makeMp4Header()) } });
  });
});

describe("refused before anything is billed", () => {
  it("404s a file that is unknown, another account's, deleted or expired", async () => {
    const mine = await t.createCustomer();
    const theirs = await t.createCustomer();
    const client = t.openai(mine.key);
    const other = await upload(t.openai(theirs.key), Buffer.from("theirs\n"), "theirs.txt");
    const deleted = await upload(client, Buffer.from("deleted\n"), "deleted.txt");
    await client.files.delete(deleted.id);
    const expiring = await upload(client, Buffer.from("expiring\n"), "expiring.txt");
    clock.advance(30 * 86_400_000 + 1_000);

    const before = await moneyState(t.platform.services.db, mine.accountId);
    for (const fileId of ["file-doesnotexist", other.id, deleted.id, expiring.id]) {
      expect(await refusal(ask(client, "sentx-v1", [{ type: "text", text: "hi" }, { type: "input_file", file_id: fileId }])), fileId).toEqual({
        status: 404,
        code: "file_not_found",
        type: "not_found_error",
        param: "messages[0].content[1]",
      });
    }
    expect(await refusal(ask(client, "sentx-v1", [{ type: "file", file: { file_id: other.id } }]))).toMatchObject({ status: 404 });
    expect(await moneyState(t.platform.services.db, mine.accountId)).toEqual(before);
    const [row] = await t.platform.services.db.select().from(files).where(eq(files.id, other.id));
    expect(row!.status).toBe("processed"); // the other account's file is untouched
  });

  it("refuses URLs of any scheme, bad base64, a type the bytes contradict and an image over 10 MB", async () => {
    const { key } = await t.createCustomer();
    const client = t.openai(key);
    const image = (url: string) => [{ type: "text", text: "look" }, { type: "image_url", image_url: { url } }];
    for (const url of ["http://example.com/cat.png", "https://example.com/cat.png", "ftp://example.com/cat.png", "file:///etc/passwd"]) {
      expect(await refusal(ask(client, "sentx-v1", image(url))), url).toEqual({
        status: 400,
        code: "unsupported_url_scheme",
        type: "invalid_request_error",
        param: "messages[0].content[1].image_url.url",
      });
    }
    expect(await refusal(ask(client, "sentx-v1", [{ type: "file", file: { file_url: "https://example.com/a.pdf" } }]))).toMatchObject({
      status: 400,
      code: "unsupported_url_scheme",
    });
    const invalid = { status: 400, code: "invalid_file_format", param: "messages[0].content[1].image_url.url" };
    expect(await refusal(ask(client, "sentx-v1", image("data:image/png;base64,@@not-base64@@")))).toMatchObject(invalid);
    expect(await refusal(ask(client, "sentx-v1", image(dataUrl("image/png", makeGif()))))).toMatchObject(invalid);
    expect(await refusal(ask(client, "sentx-v1", image(dataUrl("image/png", Buffer.from("just text")))))).toMatchObject(invalid);

    const huge = Buffer.concat([makePng(), Buffer.alloc(11 * 1024 * 1024)]);
    expect(await refusal(ask(client, "sentx-v1", image(dataUrl("image/png", huge))))).toMatchObject({
      status: 400,
      code: "image_too_large",
      param: "messages[0].content[1].image_url.url",
    });
  });
});
