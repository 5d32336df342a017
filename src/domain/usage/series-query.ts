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

/** The coarsest grain (see usage-rollups.ts) that keeps every dimension in `dimensions`. */
function grainFor(dimensions: ReadonlySet<UsageDimension>, hourAligned: boolean): UsageGrain {
  if (dimensions.has("conversation")) return "conversation_quarter";
  if (dimensions.has("endUser")) return "end_user_quarter";
  return hourAligned ? "key_model_hour" : "key_model_quarter";
}

const HOUR_MS = 3_600_000;

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
  const hourAligned = [...query.starts, query.end].every((instant) => instant.getTime() % HOUR_MS === 0);
  const starts = sql.param(query.starts.map((start) => start.toISOString()));
  // The grain as a literal, not a parameter: a generic plan (db.ts) can then use the grain's partial indexes.
  const scan = (grain: UsageGrain, extra: SQL = sql``) => sql`
    from ${usageRollups}
    where ${usageRollups.accountId} = ${query.accountId} and ${usageRollups.grain} = ${sql.raw(`'${grain}'`)}
      and ${usageRollups.bucketStart} >= ${query.starts[0]!.toISOString()}::timestamptz
      and ${usageRollups.bucketStart} < ${query.end.toISOString()}::timestamptz
      ${sql.join(conditions, sql` `)} ${extra}`;
  // Sent as text[] (postgres.js has no serializer for a timestamptz[] parameter), and cast in a
  // subquery, run once: in a generic plan (db.ts) a cast of a parameter would run on every row.
  const bucket = sql`width_bucket(${usageRollups.bucketStart}, (select ${starts}::text[]::timestamptz[]))`;
  const sums = sql.raw("sum(requests)::bigint as requests, sum(input_tokens)::bigint as input_tokens, sum(output_tokens)::bigint as output_tokens, sum(cost_cents)::bigint as cost_cents");
  const totalsGrain = grainFor(filtered, hourAligned);
  if (!query.groupBy) return sql`select 'total' as part, null::text as id, ${bucket} as bucket, ${sums} ${scan(totalsGrain)} group by 3`;

  const column = columnOf[query.groupBy];
  const grain = grainFor(new Set([...filtered, query.groupBy]), hourAligned);
  // On the totals' own grain one scan serves both: the rows without a value are the totals' too.
  const oneScan = grain === totalsGrain;
  const totals = oneScan
    ? sql`select 'total' as part, null::text as id, bucket, ${sums} from per_group group by bucket`
    : sql`select 'total' as part, null::text as id, ${bucket} as bucket, ${sums} ${scan(totalsGrain)} group by 3`;
  return sql`
    with per_group as materialized (
      select ${column} as id, ${bucket} as bucket, ${sums} ${scan(grain, oneScan ? sql`` : sql`and ${column} is not null`)} group by 1, 2
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
