import { Hono } from "hono";
import type { LimitStore } from "../domain/limits/limit-store.js";
import type { LimitStoreDownPolicy } from "../domain/limits/request-limits.js";

// Load balancers probe every instance every second or so; one round of checks answers them all.
const READINESS_REUSED_FOR_MS = 1_000;

type Reachability = "connected" | "unreachable";
type RedisConnection = "embedded" | Reachability;

export interface HealthDeps {
  isDraining(): boolean;
  pingDatabase(): Promise<unknown>;
  /** The shared limit counters: through Redis, or "embedded" in memory with nothing to reach. */
  coordination: { status(): RedisConnection; limitStore: LimitStore };
  redisDownPolicy: LimitStoreDownPolicy;
  scanner: { ping(): Promise<boolean> } | null;
}

interface Readiness {
  status: "ready" | "unavailable";
  database: Reachability;
  redis: RedisConnection;
  scanner: Reachability | "off";
}

const reachability = (probe: Promise<unknown>): Promise<Reachability> => probe.then(() => "connected", () => "unreachable");

/**
 * A frozen Redis keeps its connection open and "ready"; only a round trip
 * through the limit store, under the timeout admission itself runs with,
 * shows whether requests would be refused. Removing nothing from a set
 * nobody uses is the cheapest such call.
 */
const limitStoreRoundTrip = (store: LimitStore) => reachability(store.releaseLease("readiness-probe", "none"));

async function checkReadiness({ pingDatabase, coordination, redisDownPolicy, scanner }: HealthDeps, connection: RedisConnection): Promise<Readiness> {
  const [database, redis, scanning] = await Promise.all([
    reachability(pingDatabase()),
    connection === "connected" ? limitStoreRoundTrip(coordination.limitStore) : connection,
    // Reported, not required: without the scanner only uploads fail (503), everything else serves.
    scanner ? scanner.ping().then((answers): Reachability => (answers ? "connected" : "unreachable")) : ("off" as const),
  ]);
  // Without Redis a fail-open instance still serves (unlimited); a fail-closed one refuses every call.
  const ready = database === "connected" && (redis !== "unreachable" || redisDownPolicy === "fail-open");
  return { status: ready ? "ready" : "unavailable", database, redis, scanner: scanning };
}

/** One check shared by the probes of about a second, unless the Redis connection changed meanwhile: that news is free. */
function sharedReadiness(deps: HealthDeps) {
  let latest: { connection: RedisConnection; settledAt: number; readiness: Promise<Readiness> } | null = null;
  return (): Promise<Readiness> => {
    const connection = deps.coordination.status();
    // While the check runs, settledAt is Infinity: probes arriving meanwhile wait for it.
    if (!latest || latest.connection !== connection || performance.now() - latest.settledAt >= READINESS_REUSED_FOR_MS) {
      const check = { connection, settledAt: Infinity, readiness: checkReadiness(deps, connection) };
      const settled = () => void (check.settledAt = performance.now());
      void check.readiness.then(settled, settled);
      latest = check;
    }
    return latest.readiness;
  };
}

/** /healthz: the process answers. /readyz: this instance would serve a request now. */
export function healthRoutes(deps: HealthDeps) {
  const readiness = sharedReadiness(deps);
  return new Hono()
    .get("/healthz", (c) => c.json({ status: "ok" }))
    .get("/readyz", async (c) => {
      // Load balancers stop sending new requests while in-flight ones finish (SPEC 13).
      if (deps.isDraining()) return c.json({ status: "draining" }, 503);
      const report = await readiness();
      return c.json(report, report.status === "ready" ? 200 : 503);
    });
}
