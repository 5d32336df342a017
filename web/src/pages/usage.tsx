// Usage over time: requests, tokens and cost per hour or day of the owner's time zone, broken down by key, model,
// end user or conversation; every chart has its numbers in a table under it, and what is shown downloads as CSV.
import { useEffect, useMemo, useState } from "preact/hooks";
import { graphql, messageOf, request, type ResultOf } from "../api";
import { type ChartSeries, TimeChart } from "../components/chart";
import { ErrorText } from "../components/ui";
import { toCsv } from "../lib/csv";
import { downloadCsv } from "../lib/download";
import { money, number } from "../lib/format";
import { groupName, usageCsvRows } from "../lib/usage-csv";
import { addDays, browserTimeZone, dateIn, isTimeZone, startOfDay } from "../lib/zoned-time";

const USAGE = graphql(`
  query Usage($from: String!, $to: String!, $bucket: UsageBucket!, $timeZone: String!, $groupBy: UsageDimension) {
    usage(from: $from, to: $to, bucket: $bucket, timeZone: $timeZone, groupBy: $groupBy) {
      bucket
      timeZone
      from
      to
      dimension
      totals {
        requests
        inputTokens
        outputTokens
        costCents
      }
      points {
        start
        requests
        inputTokens
        outputTokens
        costCents
      }
      groups {
        id
        label
        other
        totals {
          requests
          inputTokens
          outputTokens
          costCents
        }
        points {
          start
          requests
          inputTokens
          outputTokens
          costCents
        }
      }
    }
  }
`);

type Series = ResultOf<typeof USAGE>["usage"];
type Point = Series["points"][number];
type Bucket = "HOUR" | "DAY";
type Dimension = "KEY" | "MODEL" | "END_USER" | "CONVERSATION";

const DIMENSIONS: Record<Dimension, { label: string }> = {
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
  groupBy: Dimension | "";
}

const tokens = (point: Pick<Point, "inputTokens" | "outputTokens">) => point.inputTokens + point.outputTokens;

/** The three charts' series: the account's totals, or one series per group. */
function chartSeries(series: Series) {
  const dimension = series.dimension as Dimension | null;
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

const costFormat = (cents: number) => money(cents);
/** Axis labels of cents: as many decimals of a dollar as the step between labels needs ($0.005 steps show 3). */
const costAxisFormat = (cents: number, step: number) =>
  `$${(cents / 100).toFixed(Math.min(6, Math.max(2, Math.ceil(-Math.log10(step / 100) - 1e-9))))}`;
const countFormat = (value: number) => number(value);
// Requests and tokens are whole: an axis step of 0.5 leaves its in-between labels blank.
const countAxisFormat = (value: number) => (Number.isInteger(value) ? number(value) : "");

function defaultQuery(): Query {
  const timeZone = browserTimeZone();
  const today = dateIn(new Date(), timeZone);
  return { fromDate: addDays(today, -6), toDate: today, bucket: "DAY", timeZone, groupBy: "" };
}

let timeZoneNames: string[] | null = null;
const allTimeZones = () => (timeZoneNames ??= typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : []);

export function UsagePage() {
  const [form, setForm] = useState<Query>(defaultQuery);
  const [shown, setShown] = useState<Query>(form);
  const [series, setSeries] = useState<Series | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let current = true;
    setBusy(true);
    setError(null);
    request(USAGE, {
      from: startOfDay(shown.fromDate, shown.timeZone).toISOString(),
      // The end date is included: the range runs to the next day's midnight.
      to: startOfDay(addDays(shown.toDate, 1), shown.timeZone).toISOString(),
      bucket: shown.bucket,
      timeZone: shown.timeZone,
      groupBy: shown.groupBy || null,
    }).then(
      (data) => {
        if (!current) return;
        setSeries(data.usage);
        setBusy(false);
      },
      (failure) => {
        if (!current) return;
        setError(messageOf(failure));
        setBusy(false);
      },
    );
    return () => {
      current = false;
    };
  }, [shown]);

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
          if (!isTimeZone(form.timeZone)) return setError(`“${form.timeZone}” is not a time zone: pick one from the list, such as Europe/Paris.`);
          if (form.fromDate > form.toDate) return setError("The start date is after the end date.");
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
          <select name="groupBy" value={form.groupBy} onChange={(e) => update("groupBy", e.currentTarget.value as Dimension | "")}>
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
      <ErrorText error={error} />
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
          <ChartSection id="requests" title="Requests" series={series} times={times} chart={charts.requests} format={countFormat} axisFormat={countAxisFormat} />
          <ChartSection id="tokens" title="Tokens" series={series} times={times} chart={charts.tokens} format={countFormat} axisFormat={countAxisFormat} />
          <ChartSection id="cost" title="Cost" series={series} times={times} chart={charts.cost} format={costFormat} axisFormat={costAxisFormat} />
        </div>
      )}
    </>
  );
}

function Breakdown({ series }: { series: Series }) {
  const dimension = series.dimension as Dimension;
  const { label } = DIMENSIONS[dimension];
  return (
    <section aria-labelledby="breakdown-title">
      <h2 id="breakdown-title">By {label.toLowerCase()}</h2>
      {series.groups.length === 0 ? (
        <p>No requests in this range.</p>
      ) : (
        <div class="table-scroll">
          <table>
            <caption class="visually-hidden">Usage by {label.toLowerCase()}</caption>
            <thead>
              <tr>
                <th scope="col">{label}</th>
                <th scope="col">Requests</th>
                <th scope="col">Input tokens</th>
                <th scope="col">Output tokens</th>
                <th scope="col">Cost</th>
              </tr>
            </thead>
            <tbody>
              {series.groups.map((group, index) => (
                <tr key={`${group.id}-${index}`}>
                  <th scope="row">{groupName(group, dimension)}</th>
                  <td class="num">{number(group.totals.requests)}</td>
                  <td class="num">{number(group.totals.inputTokens)}</td>
                  <td class="num">{number(group.totals.outputTokens)}</td>
                  <td class="num">{money(group.totals.costCents)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
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
  axisFormat?: (value: number, step: number) => string;
}) {
  const bucket = series.bucket as Bucket;
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
            {...(axisFormat && { axisFormat })}
          />
          <div class="table-scroll tall">
            <table id={tableId}>
              <caption class="visually-hidden">
                {title} per {bucket === "HOUR" ? "hour" : "day"}
              </caption>
              <thead>
                <tr>
                  <th scope="col">{bucket === "HOUR" ? "Hour" : "Day"}</th>
                  {chart.map((one, index) => (
                    <th key={index} scope="col">
                      {one.label}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
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
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
