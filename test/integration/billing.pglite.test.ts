import { afterAll, beforeAll, describe } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../support/db.js";
import { holdBatchScenarios } from "./hold-batches.js";
import { billingScenarios, ledgerScenarios } from "./ledger-billing-scenarios.js";

// The embedded driver (SPEC 13) must keep the same money rules. PGlite has one
// connection, so the concurrency tests run on PostgreSQL only.

let database: TestDatabase;
beforeAll(async () => {
  database = await createPgliteDatabase();
});
afterAll(() => database?.drop());

describe("on PGlite", () => {
  ledgerScenarios(() => database.db);
  billingScenarios(() => database.db);
  holdBatchScenarios(() => database.db);
});
