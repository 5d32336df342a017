import fc from "fast-check";
import type { z } from "zod";
import { PLAN_NAMES } from "../../../src/domain/plans.js";
import { opsRouter } from "../../../src/trpc/router.js";
import { TEST_OPS_TOKEN } from "../../support/platform.js";
import { printable, type HostileRequest } from "./exchange.js";
import { hostileText, usually } from "./hostile-text.js";
import { anyJson, deepNesting, hostileNumber, jsonText, shallowJson } from "./json-text.js";

// Ops tRPC calls (SPEC 12) as the CLI's client sends them (POST for
// mutations, GET ?input= for queries), with inputs of any shape: near-valid
// ones with hostile strings in each field, and any JSON at all.

interface Procedure {
  path: string;
  type: "query" | "mutation";
  /** The procedure's own input schema: what it refuses must be BAD_REQUEST. */
  input: z.ZodType;
}

// Read from the router itself, so a procedure added later is covered without touching this file.
const procedures: Procedure[] = Object.entries(
  opsRouter._def.procedures as unknown as Record<string, { _def: { type: "query" | "mutation"; inputs: z.ZodType[] } }>,
).map(([path, procedure]) => ({ path, type: procedure._def.type, input: procedure._def.inputs[0]! }));

export interface OpsRequest extends HostileRequest {
  procedure: Procedure;
  /** The input as the server will parse it (undefined when none is sent). */
  jsonInput: string | undefined;
}

/** Ids the near-valid inputs use, so some calls reach real rows. */
export interface OpsTargets {
  accountId: string;
  keyId: string;
}

// Deep nesting is left to the shapeless property, so each property's counterexample is about one thing.
const oddJson = fc.oneof(shallowJson, hostileNumber);

const positiveInt = usually(fc.integer({ min: 1, max: 100_000 }), hostileNumber);
const shortText = (maxLength: number) => usually(fc.string({ minLength: 1, maxLength }), fc.oneof(hostileText(), oddJson));

const limits = usually(
  fc.record(
    { requestsPerMinute: positiveInt, concurrentStreams: positiveInt, keyCreationsPerHour: positiveInt, maxActiveKeys: positiveInt },
    { requiredKeys: [] },
  ),
  oddJson,
);

/** Every field any procedure takes, each valid or hostile, each present or not. */
const nearValidInput = ({ accountId, keyId }: OpsTargets) =>
  fc.record(
    {
      accountId: usually(fc.constant(accountId), fc.oneof(fc.stringMatching(/^acct_[0-9A-Za-z]{1,30}$/), hostileText(), oddJson)),
      keyId: usually(fc.constant(keyId), fc.oneof(fc.stringMatching(/^key_[0-9A-Za-z]{1,30}$/), hostileText(), oddJson)),
      email: usually(
        fc.stringMatching(/^[a-z0-9]{1,20}$/).map((local) => `${local}@example.com`),
        fc.oneof(fc.emailAddress(), hostileText(), fc.string().map((local) => `${local}@example.com`), oddJson),
      ),
      displayName: shortText(128),
      plan: usually(fc.constantFrom(...PLAN_NAMES), shortText(32)),
      initialCreditsCents: usually(fc.integer({ min: 0, max: 10_000 }), hostileNumber),
      limits,
      amountCents: usually(fc.integer({ min: 1, max: 10_000 }), hostileNumber),
      idempotencyKey: shortText(200),
      memo: shortText(500),
      name: shortText(64),
      allowedModels: usually(fc.array(fc.string({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 5 }), fc.oneof(fc.array(hostileText(), { maxLength: 150 }), oddJson)),
      expiresAt: usually(fc.date({ noInvalidDate: true }).map((date) => date.toISOString()), fc.oneof(hostileText(), hostileNumber, oddJson)),
      limit: usually(fc.integer({ min: 1, max: 500 }), hostileNumber),
      before: shortText(64),
    },
    // What most procedures require is always there, so a fair share of calls is valid.
    { requiredKeys: ["accountId", "keyId", "email", "name", "amountCents", "idempotencyKey"] },
  );

// Node answers a request line and headers over 16 KB itself (431), before the platform sees it.
const MAX_QUERY_URL_LENGTH = 12_000;

function opsRequest(procedure: Procedure, jsonInput: string | undefined): OpsRequest {
  const headers = { authorization: `Bearer ${TEST_OPS_TOKEN}` };
  const base = { procedure, jsonInput };
  if (procedure.type === "query") {
    const query = jsonInput === undefined ? "" : `?input=${encodeURIComponent(jsonInput)}`;
    return printable({ ...base, method: "GET", path: `/trpc/${procedure.path}${query}`, headers });
  }
  return printable({
    ...base,
    method: "POST",
    path: `/trpc/${procedure.path}`,
    headers: { ...headers, "content-type": "application/json" },
    ...(jsonInput !== undefined && { body: jsonInput }),
  });
}

const anyProcedure = fc.constantFrom(...procedures);

/** Calls of any procedure (queries only where the URL stays under Node's header limit). */
const callsOf = (inputs: fc.Arbitrary<string | undefined>): fc.Arbitrary<OpsRequest> =>
  fc
    .tuple(anyProcedure, inputs)
    .map(([procedure, jsonInput]) => opsRequest(procedure, jsonInput))
    .filter((request) => request.path.length <= MAX_QUERY_URL_LENGTH);

/** Any procedure, with an input whose fields are each valid or hostile (strings, numbers, dates, limits). */
export const nearValidOpsRequests = (targets: OpsTargets) => callsOf(nearValidInput(targets).map((input) => jsonText(input)));

/** Any procedure, with an input of any shape: any JSON, nesting thousands deep, or none at all. */
export const shapelessOpsRequests = ({ accountId }: OpsTargets) =>
  callsOf(
    fc.oneof(
      anyJson.map(jsonText),
      deepNesting.map((nested) => jsonText({ accountId, limits: nested, name: nested })),
      fc.constant(undefined),
    ),
  );

/** Whether the procedure's own schema refuses the input the server will parse. */
export const schemaRefuses = (request: OpsRequest): boolean =>
  !request.procedure.input.safeParse(request.jsonInput === undefined ? undefined : JSON.parse(request.jsonInput)).success;
