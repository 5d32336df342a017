import { describe, expect, it } from "vitest";
import { toCsv } from "../../web/src/lib/csv.js";
import { usageCsvRows, type UsageSeriesData } from "../../web/src/lib/usage-csv.js";
import { addDays, bucketLabel, dateIn, startOfDay } from "../../web/src/lib/zoned-time.js";

// The usage page's CSV export and its calendar arithmetic: plain functions, run here in Node as the browser runs them.
describe("the usage page's CSV", () => {
  it("writes RFC 4180 rows: CRLF after every row, plain fields bare, numbers as numbers, null as an empty cell", () => {
    expect(toCsv([["bucket", "requests"], ["2026-03-01", 12], ["2026-03-02", null]])).toBe("bucket,requests\r\n2026-03-01,12\r\n2026-03-02,\r\n");
  });

  it("quotes a field holding a comma, a quote or a line break, doubling its quotes", () => {
    expect(toCsv([["a,b", 'say "hi"', "two\nlines", "cr\rhere"]])).toBe('"a,b","say ""hi""","two\nlines","cr\rhere"\r\n');
  });

  it("quotes a field with leading or trailing spaces, which spreadsheets would otherwise trim", () => {
    expect(toCsv([[" padded", "end "]])).toBe('" padded","end "\r\n');
  });

  it("defuses text a spreadsheet would run as a formula (end user ids come from strangers), but not negative numbers", () => {
    expect(toCsv([["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", -3]])).toBe(`"'=HYPERLINK(""http://x"")",'+1,'-2,'@SUM(A1),-3\r\n`);
  });

  it("keeps non-ASCII text as it is", () => {
    expect(toCsv([["café ☕", "東京"]])).toBe("café ☕,東京\r\n");
  });

  it("writes a non-finite number as an empty cell rather than NaN", () => {
    expect(toCsv([[Number.NaN, Number.POSITIVE_INFINITY, 0]])).toBe(",,0\r\n");
  });

  it("writes nothing for no rows, and an empty line for an empty row", () => {
    expect(toCsv([])).toBe("");
    expect(toCsv([[]])).toBe("\r\n");
  });
});

describe("the usage page's dates in the owner's time zone", () => {
  it("starts a day at its local midnight", () => {
    expect(startOfDay("2026-03-01", "UTC").toISOString()).toBe("2026-03-01T00:00:00.000Z");
    expect(startOfDay("2026-03-01", "Asia/Kolkata").toISOString()).toBe("2026-02-28T18:30:00.000Z");
    expect(startOfDay("2026-03-01", "America/New_York").toISOString()).toBe("2026-03-01T05:00:00.000Z");
  });

  it("is DST-correct on the days clocks change", () => {
    // Europe/Paris goes to summer time on 29 March 2026 at 02:00: that day begins at +01:00, the next at +02:00.
    expect(startOfDay("2026-03-29", "Europe/Paris").toISOString()).toBe("2026-03-28T23:00:00.000Z");
    expect(startOfDay("2026-03-30", "Europe/Paris").toISOString()).toBe("2026-03-29T22:00:00.000Z");
    // Asia/Kathmandu is +05:45: offsets are not whole hours everywhere.
    expect(startOfDay("2026-01-15", "Asia/Kathmandu").toISOString()).toBe("2026-01-14T18:15:00.000Z");
  });

  it("names the calendar date an instant falls on in a zone, and counts days across months and years", () => {
    const instant = new Date("2026-03-01T20:00:00Z");
    expect(dateIn(instant, "UTC")).toBe("2026-03-01");
    expect(dateIn(instant, "Asia/Tokyo")).toBe("2026-03-02");
    expect(addDays("2026-02-28", 1)).toBe("2026-03-01");
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(addDays("2026-03-01", -6)).toBe("2026-02-23");
  });

  it("labels buckets in the zone, hours with their local time", () => {
    expect(bucketLabel(new Date("2026-03-28T23:00:00Z"), "Europe/Paris", "DAY")).toBe("2026-03-29");
    expect(bucketLabel(new Date("2026-03-29T01:00:00Z"), "Europe/Paris", "HOUR")).toBe("2026-03-29 03:00");
    expect(bucketLabel(new Date("2026-03-29T00:00:00Z"), "Europe/Paris", "HOUR")).toBe("2026-03-29 01:00");
  });
});

describe("the usage page's CSV export of what it shows", () => {
  const point = (start: string, requests: number, costCents: number) => ({ start, requests, inputTokens: requests * 10, outputTokens: requests * 5, costCents });
  const days = ["2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z"];

  it("totals: one row per bucket, its start in UTC and in the chosen zone, cost in dollars with cents", () => {
    const series: UsageSeriesData = {
      bucket: "DAY",
      timeZone: "Europe/Paris",
      dimension: null,
      points: [point(days[0]!, 3, 7), point(days[1]!, 0, 0)],
      groups: [],
    };
    expect(toCsv(usageCsvRows(series))).toBe(
      [
        "bucket_start_utc,bucket_start_Europe/Paris,requests,input_tokens,output_tokens,cost_usd",
        "2026-03-28T23:00:00.000Z,2026-03-29,3,30,15,0.07",
        "2026-03-29T22:00:00.000Z,2026-03-30,0,0,0,0.00",
        "",
      ].join("\r\n"),
    );
  });

  it("broken down: one row per group and bucket, naming the group, the requests without one, and the rest as Other", () => {
    const series: UsageSeriesData = {
      bucket: "HOUR",
      timeZone: "UTC",
      dimension: "END_USER",
      points: [point("2026-03-01T10:00:00.000Z", 6, 123_456)],
      groups: [
        { id: "eu_1", label: "=cmd|' /C calc'!A0", other: false, points: [point("2026-03-01T10:00:00.000Z", 3, 123_400)] },
        { id: null, label: null, other: false, points: [point("2026-03-01T10:00:00.000Z", 2, 50)] },
        { id: null, label: null, other: true, points: [point("2026-03-01T10:00:00.000Z", 1, 6)] },
      ],
    };
    expect(toCsv(usageCsvRows(series))).toBe(
      [
        "bucket_start_utc,bucket_start_UTC,end_user,end_user_id,requests,input_tokens,output_tokens,cost_usd",
        // An end user's id is chosen by whoever calls the integration: a formula in it is defused.
        `2026-03-01T10:00:00.000Z,2026-03-01 10:00,'=cmd|' /C calc'!A0,eu_1,3,30,15,1234.00`,
        "2026-03-01T10:00:00.000Z,2026-03-01 10:00,No end user named,,2,20,10,0.50",
        "2026-03-01T10:00:00.000Z,2026-03-01 10:00,Other,,1,10,5,0.06",
        "",
      ].join("\r\n"),
    );
  });
});
