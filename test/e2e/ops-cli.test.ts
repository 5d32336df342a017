import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/db.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

// The ops CLI as an operator runs it: a subprocess, with no URL and no token
// given, against a server started on a port of its own choosing.

const run = promisify(execFile);
let database: TestDatabase;
let dataDir: string;
let server: ServerProcess;

/** `npm run ops -- …` with only DATA_DIR set: the CLI must find the server and its token there. */
const cli = (...args: string[]) =>
  run(process.execPath, ["--import", "tsx", "src/trpc/cli.ts", ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", DATA_DIR: dataDir },
  });

/** How a CLI run that must fail ended. */
const failureOf = (attempt: Promise<unknown>) =>
  attempt.then(
    () => expect.unreachable("the CLI should have failed"),
    (error: { code: number; stderr: string }) => error,
  );

beforeAll(async () => {
  database = await createTestDatabase({ maxConnections: 1 });
  dataDir = await mkdtemp(join(tmpdir(), "sentx-cli-"));
  // PORT=0: the kernel picks the port, as a busy default port would force an operator to.
  server = await startServerProcess({ DATABASE_URL: database.url, DATA_DIR: dataDir, SENTX_BOOTSTRAP: "off" });
});
afterAll(async () => {
  await server?.stop();
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("the ops CLI", () => {
  it("finds a server on a non-default port and its generated token through the data folder", async () => {
    expect(new URL(server.url).port).not.toBe("8080");
    const { stdout } = await cli("accounts.create", '{"email":"cli-port@example.com","initialCreditsCents":7}');
    expect(JSON.parse(stdout)).toMatchObject({ email: "cli-port@example.com", balanceCents: 7 });
  });

  it("prints a refusal readably on stderr and exits 1", async () => {
    const failure = await failureOf(cli("accounts.create", '{"email":"not an email"}'));
    expect(failure.code).toBe(1);
    expect(failure.stderr.trim()).toMatch(/^error 400 BAD_REQUEST \(email\): Invalid 'email'/);
  });

  it("names the URL it tried when nothing answers there", async () => {
    const gone = "http://127.0.0.1:9";
    const failure = await failureOf(
      run(process.execPath, ["--import", "tsx", "src/trpc/cli.ts", "ledger.verify"], {
        env: { PATH: process.env.PATH ?? "", SENTX_URL: gone, OPS_TOKEN: "x".repeat(32) },
      }),
    );
    expect(failure.code).toBe(1);
    expect(failure.stderr).toContain(`could not reach the SentX server at ${gone}`);
  });

  it("--help lists every procedure with the shape of its input", async () => {
    const { stdout } = await cli("--help");
    expect(stdout).toContain("accounts.create (mutation)");
    expect(stdout).toMatch(/accounts\.create \(mutation\)\n\s+\{ email: string, displayName\?: string/);
    expect(stdout).toMatch(/ledger\.verify \(query\)/);
  });
});
