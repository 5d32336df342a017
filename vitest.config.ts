import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files run in parallel; each owns its database, so they share no state.
    pool: "forks",
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "platform", include: ["test/**/*.test.ts"], exclude: ["test/browser/**"], sequence: { groupOrder: 0 } } },
      // After the rest: a browser takes both cores, and would stretch the event-loop stalls the platform's tests bound.
      { extends: true, test: { name: "browser", include: ["test/browser/**/*.test.ts"], sequence: { groupOrder: 1 } } },
    ],
  },
});
