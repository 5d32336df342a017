import { readFileSync } from "node:fs";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import formats from "ajv-formats";
import { expect } from "vitest";

// OpenAI's published OpenAPI 3.1 document (test/fixtures/openai) as a JSON
// Schema 2020-12 validator of response bodies, one component schema at a time.
// Three readings make the document plain JSON Schema:
// - OpenAPI 3.0's `nullable: true`, which parts of it still use, means "this
//   schema or null" (a stream chunk's `finish_reason: null`).
// - Vendor keywords (`x-…`, `example`, `discriminator`, …) are annotations; the
//   `oneOf`s they decorate do the validating.
// - Extra properties are allowed unless a schema says otherwise, so SentX's
//   additions (`usage.cost_cents`, a model's pricing) validate as they are.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: Json | undefined): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

const COMPONENTS = "#/components/schemas/";

/**
 * Keywords the document uses that JSON Schema 2020-12 does not define; all of them only describe
 * (`optional: true` marks a property `required` already leaves out: a transcription's `logprobs`).
 */
const ANNOTATIONS = ["example", "discriminator", "dataDescription", "optional"];

const orNull = (schema: Json): JsonObject => ({ anyOf: [schema, { type: "null" }] });

/** A schema of the document as plain JSON Schema: `nullable` unfolded, refs pointing into `$defs`. */
function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!isObject(node)) return node;
  const { nullable, ...rest } = node;
  const schema = Object.fromEntries(
    Object.entries(rest).map(([key, value]) => [
      key,
      key === "$ref" && typeof value === "string" ? value.replace(COMPONENTS, "#/$defs/") : toJsonSchema(value),
    ]),
  );
  return nullable === true ? orNull(schema) : schema;
}

function vendorKeywords(node: Json, found = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const item of node) vendorKeywords(item, found);
  else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith("x-")) found.add(key);
      else vendorKeywords(value, found);
    }
  }
  return found;
}

/**
 * Where the document's letter would reject what OpenAI's own API sends, the
 * API wins; each widening is named here, and nowhere else is the schema relaxed.
 */
function widenToTheLiveApi(definitions: JsonObject): void {
  const propertiesOf = (schema: string) => (definitions[schema] as JsonObject).properties as JsonObject;
  const allowNull = (schema: string, property: string) => {
    propertiesOf(schema)[property] = orNull(propertiesOf(schema)[property]!);
  };
  // Deprecated; OpenAI sends it as null.
  allowNull("OpenAIFile", "status_details");
  // An empty page has neither; the document's newer list schemas (VideoListResource, ThreadListResource, …) say null.
  allowNull("ListFilesResponse", "first_id");
  allowNull("ListFilesResponse", "last_id");
  // CreateFileRequest accepts `evals`, and a file's purpose is the one it was uploaded with.
  (propertiesOf("OpenAIFile").purpose as { enum: string[] }).enum.push("evals");
}

function loadDefinitions(): JsonObject {
  const document = JSON.parse(readFileSync(new URL("../fixtures/openai/openai-openapi.json", import.meta.url), "utf8")) as JsonObject;
  const components = document.components as JsonObject;
  const definitions = toJsonSchema(components.schemas as Json) as JsonObject;
  widenToTheLiveApi(definitions);
  return definitions;
}

/** `name` and every definition it refers to, directly or not: only these need to be valid JSON Schema. */
function reachableFrom(name: string, definitions: JsonObject): JsonObject {
  const reached: JsonObject = {};
  const visit = (node: Json): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (isObject(node)) {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$ref" && typeof value === "string") include(value.slice("#/$defs/".length));
        else visit(value);
      }
    }
  };
  const include = (definition: string) => {
    if (definition in reached) return;
    reached[definition] = definitions[definition]!;
    visit(reached[definition]);
  };
  include(name);
  return reached;
}

function createValidator() {
  const definitions = loadDefinitions();
  const ajv = new Ajv2020({
    // Unknown keywords are errors, so a keyword this reading does not cover is noticed, not skipped.
    strictSchema: true,
    // The document leaves `type: object` implicit beside `properties` and `required`.
    strictTypes: false,
    strictRequired: false,
    allowUnionTypes: true,
    allErrors: true,
  });
  formats.default(ajv);
  ajv.addFormat("unixtime", { type: "number", validate: (seconds: number) => Number.isInteger(seconds) && seconds >= 0 });
  ajv.addVocabulary([...ANNOTATIONS, ...vendorKeywords(definitions)]);
  const compiled = new Map<string, ValidateFunction>();
  return (name: string): ValidateFunction => {
    if (!(name in definitions)) throw new Error(`OpenAI's document has no component schema '${name}'`);
    let validate = compiled.get(name);
    if (!validate) {
      // One schema per name, holding only what it reaches: parts of the document the
      // facade never sends are not valid 2020-12 (OpenAPI 3.0's boolean exclusiveMinimum).
      validate = ajv.compile({ $ref: `#/$defs/${name}`, $defs: reachableFrom(name, definitions) });
      compiled.set(name, validate);
    }
    return validate;
  };
}

let validatorOf: ReturnType<typeof createValidator> | undefined;

const describeError = (e: ErrorObject) => `${e.instancePath || "/"} ${e.message ?? e.keyword} (${e.schemaPath} ${JSON.stringify(e.params)})`;

/** Ajv's complaints about `body` as OpenAI's component schema `name`; empty when it conforms. */
export function openAISchemaViolations(name: string, body: unknown): string[] {
  validatorOf ??= createValidator();
  const validate = validatorOf(name);
  return validate(body) ? [] : (validate.errors ?? []).map(describeError);
}

/** Fails the test with Ajv's errors (and the body) unless `body` conforms to OpenAI's component schema `name`. */
export function expectOpenAIShape(name: string, body: unknown): void {
  expect(openAISchemaViolations(name, body), `${name}: ${JSON.stringify(body)}`).toEqual([]);
}
