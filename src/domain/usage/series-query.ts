import { type SQL, sql } from "drizzle-orm";
import { type Db, rowsOf } from "../db.js";
import { type UsageGrain, usageRollups } from "../schema/index.js";

export type UsageDimension = "key" | "model" | "endUser" | "conversation";

export interface UsageFilter {
  keyIds?: string[] | undefined;
  models?: string[] | undefined;
  endUserIds?: string[] | undefined;
  conversationIds?: string[] | undefined;
}

export interface UsageSums {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costCents: number;
}

/** One bucket's sums: `bucket` indexes the query's `starts`. */
export interface BucketSums extends UsageSums {
  bucket: number;
}

export interface SeriesRows {
  /** Per bucket, every request the filter matches. */
  total: BucketSums[];
  /** Per bucket, those with a value in the grouped dimension (the rest have none: no end user, say). */
  grouped: BucketSums[];
  /** Per bucket, each of the `limit` groups with the highest cost. */
  top: Array<BucketSums & { id: string }>;
}

export interface SeriesQuery {
  accountId: string;
  starts: Date[];
  end: Date;
  filter: UsageFilter;
  groupBy: UsageDimension | undefined;
  limit: number;
}

const columnOf = {
  key: usageRollups.apiKeyId,
  model: usageRollups.model,
  endUser: usageRollups.endUserId,
  conversation: usageRollups.conversationId,
} as const;

const filterColumns = { keyIds: "key", models: "model", endUserIds: "endUser", conversationIds: "conversation" } as const;

/** The coarsest grain (see usage-rollups.ts) that keeps every dimension in `dimensions`, per hour when the buckets allow. */
function grainFor(dimensions: ReadonlySet<UsageDimension>, hourly: boolean): UsageGrain {
  if (dimensions.has("conversation")) return hourly ? "conversation_hour" : "conversation_quarter";
  if (dimensions.has("endUser")) return "end_user_quarter";
  if (dimensions.has("key") || dimensions.has("model")) return hourly ? "key_model_hour" : "key_model_quarter";
  // Per account alone there is no quarter-hour grain: off the hour, the key-and-model one serves.
  return hourly ? "account_hour" : "key_model_quarter";
}

const HOUR_MS = 3_600_000;
const QUARTER_MS = 900_000;

/**
 * The UTC hours that hold a boundary of the buckets (a start, or the end) not
 * on the hour: these hours' rows belong to two buckets, or partly to none.
 */
function splitHours(starts: readonly Date[], end: Date): number[] {
  const hours = new Set<number>();
  for (const instant of [...starts, end]) {
    const ms = instant.getTime();
    if (ms % HOUR_MS !== 0) hours.add(Math.floor(ms / HOUR_MS) * HOUR_MS);
  }
  return [...hours].sort((a, b) => a - b);
}

const isoParam = (instants: readonly number[]) => sql.param(instants.map((ms) => new Date(ms).toISOString()));

/**
 * Sums the rollups of one account into the buckets that start at `starts`
 * (width_bucket: a binary search in the sorted starts per row, no time-zone
 * arithmetic in the database). One statement: the totals from the grain the
 * filter needs, the grouped rows from the grain the filter and the grouping need.
 */
export function seriesStatement(query: SeriesQuery): SQL {
  const filtered = new Set<UsageDimension>();
  const conditions: SQL[] = [];
  for (const [field, dimension] of Object.entries(filterColumns) as Array<[keyof UsageFilter, UsageDimension]>) {
    const values = query.filter[field];
    if (values === undefined) continue;
    filtered.add(dimension);
    conditions.push(sql`and ${columnOf[dimension]} = any(${sql.param(values)}::text[])`);
  }
  const from = query.starts[0]!.getTime();
  const to = query.end.getTime();
  const split = splitHours(query.starts, query.end);
  const hourAligned = split.length === 0;
  // Sent as text[] (postgres.js has no serializer for a timestamptz[] parameter), and cast in a
  // subquery, run once: in a generic plan (db.ts) a cast of a parameter would run on every row.
  const startsArray = sql`(select ${isoParam(query.starts.map((start) => start.getTime()))}::text[]::timestamptz[])`;
  const bucketOf = (instant: SQL) => sql`width_bucket(${instant}, ${startsArray})`;
  const bucket = bucketOf(sql`${usageRollups.bucketStart}`);
  // The grain as a literal, not a parameter: a generic plan (db.ts) can then use the grain's partial indexes.
  const rowsOfGrain = (grain: UsageGrain, times: SQL, extra: SQL) => sql`
    from ${usageRollups}
    where ${usageRollups.accountId} = ${query.accountId} and ${usageRollups.grain} = ${sql.raw(`'${grain}'`)}
      and ${times} ${sql.join(conditions, sql` `)} ${extra}`;
  const range = (fromMs: number, toMs: number) =>
    sql`${usageRollups.bucketStart} >= ${new Date(fromMs).toISOString()}::timestamptz and ${usageRollups.bucketStart} < ${new Date(toMs).toISOString()}::timestamptz`;
  // Day buckets in a zone off the whole hour (Kolkata's days start at 18:30Z) split one UTC hour
  // each: rather than a year of quarter-hour rows (3.3 times the hourly ones), read the hourly
  // rows of the hours wholly inside one bucket and the quarter-hour rows of the split hours only,
  // looked up by their bucket_start in the key's index. Hour buckets in such a zone split every
  // hour, so they (31 days at most) keep reading the quarter-hour rows: the mix is for when most
  // hours are whole.
  const wholeFrom = Math.ceil(from / HOUR_MS) * HOUR_MS;
  const wholeTo = Math.floor(to / HOUR_MS) * HOUR_MS;
  const mixHours = split.length > 0 && split.length * 2 < (wholeTo - wholeFrom) / HOUR_MS;
  const sums = sql.raw("sum(requests)::bigint as requests, sum(input_tokens)::bigint as input_tokens, sum(output_tokens)::bigint as output_tokens, sum(cost_cents)::bigint as cost_cents");
  /**
   * `select id, bucket, requests, input_tokens, output_tokens, cost_cents`: the rows of the grain that
   * keeps `dimensions`, summed per `id` and bucket.
   */
  const perBucket = (id: SQL, dimensions: ReadonlySet<UsageDimension>, extra: SQL = sql``) => {
    const part = (partGrain: UsageGrain, times: SQL) => sql`select ${id} as id, ${bucket} as bucket, ${sums} ${rowsOfGrain(partGrain, times, extra)} group by 1, 2`;
    const grain = grainFor(dimensions, hourAligned);
    const hourGrain = grainFor(dimensions, true);
    if (hourGrain === grain || !mixHours) return part(grain, range(from, to));
    const quarters = split.flatMap((hour) => [0, 1, 2, 3].map((i) => hour + i * QUARTER_MS)).filter((ms) => ms >= from && ms < to);
    // An hour is whole when its last quarter falls in its first quarter's bucket (every boundary is
    // on a quarter hour): within [wholeFrom, wholeTo) exactly the hours splitHours leaves out, so
    // each quarter hour in [from, to) is read once, in its hour's row or in its own. Written `<=`,
    // the same as `=` since width_bucket never decreases: the planner guesses that an equality of two
    // expressions keeps 0.5% of the rows, and plans for a few hundred (a sort, not a hash).
    const whole = sql`${bucketOf(sql`${usageRollups.bucketStart} + interval '45 minutes'`)} <= ${bucket}`;
    // The cast after the subquery makes it an array value (`= any((select …))` alone would compare with each row
    // of the subquery): one index probe per quarter hour.
    const quarterStarts = sql`(select ${isoParam(quarters)}::text[]::timestamptz[])::timestamptz[]`;
    // Each part summed on its own, then the two: a union of the rows themselves costs more than the part sums.
    return sql`select id, bucket, ${sums} from (
      ${part(hourGrain, sql`${range(wholeFrom, wholeTo)} and ${whole}`)}
      union all
      ${part(grain, sql`${usageRollups.bucketStart} = any(${quarterStarts})`)}
    ) as parts group by 1, 2`;
  };
  const totalRows = (rows: SQL) => sql`select 'total' as part, id, bucket, requests, input_tokens, output_tokens, cost_cents from (${rows}) as totals`;
  if (!query.groupBy) return totalRows(perBucket(sql`null::text`, filtered));

  const column = columnOf[query.groupBy];
  const grouped = new Set([...filtered, query.groupBy]);
  // On the totals' own grain one scan serves both: the rows without a value are the totals' too.
  const oneScan = grainFor(grouped, hourAligned) === grainFor(filtered, hourAligned);
  const totals = oneScan
    ? sql`select 'total' as part, null::text as id, bucket, ${sums} from per_group group by bucket`
    : totalRows(perBucket(sql`null::text`, filtered));
  return sql`
    with per_group as materialized (
      ${perBucket(sql`${column}`, grouped, oneScan ? sql`` : sql`and ${column} is not null`)}
    ),
    top as (
      select id from per_group where id is not null group by id order by sum(cost_cents) desc, sum(requests) desc, id limit ${query.limit}
    )
    ${totals}
    union all
    select 'grouped', null, bucket, ${sums} from per_group where id is not null group by bucket
    union all
    select 'top', id, bucket, requests, input_tokens, output_tokens, cost_cents from per_group join top using (id)`;
}

export async function querySeries(db: Db, query: SeriesQuery): Promise<SeriesRows> {
  type Row = { part: keyof SeriesRows; id: string | null; bucket: number; requests: unknown; input_tokens: unknown; output_tokens: unknown; cost_cents: unknown };
  const rows = await db.transaction(async (tx) => {
    // A year of rows grouped per bucket and group outgrows the default 4 MB, and the aggregate would sort on disk.
    await tx.execute(sql`set local work_mem = '32MB'`);
    return rowsOf<Row>(await tx.execute(seriesStatement(query)));
  });
  const result: SeriesRows = { total: [], grouped: [], top: [] };
  for (const row of rows) {
    const sums = {
      // Buckets count from 1; bigint sums come as text from postgres.js, as numbers from PGlite.
      bucket: Number(row.bucket) - 1,
      requests: Number(row.requests),
      inputTokens: Number(row.input_tokens),
      outputTokens: Number(row.output_tokens),
      costCents: Number(row.cost_cents),
    };
    if (row.part === "top") result.top.push({ ...sums, id: row.id! });
    else result[row.part].push(sums);
  }
  return result;
}
