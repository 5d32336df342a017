import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countPromptTokens, countTextTokens } from "../../src/domain/inference/tokens.js";
import { priceRequest } from "../../src/domain/pricing.js";
import { eventually } from "../support/eventually.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { moneyState, requestRow } from "../support/queries.js";
import { openSession } from "../support/realtime-client.js";

// The embedded default's realtime sessions: the demo provider answers over
// its loopback endpoint, through the same relay, hold and metering as a real
// upstream, so `GET /v1/realtime?model=sentx-v1` works out of the box.

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

describe("a realtime session with the demo model", () => {
  it("greets, answers each response.create word by word with exact usage, and bills each response", async () => {
    const { accountId, key } = await t.createCustomer({ balanceCents: 500 });
    const session = await openSession(wsUrl(), bearer(key));
    const created = await session.next("session.created");
    expect(created.session).toMatchObject({ object: "realtime.session", model: "sentx-v1" });

    session.send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Hello there" }] } });
    expect((await session.next("conversation.item.created")).item).toMatchObject({ role: "user" });
    session.send({ type: "response.create" });
    const done = await session.next("response.done");
    const text = (await session.next("response.output_text.done")).text as string;
    const deltas = session.events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    expect(deltas).toBe(text);
    expect(text).toContain('You said: "Hello there"');
    const inputTokens = countPromptTokens([{ role: "user", content: "Hello there" }]);
    expect((done.response as { usage: unknown }).usage).toMatchObject({ input_tokens: inputTokens, output_tokens: countTextTokens(text) });

    session.send({ type: "response.create" });
    const second = (await session.next("response.done")).response as { usage: { input_tokens: number; output_tokens: number } };
    session.socket.close(1000);
    expect(await session.closed).toMatchObject({ code: 1000 });

    const expected =
      priceRequest(PRICES, { inputTokens: inputTokens, outputTokens: countTextTokens(text) }) +
      priceRequest(PRICES, { inputTokens: second.usage.input_tokens, outputTokens: second.usage.output_tokens });
    const row = await eventually(
      () => requestRow(t.platform.services.db, session.requestId),
      (r) => r !== undefined,
    );
    expect(row).toMatchObject({ endpoint: "/v1/realtime", model: "sentx-v1", status: "succeeded", costCents: expected });
    const money = await eventually(
      () => moneyState(t.platform.services.db, accountId),
      (m) => m.heldCents === 0,
    );
    expect(money).toMatchObject({ balanceCents: 500 - expected, ledgerSumCents: 500 - expected });
  });

  it("answers an event it does not handle with an error event, and keeps the session open", async () => {
    const { key } = await t.createCustomer();
    const session = await openSession(wsUrl(), bearer(key));
    session.send({ type: "transcription_session.update" });
    expect((await session.next("error")).error).toMatchObject({ code: "unknown_event" });
    session.socket.send("not json");
    expect((await session.next("error")).error).toMatchObject({ code: "invalid_json" });
    session.send({ type: "session.update", session: { instructions: "Be brief." } });
    expect((await session.next("session.updated")).session).toMatchObject({ instructions: "Be brief." });
    session.socket.close(1000);
    await session.closed;
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
  });
});
