import { z } from "zod";
import type { Db } from "./db.js";
import { DomainError } from "./errors.js";
import { groupLabels } from "./usage/group-labels.js";
import { type BucketSums, querySeries, type UsageDimension, type UsageSums } from "./usage/series-query.js";
import { type BucketUnit, isTimeZone, localBuckets } from "./usage/time-buckets.js";

// Refused before any query, so no request reads or returns without bound: a
// chart of at most 745 hours or 367 days, at most 50 groups and "other",
// filters of at most 100 values each.
const MAX_SPAN_DAYS: Record<BucketUnit, number> = { hour: 31, day: 366 };
const MAX_GROUPS = 50;
const MAX_FILTER_VALUES = 100;

const id = z.string().min(1).max(64);
const values = (item: z.ZodString) => z.array(item).min(1).max(MAX_FILTER_VALUES).optional();

export const usageSeriesInput = z.object({
  from: z.iso.datetime({ offset: true }).transform((text) => new Date(text)),
  to: z.iso.datetime({ offset: true }).transform((text) => new Date(text)),
  bucket: z.enum(["hour", "day"]),
  timeZone: z.string().max(64).refine(isTimeZone, { error: "must be an IANA time zone, such as Europe/Paris or Asia/Kolkata." }),
  filter: z
    .object({ keyIds: values(id), models: values(z.string().min(1).max(128)), endUserIds: values(id), conversationIds: values(id) })
    .nullish()
    .transform((filter) => filter ?? {}),
  groupBy: z
    .enum(["key", "model", "endUser", "conversation"])
    .nullish()
    .transform((dimension) => dimension ?? undefined),
  groups: z.number().int().min(1).max(MAX_GROUPS).default(10),
});
export type UsageSeriesInput = z.output<typeof usageSeriesInput>;

export interface UsagePoint extends UsageSums {
  start: Date;
}

export interface UsageGroup {
  /** null on the requests without a value (no end user, say) and on "other". */
  id: string | null;
  label: string | null;
  /** The groups beyond the top ones, summed. */
  other: boolean;
  totals: UsageSums;
  points: UsagePoint[];
}

export interface UsageSeries {
  bucket: BucketUnit;
  timeZone: string;
  /** The first bucket's start and the last one's end: whole buckets, covering the asked range. */
  from: Date;
  to: Date;
  totals: UsageSums;
  points: UsagePoint[];
  dimension: UsageDimension | null;
  /** The `groups` highest costs (the requests without a value count as one group), then "other" if anything is left. */
  groups: UsageGroup[];
}

const zero = (): UsageSums => ({ requests: 0, inputTokens: 0, outputTokens: 0, costCents: 0 });

function add(into: UsageSums, sums: UsageSums, sign = 1): void {
  into.requests += sign * sums.requests;
  into.inputTokens += sign * sums.inputTokens;
  into.outputTokens += sign * sums.outputTokens;
  into.costCents += sign * sums.costCents;
}

/** A series per bucket, zero where nothing was used, so a chart is continuous. */
class Series {
  readonly points: UsageSums[];
  constructor(buckets: number) {
    this.points = Array.from({ length: buckets }, zero);
  }
  add(rows: readonly BucketSums[], sign = 1): this {
    for (const row of rows) add(this.points[row.bucket]!, row, sign);
    return this;
  }
  addSeries(other: Series, sign = 1): this {
    other.points.forEach((sums, bucket) => add(this.points[bucket]!, sums, sign));
    return this;
  }
  totals(): UsageSums {
    const totals = zero();
    for (const sums of this.points) add(totals, sums);
    return totals;
  }
}

const byCost = (a: UsageSums, b: UsageSums) => b.costCents - a.costCents || b.requests - a.requests;

export function createUsageSeries({ db }: { db: Db }) {
  return {
    /** SPEC 11: one account's usage over [from, to) in local hours or days of `timeZone`, optionally per key, model, end user or conversation. */
    async series(accountId: string, input: UsageSeriesInput): Promise<UsageSeries> {
      const spanMs = input.to.getTime() - input.from.getTime();
      if (spanMs <= 0) throw new DomainError("invalid_request_error", "to must be after from.", "to");
      const maxDays = MAX_SPAN_DAYS[input.bucket];
      if (spanMs > maxDays * 86_400_000) {
        throw new DomainError("invalid_request_error", `${input.bucket} buckets cover at most ${maxDays} days: narrow from and to.`, "to");
      }
      const { starts, end } = localBuckets(input.timeZone, input.bucket, input.from, input.to);
      const rows = await querySeries(db, { accountId, starts, end, filter: input.filter, groupBy: input.groupBy, limit: input.groups });
      const instants = (series: Series): UsagePoint[] => series.points.map((sums, bucket) => ({ start: starts[bucket]!, ...sums }));
      const total = new Series(starts.length).add(rows.total);
      const series: UsageSeries = {
        bucket: input.bucket,
        timeZone: input.timeZone,
        from: starts[0]!,
        to: end,
        totals: total.totals(),
        points: instants(total),
        dimension: input.groupBy ?? null,
        groups: [],
      };
      if (!input.groupBy) return series;

      const grouped = new Series(starts.length).add(rows.grouped);
      const candidates = new Map<string | null, Series>();
      for (const row of rows.top) {
        let group = candidates.get(row.id);
        if (!group) candidates.set(row.id, (group = new Series(starts.length)));
        group.add([row]);
      }
      // The requests with no value in the dimension compete for a place like any group.
      const withoutValue = new Series(starts.length).addSeries(total).addSeries(grouped, -1);
      if (withoutValue.totals().requests !== 0) candidates.set(null, withoutValue);
      const ranked = [...candidates].map(([id, points]) => ({ id, points, totals: points.totals() }));
      ranked.sort((a, b) => byCost(a.totals, b.totals) || (a.id ?? "").localeCompare(b.id ?? ""));
      const shown = ranked.slice(0, input.groups);

      const other = new Series(starts.length).addSeries(total);
      for (const group of shown) other.addSeries(group.points, -1);
      const labels = await groupLabels(db, accountId, input.groupBy, shown.flatMap((group) => (group.id === null ? [] : [group.id])));
      series.groups = shown.map((group) => ({
        id: group.id,
        label: group.id === null ? null : (labels.get(group.id) ?? null),
        other: false,
        totals: group.totals,
        points: instants(group.points),
      }));
      const otherTotals = other.totals();
      if (otherTotals.requests !== 0) series.groups.push({ id: null, label: null, other: true, totals: otherTotals, points: instants(other) });
      return series;
    },
  };
}

export type UsageSeriesService = ReturnType<typeof createUsageSeries>;
