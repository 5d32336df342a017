// Usage over time: requests, tokens and cost per hour or day of the owner's time zone, broken down by key, model,
// end user or conversation; every chart has its numbers in a table under it, and what is shown downloads as CSV.
import { useMemo, useState } from "preact/hooks";
import { graphql, request, type ResultOf } from "../api";
import { type ChartSeries, TimeChart } from "../components/chart";
import { DataTable, ErrorText } from "../components/ui";
import { toCsv } from "../lib/csv";
import { downloadCsv } from "../lib/download";
import { money, number } from "../lib/format";
import { useLoad } from "../lib/use-load";
import { groupName, usageCsvRows, type UsageDimensionName } from "../lib/usage-csv";
import { addDays, browserTimeZone, dateIn, isTimeZone, startOfDay } from "../lib/zoned-time";

// Every sum the page shows: of a bucket, and of the whole range.
const USAGE_TOTALS = graphql(`
  fragment UsageTotalsFields on UsageTotals {
    requests
    inputTokens
    outputTokens
    costCents
  }
`);

const USAGE_POINT = graphql(`
  fragment UsagePointFields on UsagePoint {
    start
    requests
    inputTokens
    outputTokens
    costCents
  }
`);

const USAGE = graphql(
  `
    query Usage($from: String!, $to: String!, $bucket: UsageBucket!, $timeZone: String!, $groupBy: UsageDimension) {
      usage(from: $from, to: $to, bucket: $bucket, timeZone: $timeZone, groupBy: $groupBy) {
        bucket
        timeZone
        from
        to
        dimension
        totals {
          ...UsageTotalsFields
        }
        points {
          ...UsagePointFields
        }
        groups {
          id
          label
          other
          totals {
            ...UsageTotalsFields
          }
          points {
            ...UsagePointFields
          }
        }
      }
    }
  `,
  [USAGE_TOTALS, USAGE_POINT],
);

type Series = ResultOf<typeof USAGE>["usage"];
type Point = Series["points"][number];
type Bucket = Series["bucket"];

const DIMENSIONS: Record<UsageDimensionName, { label: string }> = {
  KEY: { label: "Key" },
  MODEL: { label: "Model" },
  END_USER: { label: "End user" },
  CONVERSATION: { label: "Conversation" },
};

interface Query {
  fromDate: string;
  toDate: string;
  bucket: Bucket;
  timeZone: string;
  groupBy: UsageDimensionName | "";
}

const tokens = (point: Pick<Point, "inputTokens" | "outputTokens">) => point.inputTokens + point.outputTokens;

/** The three charts' series: the account's totals, or one series per group. */
function chartSeries(series: Series) {
  const { dimension } = series;
  if (!dimension) {
    return {
      requests: [{ label: "Requests", values: series.points.map((point) => point.requests) }],
      tokens: [
        { label: "Input tokens", values: series.points.map((point) => point.inputTokens) },
        { label: "Output tokens", values: series.points.map((point) => point.outputTokens) },
      ],
      cost: [{ label: "Cost", values: series.points.map((point) => point.costCents) }],
    };
  }
  const per = (value: (point: Point) => number): ChartSeries[] =>
    series.groups.map((group) => ({ label: groupName(group, dimension), values: group.points.map(value) }));
  return { requests: per((point) => point.requests), tokens: per(tokens), cost: per((point) => point.costCents) };
}

/** Axis labels of cents: as many decimals of a dollar as the step between labels needs ($0.005 steps show 3). */
const costAxisFormat = (cents: number, step: number) =>
  `$${(cents / 100).toFixed(Math.min(6, Math.max(2, Math.ceil(-Math.log10(step / 100) - 1e-9))))}`;
// Requests and tokens are whole: an axis step of 0.5 leaves its in-between labels blank.
const countAxisFormat = (value: number) => (Number.isInteger(value) ? number(value) : "");

function defaultQuery(): Query {
  const timeZone = browserTimeZone();
  const today = dateIn(new Date(), timeZone);
  return { fromDate: addDays(today, -6), toDate: today, bucket: "DAY", timeZone, groupBy: "" };
}

/** The form's range as the API takes it: instants, the end date included (the range runs to the next day's midnight). */
const usageVariables = (query: Query) => ({
  from: startOfDay(query.fromDate, query.timeZone).toISOString(),
  to: startOfDay(addDays(query.toDate, 1), query.timeZone).toISOString(),
  bucket: query.bucket,
  timeZone: query.timeZone,
  groupBy: query.groupBy || null,
});

let timeZoneNames: string[] | null = null;
const allTimeZones = () => (timeZoneNames ??= typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : []);

export function UsagePage() {
  const [form, setForm] = useState<Query>(defaultQuery);
  const [shown, setShown] = useState<Query>(form);
  // A range the form refuses before asking (an unknown zone, dates the wrong way round).
  const [formError, setFormError] = useState<string | null>(null);
  const { data: series, error: loadError, loading: busy } = useLoad(async () => (await request(USAGE, usageVariables(shown))).usage, [shown]);

  const update = <K extends keyof Query>(field: K, value: Query[K]) => setForm((old) => ({ ...old, [field]: value }));
  const charts = useMemo(() => series && chartSeries(series), [series]);
  const times = useMemo(() => series?.points.map((point) => Date.parse(point.start) / 1000) ?? [], [series]);

  return (
    <>
      <h1>Usage</h1>
      <form
        class="panel controls"
        aria-label="Usage range"
        onSubmit={(event) => {
          event.preventDefault();
          if (!isTimeZone(form.timeZone)) return setFormError(`“${form.timeZone}” is not a time zone: pick one from the list, such as Europe/Paris.`);
          if (form.fromDate > form.toDate) return setFormError("The start date is after the end date.");
          setFormError(null);
          setShown({ ...form });
        }}
      >
        <label>
          From
          <input type="date" name="from" required value={form.fromDate} onInput={(e) => update("fromDate", e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="date" name="to" required value={form.toDate} onInput={(e) => update("toDate", e.currentTarget.value)} />
        </label>
        <label>
          Per
          <select name="bucket" value={form.bucket} onChange={(e) => update("bucket", e.currentTarget.value as Bucket)}>
            <option value="DAY">Day</option>
            <option value="HOUR">Hour</option>
          </select>
        </label>
        <label>
          Time zone
          <input type="text" name="timeZone" list="time-zones" required spellcheck={false} value={form.timeZone} onInput={(e) => update("timeZone", e.currentTarget.value)} />
          <datalist id="time-zones">
            {allTimeZones().map((zone) => (
              <option key={zone} value={zone} />
            ))}
          </datalist>
        </label>
        <label>
          Break down by
          <select name="groupBy" value={form.groupBy} onChange={(e) => update("groupBy", e.currentTarget.value as UsageDimensionName | "")}>
            <option value="">Nothing (totals)</option>
            {Object.entries(DIMENSIONS).map(([value, { label }]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Loading…" : "Show usage"}
          </button>
          <button
            type="button"
            disabled={!series || busy}
            onClick={() => series && downloadCsv(`usage-${shown.fromDate}-to-${shown.toDate}.csv`, toCsv(usageCsvRows(series)))}
          >
            Download CSV
          </button>
        </div>
        <p class="hint">Hour buckets cover up to 31 days, day buckets up to 366. Days and hours are those of the time zone chosen.</p>
      </form>
      <ErrorText error={formError ?? loadError} />
      {series && charts && (
        <div aria-busy={busy}>
          <dl class="tiles" aria-label="Totals">
            <div>
              <dt>Requests</dt>
              <dd>{number(series.totals.requests)}</dd>
            </div>
            <div>
              <dt>Input tokens</dt>
              <dd>{number(series.totals.inputTokens)}</dd>
            </div>
            <div>
              <dt>Output tokens</dt>
              <dd>{number(series.totals.outputTokens)}</dd>
            </div>
            <div>
              <dt>Cost</dt>
              <dd>{money(series.totals.costCents)}</dd>
            </div>
          </dl>
          {series.dimension && <Breakdown series={series} />}
          <ChartSection id="requests" title="Requests" series={series} times={times} chart={charts.requests} format={number} axisFormat={countAxisFormat} />
          <ChartSection id="tokens" title="Tokens" series={series} times={times} chart={charts.tokens} format={number} axisFormat={countAxisFormat} />
          <ChartSection id="cost" title="Cost" series={series} times={times} chart={charts.cost} format={money} axisFormat={costAxisFormat} />
        </div>
      )}
    </>
  );
}

function Breakdown({ series }: { series: Series }) {
  const dimension = series.dimension as UsageDimensionName;
  const { label } = DIMENSIONS[dimension];
  return (
    <section aria-labelledby="breakdown-title">
      <h2 id="breakdown-title">By {label.toLowerCase()}</h2>
      {series.groups.length === 0 ? (
        <p>No requests in this range.</p>
      ) : (
        <DataTable caption={`Usage by ${label.toLowerCase()}`} columns={[label, "Requests", "Input tokens", "Output tokens", "Cost"]}>
          {series.groups.map((group, index) => (
            <tr key={`${group.id}-${index}`}>
              <th scope="row">{groupName(group, dimension)}</th>
              <td class="num">{number(group.totals.requests)}</td>
              <td class="num">{number(group.totals.inputTokens)}</td>
              <td class="num">{number(group.totals.outputTokens)}</td>
              <td class="num">{money(group.totals.costCents)}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

function ChartSection({
  id,
  title,
  series,
  times,
  chart,
  format,
  axisFormat,
}: {
  id: string;
  title: string;
  series: Series;
  times: number[];
  chart: ChartSeries[];
  format: (value: number) => string;
  axisFormat: (value: number, step: number) => string;
}) {
  const { bucket } = series;
  const when = useMemo(
    () => new Intl.DateTimeFormat(undefined, { timeZone: series.timeZone, dateStyle: "medium", ...(bucket === "HOUR" && { timeStyle: "short" }) }),
    [series.timeZone, bucket],
  );
  const tableId = `${id}-table`;
  return (
    <section class="chart-section" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{title}</h2>
      {chart.length === 0 ? (
        <p>No requests in this range.</p>
      ) : (
        <>
          <TimeChart
            label={title}
            tableId={tableId}
            times={times}
            series={chart}
            timeZone={series.timeZone}
            bucket={bucket}
            format={format}
            axisFormat={axisFormat}
          />
          <DataTable
            id={tableId}
            tall
            caption={`${title} per ${bucket === "HOUR" ? "hour" : "day"}`}
            columns={[bucket === "HOUR" ? "Hour" : "Day", ...chart.map((one) => one.label)]}
          >
            {times.map((seconds, row) => (
              <tr key={seconds}>
                <th scope="row">{when.format(new Date(seconds * 1000))}</th>
                {chart.map((one, index) => (
                  <td key={index} class="num">
                    {format(one.values[row] ?? 0)}
                  </td>
                ))}
              </tr>
            ))}
          </DataTable>
        </>
      )}
    </section>
  );
}
