// BENCHMARKS.md from one run's results: the tables, and issue 9's targets
// judged against the bare proxy measured in the same run.
import { type BenchRun, type Gateway, LOAD_CORE, type Latency, type Scenario, type ScenarioResult, SERVER_CORE } from "./results.js";

const GATEWAY_NAMES: Record<Gateway, string> = {
  bare: "bare proxy",
  postgres: "SentX, PostgreSQL + Redis",
  embedded: "SentX, embedded default",
};

const ms = (v: number) => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const signedMs = (v: number) => `${v >= 0 ? "+" : "−"}${ms(Math.abs(v))}`;
const mb = (v: number) => v.toFixed(0);
const count = (v: number) => Math.round(v).toLocaleString("en-US");
const percent = (share: number) => `${(share * 100).toFixed(share < 0.1 ? 1 : 0)} %`;
const perRequest = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const pair = (l: Latency) => `${ms(l.p50Ms)} / ${ms(l.p99Ms)}`;
const added = (l: Latency, bare: Latency) => `${signedMs(l.p50Ms - bare.p50Ms)} / ${signedMs(l.p99Ms - bare.p99Ms)}`;
const mode = (s: Scenario) => (s.stream ? "stream" : "json");
const row = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
const table = (header: string[], rows: Array<Array<string | number>>) =>
  [row(header), row(header.map(() => "---")), ...rows.map(row)].join("\n");

/** The bare proxy's result for the same connections and mode (it ignores accounts). */
function bareFor(run: BenchRun, s: Scenario): ScenarioResult {
  const bare = run.scenarios.find((r) => r.gateway === "bare" && r.scenario.connections === s.connections && r.scenario.stream === s.stream);
  if (!bare) throw new Error(`no bare-proxy result for ${s.connections} connections, ${mode(s)}`);
  return bare;
}

const share = (run: BenchRun, r: ScenarioResult) => r.requestsPerSecond / bareFor(run, r.scenario).requestsPerSecond;
const sentx = (run: BenchRun, gateway: Gateway, connections: number) =>
  run.scenarios.filter((r) => r.gateway === gateway && r.scenario.connections === connections);
const label = (r: ScenarioResult) => `${mode(r.scenario)}, ${r.scenario.accounts} account${r.scenario.accounts > 1 ? "s" : ""}`;

const met = (ok: boolean, shortBy: string) => (ok ? "**met**" : `not met: ${shortBy}`);

function throughputTarget(run: BenchRun, gateway: Gateway, measure: string, target: string, floor: number): string[] {
  const rows = sentx(run, gateway, 32);
  const lowest = Math.min(...rows.map((r) => share(run, r)));
  return [
    measure,
    target,
    rows.map((r) => `${label(r)}: ${percent(share(run, r))}`).join("; "),
    met(lowest >= floor, `the lowest is ${(floor / lowest).toFixed(1)}× short`),
  ];
}

function targets(run: BenchRun): string {
  const oneConnection = sentx(run, "postgres", 1);
  const latencies = oneConnection.flatMap((r) => {
    const bare = bareFor(run, r.scenario);
    const total = { name: `${mode(r.scenario)} total`, p50: r.latency.p50Ms - bare.latency.p50Ms, p99: r.latency.p99Ms - bare.latency.p99Ms };
    return r.ttfb && bare.ttfb
      ? [total, { name: "stream first byte", p50: r.ttfb.p50Ms - bare.ttfb.p50Ms, p99: r.ttfb.p99Ms - bare.ttfb.p99Ms }]
      : [total];
  });
  const worstP50 = Math.max(...latencies.map((l) => l.p50));
  const worstP99 = Math.max(...latencies.map((l) => l.p99));
  const slow = run.slowStreams.find((s) => s.gateway === "postgres")!;
  const idle = run.embeddedIdleRssMb;
  const idleMb = Math.max(idle.afterStart, idle.afterLoad);
  return table(
    ["measure", "target", "measured (SentX vs the bare proxy, this run)", "verdict"],
    [
      [
        "added latency, 1 connection",
        "p50 ≤ 1 ms and p99 ≤ 3 ms, streaming time to first byte included",
        latencies.map((l) => `${l.name}: ${signedMs(l.p50)} / ${signedMs(l.p99)} ms`).join("; "),
        met(worstP50 <= 1 && worstP99 <= 3, `worst p50 ${signedMs(worstP50)} ms, worst p99 ${signedMs(worstP99)} ms`),
      ],
      throughputTarget(run, "postgres", "throughput, 32 connections", "≥ 25 % of the bare proxy, on one account and on 32", 0.25),
      throughputTarget(run, "postgres", "throughput, 32 connections (aim)", "≥ 40 % of the bare proxy", 0.4),
      [
        `${slow.streams} open streams`,
        "RSS under 300 MB",
        `peak ${mb(slow.peakRssMb)} MB (${slow.mostOpenAtOnce} open at once)`,
        met(slow.peakRssMb < 300, `${mb(slow.peakRssMb - 300)} MB over`),
      ],
      throughputTarget(run, "embedded", "embedded default, 32 connections", "≥ 10 % of the bare proxy", 0.1),
      [
        "embedded default, idle",
        "RSS under 300 MB",
        `${mb(idle.afterStart)} MB after start, ${mb(idle.afterLoad)} MB after the load`,
        met(idleMb < 300, `${mb(idleMb - 300)} MB over`),
      ],
      ["Portkey gateway", "ahead of it on every row above", "not measured: Portkey is not installed on this machine", "unknown"],
    ],
  );
}

function throughputTable(run: BenchRun): string {
  return table(
    ["gateway", "connections", "mode", "accounts", "req/s", "share of bare", "p50 / p99 ms", "added p50 / p99 ms", "first byte p50 / p99 ms", "added first byte ms", "failed"],
    run.scenarios.map((r) => {
      const bare = bareFor(run, r.scenario);
      const isBare = r.gateway === "bare";
      return [
        GATEWAY_NAMES[r.gateway],
        r.scenario.connections,
        mode(r.scenario),
        isBare ? "—" : r.scenario.accounts,
        count(r.requestsPerSecond),
        isBare ? "—" : percent(share(run, r)),
        pair(r.latency),
        isBare ? "—" : added(r.latency, bare.latency),
        r.ttfb ? pair(r.ttfb) : "—",
        r.ttfb && bare.ttfb && !isBare ? added(r.ttfb, bare.ttfb) : "—",
        r.failed ? `**${r.failed}**` : 0,
      ];
    }),
  );
}

function costTable(run: BenchRun): string {
  return table(
    ["gateway", "scenario", "peak RSS MB", "CPU ms / req", "busy per core", "DB transactions / req", "DB round trips / req", "rows inserted / updated / deleted per req", "Redis calls / req"],
    run.scenarios.map((r) => [
      GATEWAY_NAMES[r.gateway],
      `${r.scenario.connections} conn, ${r.gateway === "bare" ? mode(r.scenario) : label(r)}`,
      mb(r.peakRssMb),
      r.cpuMsPerRequest.toFixed(3),
      r.coreBusy.map(percent).join(" / "),
      r.database ? perRequest(r.database.transactions) : "—",
      r.database ? perRequest(r.database.roundTrips) : "—",
      r.database ? [r.database.inserted, r.database.updated, r.database.deleted].map(perRequest).join(" / ") : "—",
      r.redisCallsPerRequest === null ? "—" : perRequest(r.redisCallsPerRequest),
    ]),
  );
}

function slowStreamsTable(run: BenchRun): string {
  return table(
    ["gateway", "streams", "most open at once", "peak RSS MB", "mean RSS while most were open, MB", "first byte p50 / p99 ms", "failed"],
    run.slowStreams.map((s) => [GATEWAY_NAMES[s.gateway], s.streams, s.mostOpenAtOnce, mb(s.peakRssMb), mb(s.meanRssWhileOpenMb), pair(s.ttfb), s.failed]),
  );
}

export function renderBenchmarks(run: BenchRun): string {
  const m = run.machine;
  const { method } = run;
  const failures = run.scenarios.reduce((n, r) => n + r.failed, 0) + run.slowStreams.reduce((n, s) => n + s.failed, 0);
  const busyBefore = Math.max(...run.busyBefore);
  const upload = run.upload;
  const accounts = Math.max(...run.scenarios.map((r) => r.scenario.accounts));
  // While the bare proxy runs, PostgreSQL and Redis are idle: a full load core is wrk and the upstream.
  const loadBound = run.scenarios.filter((r) => r.gateway === "bare" && (r.coreBusy[LOAD_CORE] ?? 0) >= 0.95);
  return `# Benchmarks

Written by \`npm run bench\` (\`bench/benchmarks.ts\`) on ${run.startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC; the run took ${Math.round(run.seconds)} s. Rerun it to refresh this file rather than editing it.

- **Machine:** ${m.cores} cores (${m.cpuModel}), ${m.memoryGb.toFixed(1)} GB memory, Linux ${m.kernel}; Node ${m.node}, PostgreSQL ${m.postgres}, Redis ${m.redis}, ${m.wrk}.
- **Other work on the machine** in the second before the run: cores ${run.busyBefore.map(percent).join(" / ")} busy.${busyBefore > 0.1 ? " Figures taken under other load are lower than this machine can do; the ratios to the bare proxy suffer less, but rerun on a quiet machine before relying on them." : ""}
- **Placement:** ${run.pinned ? `the gateway under test alone on core ${SERVER_CORE}; wrk, the Node client, the fast upstream and the harness on core ${LOAD_CORE} (taskset)` : "one core: nothing could be pinned apart"}; PostgreSQL and Redis unpinned, where the kernel puts them.
${loadBound.length === 0 ? "" : `- **Load core saturated** in the bare proxy's ${loadBound.map((r) => `${r.scenario.connections}-connection ${mode(r.scenario)}`).join(" and ")} rows (core ${LOAD_CORE} ≥ 95 % busy): there wrk and the upstream may set the pace rather than the proxy, so those bare figures are floors and SentX's shares of them ceilings.\n`}- **Rounds:** each figure is the median of ${method.rounds} rounds of ${method.roundSeconds} s of wrk after a ${method.warmupSeconds} s warm-up. ${failures === 0 ? "No request failed." : `**${failures} requests failed** (the \`failed\` columns): those scenarios' figures are suspect.`}
- **Books:** after the load, \`ledger.verify\` found the books ${run.ledgerBalanced.postgres ? "balanced" : "**unbalanced**"} on PostgreSQL and ${run.ledgerBalanced.embedded ? "balanced" : "**unbalanced**"} on the embedded default.

## Targets (issue 9)

${targets(run)}

## Throughput and latency

Added latency and share of the bare proxy are against the bare proxy's row with the same connections and mode, from this run. The bare proxy checks no key, so its 32-connection rows stand for both account layouts.

${throughputTable(run)}

## Cost per request

${costTable(run)}

## ${run.slowStreams[0]!.streams} slow streams open at once

Each stream is answered by the upstream in ${method.slowStream}; all are opened at once, over ${run.slowStreams[0]!.streams} connections spread over the ${accounts} accounts' keys, on the freshly started gateway before the load scenarios (afterwards its heap has grown by an amount that varies from run to run).

${slowStreamsTable(run)}

## Embedded default memory, and one ${upload.megabytes} MB upload

- Embedded default (PGlite in the server process), resident memory when idle: ${mb(run.embeddedIdleRssMb.afterStart)} MB after start, ${mb(run.embeddedIdleRssMb.afterLoad)} MB two seconds after the load above.
- One ${upload.megabytes} MB upload to \`POST /v1/files\` on SentX with PostgreSQL + Redis (scanned by clamd): status ${upload.statuses.join(", ")}, ${upload.seconds.toFixed(2)} s; resident memory ${mb(upload.idleMb)} MB before, peak ${mb(upload.peakMb)} MB during, ${mb(upload.afterMb)} MB after. (\`npm run bench:uploads\` runs four at once on the embedded default.)

## Portkey

Issue 9's first table compares SentX with Portkey's open-source gateway. Portkey is not installed on this machine and this benchmark does not start it, so this file has no Portkey figures; the target "ahead of Portkey on every row" stays unknown until it is measured alongside in the same run.

## How each figure is measured

- **The gateways.** The fast upstream (\`bench/fast-upstream.ts\`, its own process) answers at once with a four-word answer and its usage, streamed or not. The bare proxy (\`bench/bare-proxy.ts\`) is node:http with a keep-alive agent and no logic. SentX is \`src/main.ts\` as its own process with \`NODE_ENV=production\` and \`LOG_LEVEL=warn\`: on PostgreSQL (a fresh database) with a Redis of its own (\`redis-server\`, so that its command counts are SentX's alone), or the embedded default (PGlite in a temp \`DATA_DIR\`, no Redis). Its ${accounts} accounts are funded and have rate limits far above the load, so limits are checked on every request and never refuse one.
- **Requests per second, p50, p99:** wrk; with ${accounts} accounts, one wrk thread per connection and connection *i* sends account *i*'s key, otherwise one thread. Latency is per request, from sending it to the end of the answer (a stream's \`[DONE]\`).
- **First byte:** wrk cannot see it, so after a streaming scenario's rounds a Node client (\`bench/chat-client.ts\`) drives the same connections and keys for ${method.ttfbSeconds} s and times each request to the first byte of the body (the first event). That client is slower than wrk, so at 32 connections the bare proxy runs below its wrk rate in this pass.
- **Peak RSS:** the gateway process's VmHWM, reset (\`/proc/<pid>/clear_refs\`) before each scenario's rounds. The mean RSS of the slow streams samples VmRSS every 100 ms.
- **CPU per request:** utime + stime of the gateway process (all its threads, PGlite included for the embedded default; not PostgreSQL's or Redis's own processes) over the rounds, divided by the requests wrk completed. **Core busy** is each core's non-idle share over the rounds, from /proc/stat, whoever used it.
- **Database transactions, round trips and rows per request:** counted on the wire in a separate, untimed pass: a second SentX server on the same database and accounts reaches PostgreSQL through a relay (\`bench/pg-wire-census.ts\`) that reads the backend's messages. A round trip is one ReadyForQuery (one Sync or simple Query the client waits for; pipelined exchanges, if any, would share a network round trip); a transaction is a ReadyForQuery that returns to idle, which is what pg_stat_database's xact_commit + xact_rollback count; rows come from the INSERT/UPDATE/DELETE command tags. Each scenario: ${method.censusRequests}, after a warm-up, counted until the counts stop moving. pg_stat_statements is not used because it needs a restart of the machine's PostgreSQL, and pg_stat_database's counters reach the view up to 10 s late.
- **Redis calls per request:** INFO commandstats of SentX's own Redis over the rounds (the counter's INFO calls left out), divided by the requests. Background work (queues, sweeps) is included.
`;
}
