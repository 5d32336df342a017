// The ops CLI: `npm run ops -- <procedure> '<json input>'`, e.g.
//   npm run ops -- accounts.create '{"email":"ada@example.com","initialCreditsCents":500}'
// Calls the running server's ops API over HTTP and prints the result as JSON.
// `npm run ops -- --help` lists the procedures with their inputs.
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import { z } from "zod";
import { readOpsToken } from "../infra/ops-token.js";
import { readServerUrl } from "../infra/server-url-file.js";
import { type OpsRouter, opsRouter } from "./router.js";

type Caller = (input: unknown) => Promise<unknown>;
interface ProcedureDef {
  type: "query" | "mutation";
  inputs: unknown[];
}

// At run time tRPC keeps a flat map of dotted paths here; its declared type is the nested record.
const procedures = opsRouter._def.procedures as unknown as Record<string, { _def: ProcedureDef }>;

type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
};

/** A JSON Schema as a one-line, TypeScript-like shape: `{ email: string, plan?: string }`. */
function shapeOf(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.anyOf) return schema.anyOf.map(shapeOf).join(" | ");
  if (schema.type === "array") return `${shapeOf(schema.items ?? {})}[]`;
  if (schema.type === "object" || schema.properties) {
    const required = new Set(schema.required ?? []);
    const fields = Object.entries(schema.properties ?? {}).map(([key, value]) => `${key}${required.has(key) ? "" : "?"}: ${shapeOf(value)}`);
    return `{ ${fields.join(", ")} }`;
  }
  return schema.type ?? "any";
}

/** A procedure's input, as the help prints it. */
function inputShape(def: ProcedureDef): string {
  const schema = def.inputs[0];
  if (!(schema instanceof z.ZodType)) return "(no input)";
  return shapeOf(z.toJSONSchema(schema, { unrepresentable: "any", io: "input" }) as JsonSchema);
}

function help(): string {
  const lines = Object.keys(procedures)
    .sort()
    .map((path) => `  ${path} (${procedures[path]!._def.type})\n      ${inputShape(procedures[path]!._def)}`);
  return [
    "usage: npm run ops -- <procedure> '<json input>'",
    "The server is found at SENTX_URL, else where it said it runs (DATA_DIR/server-url), else http://127.0.0.1:$PORT (8080).",
    "The ops token is OPS_TOKEN, else the one the server generated in DATA_DIR (./data).",
    "procedures and their inputs:",
    ...lines,
  ].join("\n");
}

function fail(message: string, exitCode = 2): never {
  console.error(message);
  process.exit(exitCode);
}

/** What the server answered, on stderr, readably: the message first, then the codes. */
function printRefusal(error: TRPCClientError<OpsRouter>): never {
  const data = error.data as { code?: string; domainCode?: string | null; httpStatus?: number; param?: string | null } | undefined;
  const codes = [data?.httpStatus, data?.code, data?.domainCode].filter(Boolean).join(" ");
  const param = data?.param ? ` (${data.param})` : "";
  fail(`error${codes ? ` ${codes}` : ""}${param}: ${error.message}`, 1);
}

async function main(): Promise<void> {
  const [path, json] = process.argv.slice(2);
  if (!path || path === "--help" || path === "-h") {
    console.log(help());
    return;
  }
  const procedure = procedures[path];
  if (!procedure) fail(`unknown procedure: ${path}\n\n${help()}`);
  let input: unknown;
  try {
    input = json === undefined ? undefined : JSON.parse(json);
  } catch {
    fail(`the input must be JSON, e.g. npm run ops -- ${path} '{"accountId":"acct_…"}'`);
  }

  const dataDir = process.env.DATA_DIR ?? "./data";
  const baseUrl = process.env.SENTX_URL ?? readServerUrl(dataDir) ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
  const token = process.env.OPS_TOKEN ?? readOpsToken(dataDir);
  if (!token) fail(`no ops token: set OPS_TOKEN, or run from the folder whose ${dataDir} the server uses`);
  const client = createTRPCClient<OpsRouter>({
    links: [httpLink({ url: `${baseUrl}/trpc`, headers: { authorization: `Bearer ${token}` } })],
  });

  // Walk `accounts.create` down the proxy: the router itself says query or mutation.
  const node = path.split(".").reduce<Record<string, unknown>>((n, key) => n[key] as Record<string, unknown>, client as never);
  const call = (procedure._def.type === "query" ? node.query : node.mutate) as Caller;
  try {
    console.log(JSON.stringify(await call(input), null, 2));
  } catch (error) {
    if (!(error instanceof TRPCClientError)) throw error;
    // No answer at all: the server is not where we looked. Say where that was.
    if (error.data === undefined && !error.shape) fail(`could not reach the SentX server at ${baseUrl} (${error.message}). Set SENTX_URL, or PORT.`, 1);
    printRefusal(error);
  }
}

await main();
