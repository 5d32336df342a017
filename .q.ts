import { openPostgres } from "./src/infra/db.js";
import { createUsageSeries, usageSeriesInput } from "./src/domain/usage-series.js";
const d = await openPostgres("postgres://postgres@127.0.0.1:5432/sentx_bench_usage_34d8cf32c0c2", { maxConnections: 1 });
const u = createUsageSeries({ db: d.db });
const year = { from: "2025-11-30T00:00:00Z", to: "2026-11-30T00:00:00Z", bucket: "day", timeZone: "America/New_York" };
for (const input of [year, { ...year, groupBy: "model" }, { ...year, groupBy: "conversation" }, { ...year, timeZone: "Asia/Kolkata" }]) {
  const parsed = usageSeriesInput.parse(input);
  const times = [];
  for (let i = 0; i < 5; i++) { const t = performance.now(); await u.series("acct_bench", parsed); times.push((performance.now() - t).toFixed(0)); }
  console.log(JSON.stringify(input), times.join(" "));
}
await d.close();
