import { afterAll, beforeAll, describe } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { weeklyQuotaScenarios } from "./weekly-quota-scenarios.js";

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

describe("on PostgreSQL", () => {
  weeklyQuotaScenarios(() => database.db);
});
