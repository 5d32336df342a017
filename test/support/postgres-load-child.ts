/**
 * Concurrent query loops against PostgreSQL through the app's own driver
 * stack (openPostgres: drizzle over postgres.js), run as a process of its
 * own so that a test can kill the database connections under it and survive
 * what the driver then does: an exception thrown from a driver timer cannot
 * be caught, and would take the vitest worker down with it.
 *
 *   node --import tsx test/support/postgres-load-child.ts <database-url> <workers>
 *
 * Talks in JSON lines on stdout: {"event":"loaded"} once every worker has had
 * an answer, and a LoadReport at the end. Listens for lines on stdin:
 * "recovering" (the faults are over: count from here on separately) and
 * "stop" (finish the loops, probe, report, exit); a closed stdin or the
 * deadline stops it too.
 */
import { createInterface } from "node:readline";
import { sql } from "drizzle-orm";
import { openPostgres } from "../../src/infra/db.js";

/** Bounds the run even if the parent never says stop. */
const DEADLINE_MS = 30_000;

export interface Tally {
  succeeded: number;
  /** Caught failures by error code ("unknown" when there is none). */
  failed: Record<string, number>;
}

export interface LoadReport {
  event: "report";
  underFaults: Tally;
  afterFaults: Tally;
  /** One operation per worker, all at once, after the loops have stopped. */
  probe: Tally;
}

const [url, workersArg] = process.argv.slice(2);
if (!url || !workersArg) throw new Error("usage: postgres-load-child.ts <database-url> <workers>");
const workers = Number(workersArg);

const newTally = (): Tally => ({ succeeded: 0, failed: {} });
const report: LoadReport = { event: "report", underFaults: newTally(), afterFaults: newTally(), probe: newTally() };
let tally = report.underFaults;
let stopping = false;

function send(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function codeOf(error: unknown): string {
  // drizzle wraps the driver's error: the code is on a cause.
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const { code } = e as { code?: unknown };
    if (typeof code === "string") return code;
  }
  return "unknown";
}

async function counted(operation: () => Promise<unknown>, into: Tally): Promise<boolean> {
  try {
    await operation();
    into.succeeded++;
    return true;
  } catch (error) {
    const code = codeOf(error);
    into.failed[code] = (into.failed[code] ?? 0) + 1;
    return false;
  }
}

const database = await openPostgres(url, { maxConnections: workers });
const { db } = database;

// Both shapes the app uses. A transaction matters most: after its statement
// dies with the connection, the driver still sends a ROLLBACK down it.
const operations = [
  () => db.execute(sql`select pg_sleep(0.005)`),
  () =>
    db.transaction(async (tx) => {
      await tx.execute(sql`select 1`);
      await tx.execute(sql`select pg_sleep(0.005)`);
    }),
];

let workersWithoutAnswer = workers;

async function work(worker: number): Promise<void> {
  let answered = false;
  for (let i = worker; !stopping; i++) {
    const ok = await counted(operations[i % operations.length]!, tally);
    if (ok && !answered) {
      answered = true;
      if (--workersWithoutAnswer === 0) send({ event: "loaded" });
    }
  }
}

const stop = () => void (stopping = true);
const deadline = setTimeout(stop, DEADLINE_MS);
const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  if (line === "recovering") tally = report.afterFaults;
  if (line === "stop") stop();
});
commands.on("close", stop);

await Promise.all(Array.from({ length: workers }, (_, worker) => work(worker)));
await Promise.all(Array.from({ length: workers }, (_, worker) => counted(operations[worker % operations.length]!, report.probe)));
clearTimeout(deadline);
commands.close();
await database.close();
send(report);
