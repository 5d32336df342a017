import { getRequestInput, identityRefInput, listAccountIdentitiesInput, listRequestsInput } from "../../domain/inputs.js";
import type { Directory } from "../../domain/identity-directory.js";
import type { OpsServices } from "../context.js";
import { opsProcedure, router } from "../trpc.js";

export const requestsRouter = router({
  /** By the x-request-id the response carried (SPEC 2). */
  get: opsProcedure.input(getRequestInput).query(({ ctx, input }) => ctx.services.requests.get(input.requestId)),
  list: opsProcedure.input(listRequestsInput).query(({ ctx, input }) => ctx.services.requests.list(input)),
});

/** End users and conversations are looked up alike: an account's, newest first, or one by its external id, with totals. */
const identityRouter = <Row>(directoryOf: (services: OpsServices) => Directory<Row>) =>
  router({
    list: opsProcedure
      .input(listAccountIdentitiesInput)
      .query(({ ctx, input }) => directoryOf(ctx.services).list(input.accountId, input)),
    get: opsProcedure
      .input(identityRefInput)
      .query(({ ctx, input }) => directoryOf(ctx.services).get(input.accountId, input.externalId)),
  });

export const endUsersRouter = identityRouter((services) => services.identities.endUsers);
export const conversationsRouter = identityRouter((services) => services.identities.conversations);
