import fc from "fast-check";
import { makeGif, makePng } from "../../support/documents.js";
import { printable, type HostileRequest } from "./exchange.js";
import { hostileHeaderValue, hostileText, longRun, percentEncode, usually } from "./hostile-text.js";
import { anyJson, deepNesting, hostileNumber, jsonText, shallowJson } from "./json-text.js";

// Chat Completions requests (SPEC 2, 3): bodies of any shape, and near-valid
// ones that are right but for a field or two, so valid ones come up often
// enough to be answered 200 (funded) or 402 ($0).

const dataUrlOf = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;

const IMAGE_MIME_TYPES = ["image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/svg+xml", "IMAGE/PNG", "text/plain", "video/mp4", ""];

/** data: URLs: valid images, mislabelled ones, broken base64, random bytes. */
const dataUrl = fc.oneof(
  fc.constantFrom(dataUrlOf("image/png", makePng()), dataUrlOf("image/gif", makeGif()), dataUrlOf("image/jpeg", makePng())),
  fc
    .record({
      mime: fc.constantFrom(...IMAGE_MIME_TYPES),
      parameters: fc.constantFrom(";base64", ";BASE64", "", ";charset=utf-8;base64", ";base64;base64"),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes).toString("base64")),
        fc.constantFrom("", "====", "iVBORw0KGgo", "iVBORw0KGgo=", "R0lGODlh", "!!!!", "a b c d"),
        longRun(200_000),
      ),
    })
    .map(({ mime, parameters, payload }) => `data:${mime}${parameters},${payload}`),
);

const URL_CONSTANTS = [
  "http://169.254.169.254/latest/meta-data/",
  "HTTPS://EXAMPLE.COM/x.png",
  " http://example.com/a.png",
  "\thttps://example.com",
  "file:///etc/passwd",
  "ftp://example.com/a.png",
  "javascript:alert(1)",
  "gopher://example.com",
  "//example.com/a.png",
  "data:",
  "data:,",
  "data:image/png;base64,",
  "data:text/html,<script>alert(1)</script>",
];

/** What a URL field may hold: http(s), data:, other schemes, junk. */
const hostileUrl = fc.oneof(
  fc.webUrl({ validSchemes: ["http", "https"] }),
  fc.constantFrom(...URL_CONSTANTS),
  dataUrl,
  hostileText(),
);

/** File ids: the caller's real ones, well-formed unknown ones, junk. */
const hostileFileId = fc.oneof(fc.stringMatching(/^file-[0-9A-Za-z]{24}$/), hostileText());

const dataUrlField = fc.record({ url: fc.oneof(dataUrl, hostileUrl), detail: usually(fc.constantFrom("auto", "low", "high"), hostileText()) }, { requiredKeys: ["url"] });

/** Content parts of every known type and some unknown ones, with URLs, data and ids of any kind. */
const hostilePart = (realFileId: fc.Arbitrary<string>) => {
  const fileId = fc.oneof(realFileId, hostileFileId);
  return fc.oneof(
    { weight: 2, arbitrary: fc.record({ type: fc.constant("text"), text: usually(hostileText(), anyJson) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("refusal"), refusal: hostileText() }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant("image_url"), image_url: usually(dataUrlField, fc.oneof(hostileUrl, anyJson)) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant("input_audio"),
        input_audio: fc.record({ data: fc.oneof(dataUrl, hostileUrl, longRun(200_000)), format: usually(fc.constantFrom("wav", "mp3"), hostileText()) }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("video_url"), video_url: fc.record({ url: hostileUrl }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant("file"),
        file: fc.record({ file_id: fileId, file_data: fc.oneof(dataUrl, hostileUrl), filename: hostileText(), file_url: hostileUrl }, { requiredKeys: [] }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ type: fc.constant("input_file"), file_id: fileId, file_url: hostileUrl }, { requiredKeys: ["type"] }) },
    {
      // Types no role may send, with URL-ish fields the platform must still refuse, not fetch.
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(fc.constantFrom("input_image", "image", "audio_url", "input_text", "TEXT", "text ", "video"), hostileText()),
          fc.dictionary(fc.constantFrom("url", "image_url", "video_url", "audio_url", "file_url", "data", "text"), fc.oneof(hostileUrl, fc.record({ url: hostileUrl }), anyJson)),
        )
        .map(([type, fields]) => ({ ...fields, type })),
    },
    { weight: 1, arbitrary: anyJson },
  );
};

/** More parts than any limit allows, cheap to generate. */
const manyTextParts = fc.integer({ min: 90, max: 700 }).map((n) => Array.from({ length: n }, (_, i) => ({ type: "text", text: `part ${i}` })));

/** A user message's valid parts: text of any kind, real images inline, the caller's own files. */
const validUserPart = (realFileId: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ type: fc.constant("text"), text: hostileText() }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: fc.constantFrom(dataUrlOf("image/png", makePng()), dataUrlOf("image/gif", makeGif())) }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("input_file"), file_id: realFileId }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("file"), file: fc.record({ file_id: realFileId }) }) },
  );

/** Messages the SPEC accepts, whatever text they hold (system text stays under its 2,000 characters). */
const validMessage = (realFileId: fc.Arbitrary<string>) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({ role: fc.constant("user"), content: fc.oneof(hostileText(), fc.array(validUserPart(realFileId), { minLength: 1, maxLength: 4 })) }),
    },
    { weight: 1, arbitrary: fc.record({ role: fc.constantFrom("system", "developer"), content: fc.string({ maxLength: 300 }) }) },
    { weight: 1, arbitrary: fc.record({ role: fc.constant("assistant"), content: hostileText() }) },
    { weight: 1, arbitrary: fc.record({ role: fc.constant("tool"), content: hostileText(), tool_call_id: fc.string({ maxLength: 40 }) }) },
  );

/** A message that is probably not valid: mostly a known role with hostile parts, else anything. */
const hostileMessage = (realFileId: fc.Arbitrary<string>) =>
  fc.record(
    {
      role: usually(fc.constantFrom("system", "developer", "user", "assistant", "tool"), fc.oneof(hostileText(), anyJson)),
      content: usually(
        fc.array(hostilePart(realFileId), { minLength: 1, maxLength: 6 }),
        fc.oneof(longRun(200_000), fc.constant(null), fc.constant([]), anyJson, manyTextParts),
      ),
      name: hostileText(),
      tool_calls: usually(fc.array(shallowJson, { maxLength: 3 }), fc.oneof(deepNesting, anyJson)),
      tool_call_id: hostileText(),
    },
    { requiredKeys: ["role", "content"] },
  );

/** Messages of which at least one is probably not valid. */
const hostileMessages = (realFileId: fc.Arbitrary<string>) =>
  fc
    .tuple(fc.array(validMessage(realFileId), { maxLength: 3 }), hostileMessage(realFileId), fc.nat())
    .map(([valid, hostile, at]): unknown[] => [...valid.slice(0, at % (valid.length + 1)), hostile, ...valid.slice(at % (valid.length + 1))]);

const inRange = (min: number, max: number) => fc.double({ min, max, noNaN: true });
/** Short printable text: valid wherever a string is. */
const plainText = fc.string({ maxLength: 40 });

/** Every field of a valid request (SPEC 2), the pass-through ones holding any JSON a client might send. */
const validFields = (realFileId: fc.Arbitrary<string>) => ({
  model: fc.oneof(fc.constantFrom("sentx-v1", "gpt-4o", "no-such-model"), plainText.filter((name) => name.length > 0)),
  messages: fc.array(validMessage(realFileId), { minLength: 1, maxLength: 4 }),
  stream: fc.boolean(),
  stream_options: fc.record({ include_usage: fc.boolean() }),
  max_tokens: fc.integer({ min: 1, max: 4_096 }),
  max_completion_tokens: fc.integer({ min: 1, max: 4_096 }),
  n: fc.constant(1),
  temperature: inRange(0, 2),
  top_p: inRange(0, 1),
  presence_penalty: inRange(-2, 2),
  frequency_penalty: inRange(-2, 2),
  user: plainText,
  user_name: plainText,
  tools: fc.array(shallowJson, { maxLength: 3 }),
  tool_choice: fc.oneof(fc.constantFrom("auto", "none", "required"), shallowJson),
  response_format: fc.oneof(fc.constant({ type: "json_object" }), shallowJson),
  stop: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 4 })),
  seed: fc.integer(),
  logit_bias: fc.dictionary(plainText, fc.integer({ min: -100, max: 100 })),
  logprobs: fc.boolean(),
  top_logprobs: fc.integer({ min: 0, max: 20 }),
});

const hostileScalar = fc.oneof(hostileNumber, hostileText(), anyJson);

/** What each field may hold instead: out of range, wrong type, too long, control characters. */
const hostileFields = (realFileId: fc.Arbitrary<string>): Record<string, fc.Arbitrary<unknown>> => ({
  model: fc.oneof(hostileText(), fc.integer({ min: 200, max: 20_000 }).map((n) => "m".repeat(n)), anyJson),
  messages: fc.oneof(hostileMessages(realFileId), fc.constant([]), anyJson),
  stream: hostileScalar,
  stream_options: anyJson,
  max_tokens: hostileScalar,
  max_completion_tokens: hostileScalar,
  n: hostileScalar,
  temperature: hostileScalar,
  top_p: hostileScalar,
  presence_penalty: hostileScalar,
  frequency_penalty: hostileScalar,
  user: fc.oneof(hostileText(), anyJson),
  user_name: fc.oneof(hostileText(), anyJson),
  tools: fc.oneof(deepNesting, anyJson),
  tool_choice: fc.oneof(deepNesting, anyJson),
  response_format: fc.oneof(deepNesting, anyJson),
  // Not a field of the API: unknown fields are ignored, however odd their value.
  unknown_field: fc.oneof(deepNesting, anyJson),
  stop: fc.oneof(fc.array(hostileText(), { maxLength: 10 }), anyJson),
  seed: hostileScalar,
  logit_bias: fc.oneof(fc.dictionary(hostileText(), hostileNumber), anyJson),
  logprobs: hostileScalar,
  top_logprobs: hostileScalar,
});

/** Up to two fields of `fields`, each with a value of its arbitrary. */
const someOf = (fields: Record<string, fc.Arbitrary<unknown>>) =>
  fc
    .subarray(Object.keys(fields), { maxLength: 2 })
    .chain((names) => fc.record(Object.fromEntries(names.map((name) => [name, fields[name]!]))));

/** A valid request with none, one or two fields made hostile, plus unknown fields (which are ignored). */
const nearValidBody = (realFileId: fc.Arbitrary<string>) =>
  fc
    .tuple(
      fc.dictionary(hostileText(2_000), shallowJson, { maxKeys: 2 }),
      fc.record(validFields(realFileId), { requiredKeys: ["model", "messages"] }),
      // Content is where most of the attack surface is (parts, URLs, data, ids), so it gets a share of its own.
      fc.oneof(fc.constant({}), fc.record({ messages: hostileMessages(realFileId) }), someOf(hostileFields(realFileId))),
    )
    .map(([unknownFields, fields, overrides]) => jsonText({ ...unknownFields, ...fields, ...overrides }));

/** A chat body as JSON text: near-valid mostly, else any JSON value, or not JSON at all. */
const chatBodyText = (realFileId: fc.Arbitrary<string>) =>
  fc.oneof(
    { weight: 8, arbitrary: nearValidBody(realFileId) },
    { weight: 1, arbitrary: anyJson.map(jsonText) },
    { weight: 1, arbitrary: fc.oneof(fc.string(), deepNesting.map((nested) => nested.text.slice(1))) },
  );

/** SPEC 3's identity headers, each sent or not: mostly valid percent-encoded UTF-8, else hostile. */
const identityHeaders = fc.record(
  Object.fromEntries(
    ["x-user-id", "x-user-name", "x-session-id"].map((name) => [name, fc.oneof({ weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }).map(percentEncode) }, { weight: 1, arbitrary: hostileHeaderValue })]),
  ),
  { requiredKeys: [] },
);

export interface ChatRequest extends HostileRequest {
  body: string;
}

/** POST /v1/chat/completions with `apiKey`; file parts may name `realFileIds` (the caller's own files). */
export const chatRequests = (apiKey: string, realFileIds: string[]): fc.Arbitrary<ChatRequest> =>
  fc.record({ body: chatBodyText(fc.constantFrom(...realFileIds)), identity: identityHeaders }).map(({ body, identity }) =>
    printable({
      method: "POST" as const,
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}`, ...(identity as Record<string, string>) },
      body,
    }),
  );
