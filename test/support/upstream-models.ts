import type { z } from "zod";
import type { modelTableSchema } from "../../src/domain/inference/model-table.js";
import { refusedBaseUrl } from "./fake-upstream.js";

/**
 * A model table over the fake upstream: `sentx-v1` on it, `failover-model` on
 * an address that refuses connections and then on it, `down-model` on the
 * refusing address alone. `refusedHost` is how logs and metrics name that one.
 */
export async function upstreamModelTable(fakeBaseUrl: string, { apiKey }: { apiKey?: string } = {}) {
  const refused = await refusedBaseUrl();
  const credentials = apiKey ? { apiKey } : {};
  const fake = { provider: "openai-compatible", baseUrl: fakeBaseUrl, model: "upstream-llm", timeoutMs: 5000, ...credentials } as const;
  const dead = { provider: "openai-compatible", baseUrl: refused, model: "dead-llm", ...credentials } as const;
  const models: z.input<typeof modelTableSchema> = {
    defaultModel: "sentx-v1",
    models: [
      { id: "sentx-v1", upstreams: [fake] },
      { id: "failover-model", upstreams: [dead, fake] },
      { id: "down-model", upstreams: [dead] },
    ],
  };
  return { models, refusedHost: new URL(refused).host };
}
