// `npm run bench:usage`: the dashboard's usage series (SPEC 11) over a year of
// traffic. Seeds 10 million request rows (1 million for one account: 4 keys, 3
// models, 2,000 end users, 20,000 conversations, 40% of requests in no
// conversation and 40% without an end user; 9 million over 90 other accounts)
// into a scratch database on the machine's PostgreSQL, through the triggers
// that build the rollups in production, then times the series through the
// domain function. Also measures what the triggers add to one settle's
// insert. Reports figures to the console and docs/usage-series-benchmark.md;
// asserts nothing.
//   BENCH_DATABASE_URL  admin connection (default postgres://postgres@127.0.0.1:5432/postgres)
//   BENCH_RUNS          timed runs per query shape (default 20)
import { writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { type Db, rowsOf } from "../src/domain/db.js";
import { createUsageSeries, type UsageSeriesInput, usageSeriesInput } from "../src/domain/usage-series.js";
import { seriesStatement } from "../src/domain/usage/series-query.js";
import { localBuckets } from "../src/domain/usage/time-buckets.js";
import { openPostgres } from "../src/infra/db.js";
import { percentile } from "./statistics.js";

const adminUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const runs = Number(process.env.BENCH_RUNS ?? 20);
const ACCOUNT = "acct_bench";
const OTHER_ACCOUNTS = 90;
const ACCOUNT_ROWS = 1_000_000;
const OTHER_ROWS = 9_000_000;
const CHUNK = 250_000;
const YEAR_START = "2025-11-30T00:00:00Z";
const YEAR_END = "2026-11-30T00:00:00Z";
const TARGET_MS = 100;

const seconds = (since: number) => (performance.now() - since) / 1000;

async function inScratchDatabase<T>(run: (db: Db) => Promise<T>): Promise<T> {
  const name = `sentx_bench_usage_${randomBytes(6).toString("hex")}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openPostgres(url.toString(), { maxConnections: 2 });
  try {
    return await run(database.db);
  } finally {
    await database.close();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end({ timeout: 5 });
  }
}

/** What the triggers add to a settle: single-row request inserts (one settled hold each), with and without them. */
async function settleCost(db: Db): Promise<{ withoutMs: number; withMs: number }> {
  const insertOne = (i: number) =>
    db.execute(sql`insert into requests (id, account_id, api_key_id, endpoint, model, end_user_id, conversation_id, input_tokens, output_tokens,
      cost_cents, status, http_status, latency_ms) values (${`req_settle${i}`}, ${ACCOUNT}, 'key_b1', 'chat.completions', 'gpt-a', 'eu_1', 'cv_1', 100, 50, 1,
      'succeeded', 200, 10)`);
  const time = async (from: number, count: number) => {
    for (let i = from; i < from + 200; i++) await insertOne(i); // warm-up
    const started = performance.now();
    for (let i = from + 200; i < from + 200 + count; i++) await insertOne(i);
    return (performance.now() - started) / count;
  };
  await db.execute(sql`alter table requests disable trigger requests_roll_up_inserts`);
  const withoutMs = await time(0, 3_000);
  await db.execute(sql`alter table requests enable trigger requests_roll_up_inserts`);
  const withMs = await time(10_000, 3_000);
  await db.execute(sql`delete from requests where id like 'req_settle%'`);
  return { withoutMs, withMs };
}

async function seedAccounts(db: Db) {
  await db.execute(sql`insert into accounts (id, email, display_name)
    select ${ACCOUNT}, 'bench@example.com', 'bench' union all
    select 'acct_o' || n, 'other' || n || '@example.com', 'other' from generate_series(0, ${OTHER_ACCOUNTS - 1}) n`);
  await db.execute(sql`insert into api_keys (id, account_id, name, hash, display_prefix, display_suffix)
    select 'key_b' || n, ${ACCOUNT}, 'bench ' || n, 'hash_b' || n, 'sk-b' || n || 'xx', 'xxxx' from generate_series(1, 4) n union all
    select 'key_o' || n, 'acct_o' || n, 'other', 'hash_o' || n, 'sk-oooo', 'xxxx' from generate_series(0, ${OTHER_ACCOUNTS - 1}) n`);
  await db.execute(sql`insert into end_users (id, account_id, external_id)
    select 'eu_' || n, ${ACCOUNT}, 'user-' || n from generate_series(1, 2000) n`);
  await db.execute(sql`insert into conversations (id, account_id, external_id, end_user_id)
    select 'cv_' || n, ${ACCOUNT}, 'conversation-' || n, 'eu_' || (1 + n % 2000) from generate_series(1, 20000) n`);
}

// The bench account's row i: 40% in one of 20,000 conversations (20 requests
// each, 3 minutes apart, starting anywhere in the year, with its end user),
// 20% with an end user only, 40% with neither; anywhere in the year.
const accountChunk = (from: number, to: number) => sql`
  insert into requests (id, account_id, api_key_id, endpoint, model, end_user_id, conversation_id, input_tokens, output_tokens,
    cost_cents, status, http_status, latency_ms, created_at)
  select 'req_b' || i, ${ACCOUNT}, 'key_b' || (1 + coalesce(c, i) % 4), 'chat.completions', 'gpt-' || chr(97 + (coalesce(c, i) % 3)::int),
    case when c is not null then 'eu_' || (1 + c % 2000) when i % 5 = 2 then 'eu_' || (1 + (i * 7) % 2000) end,
    'cv_' || c, 50 + (i * 37) % 2000, 10 + (i * 53) % 800, 1 + (i * 17) % 30, 'succeeded', 200, 100,
    case when c is not null then ${YEAR_START}::timestamptz + ((c * 7919) % 524000) * interval '1 minute' + (j / 20000) * interval '3 minutes'
      else ${YEAR_START}::timestamptz + random() * interval '365 days' end
  from generate_series(${from}::bigint, ${to - 1}::bigint) i
  cross join lateral (select case when i % 5 < 2 then (i / 5) * 2 + i % 5 end as j) conversational
  cross join lateral (select 1 + j % 20000 as c) conversation`;

const otherChunk = (from: number, to: number) => sql`
  insert into requests (id, account_id, api_key_id, endpoint, model, input_tokens, output_tokens, cost_cents, status, http_status, latency_ms, created_at)
  select 'req_o' || i, 'acct_o' || i % ${OTHER_ACCOUNTS}, 'key_o' || i % ${OTHER_ACCOUNTS}, 'chat.completions', 'gpt-' || chr(97 + (i % 3)::int),
    50 + (i * 37) % 2000, 10 + (i * 53) % 800, 1 + (i * 17) % 30, 'succeeded', 200, 100,
    ${YEAR_START}::timestamptz + random() * interval '365 days'
  from generate_series(${from}::bigint, ${to - 1}::bigint) i`;

async function seed(db: Db) {
  await seedAccounts(db);
  const started = performance.now();
  for (let from = 0; from < ACCOUNT_ROWS; from += CHUNK) await db.execute(accountChunk(from, Math.min(from + CHUNK, ACCOUNT_ROWS)));
  for (let from = 0; from < OTHER_ROWS; from += CHUNK) await db.execute(otherChunk(from, Math.min(from + CHUNK, OTHER_ROWS)));
  const seedSeconds = seconds(started);
  const vacuumStarted = performance.now();
  await db.execute(sql`vacuum analyze requests`);
  await db.execute(sql`vacuum analyze usage_rollups`);
  const grains = rowsOf<{ grain: string; account: string; total: string }>(
    await db.execute(sql`select grain, count(*) filter (where account_id = ${ACCOUNT})::text as account, count(*)::text as total
      from usage_rollups group by grain order by grain`),
  );
  return { seedSeconds, vacuumSeconds: seconds(vacuumStarted), grains };
}

/** The seconds the same 10 million rows take without the triggers: what the rollups cost the seeding. */
async function seedWithoutTriggers(db: Db): Promise<number> {
  await db.execute(sql`alter table requests disable trigger requests_roll_up_inserts`);
  await db.execute(sql`create table requests_copy (like requests including all)`);
  const started = performance.now();
  await db.execute(sql`insert into requests_copy select * from requests`);
  const elapsed = seconds(started);
  await db.execute(sql`drop table requests_copy`);
  await db.execute(sql`alter table requests enable trigger requests_roll_up_inserts`);
  return elapsed;
}

interface Shape {
  name: string;
  input: Record<string, unknown>;
}

const year = { from: YEAR_START, to: YEAR_END, bucket: "day", timeZone: "America/New_York" };
const shapes: Shape[] = [
  { name: "a year, day buckets", input: year },
  { name: "a year, day buckets, Asia/Kolkata (hourly and quarter-hour rows)", input: { ...year, timeZone: "Asia/Kolkata" } },
  { name: "a year by model", input: { ...year, groupBy: "model" } },
  { name: "a year by key", input: { ...year, groupBy: "key" } },
  { name: "30 days, hour buckets, by end user", input: { from: "2026-10-31T00:00:00Z", to: "2026-11-30T00:00:00Z", bucket: "hour", timeZone: "America/New_York", groupBy: "endUser" } },
  { name: "a year by conversation", input: { ...year, groupBy: "conversation" } },
  { name: "a year, one conversation", input: { ...year, filter: { conversationIds: ["cv_4242"] } } },
];

async function explain(db: Db, input: UsageSeriesInput): Promise<string[]> {
  const { starts, end } = localBuckets(input.timeZone, input.bucket, input.from, input.to);
  const statement = seriesStatement({ accountId: ACCOUNT, starts, end, filter: input.filter, groupBy: input.groupBy, limit: input.groups });
  const plan = rowsOf<{ "QUERY PLAN": string }>(await db.execute(sql`explain (analyze, buffers) ${statement}`)).map((row) => row["QUERY PLAN"]);
  const scans = plan.filter((line) => /Scan on usage_rollups|Scan using/.test(line)).map((line) => line.trim().replace(/^->\s*/, ""));
  const buffers = plan.find((line) => line.includes("Buffers:"))?.trim() ?? "";
  const time = plan.find((line) => line.startsWith("Execution Time"))?.trim() ?? "";
  return [...new Set(scans)].concat(buffers, time);
}

async function timeShapes(db: Db) {
  const usage = createUsageSeries({ db });
  const results = [];
  for (const shape of shapes) {
    const input = usageSeriesInput.parse(shape.input);
    const times: number[] = [];
    let series = await usage.series(ACCOUNT, input);
    await usage.series(ACCOUNT, input);
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      series = await usage.series(ACCOUNT, input);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    results.push({
      name: shape.name,
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      max: times.at(-1)!,
      buckets: series.points.length,
      groups: series.groups.length,
      requests: series.totals.requests,
      plan: await explain(db, input),
    });
  }
  return results;
}

async function main() {
  const report = await inScratchDatabase(async (db) => {
    await seedAccounts(db);
    const settle = await settleCost(db);
    await db.execute(sql`delete from usage_rollups`);
    await db.execute(sql`delete from conversations`);
    await db.execute(sql`delete from end_users`);
    await db.execute(sql`delete from api_keys`);
    await db.execute(sql`delete from accounts`);
    const seeded = await seed(db);
    const plainSeconds = await seedWithoutTriggers(db);
    return { settle, seeded, plainSeconds, shapes: await timeShapes(db) };
  });

  const fmt = (ms: number) => ms.toFixed(1);
  const lines = [
    "# Usage series benchmark",
    "",
    "Written by `npm run bench:usage` (bench/usage-series.ts); `npm run bench` writes BENCHMARKS.md and leaves this file alone.",
    "",
    `PostgreSQL ${await serverVersion()}, ${runs} timed runs per shape after 2 warm-ups, through the domain function (createUsageSeries).`,
    "",
    "## Seeding",
    "",
    `- 10,000,000 request rows (1,000,000 for the measured account) in ${CHUNK.toLocaleString("en")}-row INSERT … SELECT statements, through the rollup triggers: ${report.seeded.seedSeconds.toFixed(0)} s`,
    `  (the same rows copied into a table without triggers: ${report.plainSeconds.toFixed(0)} s); vacuum analyze: ${report.seeded.vacuumSeconds.toFixed(0)} s.`,
    `- One settle's request insert (single row, end user and conversation), mean over 3,000: ${report.settle.withoutMs.toFixed(3)} ms without the triggers, ${report.settle.withMs.toFixed(3)} ms with them.`,
    "",
    "| grain | rows, measured account | rows, all accounts |",
    "| --- | ---: | ---: |",
    ...report.seeded.grains.map((grain) => `| ${grain.grain} | ${Number(grain.account).toLocaleString("en")} | ${Number(grain.total).toLocaleString("en")} |`),
    "",
    "## Queries (America/New_York unless named; target < 100 ms)",
    "",
    "| shape | buckets | groups | p50 ms | p95 ms | max ms | target |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ...report.shapes.map(
      (shape) =>
        `| ${shape.name} | ${shape.buckets} | ${shape.groups} | ${fmt(shape.p50)} | ${fmt(shape.p95)} | ${fmt(shape.max)} | ${shape.p95 < TARGET_MS ? "met" : `missed by ${fmt(shape.p95 - TARGET_MS)} ms (p95)`} |`,
    ),
    "",
    "## EXPLAIN (ANALYZE, BUFFERS) highlights",
    "",
    ...report.shapes.flatMap((shape) => [`- ${shape.name}:`, ...shape.plan.map((line) => `  - \`${line}\``)]),
    "",
  ];
  const markdown = lines.join("\n");
  console.log(markdown);
  writeFileSync(new URL("../docs/usage-series-benchmark.md", import.meta.url), markdown);
}

async function serverVersion(): Promise<string> {
  const admin = postgres(adminUrl, { max: 1 });
  try {
    const [row] = await admin`show server_version`;
    return String(row!.server_version).split(" ")[0]!;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

await main();
