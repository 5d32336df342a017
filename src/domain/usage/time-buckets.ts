// Local hours and days of an IANA zone as UTC instants, DST-correct, from the
// tz database the runtime ships (Intl). The rollups are UTC quarter hours and
// every zone's offset is a whole number of quarter hours, so every local hour
// or day starts on a UTC quarter hour and the walk below visits each of them.

export type BucketUnit = "hour" | "day";

const QUARTER_MS = 15 * 60_000;
const DAY_MS = 24 * 3_600_000;
// Offsets are sampled a week apart and each change is searched for between two
// samples (an Intl call costs ~20 µs): no zone in the tz database changes its
// offset and back within a week (Morocco's Ramadan changes, the closest, are a month apart).
const SAMPLE_MS = 7 * DAY_MS;
// A local day lasts at most 25 hours, so the day containing `from` starts within this of it.
const LOOKBACK_MS = 26 * 3_600_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function offsetFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True for a zone the tz database knows (Europe/Paris, Asia/Kolkata, UTC), false for anything else. */
export function isTimeZone(timeZone: string): boolean {
  try {
    offsetFormatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at `ms`, in milliseconds: "GMT+05:45" → 20,700,000. */
function offsetAt(timeZone: string, ms: number): number {
  const name = offsetFormatter(timeZone).formatToParts(ms).find((part) => part.type === "timeZoneName")?.value ?? "GMT";
  const match = /^GMT([+-])(\d{2}):(\d{2})$/.exec(name);
  if (!match) return 0;
  return (match[1] === "-" ? -1 : 1) * (Number(match[2]) * 3_600_000 + Number(match[3]) * 60_000);
}

interface OffsetChange {
  /** The first quarter hour with `offset`. */
  at: number;
  offset: number;
}

/** The zone's offset over [from, to): the offset at `from`, then each change. */
function offsetChanges(timeZone: string, from: number, to: number): OffsetChange[] {
  const changes: OffsetChange[] = [{ at: from, offset: offsetAt(timeZone, from) }];
  for (let sample = from; sample < to; sample += SAMPLE_MS) {
    const next = Math.min(sample + SAMPLE_MS, to);
    const before = changes.at(-1)!.offset;
    const after = offsetAt(timeZone, next);
    if (after === before) continue;
    // The first quarter hour in (sample, next] with the new offset.
    let low = sample;
    let high = next;
    while (high - low > QUARTER_MS) {
      const middle = low + Math.floor((high - low) / QUARTER_MS / 2) * QUARTER_MS;
      if (offsetAt(timeZone, middle) === before) low = middle;
      else high = middle;
    }
    changes.push({ at: high, offset: after });
  }
  return changes;
}

export interface Buckets {
  /** Each bucket's first instant, ascending: the first bucket holds `from`, the last the instant before `to`. */
  starts: Date[];
  /** Where the last bucket ends. */
  end: Date;
}

/**
 * The zone's local hours or days covering [from, to). A bucket starts where
 * the local clock reads a whole hour (or midnight), or where a DST change
 * skips that reading: New York's repeated 01:00 in November is two hour
 * buckets, Santiago's day that begins at 01:00 still begins.
 */
export function localBuckets(timeZone: string, unit: BucketUnit, from: Date, to: Date): Buckets {
  const unitMs = unit === "hour" ? 3_600_000 : DAY_MS;
  const first = Math.floor((from.getTime() - LOOKBACK_MS) / QUARTER_MS) * QUARTER_MS;
  const last = Math.ceil((to.getTime() + LOOKBACK_MS) / QUARTER_MS) * QUARTER_MS;
  const changes = offsetChanges(timeZone, first, last);
  const boundaries: number[] = [];
  let change = 0;
  let previousUnit: number | null = null;
  for (let quarter = first; quarter <= last; quarter += QUARTER_MS) {
    while (change + 1 < changes.length && changes[change + 1]!.at <= quarter) change++;
    const local = quarter + changes[change]!.offset;
    const localUnit = Math.floor(local / unitMs);
    if (previousUnit !== null && (local % unitMs === 0 || localUnit !== previousUnit)) boundaries.push(quarter);
    previousUnit = localUnit;
  }
  const fromMs = from.getTime();
  const toMs = to.getTime();
  const firstIndex = boundaries.findLastIndex((boundary) => boundary <= fromMs);
  const endIndex = boundaries.findIndex((boundary) => boundary >= toMs);
  return {
    starts: boundaries.slice(firstIndex, endIndex).map((ms) => new Date(ms)),
    end: new Date(boundaries[endIndex]!),
  };
}
