// The usage page's CSV: what the page shows, one row per bucket (and per group, when broken down).
// Its imports name .js files: the unit tests type-check it under Node's module rules too.
import type { CsvCell } from "./csv.js";
import { bucketLabel } from "./zoned-time.js";

export type UsageDimensionName = "KEY" | "MODEL" | "END_USER" | "CONVERSATION";

export interface UsagePointData {
  start: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costCents: number;
}

/** The usage query's answer, as far as the CSV reads it. */
export interface UsageSeriesData {
  bucket: "HOUR" | "DAY";
  timeZone: string;
  dimension: UsageDimensionName | null;
  points: UsagePointData[];
  groups: { id: string | null; label: string | null; other: boolean; points: UsagePointData[] }[];
}

const NONE: Record<UsageDimensionName, string> = {
  KEY: "No key",
  MODEL: "No model",
  END_USER: "No end user named",
  CONVERSATION: "No conversation named",
};

/** A group as the owner reads it: its label, "Other" for the rest, or what the requests without a value lack. */
export function groupName(group: { id: string | null; label: string | null; other: boolean }, dimension: UsageDimensionName): string {
  if (group.other) return "Other";
  return group.label ?? group.id ?? NONE[dimension];
}

/** What is shown, as CSV rows: one per bucket (and group, when broken down). Cost in dollars with cents. */
export function usageCsvRows(series: UsageSeriesData): CsvCell[][] {
  const { dimension, bucket } = series;
  const row = (point: UsagePointData, group: CsvCell[]): CsvCell[] => [
    point.start,
    bucketLabel(new Date(point.start), series.timeZone, bucket),
    ...group,
    point.requests,
    point.inputTokens,
    point.outputTokens,
    (point.costCents / 100).toFixed(2),
  ];
  const header = ["bucket_start_utc", `bucket_start_${series.timeZone}`, ...(dimension ? [dimension.toLowerCase(), `${dimension.toLowerCase()}_id`] : [])];
  const rows: CsvCell[][] = [[...header, "requests", "input_tokens", "output_tokens", "cost_usd"]];
  if (!dimension) {
    for (const point of series.points) rows.push(row(point, []));
  } else {
    for (const group of series.groups) {
      for (const point of group.points) rows.push(row(point, [groupName(group, dimension), group.other ? null : group.id]));
    }
  }
  return rows;
}

