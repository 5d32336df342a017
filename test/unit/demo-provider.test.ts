import { describe, expect, it } from "vitest";
import type { ChatMessage, UpstreamChatRequest, UpstreamChunk } from "../../src/domain/inference/provider.js";
import { createDemoProvider } from "../../src/domain/inference/providers/demo/demo-provider.js";
import { demoReply, QUOTE_MAX_CHARACTERS } from "../../src/domain/inference/providers/demo/demo-reply.js";
import { countPromptTokens, countTextTokens } from "../../src/domain/inference/tokens.js";

const request = (messages: ChatMessage[], maxTokens = 1000): UpstreamChatRequest => ({
  model: "sentx-v1",
  messages,
  maxTokens,
  params: {},
});

const hello: ChatMessage[] = [
  { role: "system", content: "You are SentX." },
  { role: "user", content: "Hello there" },
];

const live = () => new AbortController().signal;

async function collect(chunks: AsyncIterable<UpstreamChunk>): Promise<UpstreamChunk[]> {
  const all: UpstreamChunk[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return all;
}

const contentOf = (chunks: UpstreamChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");

describe("the demo reply (SPEC 9: says what it received)", () => {
  it("states the message count and quotes the last user message", () => {
    expect(demoReply(hello)).toBe(
      'Demo reply from SentX (no model connected). I received 2 messages (0 images, 0 documents). You said: "Hello there"',
    );
  });

  it("counts images, and text parts beside the user's own text as documents with their length", () => {
    const messages: ChatMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "First question" },
      { role: "assistant", content: "First answer" },
      {
        role: "user",
        content: [
          { type: "text", text: "Compare the photo with the report." },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
          { type: "text", text: "Quarterly report: revenue is up." }, // 32 characters
          { type: "text", text: "Appendix ✓" }, // 10 characters (code points)
        ],
      },
    ];
    expect(demoReply(messages)).toBe(
      "Demo reply from SentX (no model connected). I received 4 messages (1 image, 2 documents with 42 characters of text). " +
        'You said: "Compare the photo with the report."',
    );
  });

  it("shortens a long message to one quoted line", () => {
    const long = `${"word ".repeat(100)}\n\nend`;
    const reply = demoReply([{ role: "user", content: long }]);
    const quoted = reply.slice(reply.indexOf('"') + 1, -1);
    expect(quoted.endsWith("…")).toBe(true);
    expect(Array.from(quoted).length).toBeLessThanOrEqual(QUOTE_MAX_CHARACTERS + 1);
    expect(quoted).not.toContain("\n");
  });

  it("says so when there is no user text", () => {
    expect(demoReply([{ role: "system", content: "Only a system prompt." }])).toContain("There was no user text to answer.");
  });
});

describe("createDemoProvider().complete", () => {
  const demo = createDemoProvider({ wordDelayMs: 0 });

  it("answers deterministically with exact usage and finish_reason stop", async () => {
    const first = await demo.complete(request(hello), live());
    const second = await demo.complete(request(hello), live());
    expect(first).toEqual(second);
    const text = first.choices[0]!.message.content!;
    expect(text).toBe(demoReply(hello));
    expect(first.choices[0]!.finish_reason).toBe("stop");
    expect(first.usage).toEqual({ promptTokens: countPromptTokens(hello), completionTokens: countTextTokens(text) });
    // 3 + system(1) + "You are SentX."(5) + 3 + user(1) + "Hello there"(2) + 3
    expect(first.usage!.promptTokens).toBe(countPromptTokens(hello));
  });

  it("cuts the answer to maxTokens and says finish_reason length", async () => {
    const completion = await demo.complete(request(hello, 5), live());
    const text = completion.choices[0]!.message.content!;
    expect(completion.choices[0]!.finish_reason).toBe("length");
    expect(demoReply(hello).startsWith(text)).toBe(true);
    expect(countTextTokens(text)).toBe(5);
    expect(completion.usage!.completionTokens).toBe(5);
  });

  it("refuses an already aborted request", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(demo.complete(request(hello), controller.signal)).rejects.toMatchObject({ name: "AbortError" });
  });
});

describe("createDemoProvider().stream", () => {
  it("streams word by word, then finish_reason, then a usage chunk with no choices", async () => {
    const demo = createDemoProvider({ wordDelayMs: 0 });
    const chunks = await collect(await demo.stream(request(hello), live()));
    const reply = demoReply(hello);
    const words = reply.split(" ");

    const content = chunks.slice(0, words.length);
    expect(content.map((c) => c.choices[0]!.delta.content)).toEqual(words.map((w, i) => (i === 0 ? w : ` ${w}`)));
    expect(content[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(contentOf(chunks)).toBe(reply);

    const [finish, usage, ...rest] = chunks.slice(words.length);
    expect(rest).toEqual([]);
    expect(finish!.choices).toEqual([{ index: 0, delta: {}, finish_reason: "stop" }]);
    expect(usage).toEqual({
      choices: [],
      usage: { promptTokens: countPromptTokens(hello), completionTokens: countTextTokens(reply) },
    });
  });

  it("stops at maxTokens with finish_reason length and bills exactly what it streamed", async () => {
    const demo = createDemoProvider({ wordDelayMs: 0 });
    const chunks = await collect(await demo.stream(request(hello, 7), live()));
    const streamed = contentOf(chunks);
    expect(demoReply(hello).startsWith(streamed)).toBe(true);
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("length");
    expect(chunks.at(-1)!.usage).toEqual({ promptTokens: countPromptTokens(hello), completionTokens: 7 });
    expect(countTextTokens(streamed)).toBe(7);
  });

  it("takes its time between words when asked to", async () => {
    const demo = createDemoProvider({ wordDelayMs: 5 });
    const started = performance.now();
    const chunks = await collect(await demo.stream(request(hello, 4), live()));
    const words = chunks.filter((c) => c.choices[0]?.delta.content).length;
    expect(words).toBeGreaterThanOrEqual(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(words * 4);
  });

  it("stops promptly when aborted mid-stream", async () => {
    const demo = createDemoProvider({ wordDelayMs: 150 });
    const controller = new AbortController();
    const received: UpstreamChunk[] = [];
    let abortedAt = 0;
    const consume = (async () => {
      for await (const chunk of await demo.stream(request(hello), controller.signal)) {
        received.push(chunk);
        if (received.length === 2) {
          abortedAt = performance.now();
          controller.abort();
        }
      }
    })();
    await expect(consume).rejects.toMatchObject({ name: "AbortError" });
    // Aborted before the pause for the third word: nothing more came, and the pause was cut short.
    expect(received).toHaveLength(2);
    expect(performance.now() - abortedAt).toBeLessThan(100);
  });
});
