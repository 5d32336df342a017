import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerProcess } from "../support/server-process.js";
import { eventually } from "../support/eventually.js";
import { chatOverFetch, streamedError, usageOf } from "./support/chat-over-fetch.js";
import { type FaultStack, startFaultStack } from "./support/fault-stack.js";

// A settle that cannot commit (the database refuses the request record for a
// while) is retried until it does: it never turns into a release, the hold
// keeps the whole charge meanwhile, and a non-streamed answer is not delivered
// before its charge committed.

let stack: FaultStack;
let server: ServerProcess;

beforeAll(async () => {
  stack = await startFaultStack({ env: { HOLD_CHECKPOINT_SECONDS: "1", HOLD_TTL_SECONDS: "60" } });
  server = await stack.startServer();
}, 90_000);
afterAll(() => stack?.close());

/** Makes the database refuse every request record until the returned function is called. */
async function refuseRecords(sql: FaultStack["sql"]) {
  await sql.unsafe("create function refuse_record() returns trigger language plpgsql as $$ begin raise exception 'disk full'; end $$");
  await sql.unsafe("create trigger refuse_record before insert on requests for each row execute function refuse_record()");
  return async () => {
    await sql.unsafe("drop trigger refuse_record on requests");
    await sql.unsafe("drop function refuse_record()");
  };
}

const hold = async (sql: FaultStack["sql"], requestId: string) =>
  (await sql<{ status: string; delivered_cost_cents: string }[]>`
    select status, delivered_cost_cents::text from holds where request_id = ${requestId}`)[0];

describe("a settle that cannot commit", () => {
  it("is retried until it does, for a delivered stream; a non-streamed answer is refused with 503 instead of delivered unbilled", async () => {
    const { accountId, key } = await stack.customer(server, 100);
    const client = chatOverFetch(server.url);
    const body = { model: "sentx-v1", messages: [{ role: "user", content: "Hi" }] };
    const allow = await refuseRecords(stack.sql);
    let streamed;
    let plain;
    try {
      streamed = await client.send(key, { ...body, stream: true }, { headers: { "X-Include-Cost": "1" } });
      plain = await client.send(key, body);

      // The stream was delivered in full and announced its cost…
      expect(streamed.completed).toBe(true);
      expect(streamedError(streamed)).toBeUndefined();
      expect(usageOf(streamed).cost_cents).toBe(1);
      // …which its hold keeps as the durable pending charge while nothing can be recorded.
      const pending = await eventually(() => hold(stack.sql, streamed!.requestId!), (h) => h?.delivered_cost_cents === "1");
      expect(pending).toEqual({ status: "active", delivered_cost_cents: "1" });

      expect(plain.status).toBe(503);
      expect(plain.body.error).toMatchObject({ code: "service_unavailable", type: "server_error" });
      const [usage] = await stack.sql`select count(*)::int as n from ledger_entries where kind = 'usage'`;
      expect(usage!.n).toBe(0);
    } finally {
      await allow();
    }

    // The database takes records again: the stream is charged and recorded once, the refused answer released.
    const settled = await eventually(() => hold(stack.sql, streamed!.requestId!), (h) => h?.status === "settled", 15_000);
    expect(settled?.status).toBe("settled");
    const released = await eventually(() => hold(stack.sql, plain!.requestId!), (h) => h?.status === "released", 15_000);
    expect(released?.status).toBe("released");
    const records = await stack.sql<{ id: string; status: string; cost_cents: string; http_status: number }[]>`
      select id, status, cost_cents::text, http_status from requests where account_id = ${accountId}`;
    expect(records).toHaveLength(2);
    expect(records).toEqual(
      expect.arrayContaining([
        { id: streamed!.requestId, status: "succeeded", cost_cents: "1", http_status: 200 },
        { id: plain!.requestId, status: "failed", cost_cents: "0", http_status: 503 },
      ]),
    );
    const report = await stack.expectExactBooks();
    console.log(`faults: settle retry: requests=2 faults=1 discrepancies=${report.discrepancies.length}`);
  }, 60_000);
});
