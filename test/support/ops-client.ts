import { createTRPCClient, httpLink, type TRPCClientError } from "@trpc/client";
import type { OpsRouter } from "../../src/trpc/router.js";
import { TEST_OPS_TOKEN } from "./platform.js";

/** The typed ops client, as the CLI uses it, against a running server. */
export const opsClient = (baseUrl: string, token = TEST_OPS_TOKEN) =>
  createTRPCClient<OpsRouter>({
    links: [httpLink({ url: `${baseUrl}/trpc`, headers: { authorization: `Bearer ${token}` } })],
  });

export const domainCode = (error: unknown) => (error as TRPCClientError<OpsRouter>).data?.domainCode;
