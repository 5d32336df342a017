import { createKeyInput, listKeysInput, revokeKeyInput, setKeyAllowedModelsInput } from "../../domain/inputs.js";
import { opsMutation, opsProcedure, router } from "../trpc.js";

export const keysRouter = router({
  /** The answer holds the full key, once; its audit row keeps only the display form. */
  create: opsMutation.input(createKeyInput).mutation(({ ctx, input }) => ctx.services.keys.create(input, ctx.scope)),
  list: opsProcedure.input(listKeysInput).query(({ ctx, input: { accountId, displayPrefix } }) =>
    displayPrefix !== undefined ? ctx.services.keys.findByDisplayPrefix(displayPrefix, accountId) : ctx.services.keys.list(accountId!),
  ),
  revoke: opsMutation.input(revokeKeyInput).mutation(({ ctx, input: { keyId, displayPrefix, accountId } }) =>
    keyId !== undefined
      ? ctx.services.keys.revoke(keyId, accountId, ctx.scope)
      : ctx.services.keys.revokeByDisplayPrefix(displayPrefix!, accountId, ctx.scope),
  ),
  /** Takes effect on the next request on every instance, as a revocation does. */
  setAllowedModels: opsMutation
    .input(setKeyAllowedModelsInput)
    .mutation(({ ctx, input: { keyId, accountId, allowedModels } }) => ctx.services.keys.update(keyId, accountId, { allowedModels }, ctx.scope)),
});
