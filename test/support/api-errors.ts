import type OpenAI from "openai";

/** The APIError the SDK raised, as the fields SPEC 8 fixes; fails the test if the call succeeded. */
export const refusal = (attempt: Promise<unknown>) =>
  attempt.then(
    () => {
      throw new Error("expected a refusal");
    },
    (error: InstanceType<typeof OpenAI.APIError>) => ({ status: error.status, code: error.code, type: error.type, param: error.param }),
  );
