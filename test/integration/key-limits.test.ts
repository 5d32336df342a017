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

// SPEC 4/6 key caps, enforced in the domain (every surface that creates keys
// calls this), exact under concurrent creation on real PostgreSQL.

const HOUR = 3_600_000;
let database: TestDatabase;
const clock = manualClock(new Date("2026-06-01T12:00:00Z"));

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 40 });
});
afterAll(() => database.drop());

const services = () => {
  const bus = createInProcessInvalidationBus();
  const ledger = createLedger({ clock });
  return { keys: createKeys({ db: database.db, clock, bus }), accounts: createAccounts({ db: database.db, clock, ledger, bus }) };
};

const codeOf = (outcome: PromiseSettledResult<unknown>) =>
  outcome.status === "rejected" ? (outcome.reason as DomainError).code : "created";

async function keyRows(accountId: string, status?: "active") {
  const [row] = await database.db
    .select({ n: count() })
    .from(apiKeys)
    .where(and(eq(apiKeys.accountId, accountId), status ? eq(apiKeys.status, status) : undefined));
  return row!.n;
}

async function createConcurrently(accountId: string, n: number) {
  const { keys } = services();
  const outcomes = await Promise.allSettled(Array.from({ length: n }, (_, i) => keys.create({ accountId, name: `k${i}` })));
  return outcomes.map(codeOf);
}

describe("key creation caps", () => {
  it("creates exactly 5 of 10 concurrent keys in an hour; the rest are 429 rate_limit_exceeded", async () => {
    const account = await createTestAccount(database.db);
    const codes = await createConcurrently(account.id, 10);
    expect(codes.filter((c) => c === "created")).toHaveLength(5);
    expect(codes.filter((c) => c === "rate_limit_exceeded")).toHaveLength(5);
    expect(new DomainError("rate_limit_exceeded", "").status).toBe(429);
    expect(await keyRows(account.id)).toBe(5);

    // Creations older than an hour no longer count.
    clock.advance(HOUR + 1);
    expect(await createConcurrently(account.id, 1)).toEqual(["created"]);
  });

  it("keeps exactly 25 active keys under 30 concurrent creations; the rest are 409 max_keys_reached", async () => {
    const account = await createTestAccount(database.db);
    const { accounts, keys } = services();
    await accounts.setLimits(account.id, { keyCreationsPerHour: 100 });
    const codes = await createConcurrently(account.id, 30);
    expect(codes.filter((c) => c === "created")).toHaveLength(25);
    expect(codes.filter((c) => c === "max_keys_reached")).toHaveLength(5);
    expect(new DomainError("max_keys_reached", "").status).toBe(409);
    expect(await keyRows(account.id, "active")).toBe(25);

    // Revoking one makes room for exactly one more.
    const [first] = await keys.list(account.id);
    await keys.revoke(first!.id);
    expect((await createConcurrently(account.id, 3)).filter((c) => c === "created")).toHaveLength(1);
    expect(await keyRows(account.id, "active")).toBe(25);
  });

  it("follows per-account overrides, and null restores the default", async () => {
    const account = await createTestAccount(database.db);
    const { accounts } = services();
    const raised = await accounts.setLimits(account.id, { keyCreationsPerHour: 1, maxActiveKeys: 3 });
    expect(raised.limits).toEqual({ keyCreationsPerHour: 1, maxActiveKeys: 3 });
    expect(await createConcurrently(account.id, 2)).toContain("rate_limit_exceeded");
    const restored = await accounts.setLimits(account.id, { keyCreationsPerHour: null });
    expect(restored.limits).toEqual({ maxActiveKeys: 3 });
    expect((await createConcurrently(account.id, 4)).filter((c) => c === "created")).toHaveLength(2);
    await expect(accounts.setLimits("acct_missing", { maxActiveKeys: 1 })).rejects.toMatchObject({ code: "not_found" });
  });
});
