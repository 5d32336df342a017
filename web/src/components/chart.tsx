import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  values: number[];
}

const HEIGHT = 240;
const PALETTE_SIZE = 11;
const DAY = 86_400;
const DAY_STEPS = [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 56 * DAY, 91 * DAY];

const cssVar = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/**
 * A line chart of series over time (uPlot, on a canvas). The canvas is a picture to screen readers:
 * its label names the table beside it, which holds the same numbers.
 */
export function TimeChart({
  label,
  tableId,
  times,
  series,
  timeZone,
  bucket,
  format,
  axisFormat,
}: {
  label: string;
  /** The id of the table holding the chart's numbers. */
  tableId: string;
  /** Bucket starts, in seconds since the epoch. */
  times: number[];
  series: ChartSeries[];
  timeZone: string;
  bucket: "HOUR" | "DAY";
  format: (value: number) => string;
  /** The y axis's labels, given the step between them (small costs need more decimals than their values). */
  axisFormat: (value: number, step: number) => string;
}) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const text = cssVar("--text");
    const grid = cssVar("--border");
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    // Day buckets are labelled by date alone, in the chosen zone; hour buckets keep uPlot's time labels.
    const dayLabel = new Intl.DateTimeFormat(undefined, { timeZone, month: "short", day: "numeric" });
    const xAxis =
      bucket === "DAY"
        ? { ...axis, incrs: DAY_STEPS, values: (_chart: uPlot, splits: number[]) => splits.map((seconds) => dayLabel.format(new Date(seconds * 1000))) }
        : { ...axis, size: 50 };
    const chart = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: HEIGHT,
        // Axis ticks in the owner's chosen zone, as the buckets are.
        tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), timeZone),
        scales: { x: { time: true }, y: { range: (_chart, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        series: [
          {},
          ...series.map((one, index) => ({
            label: one.label,
            stroke: cssVar(`--chart-${(index % PALETTE_SIZE) + 1}`),
            width: 2,
            value: (_chart: uPlot, value: number | null) => (value === null ? "–" : format(value)),
          })),
        ],
        axes: [
          xAxis,
          { ...axis, size: 76, values: (_chart, splits, _axis, _space, step) => splits.map((value) => axisFormat(value, step)) },
        ],
        legend: { live: true },
      },
      [times, ...series.map((one) => one.values)],
      element,
    );
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(280, element.clientWidth), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [times, series, timeZone, bucket, format, axisFormat]);
  return <div class="chart" ref={host} role="img" aria-label={`${label} chart; the table below lists the same numbers.`} aria-describedby={tableId} />;
}
