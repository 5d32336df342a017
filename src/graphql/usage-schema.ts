import type { UsagePoint, UsageSeries, UsageSeriesService } from "../domain/usage-series.js";
import { usageSeriesInput } from "../domain/usage-series.js";
import { type DashboardContext, signedIn } from "./context.js";

export const usageTypeDefs = /* GraphQL */ `
  enum UsageBucket {
    HOUR
    DAY
  }

  enum UsageDimension {
    KEY
    MODEL
    END_USER
    CONVERSATION
  }

  "Each list: 1 to 100 values; a request matches when it matches every list given."
  input UsageFilter {
    keyIds: [ID!]
    models: [String!]
    endUserIds: [ID!]
    conversationIds: [ID!]
  }

  "Sums over requests. Float because a year of them can pass 2^31; each is an exact integer."
  type UsageTotals {
    requests: Float!
    inputTokens: Float!
    outputTokens: Float!
    costCents: Float!
  }

  type UsagePoint {
    "The bucket's first instant (ISO 8601, UTC): a local hour or midnight of the series' time zone."
    start: String!
    requests: Float!
    inputTokens: Float!
    outputTokens: Float!
    costCents: Float!
  }

  type UsageGroup {
    "The key, end user or conversation id, or the model; null for the requests without one (no end user, say) and for other."
    id: ID
    "A key's name and prefix, an end user's or a conversation's external id, the model."
    label: String
    "Every request not in the groups before it, summed."
    other: Boolean!
    totals: UsageTotals!
    points: [UsagePoint!]!
  }

  type UsageSeries {
    bucket: UsageBucket!
    timeZone: String!
    "The first bucket's start: the bucket holding the asked from."
    from: String!
    "The last bucket's end: whole buckets are summed."
    to: String!
    totals: UsageTotals!
    "Every bucket, zero where nothing was used."
    points: [UsagePoint!]!
    "groupBy, or null."
    dimension: UsageDimension
    "With groupBy: the highest-cost groups first (the requests without a value count as one), then other."
    groups: [UsageGroup!]!
  }

  extend type Query {
    """
    The signed-in account's usage over [from, to) (ISO 8601 instants) in local
    hours or days of timeZone (IANA, e.g. Asia/Kolkata), DST-correct. Hour
    buckets span at most 31 days, day buckets 366. groups: 1 to 50.
    """
    usage(
      from: String!
      to: String!
      bucket: UsageBucket!
      timeZone: String!
      filter: UsageFilter
      groupBy: UsageDimension
      groups: Int = 10
    ): UsageSeries!
  }
`;

const point = ({ start, ...sums }: UsagePoint) => ({ start: start.toISOString(), ...sums });

const seriesView = (series: UsageSeries) => ({
  ...series,
  from: series.from.toISOString(),
  to: series.to.toISOString(),
  points: series.points.map(point),
  groups: series.groups.map((group) => ({ ...group, points: group.points.map(point) })),
});

export function usageResolvers({ usage }: { usage: UsageSeriesService }) {
  return {
    // The enums' values are the domain's.
    UsageBucket: { HOUR: "hour", DAY: "day" },
    UsageDimension: { KEY: "key", MODEL: "model", END_USER: "endUser", CONVERSATION: "conversation" },
    Query: {
      usage: async (_: unknown, args: unknown, context: DashboardContext) => {
        const { accountId } = signedIn(context);
        return seriesView(await usage.series(accountId, usageSeriesInput.parse(args)));
      },
    },
  };
}
