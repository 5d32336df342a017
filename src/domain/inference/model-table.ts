import { DomainError } from "../errors.js";
import { z } from "zod";

// SPEC 9: public model names → upstream provider, upstream model, prices, limits, capabilities.

/** The surfaces a model may serve (SPEC 10), each an endpoint of its own. */
export const ENDPOINT_CAPABILITIES = ["chat", "embeddings", "images", "transcription", "speech", "rerank", "realtime"] as const;
/** What a chat model understands besides text. */
const CHAT_FEATURES = ["vision", "files", "video", "tools"] as const;

export const capabilitySchema = z.enum([...ENDPOINT_CAPABILITIES, ...CHAT_FEATURES]);
export type EndpointCapability = (typeof ENDPOINT_CAPABILITIES)[number];

export const isEndpoint = (capability: string): capability is EndpointCapability =>
  (ENDPOINT_CAPABILITIES as readonly string[]).includes(capability);

const upstreamSchema = z.discriminatedUnion("provider", [
  z.object({
    provider: z.literal("demo"),
  }),
  z.object({
    provider: z.literal("openai-compatible"),
    baseUrl: z.url(),
    apiKey: z.string().optional(),
    model: z.string().min(1),
    timeoutMs: z.number().int().positive().default(120_000),
    /** The model's endpoint capabilities this upstream serves; absent: all of them. */
    capabilities: z.array(z.enum(ENDPOINT_CAPABILITIES)).min(1).optional(),
  }),
]);

const cents = z.number().int().nonnegative();

/**
 * Prices per million units, in integer cents: tokens for chat, embeddings,
 * rerank and realtime; seconds of audio for transcription; characters for
 * speech. Images are priced per image, by size. SPEC 5's rounding, minimum
 * and maximum apply to every request alike.
 */
const pricingSchema = z.object({
  inputCentsPerMillion: cents.default(300),
  outputCentsPerMillion: cents.default(1000),
  imageCents: z
    .record(z.string().regex(/^\d{2,5}x\d{2,5}$/, "an image size is WIDTHxHEIGHT"), cents)
    .refine((sizes) => Object.keys(sizes).length > 0, "at least one image size")
    .default({ "256x256": 2, "512x512": 2, "1024x1024": 4, "1024x1536": 6, "1536x1024": 6, "1024x1792": 8, "1792x1024": 8 }),
  // OpenAI's transcription price, $0.006 a minute.
  audioCentsPerMillionSeconds: cents.default(10_000),
  // OpenAI's speech price, $15 per million characters.
  speechCentsPerMillionCharacters: cents.default(1_500),
});

export const modelSchema = z.object({
  id: z.string().min(1),
  description: z.string().optional(),
  // Tried in order; a connection error or 5xx before the first byte falls over to the next.
  upstreams: z.array(upstreamSchema).min(1),
  pricing: pricingSchema.prefault({}),
  contextWindow: z.number().int().positive().default(128_000),
  defaultMaxTokens: z.number().int().positive().default(1024),
  maxOutputTokens: z.number().int().positive().default(4096),
  /** The longest audio a transcription takes; it also bounds the hold taken before the audio is read. */
  maxAudioSeconds: z.number().int().positive().default(3_600),
  // A table written before the other surfaces existed names only chat features: such a model serves chat.
  capabilities: z
    .array(capabilitySchema)
    .default(["chat", "vision", "files", "tools"])
    .transform((list) => [...new Set(list.some(isEndpoint) ? list : ["chat" as const, ...list])]),
}).superRefine((model, ctx) => {
  // Refused at start: found at request time, it would fail every request of the surface after its hold.
  for (const capability of model.capabilities.filter(isEndpoint)) {
    if (!model.upstreams.some((upstream) => serves(upstream, capability))) {
      ctx.addIssue({ code: "custom", path: ["capabilities"], message: `${capability} is offered but none of the model's upstreams serves it` });
    }
  }
});

export const modelTableSchema = z
  .object({
    defaultModel: z.string().default("sentx-v1"),
    models: z.array(modelSchema).min(1),
  })
  .refine((t) => t.models.some((m) => m.id === t.defaultModel), {
    message: "defaultModel must name a model in the table",
    path: ["defaultModel"],
  });

export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type ModelConfig = z.infer<typeof modelSchema>;
export type ModelTable = z.infer<typeof modelTableSchema>;
export type Capability = z.infer<typeof capabilitySchema>;

/** An upstream serves the model's capabilities it lists, or all of them when it lists none. */
export const serves = (upstream: UpstreamConfig, capability: EndpointCapability) =>
  upstream.provider === "demo" || upstream.capabilities === undefined || upstream.capabilities.includes(capability);

/** Out of the box: one model served by the built-in demo provider, on every surface. */
export const demoModelTable: z.input<typeof modelTableSchema> = {
  defaultModel: "sentx-v1",
  models: [
    {
      id: "sentx-v1",
      description: "SentX demo model (built-in demo provider)",
      upstreams: [{ provider: "demo" }],
      capabilities: ["chat", "vision", "files", "tools", "embeddings", "images", "transcription", "speech", "rerank", "realtime"],
    },
  ],
};

/** What a surface calls each capability in its refusals. */
const SURFACE_NAMES: Record<EndpointCapability, string> = {
  chat: "chat completions",
  embeddings: "embeddings",
  images: "image generation",
  transcription: "audio transcription",
  speech: "speech",
  rerank: "rerank",
  realtime: "realtime sessions",
};

export interface ModelCatalog {
  list(): ModelConfig[];
  get(id: string): ModelConfig | undefined;
  /**
   * The model for a surface (SPEC 10). A model of the table that lacks the
   * capability is 400; an unknown name goes to the first model offering it
   * (the default model when it does), as chat's unknown names go to the
   * default; when no model offers it at all, 404 model_not_found.
   */
  resolveFor(capability: EndpointCapability, requested: string): ModelConfig;
}

export function createModelCatalog(table: ModelTable): ModelCatalog {
  const byId = new Map(table.models.map((m) => [m.id, m]));
  const fallback = byId.get(table.defaultModel)!;
  const defaultFirst = [fallback, ...table.models.filter((m) => m !== fallback)];
  // The table is fixed once loaded, so each capability's models are listed once.
  const offering = new Map(ENDPOINT_CAPABILITIES.map((c) => [c, defaultFirst.filter((m) => m.capabilities.includes(c))]));
  return {
    list: () => table.models,
    get: (id) => byId.get(id),
    resolveFor(capability, requested) {
      const candidates = offering.get(capability)!;
      const surface = SURFACE_NAMES[capability];
      if (candidates.length === 0) throw new DomainError("model_not_found", `No model on this server offers ${surface}.`, "model");
      const named = byId.get(requested);
      if (!named) return candidates[0]!;
      if (named.capabilities.includes(capability)) return named;
      const others = candidates.map((m) => m.id).slice(0, 10).join(", ");
      throw new DomainError("invalid_request_error", `The model ${named.id} does not offer ${surface}. Models that do: ${others}.`, "model");
    },
  };
}
