// SentX (PostgreSQL + Redis) against Portkey, figure by figure, from one run.
// Portkey reads no key, so it is loaded like the bare proxy, with one key
// over one wrk thread; SentX's one-account rows carry the same requests on
// the wire and are the ones compared.
import { type BenchRun, type Gateway, resultFor } from "./results.js";

export interface PortkeyComparison {
  measure: string;
  sentx: number;
  portkey: number;
  unit: "ms" | "req/s" | "MB";
  /** Whether a smaller figure is the better one (latency, memory) or a larger one (throughput). */
  lowerIsBetter: boolean;
}

type Figures = Omit<PortkeyComparison, "sentx" | "portkey"> & { of: (gateway: Gateway) => number };

function figuresCompared(run: BenchRun): Figures[] {
  const result = (gateway: Gateway, connections: number, stream: boolean) => {
    const found = resultFor(run, gateway, connections, stream);
    if (!found) throw new Error(`no one-account result for ${gateway} at ${connections} connections, ${stream ? "stream" : "json"}`);
    return found;
  };
  const firstByteP50 = (connections: number) => (gateway: Gateway) => result(gateway, connections, true).ttfb!.p50Ms;
  const slow = (gateway: Gateway) => run.slowStreams.find((s) => s.gateway === gateway)!;
  const streams = run.slowStreams[0]!.streams;
  return [
    { measure: "1 connection, json, p50", unit: "ms", lowerIsBetter: true, of: (g) => result(g, 1, false).latency.p50Ms },
    { measure: "1 connection, json, p99", unit: "ms", lowerIsBetter: true, of: (g) => result(g, 1, false).latency.p99Ms },
    { measure: "32 connections, json, requests per second", unit: "req/s", lowerIsBetter: false, of: (g) => result(g, 32, false).requestsPerSecond },
    { measure: "32 connections, stream, requests per second", unit: "req/s", lowerIsBetter: false, of: (g) => result(g, 32, true).requestsPerSecond },
    { measure: "stream first byte p50, 1 connection", unit: "ms", lowerIsBetter: true, of: firstByteP50(1) },
    { measure: "stream first byte p50, 32 connections", unit: "ms", lowerIsBetter: true, of: firstByteP50(32) },
    { measure: `${streams} slow streams open at once, peak RSS`, unit: "MB", lowerIsBetter: true, of: (g) => slow(g).peakRssMb },
  ];
}

/** Each compared figure for SentX and Portkey; empty when Portkey was not measured. */
export function compareWithPortkey(run: BenchRun): PortkeyComparison[] {
  if (run.portkeyNotMeasured !== null) return [];
  return figuresCompared(run).map(({ of, ...figure }) => ({ ...figure, sentx: of("postgres"), portkey: of("portkey") }));
}

/** Strictly better: a tie is not ahead. */
export const sentxAhead = (c: PortkeyComparison) => (c.lowerIsBetter ? c.sentx < c.portkey : c.sentx > c.portkey);
