import { collectDefaultMetrics, type Metric, Registry } from "prom-client";
import type { TokenUsage } from "../domain/inference/provider.js";
import type { UpstreamFailureReason } from "../domain/metrics.js";

// /metrics through prom-client's registry (its text format, plus Node's process,
// heap, GC and event-loop-lag metrics). Our own series are kept in plain cells:
// prom-client builds a label key string per observation, and these are
// observed on every request; the cells are read into its format per scrape.

// From 5 ms to 2 min: a non-streamed answer takes seconds, a stream minutes.
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] as const;

type LabelValue = string | number;
type Labels = Record<string, LabelValue>;
/** One line of the exposition, in the shape prom-client's registry formats. */
type Sample = { labels: Labels; value: number; metricName?: string };

/** One histogram series, observed without allocating. */
class HistogramCell {
  /** Observations per bucket, not yet cumulative; above the last bound they are only in `count`. */
  readonly perBucket = new Float64Array(SECONDS_BUCKETS.length);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let bucket = 0;
    while (bucket < SECONDS_BUCKETS.length && seconds > SECONDS_BUCKETS[bucket]!) bucket++;
    if (bucket < SECONDS_BUCKETS.length) this.perBucket[bucket]! += 1;
    this.sum += seconds;
    this.count += 1;
  }

  samples(name: string, labels: Labels): Sample[] {
    let cumulative = 0;
    const buckets = SECONDS_BUCKETS.map((le, i) => {
      cumulative += this.perBucket[i]!;
      return { metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative };
    });
    return [
      ...buckets,
      { metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: this.count },
      { metricName: `${name}_sum`, labels, value: this.sum },
      { metricName: `${name}_count`, labels, value: this.count },
    ];
  }
}

/**
 * A metric's cells by label values, one Map level per label (at most three),
 * so finding a cell on the request path builds no key. A label set's first
 * use creates its cell; the values come from the config or a fixed set, so
 * the cells are few.
 */
class Series<Cell> {
  readonly all: Array<{ labels: Labels; cell: Cell }> = [];
  private readonly root = new Map<LabelValue, unknown>();

  constructor(
    private readonly labelNames: readonly [string] | readonly [string, string] | readonly [string, string, string],
    private readonly newCell: () => Cell,
  ) {}

  /** The cell for these label values, in the order of the label names. */
  at(first: LabelValue, second: LabelValue = "", third: LabelValue = ""): Cell {
    const depth = this.labelNames.length;
    let level = this.root;
    if (depth > 1) level = this.branch(level, first);
    if (depth > 2) level = this.branch(level, second);
    const last = depth === 1 ? first : depth === 2 ? second : third;
    let cell = level.get(last) as Cell | undefined;
    if (cell === undefined) {
      cell = this.newCell();
      level.set(last, cell);
      const values = [first, second, third];
      this.all.push({ labels: Object.fromEntries(this.labelNames.map((name, i) => [name, values[i]!])), cell });
    }
    return cell;
  }

  private branch(level: Map<LabelValue, unknown>, value: LabelValue): Map<LabelValue, unknown> {
    let next = level.get(value) as Map<LabelValue, unknown> | undefined;
    if (next === undefined) {
      next = new Map();
      level.set(value, next);
    }
    return next;
  }
}

export function createMetrics() {
  const registry = new Registry();
  // Under the names Node dashboards expect: process_*, nodejs_heap_*, nodejs_gc_*, nodejs_eventloop_lag_*.
  collectDefaultMetrics({ register: registry });

  /** Registers a metric whose samples are read at each scrape. */
  function collected(name: string, help: string, type: "counter" | "gauge" | "histogram", read: () => Sample[] | Promise<Sample[]>): void {
    const get = async () => ({ name, help, type, aggregator: "sum", values: await read() });
    // The registry reads a metric only through get(); prom-client's own cluster aggregation registers plain objects the same way.
    registry.registerMetric({ name, help, type, aggregator: "sum", get, reset() {} } as unknown as Metric);
  }

  const requests = new Series(["method", "route", "status"], () => new HistogramCell());
  const upstreamAnswers = new Series(["upstream"], () => new HistogramCell());
  const upstreamFailures = new Series(["upstream", "reason"], () => ({ count: 0 }));
  const billing = new Series(["model"], () => ({ inputTokens: 0, outputTokens: 0, cents: 0 }));

  collected("sentx_http_requests_total", "Requests answered, by method, route pattern and status.", "counter", () =>
    requests.all.map(({ labels, cell }) => ({ labels, value: cell.count })),
  );
  collected(
    "sentx_http_request_duration_seconds",
    "Time from a request's arrival until its response ended (a stream's whole length), by method, route pattern and status.",
    "histogram",
    () => requests.all.flatMap(({ labels, cell }) => cell.samples("sentx_http_request_duration_seconds", labels)),
  );
  collected(
    "sentx_upstream_response_seconds",
    "Time until an upstream answered (the whole answer, or a stream's first bytes), by upstream; failed attempts are not in it.",
    "histogram",
    () => upstreamAnswers.all.flatMap(({ labels, cell }) => cell.samples("sentx_upstream_response_seconds", labels)),
  );
  collected("sentx_upstream_errors_total", "Upstream calls that failed, by upstream and reason.", "counter", () =>
    upstreamFailures.all.map(({ labels, cell }) => ({ labels, value: cell.count })),
  );
  collected("sentx_billed_tokens_total", "Tokens of billed requests, by model and kind (input, output).", "counter", () =>
    billing.all.flatMap(({ labels, cell }) => [
      { labels: { ...labels, kind: "input" }, value: cell.inputTokens },
      { labels: { ...labels, kind: "output" }, value: cell.outputTokens },
    ]),
  );
  collected("sentx_billed_cents_total", "Cents the ledger charged for requests, by model.", "counter", () =>
    billing.all.map(({ labels, cell }) => ({ labels, value: cell.cents })),
  );

  return {
    contentType: registry.contentType,
    /** Everything, in Prometheus' text format. */
    exposition: () => registry.metrics(),

    /** A gauge read at each scrape; `read` returns one value, or labelled samples. */
    gauge(name: string, help: string, read: () => number | Promise<Array<{ labels: Labels; value: number }>>): void {
      collected(name, help, "gauge", async () => {
        const value = await read();
        return typeof value === "number" ? [{ labels: {}, value }] : value;
      });
    },

    requestServed(method: string, route: string, status: number, seconds: number): void {
      requests.at(method, route, status).observe(seconds);
    },
    upstreamAnswered(upstream: string, seconds: number): void {
      upstreamAnswers.at(upstream).observe(seconds);
    },
    upstreamFailed(upstream: string, reason: UpstreamFailureReason): void {
      upstreamFailures.at(upstream, reason).count += 1;
    },
    billed(model: string, usage: TokenUsage, chargedCents: number): void {
      const cell = billing.at(model);
      cell.inputTokens += usage.promptTokens;
      cell.outputTokens += usage.completionTokens;
      cell.cents += chargedCents;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
