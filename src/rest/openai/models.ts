import type { Context } from "hono";
import { DomainError } from "../../domain/errors.js";
import { refuseForbiddenCharacters } from "../../domain/text-rules.js";
import type { EndpointCapability, ModelCatalog, ModelConfig } from "../../domain/inference/model-table.js";

const isDemo = (model: ModelConfig) => model.upstreams.every((u) => u.provider === "demo");

/** OpenAI's model object, plus SentX's own facts about the model. */
function modelObject(model: ModelConfig, created: number) {
  const offers = (capability: EndpointCapability) => model.capabilities.includes(capability);
  return {
    id: model.id,
    object: "model",
    created,
    owned_by: isDemo(model) ? "sentx-demo" : "sentx",
    // SPEC 9: the demo provider is labelled as such.
    demo: isDemo(model),
    description: model.description ?? null,
    context_window: model.contextWindow,
    max_output_tokens: model.maxOutputTokens,
    capabilities: model.capabilities,
    pricing: {
      input_cents_per_million_tokens: model.pricing.inputCentsPerMillion,
      output_cents_per_million_tokens: model.pricing.outputCentsPerMillion,
      // The surfaces' own units, for the models that offer them.
      ...(offers("images") && { cents_per_image: model.pricing.imageCents }),
      ...(offers("transcription") && { audio_cents_per_million_seconds: model.pricing.audioCentsPerMillionSeconds }),
      ...(offers("speech") && { speech_cents_per_million_characters: model.pricing.speechCentsPerMillionCharacters }),
    },
  };
}

export function modelsHandlers(catalog: ModelCatalog, startedAt: Date) {
  const created = Math.floor(startedAt.getTime() / 1000);
  return {
    list: (c: Context) => c.json({ object: "list", data: catalog.list().map((m) => modelObject(m, created)) }),
    get: (c: Context) => {
      const id = refuseForbiddenCharacters("model", c.req.param("id") ?? "");
      const model = catalog.get(id);
      if (!model) throw new DomainError("not_found", `The model '${id.slice(0, 256)}' does not exist.`, "model");
      return c.json(modelObject(model, created));
    },
  };
}
