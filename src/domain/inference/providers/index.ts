import type { Dispatcher } from "undici";
import type { Logger } from "../../logger.js";
import type { DomainMetrics } from "../../metrics.js";
import { type EndpointCapability, type ModelConfig, serves } from "../model-table.js";
import { createDemoProvider } from "./demo/demo-provider.js";
import { type Provider, withFailover } from "./failover.js";
import { createOpenAICompatibleProvider } from "./openai-compatible/openai-compatible-provider.js";

export interface ChatProviderDeps {
  /** Keep-alive HTTP for the openai-compatible upstreams (infra/upstream-http). */
  http: { dispatcher: Dispatcher };
  /** Attempts in total per request, over all of the model's upstreams (config `upstreamMaxAttempts`). */
  maxAttempts: number;
  /** The demo provider's pause between streamed words. */
  demoDelayMs?: number;
  /** Warned of every failed upstream attempt. */
  logger?: Logger;
  metrics?: DomainMetrics;
}

/**
 * The provider of one model for one surface: the model's upstreams that serve
 * it, in the configured order, behind failover (SPEC 9, SPEC 10).
 */
export function createModelProvider(model: ModelConfig, capability: EndpointCapability, deps: ChatProviderDeps): Provider {
  const upstreams = model.upstreams.filter((upstream) => serves(upstream, capability)).map((upstream) =>
    upstream.provider === "demo"
      ? createDemoProvider({ ...(deps.demoDelayMs !== undefined && { wordDelayMs: deps.demoDelayMs }) })
      : createOpenAICompatibleProvider(upstream, { dispatcher: deps.http.dispatcher }),
  );
  return withFailover(upstreams, { maxAttempts: deps.maxAttempts, logger: deps.logger, metrics: deps.metrics });
}
