import { z } from "zod";
import { DomainError } from "../domain/errors.js";

// Every id the platform issues is a kind prefix and base62 (a file id has a hyphen): anything else names nothing.
const ISSUED_ID = /^[\w-]{1,64}$/;

/** An optional argument naming a row by the id the platform gave it. */
export const optionalId = (error: string) =>
  z
    .string()
    .regex(ISSUED_ID, { error })
    .nullish()
    .transform((id) => id ?? undefined);

/** The arguments of every dashboard list: newest first, `after` being the nextCursor of the page before. */
export const pageArguments = {
  first: z.number().int().min(1).max(100),
  after: optionalId("Pass the nextCursor of the page before."),
};

/** A page of `node`s: the rows, and the cursor of the next page. */
export const pageTypeDefs = (node: string, page = `${node}Page`) => /* GraphQL */ `
  type ${page} {
    nodes: [${node}!]!
    "Pass it as \`after\` for the next page; null on the last one."
    nextCursor: String
  }
`;

// The domain's lists name their cursor after their own APIs' arguments (`cursor`, `before`); here it is always `after`.
const CURSOR_PARAMS = new Set(["cursor", "before"]);

/**
 * A domain list's page, with a cursor it does not know refused as a bad
 * `after`, the same whether the row it names is missing or another account's.
 */
export async function pageAfterCursor<T>(page: Promise<T>): Promise<T> {
  try {
    return await page;
  } catch (error) {
    if (error instanceof DomainError && error.param !== null && CURSOR_PARAMS.has(error.param)) {
      throw new DomainError("invalid_request_error", "No such cursor: pass the nextCursor of the page before.", "after");
    }
    throw error;
  }
}
