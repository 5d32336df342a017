import { randomUUID } from "node:crypto";
import { toFile } from "openai";
import { afterAll, beforeAll, describe, it } from "vitest";
import { makePng } from "../support/documents.js";
import { testEnv } from "../support/env.js";
import { startTestPlatform, type TestPlatform } from "../support/platform.js";
import { expectJsonBody, expectOpsAnswer, expectRestAnswer, expectStatus, mustNotSucceed } from "./support/answers.js";
import { type ChatRequest, chatRequests } from "./support/chat-requests.js";
import { checkHostileProperty, largestStalls, MAX_STALL_MS } from "./support/check-property.js";
import { type Answer, type HostileRequest, send, unexpected } from "./support/exchange.js";
import { fileIdRequests, listRequests, malformedUploads, wellFormedUploads } from "./support/files-requests.js";
import { isJson } from "./support/json-text.js";
import { nearValidOpsRequests, type OpsRequest, schemaRefuses, shapelessOpsRequests } from "./support/ops-requests.js";

// Property-based tests over hostile input (SPEC 2, 3, 7, 8, 12): whatever a
// client sends, the answer is a 4xx in the surface's error shape, or a 2xx
// where the input happens to be valid; never a 5xx; and the in-process
// platform never blocks its event loop more than MAX_STALL_MS on one request.

let t: TestPlatform;
let funded: { key: string; fileIds: string[] };
let broke: { key: string; fileIds: string[] };
let filesOwner: { key: string; fileIds: string[] };
let opsTargets: { accountId: string; keyId: string };

// Rate limits out of the way: these properties are about input, not about pace.
const unthrottled = { requestsPerMinute: 1_000_000 };

async function uploadedFiles(key: string): Promise<string[]> {
  const client = t.openai(key);
  const text = await client.files.create({ file: await toFile(Buffer.from("property test notes\n"), "notes.txt"), purpose: "user_data" });
  const image = await client.files.create({ file: await toFile(makePng(), "pixel.png"), purpose: "vision" });
  return [text.id, image.id];
}

beforeAll(async () => {
  // Limits in the real Redis, under a prefix of this file's own.
  t = await startTestPlatform({ env: { REDIS_URL: testEnv.redisUrl, REDIS_PREFIX: `sentx-property:${randomUUID()}:` } });
  const fundedCustomer = await t.createCustomer({ balanceCents: 10_000_000, limits: unthrottled });
  funded = { key: fundedCustomer.key, fileIds: await uploadedFiles(fundedCustomer.key) };
  const brokeCustomer = await t.createCustomer({ balanceCents: 0, limits: unthrottled });
  broke = { key: brokeCustomer.key, fileIds: await uploadedFiles(brokeCustomer.key) };
  const owner = await t.createCustomer({ limits: unthrottled });
  filesOwner = { key: owner.key, fileIds: await uploadedFiles(owner.key) };
  // Key caps out of the way too, so replays while shrinking meet the same rules as the first run.
  const opsCustomer = await t.createCustomer({ limits: { ...unthrottled, keyCreationsPerHour: 1_000_000, maxActiveKeys: 1_000_000 } });
  opsTargets = { accountId: opsCustomer.accountId, keyId: opsCustomer.keyId };
}, 120_000);

afterAll(async () => {
  console.log(`[property] largest event-loop delay of any property: ${Math.max(0, ...largestStalls.values()).toFixed(1)} ms (limit ${MAX_STALL_MS} ms)`);
  await t?.close();
});

const exchangeOne = (request: HostileRequest) => send(t.url, request);

// fast-check stops a property after a minute (check-property.ts); this only catches a run that hangs past that.
const PROPERTY_TIMEOUT_MS = 120_000;

/** A chat answer that succeeded: a chat.completion, or a stream that ends in [DONE]. */
function expectChatCompletion(answer: Answer): void {
  if (answer.contentType.startsWith("text/event-stream")) {
    if (!answer.text.trimEnd().endsWith("data: [DONE]")) throw unexpected(answer, "expected a stream ending in data: [DONE]");
    return;
  }
  expectJsonBody(answer, "a chat.completion", (body) => body.object === "chat.completion" && Array.isArray(body.choices));
}

/** The same request from the funded customer, naming its files where the $0 customer's named theirs. */
function asFundedCustomer(request: ChatRequest): ChatRequest {
  const body = broke.fileIds.reduce((text, id, i) => text.replaceAll(id, funded.fileIds[i]!), request.body);
  return { ...request, body, headers: { ...request.headers, authorization: `Bearer ${funded.key}` } };
}

/** SPEC 8: malformed JSON is a 400, whoever sends it. */
function expectMalformedJsonRefused(body: string, answer: Answer): void {
  if (!isJson(body)) expectStatus(answer, 400, "the body is not JSON");
}

describe("POST /v1/chat/completions with hostile bodies and identity headers", () => {
  it(
    "answers a funded customer 200 or a SPEC 8 4xx (never 402, never 5xx), without stalling",
    () =>
      checkHostileProperty({
        name: "chat, funded customer",
        inputs: chatRequests(funded.key, funded.fileIds),
        numRuns: 150,
        exchange: exchangeOne,
        async check(request, answer) {
          await expectRestAnswer(answer, expectChatCompletion);
          expectMalformedJsonRefused(request.body, answer);
          if (answer.status === 402) throw unexpected(answer, "expected no 402: the customer has $100,000 of credit");
        },
      }),
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "answers a $0 customer a SPEC 8 4xx, 402 where a funded customer gets 200, without stalling",
    () =>
      checkHostileProperty({
        name: "chat, $0 customer",
        inputs: chatRequests(broke.key, broke.fileIds),
        numRuns: 80,
        async exchange(request) {
          const refused = await exchangeOne(request);
          const reference = await exchangeOne(asFundedCustomer(request));
          return { refused, reference };
        },
        async check(request, { refused, reference }) {
          await expectRestAnswer(refused, mustNotSucceed("the customer has no credit"));
          await expectRestAnswer(reference, expectChatCompletion);
          expectMalformedJsonRefused(request.body, refused);
          if (reference.status === 200) expectStatus(refused, 402, "a funded customer got 200 for this body, so it is valid");
        },
      }),
    PROPERTY_TIMEOUT_MS,
  );
});

describe("the Files API with hostile ids, list parameters and uploads", () => {
  it(
    "answers GET/DELETE /v1/files/{id} and /content with a SPEC 8 4xx, or 2xx only for the caller's own file",
    () =>
      checkHostileProperty({
        name: "files by id",
        inputs: fileIdRequests(filesOwner.key, filesOwner.fileIds),
        numRuns: 150,
        exchange: exchangeOne,
        check(request, answer) {
          return expectRestAnswer(answer, (success) => {
            if (request.decodedId === null || !filesOwner.fileIds.includes(request.decodedId)) {
              throw unexpected(success, "expected a refusal: the id is not one of the caller's files");
            }
            if (!request.path.endsWith("/content")) {
              expectJsonBody(success, "a file object", (body) => body.id === request.decodedId && body.object === "file");
            }
          });
        },
      }),
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "answers GET /v1/files with any limit/after/order/purpose a SPEC 8 4xx or a list",
    () =>
      checkHostileProperty({
        name: "files list parameters",
        inputs: listRequests(filesOwner.key, filesOwner.fileIds),
        numRuns: 100,
        exchange: exchangeOne,
        check(_request, answer) {
          return expectRestAnswer(answer, (success) =>
            void expectJsonBody(success, "a list", (body) => body.object === "list" && Array.isArray(body.data) && typeof body.has_more === "boolean"),
          );
        },
      }),
    PROPERTY_TIMEOUT_MS,
  );

  /** An upload that succeeded is a file object; it is deleted again, so the account stays under its caps. */
  async function expectUploadedThenDelete(answer: Answer): Promise<void> {
    const file = expectJsonBody(answer, "a file object", (body) => typeof body.id === "string" && body.object === "file");
    const removed = await exchangeOne({ method: "DELETE", path: `/v1/files/${String(file.id)}`, headers: { authorization: `Bearer ${filesOwner.key}` } });
    if (removed.status !== 200) throw unexpected(removed, `expected the uploaded ${String(file.id)} to delete`);
  }

  const checkUpload = (_request: HostileRequest, answer: Answer) => expectRestAnswer(answer, expectUploadedThenDelete);

  it(
    "answers well-formed multipart uploads of any bytes, names and types with a SPEC 8 4xx or a file object",
    () =>
      checkHostileProperty({
        name: "uploads, well-formed multipart",
        inputs: wellFormedUploads(filesOwner.key),
        numRuns: 80,
        exchange: exchangeOne,
        check: checkUpload,
      }),
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "answers malformed multipart bodies with a SPEC 8 4xx (or a file object where the body still parses)",
    () =>
      checkHostileProperty({
        name: "uploads, malformed multipart",
        inputs: malformedUploads(filesOwner.key),
        numRuns: 80,
        exchange: exchangeOne,
        check: checkUpload,
      }),
    PROPERTY_TIMEOUT_MS,
  );
});

describe("ops tRPC with hostile inputs", () => {
  const expectOpsAnswerFor = (request: OpsRequest, answer: Answer) => expectOpsAnswer(answer, { mustRefuse: schemaRefuses(request) });

  it(
    "answers every procedure, its input's fields each valid or hostile, with a 4xx tRPC error with a message (BAD_REQUEST where its schema refuses the input) or a result",
    () =>
      checkHostileProperty({
        name: "ops, near-valid inputs",
        inputs: nearValidOpsRequests(opsTargets),
        numRuns: 150,
        exchange: exchangeOne,
        check: expectOpsAnswerFor,
      }),
    PROPERTY_TIMEOUT_MS,
  );

  it(
    "answers every procedure, its input of any shape or deeply nested, with BAD_REQUEST where its schema refuses the input",
    () =>
      checkHostileProperty({
        name: "ops, inputs of any shape",
        inputs: shapelessOpsRequests(opsTargets),
        numRuns: 60,
        exchange: exchangeOne,
        check: expectOpsAnswerFor,
      }),
    PROPERTY_TIMEOUT_MS,
  );
});
