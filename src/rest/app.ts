import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ApiKeyAuth } from "../domain/auth.js";
import type { Clock } from "../domain/clock.js";
import { DomainError } from "../domain/errors.js";
import type { ChatService } from "../domain/inference/chat.js";
import type { ModelCatalog } from "../domain/inference/model-table.js";
import type { RequestLimits } from "../domain/limits/request-limits.js";
import { apiKeyAuth } from "./api-key-auth.js";
import { chatCompletionsHandler } from "./openai/chat-completions.js";
import { modelsHandlers } from "./openai/models.js";
import { rateLimit } from "./rate-limit.js";

export interface OpenAIFacadeDeps {
  auth: ApiKeyAuth;
  chat: ChatService;
  catalog: ModelCatalog;
  limits: RequestLimits;
  clock: Clock;
  maxBodyBytes: number;
}

/** The OpenAI REST facade, mounted at /v1. */
export function createOpenAIFacade(deps: OpenAIFacadeDeps) {
  const models = modelsHandlers(deps.catalog, deps.clock.now());
  return new Hono()
    .use(
      bodyLimit({
        maxSize: deps.maxBodyBytes,
        onError: () => {
          throw new DomainError("request_too_large", `Request bodies may be at most ${deps.maxBodyBytes} bytes.`);
        },
      }),
    )
    .use(apiKeyAuth(deps.auth))
    .use(rateLimit(deps.limits, deps.clock))
    .post("/chat/completions", chatCompletionsHandler(deps.chat))
    .get("/models", models.list)
    .get("/models/:id", models.get);
}
