import type { ApiCaller } from "../auth.js";
import { DomainError } from "../errors.js";
import type { ModelConfig } from "./model-table.js";

/**
 * SPEC 10 key scopes: a key that lists allowed models may use only those, on
 * every surface. The name as asked and the model it resolved to both count,
 * so a scope naming the default model also admits names that fall back to it.
 */
export function assertModelAllowed(caller: ApiCaller, requested: string, model: ModelConfig): void {
  const allowed = caller.apiKey.allowedModels;
  if (allowed?.length && !allowed.includes(requested) && !allowed.includes(model.id)) {
    throw new DomainError("model_not_allowed", `This API key may not use the model ${requested}.`, "model");
  }
}
