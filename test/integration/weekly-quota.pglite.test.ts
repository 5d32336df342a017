import { afterAll, beforeAll, describe } from "vitest";
import { createPgliteDatabase, type TestDatabase } from "../support/db.js";
import { weeklyQuotaScenarios } from "./weekly-quota-scenarios.js";

// The embedded driver (SPEC 13) keeps the same weekly chat rules, from a database migrated from scratch.

let database: TestDatabase;
beforeAll(async () => {
  database = await createPgliteDatabase();
});
afterAll(() => database?.drop());

describe("on PGlite", () => {
  weeklyQuotaScenarios(() => database.db);
});
