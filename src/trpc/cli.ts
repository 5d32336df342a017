// The ops CLI: `npm run ops -- <procedure> '<json input>'`, e.g.
//   npm run ops -- accounts.create '{"email":"ada@example.com","initialCreditsCents":500}'
// Calls the running server's ops API over HTTP and prints the result as JSON.
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import { readOpsToken } from "../infra/ops-token.js";
import { type OpsRouter, opsRouter } from "./router.js";

type Caller = (input: unknown) => Promise<unknown>;

// At run time tRPC keeps a flat map of dotted paths here; its declared type is the nested record.
const procedures = opsRouter._def.procedures as unknown as Record<string, { _def: { type: "query" | "mutation" } }>;

function usage(message?: string): never {
  if (message) console.error(message);
  console.error(`usage: npm run ops -- <procedure> '<json input>'\nprocedures:\n  ${Object.keys(procedures).sort().join("\n  ")}`);
  process.exit(2);
}

async function main(): Promise<void> {
  const [path, json] = process.argv.slice(2);
  if (!path || path === "--help") usage();
  const procedure = procedures[path];
  if (!procedure) usage(`unknown procedure: ${path}`);
  let input: unknown;
  try {
    input = json === undefined ? undefined : JSON.parse(json);
  } catch {
    usage("the input must be JSON");
  }

  const baseUrl = process.env.SENTX_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
  const token = process.env.OPS_TOKEN ?? readOpsToken(process.env.DATA_DIR ?? "./data");
  if (!token) usage("no ops token: set OPS_TOKEN, or run from the folder whose ./data the server uses");
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
    const data = error.data as { code?: string; domainCode?: string | null; httpStatus?: number } | undefined;
    console.error(JSON.stringify({ error: { message: error.message, code: data?.code, domainCode: data?.domainCode, status: data?.httpStatus } }, null, 2));
    process.exit(1);
  }
}

await main();
