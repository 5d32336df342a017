import { and, count, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccounts } from "../../src/domain/accounts.js";
import { manualClock } from "../../src/domain/clock.js";
import { DomainError } from "../../src/domain/errors.js";
import { createInProcessInvalidationBus } from "../../src/domain/invalidation.js";
import { createKeys } from "../../src/domain/keys.js";
import { createLedger } from "../../src/domain/ledger.js";
import { apiKeys } from "../../src/domain/schema/index.js";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { createTestAccount } from "../support/factories.js";

// SPEC 4/6 key caps, enforced in the domain (every surface that creates keys,
// the ops tRPC accounts.setLimits included, calls these services), exact under
// concurrent creation on real PostgreSQL.

const HOUR = 3_600_000;
let database: TestDatabase;
const clock = manualClock(new Date("2026-06-01T12:00:00Z"));

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 40 });
});
afterAll(() => database?.drop());

const services = () => {
  const bus = createInProcessInvalidationBus();
  const ledger = createLedger({ clock });
  return { keys: createKeys({ db: database.db, clock, bus }), accounts: createAccounts({ db: database.db, clock, ledger, bus }) };
};

/** "created", or the refusal as "<code> <status>"; anything but a DomainError fails the test. */
function outcomeOf(outcome: PromiseSettledResult<unknown>): string {
  if (outcome.status === "fulfilled") return "created";
  expect(outcome.reason).toBeInstanceOf(DomainError);
  const error = outcome.reason as DomainError;
  return `${error.code} ${error.status}`;
}

const tally = (outcomes: string[]) =>
  outcomes.reduce<Record<string, number>>((counts, outcome) => ({ ...counts, [outcome]: (counts[outcome] ?? 0) + 1 }), {});

/** Fires n creations at once, then tallies how they ended. */
async function createConcurrently(accountId: string, n: number) {
  const { keys } = services();
  const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => keys.create({ accountId, name: `k${i}` })));
  return tally(outcomes.map(outcomeOf));
}

async function keyRows(accountId: string, status?: "active") {
  const [row] = await database.db
    .select({ n: count() })
    .from(apiKeys)
    .where(and(eq(apiKeys.accountId, accountId), status ? eq(apiKeys.status, status) : undefined));
  return row!.n;
}

describe("key creation caps", () => {
  it("creates exactly 5 of 10 concurrent keys in an hour; the rest are 429 rate_limit_exceeded until an hour has passed", async () => {
    const account = await createTestAccount(database.db);
    expect(await createConcurrently(account.id, 10)).toEqual({ created: 5, "rate_limit_exceeded 429": 5 });
    expect(await keyRows(account.id)).toBe(5);

    clock.advance(HOUR - 1);
    expect(await createConcurrently(account.id, 1)).toEqual({ "rate_limit_exceeded 429": 1 });
    // Creations an hour old no longer count.
    clock.advance(1);
    expect(await createConcurrently(account.id, 10)).toEqual({ created: 5, "rate_limit_exceeded 429": 5 });
    expect(await keyRows(account.id)).toBe(10);
  });

  it("keeps exactly 25 active keys under 30 concurrent creations; the rest are 409 max_keys_reached; revoking one frees one", async () => {
    const account = await createTestAccount(database.db);
    const { accounts, keys } = services();
    expect((await accounts.setLimits(account.id, { keyCreationsPerHour: 100 })).limits).toEqual({ keyCreationsPerHour: 100 });
    expect(await createConcurrently(account.id, 30)).toEqual({ created: 25, "max_keys_reached 409": 5 });
    expect(await keyRows(account.id)).toBe(25);

    const [first] = await keys.list(account.id);
    await keys.revoke(first!.id);
    expect(await createConcurrently(account.id, 3)).toEqual({ created: 1, "max_keys_reached 409": 2 });
    expect(await keyRows(account.id, "active")).toBe(25);
    expect(await keyRows(account.id)).toBe(26);
  });

  it("follows per-account overrides, and null restores the default", async () => {
    const account = await createTestAccount(database.db);
    const { accounts } = services();
    expect((await accounts.setLimits(account.id, { keyCreationsPerHour: 1, maxActiveKeys: 30 })).limits).toEqual({
      keyCreationsPerHour: 1,
      maxActiveKeys: 30,
    });
    expect(await createConcurrently(account.id, 3)).toEqual({ created: 1, "rate_limit_exceeded 429": 2 });

    // Back to the default 5 an hour, of which one is used.
    expect((await accounts.setLimits(account.id, { keyCreationsPerHour: null })).limits).toEqual({ maxActiveKeys: 30 });
    expect(await createConcurrently(account.id, 10)).toEqual({ created: 4, "rate_limit_exceeded 429": 6 });
    expect((await accounts.setLimits(account.id, { maxActiveKeys: null })).limits).toEqual({});
    expect(await keyRows(account.id)).toBe(5);
  });

  it("refuses to set limits on an unknown account with not_found", async () => {
    const { accounts } = services();
    const failure = await accounts.setLimits("acct_missing", { maxActiveKeys: 1 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DomainError);
    expect(failure).toMatchObject({ code: "not_found", status: 404 });
  });
});
