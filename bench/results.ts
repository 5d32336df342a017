import type { WireCounts } from "./pg-wire-census.js";
import type { UploadFigures } from "./upload-load.js";

// What one `npm run bench` measured, as bench/benchmarks-report.ts renders it.

/** The gateway under test runs alone on SERVER_CORE; the load, the upstream and the harness share LOAD_CORE. */
export const SERVER_CORE = 0;
export const LOAD_CORE = 1;

export type Gateway = "bare" | "portkey" | "postgres" | "embedded";

/** SentX checks the key of every request; the bare proxy and Portkey pass it through to the upstream unread. */
export const checksKeys = (gateway: Gateway) => gateway === "postgres" || gateway === "embedded";

export interface Scenario {
  connections: number;
  stream: boolean;
  /** How many accounts the connections' keys belong to (connection i uses account i % accounts). */
  accounts: number;
}

export interface Latency {
  p50Ms: number;
  p99Ms: number;
}

export interface ScenarioResult {
  gateway: Gateway;
  scenario: Scenario;
  /** Medians over the rounds. */
  requestsPerSecond: number;
  latency: Latency;
  /** Streams: from the Node client's pass after the rounds. */
  ttfb: Latency | null;
  /** Requests over all rounds, and those that failed (socket errors, timeouts, status > 399). */
  requests: number;
  failed: number;
  /** Peak resident set of the gateway process over the rounds (VmHWM, reset before them). */
  peakRssMb: number;
  /** Gateway process CPU (user + system) over the rounds, per request. */
  cpuMsPerRequest: number;
  /** Each core's busy share during the rounds. */
  coreBusy: number[];
  redisCallsPerRequest: number | null;
  /** Per request, from the wire census pass (PostgreSQL only). */
  database: WireCounts | null;
}

export interface SlowStreamsResult {
  gateway: Gateway;
  streams: number;
  /** The most streams that were open (first byte seen, not yet finished) at one time. */
  mostOpenAtOnce: number;
  peakRssMb: number;
  /** Mean of the samples taken while mostOpenAtOnce were open. */
  meanRssWhileOpenMb: number;
  ttfb: Latency;
  failed: number;
}

export interface BenchRun {
  startedAt: Date;
  seconds: number;
  machine: { cores: number; cpuModel: string; memoryGb: number; node: string; kernel: string; postgres: string; redis: string; wrk: string };
  /** Each core's busy share in the second before the run: other work on the machine. */
  busyBefore: number[];
  pinned: boolean;
  method: { rounds: number; roundSeconds: number; warmupSeconds: number; ttfbSeconds: number; slowStream: string; censusRequests: string };
  scenarios: ScenarioResult[];
  slowStreams: SlowStreamsResult[];
  embeddedIdleRssMb: { afterStart: number; afterLoad: number };
  upload: UploadFigures & { megabytes: number };
  ledgerBalanced: { postgres: boolean; embedded: boolean };
  /** Why Portkey has no figures in this run (not installable, did not start or relay), or null when it was measured. */
  portkeyNotMeasured: string | null;
}

/** A gateway's one-account result for these connections and mode, if it was measured. */
export const resultFor = (run: BenchRun, gateway: Gateway, connections: number, stream: boolean): ScenarioResult | undefined =>
  run.scenarios.find((r) => r.gateway === gateway && r.scenario.connections === connections && r.scenario.stream === stream && r.scenario.accounts === 1);
