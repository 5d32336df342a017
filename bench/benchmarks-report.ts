// BENCHMARKS.md from one run's results: the tables, and the targets judged
// against the bare proxy and Portkey measured in the same run.
import { compareWithPortkey, type PortkeyComparison, sentxAhead } from "./portkey-comparison.js";
import { PORTKEY_HONO_NODE_SERVER, PORTKEY_VERSION } from "./portkey-gateway.js";
import { type BenchRun, checksKeys, type Gateway, LOAD_CORE, type Latency, resultFor, type Scenario, type ScenarioResult, SERVER_CORE } from "./results.js";

const GATEWAY_NAMES: Record<Gateway, string> = {
  bare: "bare proxy",
  portkey: `Portkey ${PORTKEY_VERSION}`,
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
  const bare = resultFor(run, "bare", s.connections, s.stream);
  if (!bare) throw new Error(`no bare-proxy result for ${s.connections} connections, ${mode(s)}`);
  return bare;
}

const share = (run: BenchRun, r: ScenarioResult) => r.requestsPerSecond / bareFor(run, r.scenario).requestsPerSecond;
const sentx = (run: BenchRun, gateway: Gateway, connections: number) =>
  run.scenarios.filter((r) => r.gateway === gateway && r.scenario.connections === connections);
const label = (r: ScenarioResult) => `${mode(r.scenario)}, ${r.scenario.accounts} account${r.scenario.accounts > 1 ? "s" : ""}`;

const met = (ok: boolean, shortBy: string) => (ok ? "**met**" : `not met: ${shortBy}`);

const amount = (c: PortkeyComparison, v: number) => (c.unit === "ms" ? ms(v) : c.unit === "MB" ? mb(v) : count(v));
const figure = (c: PortkeyComparison, v: number) => `${amount(c, v)} ${c.unit}`;
/** By how much SentX trails Portkey on one figure: a difference, or for throughput a ratio. */
const shortfall = (c: PortkeyComparison) => (c.lowerIsBetter ? `${figure(c, c.sentx - c.portkey)} more` : `${(c.portkey / c.sentx).toFixed(1)}× fewer`);

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

function portkeyTarget(run: BenchRun): string[] {
  const target = "ahead of Portkey on every figure of the Portkey table below";
  if (run.portkeyNotMeasured !== null) return ["Portkey gateway", target, `not measured: ${run.portkeyNotMeasured}`, "unknown"];
  const comparisons = compareWithPortkey(run);
  const behind = comparisons.filter((c) => !sentxAhead(c));
  return [
    "Portkey gateway",
    target,
    `SentX ahead on ${comparisons.length - behind.length} of ${comparisons.length}`,
    met(behind.length === 0, `behind on ${behind.map((c) => `${c.measure} (${amount(c, c.sentx)} vs ${figure(c, c.portkey)}, ${shortfall(c)})`).join("; ")}`),
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
    ["measure", "target", "measured (SentX against the bare proxy or Portkey, this run)", "verdict"],
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
      portkeyTarget(run),
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
        checksKeys(r.gateway) ? r.scenario.accounts : "—",
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
      `${r.scenario.connections} conn, ${checksKeys(r.gateway) ? label(r) : mode(r.scenario)}`,
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

function portkeySection(run: BenchRun): string {
  if (run.portkeyNotMeasured !== null) {
    return `Portkey's open-source gateway (npm \`@portkey-ai/gateway\` ${PORTKEY_VERSION}) was not measured in this run: ${run.portkeyNotMeasured}. The target "ahead of Portkey" stays unknown until a run measures it alongside SentX.`;
  }
  const comparisons = table(
    ["measure", GATEWAY_NAMES.postgres, GATEWAY_NAMES.portkey, "SentX ahead"],
    compareWithPortkey(run).map((c) => [c.measure, figure(c, c.sentx), figure(c, c.portkey), sentxAhead(c) ? "yes" : `no: ${shortfall(c)}`]),
  );
  return `SentX on PostgreSQL + Redis against Portkey's open-source gateway, from the tables above. Portkey reads no key and was loaded like the bare proxy, one key over one wrk thread, so SentX's figures here are from its one-account rows, which put the same requests on the wire. Portkey holds back the first chunk of every stream it relays for 25 ms (a timer in its stream reader), which is part of its stream figures.

${comparisons}`;
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
${loadBound.length === 0 ? "" : `- **Load core saturated** in the bare proxy's ${loadBound.map((r) => `${r.scenario.connections}-connection ${mode(r.scenario)}`).join(" and ")} rows (core ${LOAD_CORE} ≥ 95 % busy): there wrk and the upstream may set the pace rather than the proxy, so those bare figures are floors and the other gateways' shares of them ceilings.\n`}- **Rounds:** each figure is the median of ${method.rounds} rounds of ${method.roundSeconds} s of wrk after a ${method.warmupSeconds} s warm-up. ${failures === 0 ? "No request failed." : `**${failures} requests failed** (the \`failed\` columns): those scenarios' figures are suspect.`}
- **Books:** after the load, \`ledger.verify\` found the books ${run.ledgerBalanced.postgres ? "balanced" : "**unbalanced**"} on PostgreSQL and ${run.ledgerBalanced.embedded ? "balanced" : "**unbalanced**"} on the embedded default.

## Targets

${targets(run)}

## Throughput and latency

Added latency and share of the bare proxy are against the bare proxy's row with the same connections and mode, from this run. The bare proxy and Portkey check no key, so their 32-connection rows stand for both account layouts.

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

${portkeySection(run)}

## How each figure is measured

- **The gateways.** The fast upstream (\`bench/fast-upstream.ts\`, its own process) answers at once with a four-word answer and its usage, streamed or not. The bare proxy (\`bench/bare-proxy.ts\`) is node:http with a keep-alive agent and no logic. Portkey (\`bench/portkey-gateway.ts\`) is npm \`@portkey-ai/gateway\` ${PORTKEY_VERSION}, installed by the benchmark into \`node_modules/.cache/\` (not a dependency of SentX) with \`@hono/node-server\` held at ${PORTKEY_HONO_NODE_SERVER}, the version Portkey's own lockfile installs (the package's range takes 1.19, with which Portkey answers every stream with a 500, Portkey-AI/gateway#1389); it runs as \`node build/start-server.js --port=<free port> --headless\` with \`NODE_ENV=production\`, and each request carries \`x-portkey-provider: openai\` and \`x-portkey-custom-host: <upstream>/v1\` (\`/slow/v1\` for the slow streams), to which Portkey appends \`/chat/completions\`; the key goes through to the upstream as the provider's key. SentX is \`src/main.ts\` as its own process with \`NODE_ENV=production\` and \`LOG_LEVEL=warn\`: on PostgreSQL (a fresh database) with a Redis of its own (\`redis-server\`, so that its command counts are SentX's alone), or the embedded default (PGlite in a temp \`DATA_DIR\`, no Redis). Its ${accounts} accounts are funded and have rate limits far above the load, so limits are checked on every request and never refuse one.
- **Requests per second, p50, p99:** wrk; with ${accounts} accounts, one wrk thread per connection and connection *i* sends account *i*'s key, otherwise one thread. Latency is per request, from sending it to the end of the answer (a stream's \`[DONE]\`).
- **First byte:** wrk cannot see it, so after a streaming scenario's rounds a Node client (\`bench/chat-client.ts\`) drives the same connections and keys for ${method.ttfbSeconds} s and times each request to the first byte of the body (the first event). That client is slower than wrk, so at 32 connections the bare proxy runs below its wrk rate in this pass.
- **Peak RSS:** the gateway process's VmHWM, reset (\`/proc/<pid>/clear_refs\`) before each scenario's rounds. The mean RSS of the slow streams samples VmRSS every 100 ms.
- **CPU per request:** utime + stime of the gateway process (all its threads, PGlite included for the embedded default; not PostgreSQL's or Redis's own processes) over the rounds, divided by the requests wrk completed. **Core busy** is each core's non-idle share over the rounds, from /proc/stat, whoever used it.
- **Database transactions, round trips and rows per request:** counted on the wire in a separate, untimed pass: a second SentX server on the same database and accounts reaches PostgreSQL through a relay (\`bench/pg-wire-census.ts\`) that reads the backend's messages. A round trip is one ReadyForQuery (one Sync or simple Query the client waits for; pipelined exchanges, if any, would share a network round trip); a transaction is a ReadyForQuery that returns to idle, which is what pg_stat_database's xact_commit + xact_rollback count; rows come from the INSERT/UPDATE/DELETE command tags. Each scenario: ${method.censusRequests}, after a warm-up, counted until the counts stop moving. pg_stat_statements is not used because it needs a restart of the machine's PostgreSQL, and pg_stat_database's counters reach the view up to 10 s late.
- **Redis calls per request:** INFO commandstats of SentX's own Redis over the rounds (the counter's INFO calls left out), divided by the requests. Background work (queues, sweeps) is included.
`;
}
