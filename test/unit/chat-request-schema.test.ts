import { describe, expect, it } from "vitest";
import {
  MAX_ATTACHMENT_PARTS_PER_REQUEST,
  MAX_CONTENT_PARTS_PER_MESSAGE,
  MAX_CONTENT_PARTS_PER_REQUEST,
} from "../../src/domain/inference/content-parts.js";
import { DomainError } from "../../src/domain/errors.js";
import { fieldNestedTooDeep, MAX_JSON_DEPTH } from "../../src/domain/json-depth.js";
import { parseInput } from "../../src/rest/request-input.js";
import {
  chatCompletionRequest,
  MAX_IDENTIFIER_LENGTH,
  MAX_MESSAGES_PER_REQUEST,
  passThroughParams,
} from "../../src/rest/openai/chat-schema.js";

const base = { model: "sentx-v1", messages: [{ role: "user", content: "hi" }] };

/** The refusal the API answers `body` with (as parseJsonBody reports it), or null when it is accepted. */
const firstIssue = (body: unknown) => {
  try {
    parseInput(chatCompletionRequest, body);
    return null;
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    return { code: error.code, param: error.param, message: error.message };
  }
};

describe("chat completion request validation (SPEC 2 ranges)", () => {
  it.each([
    ["temperature", -0.01],
    ["temperature", 2.01],
    ["top_p", -0.1],
    ["top_p", 1.01],
    ["presence_penalty", -2.1],
    ["presence_penalty", 2.1],
    ["frequency_penalty", -2.5],
    ["frequency_penalty", 2.0001],
    ["max_tokens", 0],
    ["max_tokens", 1.5],
    ["max_completion_tokens", 0],
    ["n", 2],
    ["n", 0],
    ["temperature", "hot"],
  ])("rejects %s = %s naming the field", (field, value) => {
    expect(firstIssue({ ...base, [field]: value })?.param).toBe(field);
  });

  it.each([
    ["temperature", 0],
    ["temperature", 2],
    ["top_p", 0],
    ["top_p", 1],
    ["presence_penalty", -2],
    ["frequency_penalty", 2],
    ["max_tokens", 1],
    ["n", 1],
  ])("accepts the edge %s = %s", (field, value) => {
    expect(firstIssue({ ...base, [field]: value })).toBeNull();
  });

  it("rejects empty messages and unknown roles", () => {
    expect(firstIssue({ ...base, messages: [] })?.param).toBe("messages");
    expect(firstIssue({ ...base, messages: [{ role: "wizard", content: "x" }] })?.param).toBe("messages[0].role");
    expect(firstIssue({ model: "m" })?.param).toBe("messages");
    expect(firstIssue({ messages: base.messages })?.param).toBe("model");
  });

  it("accepts every OpenAI role, and assistant tool calls without content", () => {
    const messages = [
      { role: "system", content: "s" },
      { role: "developer", content: "d" },
      { role: "user", content: [{ type: "text", text: "u" }] },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
      { role: "tool", content: "42", tool_call_id: "c1" },
    ];
    expect(firstIssue({ ...base, messages })).toBeNull();
    expect(firstIssue({ ...base, messages: [{ role: "user" }] })?.param).toBe("messages[0].content");
  });

  it("ignores unknown fields and passes through tools, stop, seed and sampling", () => {
    const parsed = chatCompletionRequest.parse({
      ...base,
      surprise: true,
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: "auto",
      response_format: { type: "json_object" },
      stop: ["\n"],
      seed: 7,
      temperature: 0.5,
      user: "u1",
    });
    expect(parsed).not.toHaveProperty("surprise");
    expect(passThroughParams(parsed)).toEqual({
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: "auto",
      response_format: { type: "json_object" },
      stop: ["\n"],
      seed: 7,
      temperature: 0.5,
    });
  });
});

type Role = "system" | "developer" | "user" | "assistant" | "tool";
const withParts = (parts: unknown[], role: Role = "user") => ({ ...base, messages: [{ role, content: parts }] });
const text = (value: string) => ({ type: "text", text: value });
const PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgo=";
const invalid = (param: string) => ({ code: "invalid_request_error", param });

describe("content parts (OpenAI's ChatCompletionRequest*MessageContentPart, and SentX's input_file)", () => {
  it.each([
    ["user", text("hi")],
    ["user", { type: "image_url", image_url: { url: PNG_DATA_URL, detail: "low" } }],
    ["user", { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } }],
    ["user", { type: "input_audio", input_audio: { data: "data:audio/mp3;base64,SUQz", format: "mp3" } }],
    ["user", { type: "file", file: { file_id: "file-abc" } }],
    ["user", { type: "file", file: { file_data: "data:application/pdf;base64,JVBERi0=", filename: "a.pdf" } }],
    ["user", { type: "input_file", file_id: "file-abc" }],
    ["user", text("see http://example.com/ — text may mention any URL")],
    ["assistant", { type: "refusal", refusal: "I cannot help with that." }],
    ["assistant", text("ok")],
    ["system", text("be brief")],
    ["developer", text("be brief")],
    ["tool", text("42")],
  ] as const)("accepts a %s message with %j", (role, part) => {
    expect(firstIssue(withParts([part], role))).toBeNull();
  });

  it("drops unknown fields of a known part, as it does unknown request fields", () => {
    const parsed = chatCompletionRequest.parse(withParts([{ ...text("hi"), cache_control: { type: "ephemeral" } }]));
    expect(parsed.messages[0]!.content).toEqual([text("hi")]);
  });

  it.each([
    ["an unknown type", "user", { type: "bogus_part" }],
    ["a part without a type", "user", { text: "hi" }],
    ["a part that is not an object", "user", "hi"],
    ["a text part without text", "user", { type: "text" }],
    ["a text part with numeric text", "user", { type: "text", text: 7 }],
    ["an image part without image_url", "user", { type: "image_url" }],
    ["an image detail OpenAI does not know", "user", { type: "image_url", image_url: { url: PNG_DATA_URL, detail: "max" } }],
    ["an audio format OpenAI does not know", "user", { type: "input_audio", input_audio: { data: "T2dnUw==", format: "ogg" } }],
    ["a file part without its file", "user", { type: "file" }],
    ["an input_file with a numeric id", "user", { type: "input_file", file_id: 7 }],
    ["a Responses API image part", "user", { type: "input_image", image_url: PNG_DATA_URL }],
    ["a video part", "user", { type: "video_url", video_url: { url: "data:video/mp4;base64,AAAA" } }],
    ["an image in a system message", "system", { type: "image_url", image_url: { url: PNG_DATA_URL } }],
    ["a file in a tool message", "tool", { type: "input_file", file_id: "file-abc" }],
    ["a refusal from the user", "user", { type: "refusal", refusal: "no" }],
    ["an image from the assistant", "assistant", { type: "image_url", image_url: { url: PNG_DATA_URL } }],
  ] as const)("refuses %s, naming the part", (_, role, part) => {
    expect(firstIssue(withParts([text("first"), part], role))).toMatchObject(invalid("messages[0].content[1]"));
  });

  it("refuses empty content arrays and content of another type, naming the content", () => {
    expect(firstIssue(withParts([]))).toMatchObject(invalid("messages[0].content"));
    expect(firstIssue({ ...base, messages: [{ role: "user", content: 5 }] })).toMatchObject(invalid("messages[0].content"));
  });
});

describe("URLs in content (SPEC 2: unsupported_url_scheme, whatever the part)", () => {
  const METADATA = "http://169.254.169.254/latest/meta-data/";
  it.each([
    ["an https image", { type: "image_url", image_url: { url: "https://example.com/cat.png" } }, "image_url.url"],
    ["an http image", { type: "image_url", image_url: { url: "http://example.com/cat.png" } }, "image_url.url"],
    ["an ftp image", { type: "image_url", image_url: { url: "ftp://example.com/cat.png" } }, "image_url.url"],
    ["a file: image", { type: "image_url", image_url: { url: "file:///etc/passwd" } }, "image_url.url"],
    ["an image named by a bare path", { type: "image_url", image_url: { url: "cat.png" } }, "image_url.url"],
    ["a video URL", { type: "video_url", video_url: { url: METADATA } }, "video_url.url"],
    ["a Responses API image URL", { type: "input_image", image_url: METADATA }, "image_url"],
    ["audio data that is a URL", { type: "input_audio", input_audio: { data: METADATA, format: "wav" } }, "input_audio.data"],
    ["an audio URL", { type: "input_audio", audio_url: "https://example.com/a.wav" }, "audio_url"],
    ["a URL in a part of any type", { type: "bogus_part", url: METADATA }, "url"],
  ])("refuses %s, naming the field that holds it", (_, part, field) => {
    const refusal = firstIssue(withParts([text("look"), part]));
    expect(refusal).toMatchObject({ code: "unsupported_url_scheme", param: `messages[0].content[1].${field}` });
    expect(refusal!.message).toContain("Use data: or Files API");
  });

  it.each([
    ["a file URL", { type: "file", file: { file_url: "https://example.com/a.pdf" } }],
    ["a file URL beside an id", { type: "file", file: { file_url: "ftp://example.com/a.pdf", file_id: "file-abc" } }],
    ["file data that is a URL", { type: "file", file: { file_data: "https://example.com/a.pdf" } }],
    ["SentX's input_file with a URL", { type: "input_file", file_url: "https://example.com/a.pdf" }],
  ])("refuses %s, naming the file part as its other refusals do", (_, part) => {
    expect(firstIssue(withParts([text("read"), part]))).toMatchObject({ code: "unsupported_url_scheme", param: "messages[0].content[1]" });
  });

  it("checks for URLs before the part's type: a URL in a system message is still unsupported_url_scheme", () => {
    expect(firstIssue(withParts([{ type: "image_url", image_url: { url: "https://x/y.png" } }], "system"))).toMatchObject({
      code: "unsupported_url_scheme",
      param: "messages[0].content[0].image_url.url",
    });
  });
});

describe("size limits, each refused naming the limit and the first thing over it", () => {
  const texts = (n: number) => Array.from({ length: n }, (_, i) => text(`part ${i}`));
  const images = (n: number) => Array.from({ length: n }, () => ({ type: "image_url", image_url: { url: PNG_DATA_URL } }));

  it(`content parts per message: ${MAX_CONTENT_PARTS_PER_MESSAGE}, counted before any part is parsed`, () => {
    expect(firstIssue(withParts(texts(MAX_CONTENT_PARTS_PER_MESSAGE)))).toBeNull();
    const over = firstIssue(withParts(texts(MAX_CONTENT_PARTS_PER_MESSAGE + 1)));
    expect(over).toMatchObject(invalid("messages[0].content"));
    expect(over!.message).toContain(String(MAX_CONTENT_PARTS_PER_MESSAGE));
    // One part too many is what is named, not the bad part before it: the parts were never parsed.
    expect(firstIssue(withParts([{ type: "bogus_part" }, ...texts(MAX_CONTENT_PARTS_PER_MESSAGE)]))).toMatchObject(invalid("messages[0].content"));
  });

  it(`content parts per request: ${MAX_CONTENT_PARTS_PER_REQUEST}`, () => {
    const full = MAX_CONTENT_PARTS_PER_REQUEST / MAX_CONTENT_PARTS_PER_MESSAGE;
    const messages = Array.from({ length: full }, () => ({ role: "user", content: texts(MAX_CONTENT_PARTS_PER_MESSAGE) }));
    expect(firstIssue({ ...base, messages })).toBeNull();
    const over = firstIssue({ ...base, messages: [...messages, { role: "user", content: "fine" }, { role: "user", content: texts(1) }] });
    expect(over).toMatchObject(invalid(`messages[${full + 1}].content[0]`));
    expect(over!.message).toContain(String(MAX_CONTENT_PARTS_PER_REQUEST));
  });

  it(`image, audio and file parts per request: ${MAX_ATTACHMENT_PARTS_PER_REQUEST}`, () => {
    const half = MAX_ATTACHMENT_PARTS_PER_REQUEST / 2;
    const messages = [
      { role: "user", content: [text("look"), ...images(half)] },
      { role: "user", content: [text("and"), ...images(half - 1), { type: "input_file", file_id: "file-abc" }] },
    ];
    expect(firstIssue({ ...base, messages })).toBeNull();
    const over = firstIssue({ ...base, messages: [...messages, { role: "user", content: [text("x"), { type: "input_audio", input_audio: { data: "", format: "wav" } }] }] });
    expect(over).toMatchObject(invalid("messages[2].content[1]"));
    expect(over!.message).toContain(String(MAX_ATTACHMENT_PARTS_PER_REQUEST));
  });

  it(`messages per request: ${MAX_MESSAGES_PER_REQUEST}`, () => {
    const messages = Array.from({ length: MAX_MESSAGES_PER_REQUEST }, () => ({ role: "user", content: "hi" }));
    expect(firstIssue({ ...base, messages })).toBeNull();
    expect(firstIssue({ ...base, messages: [...messages, { role: "user", content: "one more" }] })).toMatchObject(invalid("messages"));
  });

  it(`identifiers: model, name and tool_call_id up to ${MAX_IDENTIFIER_LENGTH} characters`, () => {
    const id = (n: number) => "x".repeat(n);
    const conversation = (length: number) => [
      { role: "user", content: "hi", name: id(length) },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
      { role: "tool", content: "42", tool_call_id: id(length) },
    ];
    expect(firstIssue({ model: id(MAX_IDENTIFIER_LENGTH), messages: conversation(MAX_IDENTIFIER_LENGTH) })).toBeNull();
    expect(firstIssue({ ...base, model: id(MAX_IDENTIFIER_LENGTH + 1) })).toMatchObject(invalid("model"));
    expect(firstIssue({ ...base, messages: [conversation(MAX_IDENTIFIER_LENGTH + 1)[0]] })).toMatchObject(invalid("messages[0].name"));
    const [user, assistant, tool] = conversation(MAX_IDENTIFIER_LENGTH);
    expect(firstIssue({ ...base, messages: [user, assistant, { ...tool, tool_call_id: id(MAX_IDENTIFIER_LENGTH + 1) }] })).toMatchObject(
      invalid("messages[2].tool_call_id"),
    );
  });
});

describe(`JSON nesting (at most ${MAX_JSON_DEPTH} levels, the body being level 1)`, () => {
  /** `levels` nested arrays around a string: `levels` deep. */
  const arrays = (levels: number): unknown => {
    let value: unknown = "x";
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };
  const objects = (levels: number): unknown => {
    let value: unknown = "x";
    for (let i = 0; i < levels; i++) value = { a: value };
    return value;
  };

  it.each([
    ["tool_choice", (v: unknown) => ({ ...base, tool_choice: v }), "tool_choice"],
    ["response_format", (v: unknown) => ({ ...base, response_format: v }), "response_format"],
    ["an assistant's tool_calls", (v: unknown) => ({ ...base, messages: [{ role: "assistant", tool_calls: [v] }] }), "messages"],
  ])("names %s when it nests one level too deep, arrays or objects alike", (_, bodyWith, field) => {
    // The body, the field's container(s) above the value: what remains of the depth is the value's own.
    const room = MAX_JSON_DEPTH - (field === "messages" ? 4 : 1);
    for (const nest of [arrays, objects]) {
      expect(fieldNestedTooDeep(bodyWith(nest(room)), MAX_JSON_DEPTH)).toBeNull();
      expect(fieldNestedTooDeep(bodyWith(nest(room + 1)), MAX_JSON_DEPTH)).toBe(field);
    }
  });

  it("walks 100,000 levels without overflowing, and names a body that is itself too deep", () => {
    expect(fieldNestedTooDeep({ ...base, tool_choice: arrays(100_000) }, MAX_JSON_DEPTH)).toBe("tool_choice");
    expect(fieldNestedTooDeep(arrays(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe("");
    expect(fieldNestedTooDeep(base, MAX_JSON_DEPTH)).toBeNull();
    expect(fieldNestedTooDeep("just a string", MAX_JSON_DEPTH)).toBeNull();
  });
});
