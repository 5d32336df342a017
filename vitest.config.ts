import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files run in parallel; each owns its database, so they share no state.
    pool: "forks",
    reporters: ["default"],
  },
});
