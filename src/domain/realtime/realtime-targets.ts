import { type ModelConfig, serves } from "../inference/model-table.js";

/** Where a realtime session's upstream socket connects, and how it authenticates there. */
export interface RealtimeTarget {
  /** ws:// or wss:// URL of the upstream's realtime endpoint, with its model. */
  url: string;
  headers: Record<string, string>;
  /** The upstream's label in logs and metrics: its host, never its key. */
  label: string;
}

/**
 * The model's upstreams that can serve realtime, in failover order. An
 * OpenAI-compatible upstream speaks the realtime protocol; one that lists its
 * capabilities must list realtime. For a baseUrl `http://h:p/v1` the socket is
 * `ws://h:p/v1/realtime?model=<upstream model>` (https → wss). The demo
 * provider serves realtime from its loopback endpoint, `demoBaseUrl`, when
 * the platform started one.
 */
export function realtimeTargets(model: ModelConfig, demoBaseUrl?: string): RealtimeTarget[] {
  return model.upstreams.flatMap((upstream) => {
    if (upstream.provider === "demo") {
      return demoBaseUrl ? [{ url: `${demoBaseUrl}/realtime?model=${encodeURIComponent(model.id)}`, headers: {}, label: "demo" }] : [];
    }
    if (!serves(upstream, "realtime")) return [];
    const url = new URL(`${upstream.baseUrl.replace(/\/+$/, "")}/realtime`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("model", upstream.model);
    const headers: Record<string, string> = upstream.apiKey ? { Authorization: `Bearer ${upstream.apiKey}` } : {};
    return [{ url: url.href, headers, label: url.host }];
  });
}
