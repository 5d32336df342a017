import { connect as netConnect } from "node:net";
import OpenAI from "openai";
import type { RealtimeServerEvent } from "openai/resources/realtime/realtime";
import { OpenAIRealtimeWS } from "openai/realtime/ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClientOptions } from "ws";
import { countPromptTokens, countTextTokens } from "../../src/domain/inference/tokens.js";
import { priceRequest } from "../../src/domain/pricing.js";
import { eventually } from "../support/eventually.js";
import { expectOpenAIShape } from "../support/openai-schema.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";
import { openSession, type ServerEvent, type Session } from "../support/realtime-client.js";

// The embedded default's realtime sessions: the demo provider answers over
// its loopback endpoint, through the same relay, hold and metering as a real
// upstream, so `GET /v1/realtime?model=sentx-v1` works out of the box. Every
// event it sends is checked against OpenAI's GA realtime server-event schema
// for its type.

let t: TestPlatform;

beforeAll(async () => {
  t = await startTestPlatform();
});
afterAll(async () => {
  await t?.close();
});

const wsUrl = (model = "sentx-v1") => `${t.url.replace(/^http/, "ws")}/v1/realtime?model=${model}`;
const bearer = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });
const PRICES = { inputCentsPerMillion: 300, outputCentsPerMillion: 1000 };

/** OpenAI's GA (not Beta) component schema of each server event type the demo may send. */
const GA_SCHEMA_OF: Record<string, string> = {
  "session.created": "RealtimeServerEventSessionCreated",
  "session.updated": "RealtimeServerEventSessionUpdated",
  "conversation.item.added": "RealtimeServerEventConversationItemAdded",
  "conversation.item.done": "RealtimeServerEventConversationItemDone",
  "input_audio_buffer.committed": "RealtimeServerEventInputAudioBufferCommitted",
  "input_audio_buffer.cleared": "RealtimeServerEventInputAudioBufferCleared",
  "response.created": "RealtimeServerEventResponseCreated",
  "response.output_item.added": "RealtimeServerEventResponseOutputItemAdded",
  "response.content_part.added": "RealtimeServerEventResponseContentPartAdded",
  "response.output_text.delta": "RealtimeServerEventResponseTextDelta",
  "response.output_text.done": "RealtimeServerEventResponseTextDone",
  "response.content_part.done": "RealtimeServerEventResponseContentPartDone",
  "response.output_item.done": "RealtimeServerEventResponseOutputItemDone",
  "response.done": "RealtimeServerEventResponseDone",
  error: "RealtimeServerEventError",
};

/** Every event conforms to its type's GA schema; a type with no schema mapped fails. */
function expectGAEvents(events: readonly object[]): void {
  expect(events.length).toBeGreaterThan(0);
  for (const event of events) {
    // The test client marks the events it handed out; the mark is not the server's.
    const { consumed: _, ...sent } = event as ServerEvent & { consumed?: boolean };
    const schema = GA_SCHEMA_OF[sent.type];
    expect(schema, `no GA schema mapped for a ${sent.type} event`).toBeDefined();
    expectOpenAIShape(schema!, sent);
  }
}

/** The event types of each response, in order: the GA lifecycle a client tracks a text response by. */
const RESPONSE_LIFECYCLE = [
  "response.created",
  "response.output_item.added",
  "conversation.item.added",
  "response.content_part.added",
  "response.output_text.delta",
  "response.output_text.done",
  "response.content_part.done",
  "response.output_item.done",
  "conversation.item.done",
  "response.done",
];
const lifecycleOf = (events: readonly ServerEvent[]) =>
  events.map((e) => e.type).filter((type, i, types) => type !== "response.output_text.delta" || types[i - 1] !== type);

type Usage = { input_tokens: number; output_tokens: number; total_tokens: number };
const priceOf = (usage: Usage) => priceRequest(PRICES, { inputTokens: usage.input_tokens, outputTokens: usage.output_tokens });

async function settledMoney(accountId: string) {
  return eventually(
    () => moneyState(t.platform.services.db, accountId),
    (m) => m.heldCents === 0 && m.usageEntries.length > 0,
  );
}

/** Sends response.create and waits for its response.done; the events from the request on are the response's. */
async function respond(session: Session): Promise<{ events: ServerEvent[]; done: ServerEvent }> {
  const from = session.events.length;
  session.send({ type: "response.create" });
  const done = await session.next("response.done");
  return { events: session.events.slice(from), done };
}

describe("a realtime session with the demo model", () => {
  it("greets, answers each response.create word by word with exact usage, and bills each response", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 500 });
    const session = await openSession(wsUrl(), bearer(key));
    const created = await session.next("session.created");
    expect(created.session).toMatchObject({ type: "realtime", object: "realtime.session", model: "sentx-v1", output_modalities: ["text"] });

    session.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Hello there" }] } });
    const added = await session.next("conversation.item.added");
    expect(added).toMatchObject({ previous_item_id: null, item: { object: "realtime.item", role: "user", status: "completed" } });
    const userItemId = (added.item as { id: string }).id;
    expect((await session.next("conversation.item.done")).item).toEqual(added.item);

    const first = await respond(session);
    expect(lifecycleOf(first.events)).toEqual(RESPONSE_LIFECYCLE);
    const text = (await session.next("response.output_text.done")).text as string;
    const deltas = first.events.filter((e) => e.type === "response.output_text.delta");
    expect(deltas.map((e) => e.delta).join("")).toBe(text);
    expect(text).toContain('You said: "Hello there"');
    // One response, one output item: every event of it names the same response, item and indexes.
    const responseId = (first.done.response as { id: string }).id;
    const itemId = (first.done.response as { output: Array<{ id: string }> }).output[0]!.id;
    for (const e of first.events.filter((e) => "response_id" in e)) expect(e).toMatchObject({ response_id: responseId, output_index: 0 });
    for (const e of first.events.filter((e) => "item_id" in e)) expect(e).toMatchObject({ item_id: itemId, content_index: 0 });
    expect(first.events.find((e) => e.type === "conversation.item.added")).toMatchObject({ previous_item_id: userItemId, item: { id: itemId, status: "in_progress" } });
    expect(first.done.response).toMatchObject({
      status: "completed",
      output: [{ id: itemId, type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text }] }],
    });
    const inputTokens = countPromptTokens([{ role: "user", content: "Hello there" }]);
    const usage = (first.done.response as { usage: Usage }).usage;
    expect(usage).toEqual({
      input_tokens: inputTokens,
      output_tokens: countTextTokens(text),
      total_tokens: inputTokens + countTextTokens(text),
      input_token_details: { text_tokens: inputTokens, audio_tokens: 0, cached_tokens: 0 },
      output_token_details: { text_tokens: countTextTokens(text), audio_tokens: 0 },
    });

    // The second response follows the first's item, and reads the whole conversation so far.
    const second = await respond(session);
    expect(second.events.find((e) => e.type === "conversation.item.added")).toMatchObject({ previous_item_id: itemId });
    const secondUsage = (second.done.response as { usage: Usage }).usage;
    expect(secondUsage.input_tokens).toBe(countPromptTokens([{ role: "user", content: "Hello there" }, { role: "assistant", content: text }]));
    session.socket.close(1000);
    expect(await session.closed).toMatchObject({ code: 1000 });
    expectGAEvents(session.events);

    const expected = priceOf(usage) + priceOf(secondUsage);
    const row = await eventually(
      () => requestRow(t.platform.services.db, session.requestId),
      (r) => r !== undefined,
    );
    expect(row).toMatchObject({ endpoint: "/v1/realtime", model: "sentx-v1", status: "succeeded", costCents: expected });
    expect(await settledMoney(accountId)).toMatchObject({ balanceCents: 500 - expected, ledgerSumCents: 500 - expected });
  });

  it("sends only GA-conformant events through a whole exchange: configuration, items, audio, responses and refusals", async () => {
    const { key } = await t.createCustomer({ balanceCents: 500 });
    const session = await openSession(wsUrl(), bearer(key));
    await session.next("session.created");

    session.send({ type: "session.update", session: { type: "realtime", instructions: "Be brief." } });
    expect((await session.next("session.updated")).session).toMatchObject({ type: "realtime", instructions: "Be brief.", output_modalities: ["text"] });

    session.send({ type: "conversation.item.create", item: { type: "message", role: "system", content: [{ type: "input_text", text: "Answer in English." }] } });
    const system = await session.next("conversation.item.added");
    session.send({ type: "conversation.item.create", item: { id: "item_mine", type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] } });
    expect(await session.next("conversation.item.added")).toMatchObject({ previous_item_id: (system.item as { id: string }).id, item: { id: "item_mine" } });

    // Appended audio is counted; a commit makes it a user item after the last one, a clear drops it.
    session.send({ type: "input_audio_buffer.append", audio: Buffer.alloc(300).toString("base64") });
    session.send({ type: "input_audio_buffer.commit" });
    const committed = await session.next("input_audio_buffer.committed");
    expect(committed).toMatchObject({ previous_item_id: "item_mine" });
    expect(await session.next("conversation.item.added")).toMatchObject({
      previous_item_id: "item_mine",
      item: { id: committed.item_id, role: "user", content: [{ type: "input_audio" }] },
    });
    session.send({ type: "input_audio_buffer.append", audio: Buffer.alloc(30).toString("base64") });
    session.send({ type: "input_audio_buffer.clear" });
    await session.next("input_audio_buffer.cleared");

    const { done, events } = await respond(session);
    expect(lifecycleOf(events)).toEqual(RESPONSE_LIFECYCLE);
    expect((await session.next("response.output_text.done")).text).toContain("3 messages");
    const heard = [
      { role: "system" as const, content: "Answer in English." },
      { role: "user" as const, content: "Hi" },
      { role: "user" as const, content: "(300 bytes of audio)" },
    ];
    expect((done.response as { usage: Usage }).usage.input_tokens).toBe(countPromptTokens(heard));

    session.socket.close(1000);
    await session.closed;
    expectGAEvents(session.events);
  });

  it("refuses what it cannot take with a conformant error event naming the client's event, and keeps the session open", async () => {
    const { key } = await t.createCustomer();
    const session = await openSession(wsUrl(), bearer(key));
    await session.next("session.created");
    const refusal = async (event: object | string) => {
      session.socket.send(typeof event === "string" ? event : JSON.stringify(event));
      return (await session.next("error")).error;
    };

    expect(await refusal({ type: "transcription_session.update", event_id: "evt_1" })).toMatchObject({ code: "unknown_event", event_id: "evt_1" });
    expect(await refusal("not json")).toMatchObject({ code: "invalid_json", event_id: null });
    expect(await refusal({ event_id: "evt_2" })).toMatchObject({ code: "invalid_event", param: "type", event_id: null });
    expect(await refusal({ type: "session.update", event_id: "evt_3", session: { type: "transcription" } })).toMatchObject({
      code: "invalid_value",
      param: "session.type",
      event_id: "evt_3",
    });
    expect(await refusal({ type: "session.update", session: { instructions: 7 } })).toMatchObject({ code: "invalid_value", param: "session.instructions" });
    // Each role takes its own content parts (a system message has no output_text); only message items are kept.
    expect(
      await refusal({ type: "conversation.item.create", item: { type: "message", role: "system", content: [{ type: "output_text", text: "x" }] } }),
    ).toMatchObject({ code: "invalid_value", param: "item.content.0.type" });
    expect(await refusal({ type: "conversation.item.create", item: { type: "function_call", name: "f", arguments: "{}" } })).toMatchObject({
      code: "invalid_value",
    });
    expect(await refusal({ type: "input_audio_buffer.append", audio: 12 })).toMatchObject({ code: "invalid_value", param: "audio" });
    expect(await refusal({ type: "input_audio_buffer.commit", event_id: "evt_4" })).toMatchObject({
      code: "input_audio_buffer_commit_empty",
      event_id: "evt_4",
    });

    // Nothing refused entered the conversation or the session.
    session.send({ type: "session.update", session: { instructions: "Be brief." } });
    expect((await session.next("session.updated")).session).toMatchObject({ type: "realtime", instructions: "Be brief." });
    const { done, events } = await respond(session);
    expect(events.find((e) => e.type === "conversation.item.added")).toMatchObject({ previous_item_id: null });
    expect((done.response as { usage: Usage }).usage.input_tokens).toBe(countPromptTokens([]));
    expect(session.events.filter((e) => e.type === "error")).toHaveLength(9);
    expect(session.events.some((e) => e.type.startsWith("conversation.item.") && (e.item as { role: string }).role !== "assistant")).toBe(false);

    session.socket.close(1000);
    await session.closed;
    expectGAEvents(session.events);
  });

  it("serves the openai SDK's OpenAIRealtimeWS: text, exact usage, GA-conformant events, and the session billed both responses", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 500 });
    const port = Number(new URL(t.url).port);
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1` });
    // The SDK always dials wss://; the test server speaks plain ws on loopback, so the socket is a plain TCP one.
    const rt = new OpenAIRealtimeWS(
      { model: "sentx-v1", options: { createConnection: () => netConnect({ host: "127.0.0.1", port }) } as ClientOptions },
      client,
    );
    const events: RealtimeServerEvent[] = [];
    const errors: unknown[] = [];
    rt.on("event", (event) => events.push(event));
    rt.on("error", (error) => errors.push(error));
    const responseDone = () => new Promise<OpenAI.Realtime.RealtimeResponse>((resolve) => rt.once("response.done", (event) => resolve(event.response)));

    await new Promise<void>((resolve) => rt.once("session.created", () => resolve()));
    rt.send({ type: "session.update", session: { type: "realtime", instructions: "Be brief." } });
    rt.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Hello from the SDK" }] } });
    let text = "";
    rt.on("response.output_text.delta", (event) => (text += event.delta));
    let done = responseDone();
    rt.send({ type: "response.create" });
    const first = await done;
    expect(text).toContain('You said: "Hello from the SDK"');
    expect(first.output).toEqual([expect.objectContaining({ type: "message", role: "assistant", content: [{ type: "output_text", text }] })]);
    const prompt = [{ role: "user" as const, content: "Hello from the SDK" }];
    expect(first.usage).toMatchObject({ input_tokens: countPromptTokens(prompt), output_tokens: countTextTokens(text) });

    const firstText = text;
    text = "";
    done = responseDone();
    rt.send({ type: "response.create" });
    const second = await done;
    expect(second.usage).toMatchObject({
      input_tokens: countPromptTokens([...prompt, { role: "assistant", content: firstText }]),
      output_tokens: countTextTokens(text),
    });
    rt.close({ code: 1000, reason: "done" });

    expect(errors).toEqual([]);
    expect(events.filter((e) => e.type === "response.done")).toHaveLength(2);
    expectGAEvents(events);
    const expected = priceOf(first.usage as Usage) + priceOf(second.usage as Usage);
    expect(await settledMoney(accountId)).toMatchObject({ balanceCents: 500 - expected, ledgerSumCents: 500 - expected, usageEntries: [expect.anything()] });
  });

  it("bills nothing for a session that asked for no response", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 300 });
    const session = await openSession(wsUrl(), bearer(key));
    await session.next("session.created");
    session.socket.close(1000);
    await session.closed;
    const money = await eventually(
      () => moneyState(t.platform.services.db, accountId),
      (m) => m.heldCents === 0,
    );
    expect(money).toMatchObject({ balanceCents: 300, ledgerSumCents: 300, usageEntries: [] });
    expectGAEvents(session.events);
  });
});
