import { z } from "zod";

// SPEC 9: public model names → upstream provider, upstream model, prices, limits, capabilities.

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
  }),
]);

export const capabilitySchema = z.enum(["vision", "files", "video", "tools"]);

export const modelSchema = z.object({
  id: z.string().min(1),
  description: z.string().optional(),
  // Tried in order; a connection error or 5xx before the first byte falls over to the next.
  upstreams: z.array(upstreamSchema).min(1),
  pricing: z
    .object({
      inputCentsPerMillion: z.number().int().nonnegative(),
      outputCentsPerMillion: z.number().int().nonnegative(),
    })
    .default({ inputCentsPerMillion: 300, outputCentsPerMillion: 1000 }),
  contextWindow: z.number().int().positive().default(128_000),
  defaultMaxTokens: z.number().int().positive().default(1024),
  maxOutputTokens: z.number().int().positive().default(4096),
  capabilities: z.array(capabilitySchema).default(["vision", "files", "tools"]),
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

/** Out of the box: one model served by the built-in demo provider. */
export const demoModelTable: z.input<typeof modelTableSchema> = {
  defaultModel: "sentx-v1",
  models: [{ id: "sentx-v1", description: "SentX demo model (built-in demo provider)", upstreams: [{ provider: "demo" }] }],
};

export interface ModelCatalog {
  list(): ModelConfig[];
  get(id: string): ModelConfig | undefined;
  /** SPEC 2: any name is accepted; unknown names go to the default model. */
  resolve(requested: string): ModelConfig;
}

export function createModelCatalog(table: ModelTable): ModelCatalog {
  const byId = new Map(table.models.map((m) => [m.id, m]));
  const fallback = byId.get(table.defaultModel)!;
  return {
    list: () => table.models,
    get: (id) => byId.get(id),
    resolve: (requested) => byId.get(requested) ?? fallback,
  };
}
