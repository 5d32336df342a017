// Dates as the owner reads them: calendar days and hours of a chosen IANA time zone.

const partsFormatters = new Map<string, Intl.DateTimeFormat>();
function partsFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = partsFormatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partsFormatters.set(timeZone, formatter);
  }
  return formatter;
}

/** The wall-clock fields of `at` in `timeZone`. */
function wallClock(at: Date, timeZone: string) {
  const fields: Record<string, number> = {};
  for (const { type, value } of partsFormatter(timeZone).formatToParts(at)) {
    if (type !== "literal") fields[type] = Number(value);
  }
  return fields as Record<"year" | "month" | "day" | "hour" | "minute" | "second", number>;
}

/** How far `timeZone`'s clock is ahead of UTC at `at`, in milliseconds. */
function offsetMs(at: Date, timeZone: string): number {
  const { year, month, day, hour, minute, second } = wallClock(at, timeZone);
  return Date.UTC(year, month - 1, day, hour, minute, second) - Math.floor(at.getTime() / 1000) * 1000;
}

export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return name.length > 0;
  } catch {
    return false;
  }
}

/** The browser's own zone (Intl's resolved one), as the usage page's default. */
export const browserTimeZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** A calendar date (YYYY-MM-DD) as `timeZone` shows `at`. */
export function dateIn(at: Date, timeZone: string): string {
  const { year, month, day } = wallClock(at, timeZone);
  return `${String(year).padStart(4, "0")}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

/** `date` (YYYY-MM-DD) plus `days`, as a calendar date. */
export function addDays(date: string, days: number): string {
  const [year = 1970, month = 1, day = 1] = date.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day + days)).toISOString().slice(0, 10);
}

/**
 * The instant `date` (YYYY-MM-DD) begins in `timeZone`: its local midnight, DST-correct (the offset is
 * taken at the answer, not at UTC midnight, and checked twice for days whose offset changes).
 */
export function startOfDay(date: string, timeZone: string): Date {
  const [year = 1970, month = 1, day = 1] = date.split("-").map(Number);
  const wall = Date.UTC(year, month - 1, day);
  let instant = wall - offsetMs(new Date(wall), timeZone);
  instant = wall - offsetMs(new Date(instant), timeZone);
  return new Date(instant);
}

/** A bucket's start as plain sortable text in `timeZone`: "2026-03-29" for days, "2026-03-29 02:00" for hours. */
export function bucketLabel(at: Date, timeZone: string, bucket: "HOUR" | "DAY"): string {
  const { hour, minute } = wallClock(at, timeZone);
  const day = dateIn(at, timeZone);
  return bucket === "DAY" ? day : `${day} ${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}`;
}
