import { Hono } from "hono";
import type { ApiKeyAuth } from "../domain/auth.js";
import type { Clock } from "../domain/clock.js";
import type { Files } from "../domain/files/files.js";
import type { ChatService } from "../domain/inference/chat.js";
import type { ModelCatalog } from "../domain/inference/model-table.js";
import type { RequestLimits } from "../domain/limits/request-limits.js";
import { apiKeyAuth } from "./api-key-auth.js";
import { chatCompletionsHandler } from "./openai/chat-completions.js";
import { jsonBodyLimit } from "./json-body-limit.js";
import { filesHandlers } from "./openai/files.js";
import { modelsHandlers } from "./openai/models.js";
import { rateLimit } from "./rate-limit.js";

export interface OpenAIFacadeDeps {
  auth: ApiKeyAuth;
  chat: ChatService;
  catalog: ModelCatalog;
  limits: RequestLimits;
  files: Files;
  clock: Clock;
  maxBodyBytes: number;
}

/** The OpenAI REST facade, mounted at /v1. */
export function createOpenAIFacade(deps: OpenAIFacadeDeps) {
  const models = modelsHandlers(deps.catalog, deps.clock.now());
  const files = filesHandlers(deps.files);
  // JSON bodies are read whole, so they are capped; uploads stream and are capped per file instead.
  const jsonBody = jsonBodyLimit(deps.maxBodyBytes);
  return new Hono()
    .use(apiKeyAuth(deps.auth))
    .use(rateLimit(deps.limits, deps.clock))
    .post("/chat/completions", jsonBody, chatCompletionsHandler(deps.chat))
    .get("/models", models.list)
    .get("/models/:id", models.get)
    .post("/files", files.upload)
    .get("/files", files.list)
    .get("/files/:id", files.retrieve)
    .get("/files/:id/content", files.content)
    .delete("/files/:id", files.remove);
}
