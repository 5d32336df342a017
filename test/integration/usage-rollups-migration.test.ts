import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../src/domain/db.js";
import { migrationsFolder } from "../../src/infra/db.js";
import { randomBase62 } from "../../src/domain/ids.js";
import { testEnv } from "../support/env.js";

// Migration 0006 adds the triggers that keep usage_rollups and fills it from the
// request log already there: on a database with requests from before it, the
// rollups equal the log's sums, on PostgreSQL and on PGlite.

const BEFORE_TRIGGERS = "0005_ops_audit_log";

/** The migrations up to `lastTag`, in a folder of their own. */
function migrationsUpTo(lastTag: string): string {
  const folder = mkdtempSync(join(tmpdir(), "sentx-migrations-"));
  cpSync(migrationsFolder, folder, { recursive: true });
  const journalPath = join(folder, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: Array<{ idx: number; tag: string }> };
  const last = journal.entries.find((entry) => entry.tag === lastTag)!.idx;
  journal.entries = journal.entries.filter((entry) => entry.idx <= last);
  writeFileSync(journalPath, JSON.stringify(journal));
  return folder;
}

const earlierFolder = migrationsUpTo(BEFORE_TRIGGERS);
afterAll(() => rmSync(earlierFolder, { recursive: true, force: true }));

// Several statements: sent as one simple query.
const requestRows = `
  insert into accounts (id, email, display_name) values ('acct_m', 'm@example.com', 'm');
  insert into end_users (id, account_id, external_id) values ('eu_m', 'acct_m', 'user');
  insert into conversations (id, account_id, external_id, end_user_id) values ('cv_m', 'acct_m', 'conversation', 'eu_m');
  insert into requests (id, account_id, endpoint, model, end_user_id, conversation_id, status, http_status, latency_ms, input_tokens, output_tokens, cost_cents, created_at)
  select 'req_m' || i, 'acct_m', 'chat', 'm' || i % 2, case when i % 3 > 0 then 'eu_m' end, case when i % 3 = 2 then 'cv_m' end,
    'succeeded', 200, 1, i, 2 * i, i % 7, timestamptz '2026-01-01T00:00:00Z' + i * interval '11 minutes'
  from generate_series(1, 500) i;`;

// Every grain holds the same totals as the log's rows it keeps.
const grainTotals = sql`
  select grain, sum(requests)::int as requests, sum(input_tokens)::int as input, sum(cost_cents)::int as cost from usage_rollups group by grain
  union all
  select 'log:' || k, count(*)::int, sum(input_tokens)::int, sum(cost_cents)::int from requests r
    cross join lateral (values ('key_model'), ('end_user'), ('conversation')) g(k)
    where k = 'key_model' or (k = 'end_user' and end_user_id is not null) or (k = 'conversation' and conversation_id is not null)
    group by k
  order by 1`;

const expected = (rows: Array<Record<string, unknown>>) => {
  const of = (name: string) => rows.find((row) => row.grain === name);
  const strip = (row: Record<string, unknown> | undefined) => row && { requests: Number(row.requests), input: Number(row.input), cost: Number(row.cost) };
  return {
    account: strip(of("account_hour")),
    hour: strip(of("key_model_hour")),
    quarter: strip(of("key_model_quarter")),
    endUser: strip(of("end_user_quarter")),
    conversation: strip(of("conversation_quarter")),
    conversationHour: strip(of("conversation_hour")),
    logKeyModel: strip(of("log:key_model")),
    logEndUser: strip(of("log:end_user")),
    logConversation: strip(of("log:conversation")),
  };
};

function expectBackfilled(rows: Array<Record<string, unknown>>) {
  const totals = expected(rows);
  expect(totals.logKeyModel!.requests).toBe(500);
  expect(totals.account).toEqual(totals.logKeyModel);
  expect(totals.hour).toEqual(totals.logKeyModel);
  expect(totals.quarter).toEqual(totals.logKeyModel);
  expect(totals.endUser).toEqual(totals.logEndUser);
  expect(totals.conversation).toEqual(totals.logConversation);
  expect(totals.conversationHour).toEqual(totals.logConversation);
}

describe("migration 0006 backfills usage_rollups from the request log", () => {
  it("on PostgreSQL", async () => {
    const name = `sentx_test_${randomBase62(12).toLowerCase()}`;
    const admin = postgres(testEnv.adminDatabaseUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${name}`);
    const url = new URL(testEnv.adminDatabaseUrl);
    url.pathname = `/${name}`;
    const client = postgres(url.toString(), { max: 1, onnotice: () => {} });
    try {
      const db = drizzlePostgres(client);
      await migratePostgres(db, { migrationsFolder: earlierFolder });
      await client.unsafe(requestRows);
      await migratePostgres(db, { migrationsFolder });
      expectBackfilled(rowsOf(await db.execute(grainTotals)));
    } finally {
      await client.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    }
  });

  it("on PGlite", async () => {
    const client = new PGlite();
    try {
      const db = drizzlePglite(client);
      await migratePglite(db, { migrationsFolder: earlierFolder });
      await client.exec(requestRows);
      await migratePglite(db, { migrationsFolder });
      expectBackfilled(rowsOf(await db.execute(grainTotals)));
    } finally {
      await client.close();
    }
  });
});
