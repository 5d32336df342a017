import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../src/domain/db.js";
import { createUsageSeries, usageSeriesInput } from "../../src/domain/usage-series.js";
import { dashboard, errorCode } from "../support/dashboard.js";
import { createPgliteDatabase } from "../support/db.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";

// SPEC 11: the usage series sums the request log (kept as rollups by triggers
// on it) in local hours or days of any zone, per key, model, end user or conversation.

let t: TestPlatform;
let api: ReturnType<typeof dashboard>;

beforeAll(async () => {
  t = await startTestPlatform({
    models: {
      defaultModel: "sentx-v1",
      models: [
        { id: "sentx-v1", upstreams: [{ provider: "demo" }] },
        { id: "sentx-mini", upstreams: [{ provider: "demo" }] },
      ],
    },
  });
  api = dashboard(t);
});
afterAll(() => t?.close());

const db = () => t.platform.services.db;

const USAGE = `query ($from: String!, $to: String!, $bucket: UsageBucket!, $timeZone: String!, $filter: UsageFilter, $groupBy: UsageDimension, $groups: Int) {
  usage(from: $from, to: $to, bucket: $bucket, timeZone: $timeZone, filter: $filter, groupBy: $groupBy, groups: $groups) {
    bucket timeZone from to dimension
    totals { requests inputTokens outputTokens costCents }
    points { start requests inputTokens outputTokens costCents }
    groups { id label other totals { requests inputTokens outputTokens costCents } points { start requests costCents } }
  }
}`;

interface Sums {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costCents: number;
}

async function usage(token: string, variables: Record<string, unknown>) {
  const answer = await api.graphql(USAGE, { bucket: "DAY", timeZone: "UTC", ...variables }, token);
  expect(answer.errors).toBeUndefined();
  return answer.data!.usage;
}

/** The request log's own sums, per value of `column` (or one row for all). */
async function logSums(accountId: string, column?: string): Promise<Map<string | null, Sums>> {
  const by = sql.raw(column ?? "null");
  const rows = rowsOf<Record<string, unknown>>(
    await db().execute(sql`select ${by} as id, count(*)::int as requests, sum(input_tokens)::int as input, sum(output_tokens)::int as output,
      sum(cost_cents)::int as cost from requests where account_id = ${accountId} group by 1`),
  );
  return new Map(
    rows.map((row) => [
      row.id as string | null,
      { requests: Number(row.requests), inputTokens: Number(row.input), outputTokens: Number(row.output), costCents: Number(row.cost) },
    ]),
  );
}

async function grant(accountId: string, amountCents: number) {
  const { db, ledger } = t.platform.services;
  await db.transaction((tx) => ledger.post(tx, { accountId, kind: "grant", amountCents, idempotencyKey: `grant-${accountId}`, memo: "test" }));
}

async function createKey(token: string, name: string) {
  const created = await api.graphql(`mutation ($name: String!) { createKey(name: $name) { key apiKey { id } } }`, { name }, token);
  return { key: created.data!.createKey.key as string, id: created.data!.createKey.apiKey.id as string };
}

/** Real chat traffic through the SDK: two keys, two models, end users and conversations by header and body, streamed and not. */
async function chatTraffic(token: string) {
  const [first, second] = [await createKey(token, "web"), await createKey(token, "batch")];
  const calls: Array<{ key: string; model: string; stream: boolean; headers?: Record<string, string>; user?: string }> = [
    { key: first.key, model: "sentx-v1", stream: false, headers: { "X-User-Id": "alice", "X-Session-Id": "conv-1" } },
    { key: first.key, model: "sentx-v1", stream: true, headers: { "X-User-Id": "alice", "X-Session-Id": "conv-1" } },
    { key: first.key, model: "sentx-mini", stream: false, headers: { "X-User-Id": "Al%C3%A9x", "X-Session-Id": "conv-2" } },
    { key: second.key, model: "sentx-mini", stream: true, user: "bob" },
    { key: second.key, model: "sentx-v1", stream: false, user: "bob", headers: { "X-Session-Id": "conv-3" } },
    { key: second.key, model: "sentx-v1", stream: false },
    { key: first.key, model: "sentx-mini", stream: true },
  ];
  for (const call of calls) {
    const client = t.openai(call.key, call.headers ? { defaultHeaders: call.headers } : {});
    const body = { model: call.model, messages: [{ role: "user" as const, content: "How many tokens is this?" }], ...(call.user && { user: call.user }) };
    if (call.stream) {
      for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) void chunk;
    } else {
      await client.chat.completions.create(body);
    }
  }
  return { keys: [first, second], calls: calls.length };
}

const around = (date: Date) => ({ from: new Date(date.getTime() - 86_400_000).toISOString(), to: new Date(date.getTime() + 86_400_000).toISOString() });

const sumsOf = (sums: Sums) => ({ requests: sums.requests, inputTokens: sums.inputTokens, outputTokens: sums.outputTokens, costCents: sums.costCents });

describe("after real chat traffic", () => {
  let owner: Awaited<ReturnType<typeof api.owner>>;
  let stranger: Awaited<ReturnType<typeof api.owner>>;
  let traffic: Awaited<ReturnType<typeof chatTraffic>>;
  beforeAll(async () => {
    [owner, stranger] = [await api.owner(), await api.owner()];
    await Promise.all([grant(owner.accountId, 10_000), grant(stranger.accountId, 10_000)]);
    traffic = await chatTraffic(owner.token);
    await chatTraffic(stranger.token);
  });

  it("totals and every bucket equal the request log's sums, and no other account's requests count", async () => {
    const series = await usage(owner.token, around(new Date()));
    const logged = (await logSums(owner.accountId)).get(null)!;
    expect(logged.requests).toBe(traffic.calls);
    expect(logged.costCents).toBeGreaterThan(0);
    expect(series.totals).toEqual(logged);
    expect(series.points).toHaveLength(3);
    const summed = series.points.reduce((sum: Sums, point: Sums) => ({
      requests: sum.requests + point.requests,
      inputTokens: sum.inputTokens + point.inputTokens,
      outputTokens: sum.outputTokens + point.outputTokens,
      costCents: sum.costCents + point.costCents,
    }));
    expect(sumsOf(summed)).toEqual(logged);
    expect(series.groups).toEqual([]);
  });

  it.each([
    ["KEY", "api_key_id"],
    ["MODEL", "model"],
    ["END_USER", "end_user_id"],
    ["CONVERSATION", "conversation_id"],
  ])("grouped by %s, each group equals the log's sums for its value", async (groupBy, column) => {
    const series = await usage(owner.token, { ...around(new Date()), groupBy });
    const logged = await logSums(owner.accountId, column);
    expect(series.dimension).toBe(groupBy);
    expect(series.groups.filter((group: { other: boolean }) => group.other)).toEqual([]);
    expect(new Map(series.groups.map((group: { id: string | null; totals: Sums }) => [group.id, group.totals]))).toEqual(logged);
    const ids = [...logged.keys()].filter((id) => id !== null);
    expect(series.groups.filter((group: { label: string | null }) => group.label !== null)).toHaveLength(ids.length);
  });

  it("labels keys by name and prefix, end users and conversations by their external ids", async () => {
    const byUser = await usage(owner.token, { ...around(new Date()), groupBy: "END_USER" });
    expect(byUser.groups.map((group: { label: string | null }) => group.label).sort()).toEqual(["Aléx", "alice", "bob", null].sort());
    const byKey = await usage(owner.token, { ...around(new Date()), groupBy: "KEY" });
    expect(byKey.groups.map((group: { label: string }) => group.label).sort()).toEqual([expect.stringMatching(/^batch \(sk-\w{4}…\)$/), expect.stringMatching(/^web \(sk-\w{4}…\)$/)]);
  });

  it("filters by key, model, end user and conversation", async () => {
    const [web] = traffic.keys;
    const byKey = await usage(owner.token, { ...around(new Date()), filter: { keyIds: [web!.id] } });
    expect(byKey.totals).toEqual((await logSums(owner.accountId, "api_key_id")).get(web!.id));
    const byModel = await usage(owner.token, { ...around(new Date()), filter: { models: ["sentx-mini"] } });
    expect(byModel.totals).toEqual((await logSums(owner.accountId, "model")).get("sentx-mini"));

    const byUser = await usage(owner.token, { ...around(new Date()), groupBy: "END_USER" });
    const alice = byUser.groups.find((group: { label: string }) => group.label === "alice");
    const onlyAlice = await usage(owner.token, { ...around(new Date()), filter: { endUserIds: [alice.id] }, groupBy: "CONVERSATION" });
    expect(onlyAlice.totals).toEqual(alice.totals);
    expect(onlyAlice.groups.map((group: { label: string }) => group.label)).toEqual(["conv-1"]);

    const conversation = onlyAlice.groups[0].id;
    const both = await usage(owner.token, { ...around(new Date()), filter: { conversationIds: [conversation], models: ["sentx-mini"] } });
    expect(both.totals.requests).toBe(0);
    expect(both.points.every((point: Sums) => point.requests === 0)).toBe(true);
  });

  it("a stranger's ids filter nothing out of another account", async () => {
    const mine = await usage(owner.token, { ...around(new Date()), groupBy: "KEY" });
    const theirs = await usage(stranger.token, { ...around(new Date()), filter: { keyIds: mine.groups.map((group: { id: string }) => group.id) } });
    expect(theirs.totals).toEqual({ requests: 0, inputTokens: 0, outputTokens: 0, costCents: 0 });
  });
});

describe("seeded request rows", () => {
  let owner: Awaited<ReturnType<typeof api.owner>>;
  beforeAll(async () => {
    owner = await api.owner();
  });

  let seeded = 0;
  /** Request rows at chosen instants, as the settle statement writes them (through the same triggers). */
  async function seed(rows: Array<{ at: string; model?: string; cost?: number; endUserId?: string; input?: number }>) {
    const values = rows.map(
      (row) =>
        sql`(${`req_seed${++seeded}${owner.accountId}`}, ${owner.accountId}, 'chat.completions', ${row.model ?? "m"}, ${row.endUserId ?? null}, ${row.input ?? 10}, 5, ${row.cost ?? 1}, 'succeeded', 200, 1, ${row.at}::timestamptz)`,
    );
    await db().execute(sql`insert into requests (id, account_id, endpoint, model, end_user_id, input_tokens, output_tokens, cost_cents, status, http_status, latency_ms, created_at)
      values ${sql.join(values, sql`, `)}`);
  }

  it("hour buckets follow New York's clock back on 2026-11-01: two 01:00 hours, zero-filled", async () => {
    await seed([{ at: "2026-11-01T05:10:00Z" }, { at: "2026-11-01T05:59:59Z" }, { at: "2026-11-01T06:00:00Z" }, { at: "2026-11-01T08:30:00Z" }]);
    const series = await usage(owner.token, { from: "2026-11-01T04:00:00Z", to: "2026-11-01T09:00:00Z", bucket: "HOUR", timeZone: "America/New_York" });
    expect(series.points.map((point: { start: string; requests: number }) => [point.start, point.requests])).toEqual([
      ["2026-11-01T04:00:00.000Z", 0], // 00:00 EDT
      ["2026-11-01T05:00:00.000Z", 2], // 01:00 EDT
      ["2026-11-01T06:00:00.000Z", 1], // 01:00 EST
      ["2026-11-01T07:00:00.000Z", 0], // 02:00 EST
      ["2026-11-01T08:00:00.000Z", 1], // 03:00 EST
    ]);
    expect(series.to).toBe("2026-11-01T09:00:00.000Z");
  });

  it("day buckets in New York last 25 hours on the day the clocks go back", async () => {
    const series = await usage(owner.token, { from: "2026-10-31T12:00:00Z", to: "2026-11-02T12:00:00Z", bucket: "DAY", timeZone: "America/New_York" });
    expect(series.from).toBe("2026-10-31T04:00:00.000Z");
    expect(series.points.map((point: { start: string; requests: number }) => [point.start, point.requests])).toEqual([
      ["2026-10-31T04:00:00.000Z", 0],
      ["2026-11-01T04:00:00.000Z", 4],
      ["2026-11-02T05:00:00.000Z", 0],
    ]);
  });

  it("day and hour buckets in half- and quarter-hour zones are exact: Asia/Kolkata and Asia/Kathmandu", async () => {
    // Kolkata's 2026-03-02 starts at 2026-03-01T18:30Z; Kathmandu's hours at a quarter past UTC's.
    await seed([
      { at: "2026-03-01T18:14:59Z", cost: 2 },
      { at: "2026-03-01T18:29:59Z", cost: 3 },
      { at: "2026-03-01T18:30:00Z", cost: 5 },
      { at: "2026-03-02T18:29:00Z", cost: 7 },
    ]);
    const days = await usage(owner.token, { from: "2026-03-01T00:00:00Z", to: "2026-03-02T12:00:00Z", bucket: "DAY", timeZone: "Asia/Kolkata" });
    expect(days.points.map((point: { start: string; costCents: number }) => [point.start, point.costCents])).toEqual([
      ["2026-02-28T18:30:00.000Z", 5],
      ["2026-03-01T18:30:00.000Z", 12],
    ]);
    const hours = await usage(owner.token, { from: "2026-03-01T18:00:00Z", to: "2026-03-01T19:00:00Z", bucket: "HOUR", timeZone: "Asia/Kathmandu" });
    expect(hours.points.map((point: { start: string; costCents: number }) => [point.start, point.costCents])).toEqual([
      ["2026-03-01T17:15:00.000Z", 2],
      ["2026-03-01T18:15:00.000Z", 8],
    ]);
  });

  it("a year of day buckets off the whole hour counts each request once around the split hours (hourly rows plus quarter-hour ones)", async () => {
    // Kolkata's days start at 18:30Z, Kathmandu's at 18:15Z: the series reads hourly rows for the whole
    // hours and quarter-hour rows for the hour holding each boundary. Requests on every quarter of those
    // hours and either side of them, on several days, in two models so the grouped statement is checked too.
    const days = ["2025-12-01", "2026-01-15", "2026-06-30", "2026-11-28"];
    const minutes = ["17:59:59", "18:00", "18:14:59", "18:15", "18:29", "18:29:59", "18:30", "18:44:59", "18:45", "18:59:59", "19:00", "19:15", "03:00"];
    await seed(days.flatMap((day, d) => minutes.map((time, m) => ({ at: `${day}T${time}Z`, model: m % 2 ? "m-odd" : "m-even", cost: 1 + d * 100 + m * 7, input: 3 + m }))));
    const range = { from: "2025-11-30T00:00:00Z", to: "2026-11-30T00:00:00Z", bucket: "DAY" };
    for (const timeZone of ["Asia/Kolkata", "Asia/Kathmandu"]) {
      const input = usageSeriesInput.parse({ ...range, bucket: "day", timeZone });
      const byDay = await usage(owner.token, { ...range, timeZone, groupBy: "MODEL" });
      expect(byDay.points).toHaveLength(366);
      // The log's own sums per local day: each bucket's start as the database sees it.
      const logged = rowsOf<{ start: Date | string; model: string; requests: number; cost: number; input: number }>(
        await db().execute(sql`select (date_trunc('day', created_at at time zone ${timeZone}) at time zone ${timeZone}) as start, model,
          count(*)::int as requests, sum(cost_cents)::int as cost, sum(input_tokens)::int as input
          from requests where account_id = ${owner.accountId} and created_at >= ${input.from.toISOString()}::timestamptz and created_at < ${input.to.toISOString()}::timestamptz
          group by 1, 2`),
      );
      const expected = new Map<string, { requests: number; costCents: number; inputTokens: number }>();
      for (const row of logged) {
        const key = new Date(row.start).toISOString();
        const sums = expected.get(key) ?? { requests: 0, costCents: 0, inputTokens: 0 };
        expected.set(key, { requests: sums.requests + row.requests, costCents: sums.costCents + row.cost, inputTokens: sums.inputTokens + row.input });
      }
      expect(expected.size).toBeGreaterThanOrEqual(8); // the days before and after each boundary, and the other tests' days
      const nonZero = byDay.points.filter((point: Sums) => point.requests > 0);
      expect(new Map(nonZero.map((point: Sums & { start: string }) => [point.start, { requests: point.requests, costCents: point.costCents, inputTokens: point.inputTokens }]))).toEqual(expected);
      const ungrouped = await usage(owner.token, { ...range, timeZone });
      expect(ungrouped.points).toEqual(byDay.points);
      for (const model of ["m-odd", "m-even"]) {
        const group = byDay.groups.find((candidate: { id: string }) => candidate.id === model);
        const cost = logged.filter((row) => row.model === model).reduce((sum, row) => sum + row.cost, 0);
        expect(group.totals.costCents).toBe(cost);
        expect(group.points.reduce((sum: number, point: { costCents: number }) => sum + point.costCents, 0)).toBe(cost);
      }
    }
  });

  it("groups beyond the top N are summed into other; requests without an end user are a group of their own", async () => {
    const users = rowsOf<{ id: string }>(
      await db().execute(sql`insert into end_users (id, account_id, external_id) select 'eu_seed' || g || ${owner.accountId}, ${owner.accountId}, 'user-' || g
        from generate_series(1, 4) g returning id`),
    ).map((row) => row.id).sort();
    await seed([
      ...users.map((endUserId, i) => ({ at: "2026-05-10T10:00:00Z", endUserId, cost: 10 * (i + 1) })),
      { at: "2026-05-10T11:00:00Z", cost: 25 },
    ]);
    const range = { from: "2026-05-10T00:00:00Z", to: "2026-05-11T00:00:00Z", bucket: "DAY", timeZone: "UTC" };
    const series = await usage(owner.token, { ...range, groupBy: "END_USER", groups: 2 });
    expect(series.groups.map((group: { label: string | null; other: boolean; totals: Sums }) => [group.label, group.other, group.totals.costCents])).toEqual([
      ["user-4", false, 40],
      ["user-3", false, 30],
      [null, true, 55], // user-2 (20), user-1 (10) and no end user (25)
    ]);
    const five = await usage(owner.token, { ...range, groupBy: "END_USER", groups: 5 });
    expect(five.groups.map((group: { label: string | null; id: string | null; other: boolean; totals: Sums }) => [group.label, group.other, group.totals.costCents])).toEqual([
      ["user-4", false, 40],
      ["user-3", false, 30],
      [null, false, 25],
      ["user-2", false, 20],
      ["user-1", false, 10],
    ]);
  });
});

describe("refusals", () => {
  const range = { from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", bucket: "DAY", timeZone: "UTC" };
  let token: string;
  beforeAll(async () => {
    token = (await api.owner()).token;
  });

  it.each([
    ["an unknown time zone", { timeZone: "Mars/Olympus_Mons" }, "timeZone"],
    ["to before from", { to: "2025-12-31T00:00:00Z" }, "to"],
    ["to equal to from", { to: range.from }, "to"],
    ["a date that is not ISO 8601", { from: "yesterday" }, "from"],
    ["hour buckets over more than 31 days", { bucket: "HOUR", to: "2026-02-01T00:00:01Z" }, "to"],
    ["day buckets over more than 366 days", { to: "2027-01-02T00:00:01Z" }, "to"],
    ["more than 50 groups", { groupBy: "MODEL", groups: 51 }, "groups"],
    ["no groups", { groupBy: "MODEL", groups: 0 }, "groups"],
    ["a filter of more than 100 ids", { filter: { keyIds: Array.from({ length: 101 }, (_, i) => `key_${i}`) } }, "filter.keyIds"],
    ["an empty filter list", { filter: { models: [] } }, "filter.models"],
  ])("%s: invalid_request_error", async (_, change, param) => {
    const answer = await api.graphql(USAGE, { ...range, ...change }, token);
    expect(errorCode(answer)).toBe("invalid_request_error");
    expect(answer.errors![0]!.extensions!.param).toBe(param);
    expect(answer.data).toBeNull();
  });

  it("needs a session", async () => {
    expect(errorCode(await api.graphql(USAGE, range))).toBe("unauthorized");
  });
});

describe("the embedded database (PGlite)", () => {
  it("keeps the rollups through inserts, updates and deletes, and the series reads them", async () => {
    const pglite = await createPgliteDatabase();
    try {
      const { db } = pglite;
      await db.execute(sql`insert into accounts (id, email, display_name) values ('acct_lite', 'lite@example.com', 'lite')`);
      await db.execute(sql`insert into requests (id, account_id, endpoint, model, status, http_status, latency_ms, input_tokens, output_tokens, cost_cents, created_at)
        values ('req_1', 'acct_lite', 'chat', 'm', 'succeeded', 200, 1, 10, 20, 3, '2026-01-01T00:07:00Z'),
               ('req_2', 'acct_lite', 'chat', 'm', 'succeeded', 200, 1, 5, 5, 1, '2026-01-01T00:20:00Z'),
               ('req_3', 'acct_lite', 'chat', 'm', 'succeeded', 200, 1, 1, 1, 1, '2026-01-01T05:00:00Z')`);
      await db.execute(sql`update requests set cost_cents = 10 where id = 'req_1'`);
      await db.execute(sql`delete from requests where id = 'req_2'`);
      const usage = createUsageSeries({ db });
      const input = usageSeriesInput.parse({ from: "2026-01-01T00:00:00Z", to: "2026-01-01T06:00:00Z", bucket: "hour", timeZone: "Asia/Kolkata" });
      const series = await usage.series("acct_lite", input);
      expect(series.totals).toEqual({ requests: 2, inputTokens: 11, outputTokens: 21, costCents: 11 });
      expect(series.points.filter((point) => point.requests > 0).map((point) => [point.start.toISOString(), point.costCents])).toEqual([
        ["2025-12-31T23:30:00.000Z", 10],
        ["2026-01-01T04:30:00.000Z", 1],
      ]);
    } finally {
      await pglite.drop();
    }
  });
});
