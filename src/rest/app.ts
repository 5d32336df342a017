import { Hono } from "hono";
import type { ApiKeyAuth } from "../domain/auth.js";
import type { Clock } from "../domain/clock.js";
import type { Files } from "../domain/files/files.js";
import type { ChatService } from "../domain/inference/chat.js";
import type { ModelCatalog } from "../domain/inference/model-table.js";
import type { RequestLimits } from "../domain/limits/request-limits.js";
import { apiKeyAuth } from "./api-key-auth.js";
import { plainChatHandler } from "./api/plain-chat.js";
import { chatCompletionsHandler } from "./openai/chat-completions.js";
import { jsonBodyLimit } from "./json-body-limit.js";
import { filesHandlers } from "./openai/files.js";
import { modelsHandlers } from "./openai/models.js";
import { type SurfaceHandlerDeps, surfaceHandlers } from "./openai/surfaces.js";
import { rateLimit } from "./rate-limit.js";

export interface OpenAIFacadeDeps {
  auth: ApiKeyAuth;
  chat: ChatService;
  catalog: ModelCatalog;
  limits: RequestLimits;
  files: Files;
  clock: Clock;
  maxBodyBytes: number;
  surfaces: SurfaceHandlerDeps["surfaces"];
  stage: SurfaceHandlerDeps["stage"];
}

/** The OpenAI REST facade, mounted at /v1. */
export function createOpenAIFacade(deps: OpenAIFacadeDeps) {
  const models = modelsHandlers(deps.catalog, deps.clock.now());
  const files = filesHandlers(deps.files);
  const surfaces = surfaceHandlers({ surfaces: deps.surfaces, stage: deps.stage, now: () => deps.clock.now() });
  // JSON bodies are read whole, so they are capped; uploads stream and are capped per file instead.
  const jsonBody = jsonBodyLimit(deps.maxBodyBytes);
  return new Hono()
    .use(apiKeyAuth(deps.auth))
    .use(rateLimit(deps.limits, deps.clock))
    .post("/chat/completions", jsonBody, chatCompletionsHandler(deps.chat))
    .post("/embeddings", jsonBody, surfaces.embeddings)
    .post("/images/generations", jsonBody, surfaces.images)
    .post("/audio/speech", jsonBody, surfaces.speech)
    // Audio is streamed to disk and capped by its own size, like uploads.
    .post("/audio/transcriptions", surfaces.transcriptions)
    .post("/rerank", jsonBody, surfaces.rerank)
    .get("/models", models.list)
    .get("/models/:id", models.get)
    .post("/files", files.upload)
    .get("/files", files.list)
    .get("/files/:id", files.retrieve)
    .get("/files/:id/content", files.content)
    .delete("/files/:id", files.remove);
}

export interface PlainChatApiDeps {
  auth: ApiKeyAuth;
  chat: ChatService;
  limits: RequestLimits;
  clock: Clock;
  maxBodyBytes: number;
  /** The model a request that names none gets. */
  defaultModel: string;
}

/** SPEC 10's plain-text chat, mounted at /api/v1: the same keys, limits and body cap as /v1. */
export function createPlainChatApi(deps: PlainChatApiDeps) {
  return new Hono()
    .use(apiKeyAuth(deps.auth))
    .use(rateLimit(deps.limits, deps.clock))
    .post("/chat", jsonBodyLimit(deps.maxBodyBytes), plainChatHandler(deps.chat, { defaultModel: deps.defaultModel }));
}
