import type { CallContext, MeteredCall, Metering } from "../metering/metered-call.js";
import { assertModelAllowed } from "../inference/model-access.js";
import type { EndpointCapability, ModelCatalog, ModelConfig } from "../inference/model-table.js";
import type { TokenUsage } from "../inference/provider.js";
import type { SurfaceProvider } from "../inference/surface-provider.js";
import type { Pricing } from "../pricing.js";

// A surface beside chat is a request and response adapter plus a pricing rule
// (SPEC 10): it names its capability, prices its own units, and answers under
// the hold; the metered call does the rest (hold, settle, record, faults) as
// for chat. Nothing is delivered before its charge has committed.

/** Who is asking, for whom, and where: a call context before its model is known. */
export type SurfaceCall = Omit<CallContext, "requestedModel">;

export interface SurfaceDeps {
  catalog: ModelCatalog;
  providerFor(model: ModelConfig, capability: EndpointCapability): SurfaceProvider;
  metering: Pick<Metering, "begin">;
}

/** What a surface knows before the hold, from the request's sizes alone. */
export interface UnitPlan {
  /** The model's price of this surface's units, per million. */
  pricing: Pricing;
  /** An upper bound of the input units (0 when the input is not priced). */
  inputUnits: number;
  /** The output units asked for (0 when the output is not priced). */
  outputUnits: number;
}

export interface Answered<T> {
  result: T;
  /** The units to charge: `promptTokens` are input units, `completionTokens` output units. */
  usage: TokenUsage;
}

export interface Charged<T> {
  result: T;
  model: ModelConfig;
  usage: TokenUsage;
  costCents: number;
}

/** Per-million prices for a surface whose only priced units are its input. */
export const inputPricing = (centsPerMillion: number): Pricing => ({ inputCentsPerMillion: centsPerMillion, outputCentsPerMillion: 0 });

export function createSurfaceCalls({ catalog, providerFor, metering }: SurfaceDeps) {
  /**
   * The surface's model (400 lacking the capability, 404 none offering it,
   * 403 outside the key's scope), then the hold its plan sizes; then `answer`
   * under the hold, given that plan, charged and recorded before its result is returned.
   */
  async function charged<T, P extends UnitPlan>(
    call: SurfaceCall,
    capability: EndpointCapability,
    requestedModel: string,
    signal: AbortSignal,
    plan: (model: ModelConfig) => P,
    answer: (metered: MeteredCall, provider: SurfaceProvider, units: P) => Promise<Answered<T>>,
  ): Promise<Charged<T>> {
    let units!: P;
    const metered = await metering.begin(
      { ...call, requestedModel },
      () => {
        const model = catalog.resolveFor(capability, requestedModel);
        assertModelAllowed(call.caller, requestedModel, model);
        units = plan(model);
        return { model, stream: false, pricing: units.pricing, inputTokensUpperBound: units.inputUnits, requestedMaxTokens: units.outputUnits };
      },
      signal,
    );
    return metered.guard(async () => {
      const { result, usage } = await answer(metered, providerFor(metered.model, capability), units);
      const { chargedCents } = await metered.end({ status: "succeeded", usage }, { beforeDelivery: true });
      return { result, model: metered.model, usage, costCents: chargedCents };
    });
  }

  return { charged };
}

export type SurfaceCalls = ReturnType<typeof createSurfaceCalls>;
